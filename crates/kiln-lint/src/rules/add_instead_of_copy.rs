//! `AddInsteadOfCopy` (KL006): ADD of local files that COPY would copy the same way.

use kiln_syntax::TextRange;

use crate::CheckConfig;
use crate::rule::declare_rule;
use crate::sink::Sink;

declare_rule! {
    /// ## What it does
    /// Flags an `ADD` whose sources are all files or directories of the build context (or
    /// heredocs) and none of them a local archive that `ADD` would unpack (`.tar`, `.tar.gz`,
    /// `.tgz`, `.tar.bz2`, `.tbz2`, `.tar.xz`, `.txz`, `.tar.zst`). `ADD` of a URL or a Git
    /// repository is left alone: `COPY` cannot do that.
    ///
    /// ## Why is this bad?
    /// `ADD` does more than copy: it unpacks archives and fetches URLs. Used for plain files
    /// it reads as if one of those might happen, and it will, silently, the day a source is
    /// renamed to end in `.tar.gz`. `COPY` says exactly what it does.
    ///
    /// ## Example
    /// ```dockerfile
    /// ADD requirements.txt /app/
    /// ```
    ///
    /// Use instead:
    /// ```dockerfile
    /// COPY requirements.txt /app/
    /// ```
    code: "KL006",
    name: "AddInsteadOfCopy",
    description: "Use COPY for files and folders; keep ADD for archives, URLs and Git",
    hadolint: ["DL3020"],
}

/// Name endings of archives ADD unpacks.
const ARCHIVES: [&str; 10] = [
    ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tbz", ".tar.xz", ".txz", ".tar.zst", ".tzst",
];

/// Check an ADD at `span` whose sources (all local: the caller leaves out URLs and Git) are
/// `sources`; `heredocs` counts its heredoc sources.
pub(crate) fn check(
    sink: &mut Sink,
    config: &CheckConfig,
    sources: &[&str],
    heredocs: usize,
    span: TextRange,
) {
    if sources.is_empty() && heredocs == 0 {
        return;
    }
    let archive = |s: &&str| {
        let lower = s.to_ascii_lowercase();
        // A wildcard may match an archive: leave it alone.
        lower.contains(['*', '?', '[']) || ARCHIVES.iter().any(|a| lower.ends_with(a))
    };
    if sources.iter().any(archive) {
        return;
    }
    sink.finding(
        config,
        &RULE,
        None,
        span,
        "ADD copies local files here, which COPY does without ADD's unpacking and downloading"
            .to_owned(),
        Some("write `COPY` instead of `ADD`".to_owned()),
    );
}
