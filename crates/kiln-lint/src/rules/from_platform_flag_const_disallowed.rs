//! `FromPlatformFlagConstDisallowed`: `FROM --platform=linux/amd64`.

use kiln_frontend::Platform;
use kiln_syntax::shell::Expansion;
use kiln_syntax::{TextRange, go_quote};

use crate::CheckConfig;
use crate::rule::declare_rule;
use crate::sink::Sink;

declare_rule! {
    /// ## What it does
    /// Flags a FROM whose `--platform` is a constant, unless the stage's name contains that
    /// platform's OS or architecture (a stage meant for one platform).
    ///
    /// ## Why is this bad?
    /// A constant pins the stage to one platform whatever the build's `--platform` asks for,
    /// so the Dockerfile can no longer build a multi-platform image. Use
    /// `$BUILDPLATFORM` (for build tools) or leave the flag out.
    ///
    /// ## Example
    /// ```dockerfile
    /// FROM --platform=linux/amd64 golang AS build
    /// ```
    ///
    /// Use instead:
    /// ```dockerfile
    /// FROM --platform=$BUILDPLATFORM golang AS build
    /// ```
    name: "FromPlatformFlagConstDisallowed",
    description: "FROM --platform flag should not use a constant value",
    url: Some("https://docs.docker.com/go/dockerfile/rule/from-platform-flag-const-disallowed/"),
    experimental: false,
}

/// Check a FROM's `--platform` expansion; `stage` is the stage's name ("" when unnamed).
pub(crate) fn check(
    sink: &mut Sink,
    config: &CheckConfig,
    stage: &str,
    expansion: &Expansion,
    span: TextRange,
) {
    if !expansion.matched.is_empty() || !expansion.unmatched.is_empty() {
        return;
    }
    let Ok(p) = Platform::parse(&expansion.result) else {
        return; // the build reports it
    };
    if stage.contains(&p.os) || stage.contains(&p.architecture) {
        return;
    }
    sink.warn(
        config,
        &RULE,
        span,
        format!(
            "FROM --platform flag should not use constant value {}",
            go_quote(&expansion.result)
        ),
    );
}
