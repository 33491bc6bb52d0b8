//! `ReservedStageName`: a stage called `scratch` or `context`.

use kiln_syntax::{TextRange, go_quote};

use crate::CheckConfig;
use crate::rule::declare_rule;
use crate::sink::Sink;

declare_rule! {
    /// ## What it does
    /// Flags a stage named `scratch` or `context`.
    ///
    /// ## Why is this bad?
    /// Both names already mean something: `scratch` is the empty image and `context` the
    /// build context (`--build-context`), so a stage of that name is ambiguous wherever a
    /// stage can be named.
    ///
    /// ## Example
    /// ```dockerfile
    /// FROM alpine AS scratch
    /// ```
    ///
    /// Use instead:
    /// ```dockerfile
    /// FROM alpine AS base
    /// ```
    name: "ReservedStageName",
    description: "Reserved words should not be used as stage names",
    url: Some("https://docs.docker.com/go/dockerfile/rule/reserved-stage-name/"),
    experimental: false,
}

/// The names BuildKit reserves.
const RESERVED: [&str; 2] = ["context", "scratch"];

/// Check one stage name (lowercased).
pub(crate) fn check(sink: &mut Sink, config: &CheckConfig, name: &str, span: TextRange) {
    if RESERVED.contains(&name) {
        sink.warn(
            config,
            &RULE,
            span,
            format!(
                "Stage name should not use the same name as reserved stage {}",
                go_quote(name)
            ),
        );
    }
}
