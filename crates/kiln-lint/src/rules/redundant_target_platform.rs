//! `RedundantTargetPlatform`: `FROM --platform=$TARGETPLATFORM`.

use kiln_syntax::TextRange;
use kiln_syntax::shell::Expansion;

use crate::CheckConfig;
use crate::rule::declare_rule;
use crate::sink::Sink;

declare_rule! {
    /// ## What it does
    /// Flags `FROM --platform=$TARGETPLATFORM` (or `${TARGETPLATFORM}`).
    ///
    /// ## Why is this bad?
    /// A stage is built for the target platform unless it says otherwise, so the flag says
    /// nothing and suggests that it matters.
    ///
    /// ## Example
    /// ```dockerfile
    /// FROM --platform=$TARGETPLATFORM alpine
    /// ```
    ///
    /// Use instead:
    /// ```dockerfile
    /// FROM alpine
    /// ```
    name: "RedundantTargetPlatform",
    description: "Setting platform to predefined $TARGETPLATFORM in FROM is redundant as this is the default behavior",
    url: Some("https://docs.docker.com/go/dockerfile/rule/redundant-target-platform/"),
    experimental: false,
}

/// Check a FROM's `--platform` as written (`raw`) and its expansion against the global
/// ARGs: flagged when `TARGETPLATFORM` was the one variable and the result is its value.
pub(crate) fn check(
    sink: &mut Sink,
    config: &CheckConfig,
    raw: &str,
    expansion: &Expansion,
    target_platform: Option<&str>,
    span: TextRange,
) {
    let only_target = expansion.unmatched.is_empty()
        && expansion.matched.len() == 1
        && expansion.matched.contains("TARGETPLATFORM");
    if only_target && target_platform == Some(expansion.result.as_str()) {
        sink.warn(
            config,
            &RULE,
            span,
            format!(
                "Setting platform to predefined {raw} in FROM is redundant as this is the default behavior"
            ),
        );
    }
}
