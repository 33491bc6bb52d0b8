//! `DuplicateStageName`: two stages with one name.

use std::collections::BTreeSet;

use kiln_syntax::{TextRange, go_quote};

use crate::CheckConfig;
use crate::rule::declare_rule;
use crate::sink::Sink;

declare_rule! {
    /// ## What it does
    /// Flags a stage whose name an earlier stage already has (names compare in lowercase).
    ///
    /// ## Why is this bad?
    /// `--from`, `--target` and `FROM <stage>` can only mean one of them: BuildKit takes the
    /// last one, silently, and kiln refuses to build such a file.
    ///
    /// ## Example
    /// ```dockerfile
    /// FROM debian:12 AS builder
    /// RUN make
    ///
    /// FROM alpine AS builder
    /// ```
    ///
    /// Use instead:
    /// ```dockerfile
    /// FROM debian:12 AS builder
    /// RUN make
    ///
    /// FROM alpine AS runtime
    /// ```
    name: "DuplicateStageName",
    description: "Stage names should be unique",
    url: Some("https://docs.docker.com/go/dockerfile/rule/duplicate-stage-name/"),
    experimental: false,
}

/// Check one stage name (lowercased) against the names `seen` before it, and remember it.
pub(crate) fn check(
    sink: &mut Sink,
    config: &CheckConfig,
    seen: &mut BTreeSet<String>,
    name: &str,
    span: TextRange,
) {
    if !seen.insert(name.to_owned()) {
        sink.warn(
            config,
            &RULE,
            span,
            format!(
                "Duplicate stage name {}, stage names should be unique",
                go_quote(name)
            ),
        );
    }
}
