//! `LooseAptGetInstall` (KL008): `apt-get install` without `--no-install-recommends`, or of
//! packages without pinned versions.

use kiln_syntax::TextRange;

use crate::CheckConfig;
use crate::rule::declare_rule;
use crate::script::{Manager, SimpleCommand, package_install};
use crate::sink::Sink;

declare_rule! {
    /// ## What it does
    /// Flags an `apt-get install` (or `apt install`) in a `RUN` that lacks
    /// `--no-install-recommends` (hadolint's DL3015; `-o APT::Install-Recommends=false`
    /// counts as having it), and one that names packages without a version
    /// (`curl` rather than `curl=7.88.1-10+deb12u7`: hadolint's DL3008; `.deb` files and
    /// words with a variable are left alone). Each is its own finding, so a
    /// `# hadolint ignore=DL3008` keeps the other.
    ///
    /// ## Why is this bad?
    /// Recommended packages are not needed to run what was asked for, and they often double
    /// an image's size (documentation, X libraries, compilers). Unpinned packages make the
    /// build take whatever the mirror has that day: the same Dockerfile gives different
    /// images, and a cached layer hides the difference until the cache is cleared.
    ///
    /// ## Example
    /// ```dockerfile
    /// RUN apt-get update && apt-get install -y curl
    /// ```
    ///
    /// Use instead:
    /// ```dockerfile
    /// RUN apt-get update \
    ///  && apt-get install -y --no-install-recommends curl=7.88.1-10+deb12u7 \
    ///  && rm -rf /var/lib/apt/lists/*
    /// ```
    code: "KL008",
    name: "LooseAptGetInstall",
    description: "apt-get install should pin versions and skip recommended packages",
    hadolint: ["DL3015", "DL3008"],
}

/// Check the commands of the RUN at `span`.
pub(crate) fn check(
    sink: &mut Sink,
    config: &CheckConfig,
    commands: &[SimpleCommand],
    span: TextRange,
) {
    for cmd in commands {
        let Some((Manager::Apt, packages)) = package_install(cmd) else {
            continue;
        };
        let no_recommends = cmd.args().iter().any(|a| {
            a == "--no-install-recommends"
                || a.eq_ignore_ascii_case("APT::Install-Recommends=false")
                || a.eq_ignore_ascii_case("APT::Install-Recommends=0")
        });
        if !no_recommends {
            sink.finding(
                config,
                &RULE,
                Some("DL3015"),
                span,
                "`apt-get install` without `--no-install-recommends` installs recommended packages too".to_owned(),
                Some("add `--no-install-recommends`".to_owned()),
            );
        }
        let loose: Vec<String> = packages
            .iter()
            .filter(|p| !p.contains(['=', '$']) && !p.to_ascii_lowercase().ends_with(".deb"))
            .map(|p| format!("`{p}`"))
            .collect();
        if !loose.is_empty() {
            sink.finding(
                config,
                &RULE,
                Some("DL3008"),
                span,
                format!("`apt-get install` of {} without a pinned version", loose.join(", ")),
                Some("pin each package, e.g. `curl=7.88.1-10+deb12u7` (`apt-cache policy curl` lists versions)".to_owned()),
            );
        }
    }
}
