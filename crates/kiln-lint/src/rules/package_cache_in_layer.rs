//! `PackageCacheInLayer` (KL003): a package manager's cache left in a layer of the image.

use kiln_syntax::TextRange;

use crate::CheckConfig;
use crate::rule::declare_rule;
use crate::script::{Manager, SimpleCommand, package_install};
use crate::sink::Sink;

declare_rule! {
    /// ## What it does
    /// Flags a `RUN`, in the final stage or a stage it is built on (whose layers are the
    /// image's), that leaves a package manager's cache in its layer:
    ///
    /// - `apt-get install` without `rm -rf /var/lib/apt/lists/*` in the same RUN or a cache
    ///   mount on `/var/lib/apt` (hadolint's DL3009);
    /// - `apk add` without `--no-cache`, `rm -rf /var/cache/apk/*` or a cache mount on
    ///   `/var/cache/apk` (DL3019);
    /// - `pip install` without `--no-cache-dir`, `PIP_NO_CACHE_DIR` or a cache mount on a
    ///   `.cache` directory (DL3042);
    /// - `npm install` or `npm ci` without `npm cache clean` or a cache mount on `.npm`
    ///   (hadolint has no such rule);
    /// - `yarn install` (or a bare `yarn`) without `yarn cache clean` or a cache mount on a
    ///   `yarn` directory (DL3060).
    ///
    /// Stages the final image does not build on are left alone: their layers are not shipped.
    ///
    /// ## Why is this bad?
    /// A file deleted in a later RUN still weighs in the layer that wrote it. Package lists and
    /// download caches are tens to hundreds of megabytes that every pull transfers and no
    /// container uses. Cleaning in the same RUN, a `--no-cache` flag, or a cache mount (which
    /// also speeds up rebuilds) keeps them out of the image.
    ///
    /// ## Example
    /// ```dockerfile
    /// RUN apt-get update && apt-get install -y --no-install-recommends curl
    /// RUN pip install -r requirements.txt
    /// ```
    ///
    /// Use instead:
    /// ```dockerfile
    /// RUN apt-get update && apt-get install -y --no-install-recommends curl \
    ///  && rm -rf /var/lib/apt/lists/*
    /// RUN --mount=type=cache,target=/root/.cache/pip pip install -r requirements.txt
    /// ```
    code: "KL003",
    name: "PackageCacheInLayer",
    description: "Package-manager caches should not be left in the image's layers",
    hadolint: ["DL3009", "DL3019", "DL3042", "DL3060"],
}

/// Check the commands of the RUN at `span`; `cache_targets` are the targets of its cache
/// mounts, `env` the names of the variables the stage's ENV set.
pub(crate) fn check(
    sink: &mut Sink,
    config: &CheckConfig,
    commands: &[SimpleCommand],
    cache_targets: &[String],
    env: &[String],
    span: TextRange,
) {
    let removes = |prefix: &str| {
        commands
            .iter()
            .any(|c| c.program() == "rm" && c.args().iter().any(|a| a.starts_with(prefix)))
    };
    let mounted = |part: &str| cache_targets.iter().any(|t| t.contains(part));
    let runs = |program: &[&str], subs: &[&str]| {
        commands
            .iter()
            .any(|c| program.contains(&c.program()) && c.subcommand_is(subs))
    };
    let mut found = |alias: Option<&str>, what: &str, fix: &str| {
        sink.finding(
            config,
            &RULE,
            alias,
            span,
            format!("{what} stays in this layer"),
            Some(fix.to_owned()),
        );
    };
    let installs = |m: Manager| {
        commands
            .iter()
            .filter_map(|c| package_install(c).map(|(found, _)| (found, c)))
            .filter(move |(found, _)| *found == m)
            .map(|(_, c)| c)
    };
    if installs(Manager::Apt).next().is_some()
        && !removes("/var/lib/apt/lists")
        && !mounted("/var/lib/apt")
    {
        found(
            Some("DL3009"),
            "the apt package lists (`/var/lib/apt/lists`)",
            "end the RUN with `&& rm -rf /var/lib/apt/lists/*`, or mount a cache on `/var/lib/apt`",
        );
    }
    if installs(Manager::Apk).any(|c| !c.args().iter().any(|a| a == "--no-cache"))
        && !removes("/var/cache/apk")
        && !mounted("/var/cache/apk")
    {
        found(
            Some("DL3019"),
            "the apk cache (`/var/cache/apk`)",
            "write `apk add --no-cache`",
        );
    }
    let pip = commands.iter().any(|c| {
        let pip_words = match c.program() {
            "pip" | "pip3" => c.args(),
            p if p.starts_with("python")
                && c.args().first().is_some_and(|a| a == "-m")
                && c.args().get(1).is_some_and(|a| a == "pip" || a == "pip3") =>
            {
                &c.args()[2..]
            }
            _ => return false,
        };
        pip_words
            .iter()
            .find(|a| !a.starts_with('-'))
            .is_some_and(|a| a == "install")
            && !pip_words.iter().any(|a| a == "--no-cache-dir")
            && !c.env.iter().any(|e| e.starts_with("PIP_NO_CACHE_DIR="))
    });
    if pip && !env.iter().any(|k| k == "PIP_NO_CACHE_DIR") && !mounted(".cache") {
        found(
            Some("DL3042"),
            "pip's download cache (`~/.cache/pip`)",
            "write `pip install --no-cache-dir`, or mount a cache on `/root/.cache/pip`",
        );
    }
    if runs(&["npm"], &["install", "i", "ci"]) && !runs(&["npm"], &["cache"]) && !mounted(".npm") {
        found(
            None,
            "npm's cache (`~/.npm`)",
            "mount a cache on `/root/.npm`, or end the RUN with `&& npm cache clean --force`",
        );
    }
    let yarn_install = commands.iter().any(|c| {
        c.program() == "yarn"
            && (c.subcommand_is(&["install"]) || c.args().iter().all(|a| a.starts_with('-')))
    });
    if yarn_install && !runs(&["yarn"], &["cache"]) && !mounted("yarn") {
        found(
            Some("DL3060"),
            "yarn's cache",
            "end the RUN with `&& yarn cache clean`, or mount a cache on `/usr/local/share/.cache/yarn`",
        );
    }
}
