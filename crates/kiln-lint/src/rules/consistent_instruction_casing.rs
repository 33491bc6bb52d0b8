//! `ConsistentInstructionCasing`: keywords in mixed case, or against the file's majority.

use kiln_syntax::TextRange;

use crate::CheckConfig;
use crate::rule::declare_rule;
use crate::sink::Sink;

declare_rule! {
    /// ## What it does
    /// Flags an instruction keyword that is not written in the case most keywords of the file
    /// use (all upper or all lower case); a keyword of mixed case (`From`) is always flagged.
    ///
    /// ## Why is this bad?
    /// Keywords are case-insensitive, so nothing breaks, but a file that mixes `COPY` and
    /// `copy` is harder to read and to search.
    ///
    /// ## Example
    /// ```dockerfile
    /// FROM alpine
    /// run echo hello
    /// COPY . /src
    /// ```
    ///
    /// Use instead:
    /// ```dockerfile
    /// FROM alpine
    /// RUN echo hello
    /// COPY . /src
    /// ```
    name: "ConsistentInstructionCasing",
    description: "All commands within the Dockerfile should use the same casing (either upper or lower)",
    url: Some("https://docs.docker.com/go/dockerfile/rule/consistent-instruction-casing/"),
    experimental: false,
}

/// Check the keywords of every stage's instructions (FROM included, the ARGs before the
/// first FROM not), each with its instruction's range, in file order.
pub(crate) fn check(sink: &mut Sink, config: &CheckConfig, keywords: &[(&str, TextRange)]) {
    let consistent = |k: &str| k == k.to_lowercase() || k == k.to_uppercase();
    let (mut lower, mut upper) = (0, 0);
    for (k, _) in keywords.iter().filter(|(k, _)| consistent(k)) {
        if *k == k.to_lowercase() {
            lower += 1;
        } else {
            upper += 1;
        }
    }
    let majority_lower = lower > upper;
    for &(k, span) in keywords {
        let casing = if majority_lower && k != k.to_lowercase() {
            "lowercase"
        } else if !majority_lower && k != k.to_uppercase() {
            "uppercase"
        } else {
            continue;
        };
        sink.warn(
            config,
            &RULE,
            span,
            format!("Command '{k}' should match the case of the command majority ({casing})"),
        );
    }
}
