//! `StageNameCasing`: a stage name in capitals.

use kiln_syntax::Instruction;

use crate::CheckConfig;
use crate::rule::declare_rule;
use crate::sink::Sink;

declare_rule! {
    /// ## What it does
    /// Flags a stage name (`FROM image AS Name`) that is not all lowercase.
    ///
    /// ## Why is this bad?
    /// Stage names are case-insensitive: BuildKit lowercases them, so `COPY --from=Builder`
    /// and `--target builder` both mean the stage `Builder`. Writing them in lowercase keeps
    /// the file saying what the build does, and keeps stage names apart from the
    /// `UPPERCASE` instruction keywords.
    ///
    /// ## Example
    /// ```dockerfile
    /// FROM alpine AS BuilderBase
    /// ```
    ///
    /// Use instead:
    /// ```dockerfile
    /// FROM alpine AS builder-base
    /// ```
    name: "StageNameCasing",
    description: "Stage names should be lowercase",
    url: Some("https://docs.docker.com/go/dockerfile/rule/stage-name-casing/"),
    experimental: false,
}

/// Check a FROM as written (before it is parsed, as BuildKit does).
pub(crate) fn check(sink: &mut Sink, config: &CheckConfig, from: &Instruction) {
    if let [_, _, name] = from.args.as_slice()
        && name.text != name.text.to_lowercase()
    {
        sink.warn(
            config,
            &RULE,
            from.span,
            format!("Stage name '{}' should be lowercase", name.text),
        );
    }
}
