//! `CopyIgnoredFile`: COPY or ADD of a path `.dockerignore` excludes.

use kiln_context::PatternMatcher;
use kiln_syntax::{TextRange, go_quote};

use crate::CheckConfig;
use crate::rule::declare_rule;
use crate::sink::Sink;

declare_rule! {
    /// ## What it does
    /// Flags a `COPY` or `ADD` source from the build context that the context's
    /// `.dockerignore` excludes. The caller passes the ignore patterns (the rule reads no
    /// file); with exception patterns (`!keep`) among them the rule stays silent, because
    /// whether a path survives then depends on what is inside the directories.
    ///
    /// ## Why is this bad?
    /// Excluded files are not in the context the build sees, so the copy fails with "not
    /// found", or, through a wildcard or a directory, silently copies less than it says.
    ///
    /// ## Example
    /// ```dockerfile
    /// # .dockerignore holds `*.env`
    /// COPY app.env /etc/app/
    /// ```
    ///
    /// Use instead:
    /// ```dockerfile
    /// # pass configuration at run time, or stop ignoring the file
    /// COPY app.conf /etc/app/
    /// ```
    name: "CopyIgnoredFile",
    description: "Attempting to Copy file that is excluded by .dockerignore",
    url: Some("https://docs.docker.com/go/dockerfile/rule/copy-ignored-file/"),
    experimental: false,
}

/// Check one local source (expanded) of a COPY without `--from` (`add` false) or of an ADD.
pub(crate) fn check(
    sink: &mut Sink,
    config: &CheckConfig,
    ignore: &PatternMatcher,
    add: bool,
    source: &str,
    span: TextRange,
) {
    if ignore.is_empty() || ignore.has_exclusions() {
        return;
    }
    let path = kiln_context::clean_path(source);
    // `.` and `/` are the context itself, which only "exclude everything" patterns exclude.
    if (path == "." || path == "/") && !excludes_the_root(ignore) {
        return;
    }
    // A pattern that cannot be matched fails the build later, with its own message.
    if ignore.matches(&path).unwrap_or(false) {
        let verb = if add { "Add" } else { "Copy" };
        sink.warn(
            config,
            &RULE,
            span,
            format!(
                "Attempting to {verb} file {} that is excluded by .dockerignore",
                go_quote(&path)
            ),
        );
    }
}

/// BuildKit's `copySourceRootIgnored`: a plain `*`, `**` or `**/*` pattern.
fn excludes_the_root(ignore: &PatternMatcher) -> bool {
    ignore
        .patterns()
        .iter()
        .any(|p| !p.is_exclusion() && matches!(p.as_str(), "*" | "**" | "**/*"))
}
