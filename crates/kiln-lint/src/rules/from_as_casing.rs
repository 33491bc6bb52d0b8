//! `FromAsCasing`: `FROM x as y` or `from x AS y`.

use kiln_syntax::Instruction;

use crate::CheckConfig;
use crate::rule::declare_rule;
use crate::sink::Sink;

declare_rule! {
    /// ## What it does
    /// Flags a FROM whose `AS` keyword is not in the same case as the `FROM` keyword.
    ///
    /// ## Why is this bad?
    /// Both are keywords of one instruction; mixing their case reads as a mistake and makes
    /// a file inconsistent. A `FROM` keyword of mixed case (`From`) is left to
    /// `ConsistentInstructionCasing`.
    ///
    /// ## Example
    /// ```dockerfile
    /// FROM debian:12 as builder
    /// ```
    ///
    /// Use instead:
    /// ```dockerfile
    /// FROM debian:12 AS builder
    /// ```
    name: "FromAsCasing",
    description: "The 'as' keyword should match the case of the 'from' keyword",
    url: Some("https://docs.docker.com/go/dockerfile/rule/from-as-casing/"),
    experimental: false,
}

/// Check a FROM as written (before it is parsed, as BuildKit does).
pub(crate) fn check(sink: &mut Sink, config: &CheckConfig, from: &Instruction) {
    let Some(as_word) = from.args.get(1).filter(|_| from.args.len() >= 3) else {
        return;
    };
    let keyword = &from.keyword.text;
    let (lower, upper) = (keyword.to_lowercase(), keyword.to_uppercase());
    let matches = if *keyword == lower {
        as_word.text == as_word.text.to_lowercase()
    } else if *keyword == upper {
        as_word.text == as_word.text.to_uppercase()
    } else {
        true
    };
    if !matches {
        sink.warn(
            config,
            &RULE,
            from.span,
            format!(
                "'{}' and '{keyword}' keywords' casing do not match",
                as_word.text
            ),
        );
    }
}
