//! `NoEmptyContinuation`: a blank line inside a continued instruction.

use kiln_syntax::{Dockerfile, LineIndex};

use crate::CheckConfig;
use crate::rule::declare_rule;
use crate::sink::Sink;

declare_rule! {
    /// ## What it does
    /// Flags an instruction continued (`\` at the end of a line) over an empty line.
    ///
    /// ## Why is this bad?
    /// The parser skips the empty line, so the instruction goes on after it; that is easy to
    /// misread as the end of the instruction, and BuildKit has announced that empty
    /// continuation lines will become errors.
    ///
    /// ## Example
    /// ```dockerfile
    /// RUN apk add \
    ///
    ///     gnupg
    /// ```
    ///
    /// Use instead:
    /// ```dockerfile
    /// RUN apk add \
    ///     gnupg
    /// ```
    name: "NoEmptyContinuation",
    description: "Empty continuation lines will become errors in a future release",
    url: Some("https://docs.docker.com/go/dockerfile/rule/no-empty-continuation/"),
    experimental: false,
}

/// Report the parser's empty-continuation warnings, at the last line of their instruction
/// (where BuildKit's parser is when it notices), with the parser's hint.
pub(crate) fn check(sink: &mut Sink, config: &CheckConfig, source: &str, df: &Dockerfile) {
    let index = LineIndex::new(source);
    for w in df.warnings.iter().filter(|w| w.rule == RULE.name) {
        let last = index.line_col(source, w.span.end).line;
        let span = index.line_range(source, last);
        sink.warn_with_hint(
            config,
            &RULE,
            span,
            "Empty continuation line".to_owned(),
            w.hint.clone(),
        );
    }
}
