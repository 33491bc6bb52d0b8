//! `UndefinedArgInFrom`: a FROM that uses a variable no global ARG declares.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use kiln_syntax::TextRange;

use crate::CheckConfig;
use crate::rule::declare_rule;
use crate::sink::Sink;

declare_rule! {
    /// ## What it does
    /// Flags a variable in a FROM's image or `--platform` that is neither a global ARG (one
    /// declared before the first FROM) nor an automatic platform ARG (`BUILDPLATFORM`,
    /// `TARGETARCH` ...).
    ///
    /// ## Why is this bad?
    /// FROM only sees global ARGs, so the variable expands to nothing: usually a typo, or an
    /// ARG declared inside a stage where FROM cannot see it.
    ///
    /// ## Example
    /// ```dockerfile
    /// FROM node:${NODE_VERSION}-alpine
    /// ```
    ///
    /// Use instead:
    /// ```dockerfile
    /// ARG NODE_VERSION=22
    /// FROM node:${NODE_VERSION}-alpine
    /// ```
    name: "UndefinedArgInFrom",
    description: "FROM command must use declared ARGs",
    url: Some("https://docs.docker.com/go/dockerfile/rule/undefined-arg-in-from/"),
    experimental: false,
}

/// Check the names a FROM word's expansion found unset against the `declared` ones (every
/// global ARG, valued or not, and the automatic ones).
pub(crate) fn check(
    sink: &mut Sink,
    config: &CheckConfig,
    unmatched: &BTreeSet<String>,
    declared: &BTreeSet<String>,
    span: TextRange,
) {
    let options: Vec<&str> = declared.iter().map(String::as_str).collect();
    for name in unmatched.iter().filter(|n| !declared.contains(*n)) {
        let mut message = format!("FROM argument '{name}' is not declared");
        if let Some(close) = kiln_frontend::suggest::search(name, &options, true) {
            let _ = write!(message, " (did you mean {close}?)");
        }
        sink.warn(config, &RULE, span, message);
    }
}
