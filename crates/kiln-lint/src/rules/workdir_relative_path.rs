//! `WorkdirRelativePath`: a relative WORKDIR before any absolute one.

use kiln_syntax::{TextRange, go_quote};

use crate::CheckConfig;
use crate::rule::declare_rule;
use crate::sink::Sink;

declare_rule! {
    /// ## What it does
    /// Flags the first `WORKDIR` of a stage (and of the stages it is built on) when its path
    /// is relative.
    ///
    /// ## Why is this bad?
    /// A relative WORKDIR is relative to the base image's working directory, which the
    /// Dockerfile does not control: a new version of the base image can move every file the
    /// stage writes. Later relative WORKDIRs are fine once one absolute path is set.
    ///
    /// ## Example
    /// ```dockerfile
    /// FROM alpine
    /// WORKDIR app
    /// ```
    ///
    /// Use instead:
    /// ```dockerfile
    /// FROM alpine
    /// WORKDIR /app
    /// ```
    name: "WorkdirRelativePath",
    description: "Relative workdir without an absolute workdir declared within the build can have unexpected results if the base image changes",
    url: Some("https://docs.docker.com/go/dockerfile/rule/workdir-relative-path/"),
    experimental: false,
}

/// Check a WORKDIR's expanded `path`; `set` says whether the stage has one already, and
/// becomes true.
pub(crate) fn check(
    sink: &mut Sink,
    config: &CheckConfig,
    set: &mut bool,
    path: &str,
    os: &str,
    span: TextRange,
) {
    if !*set && !is_abs(path, os) {
        sink.warn(
            config,
            &RULE,
            span,
            format!(
                "Relative workdir {} can have unexpected results if the base image changes",
                go_quote(path)
            ),
        );
    }
    *set = true;
}

/// BuildKit's `system.IsAbs`: on Windows a rooted path, with or without a drive letter.
fn is_abs(path: &str, os: &str) -> bool {
    if os != "windows" {
        return path.starts_with('/');
    }
    let b = path.as_bytes();
    let rest = if b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':' {
        &path[2..]
    } else {
        path
    };
    rest.starts_with(['/', '\\'])
}

#[cfg(test)]
mod tests {
    use super::is_abs;

    #[test]
    fn absolute_paths() {
        assert!(is_abs("/app", "linux"));
        assert!(!is_abs("app/", "linux"));
        assert!(is_abs("C:\\app", "windows"));
        assert!(is_abs("\\app", "windows"));
        assert!(!is_abs("app", "windows"));
    }
}
