//! `UndefinedVar`: a variable used before anything defines it.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use kiln_syntax::TextRange;

use crate::CheckConfig;
use crate::rule::declare_rule;
use crate::sink::Sink;

declare_rule! {
    /// ## What it does
    /// Flags a variable in an instruction's arguments that is not set at that point: not in
    /// the base image's environment, not set by an earlier `ENV`, and not declared by an
    /// `ARG` of the stage (or of the stage it is built on). RUN, CMD and ENTRYPOINT commands
    /// are left alone: their shell expands them, and may define them.
    ///
    /// ## Why is this bad?
    /// An unset variable expands to nothing, silently: `COPY $SRC .` copies the whole
    /// context. It is often a typo (the message suggests a close name), or a global ARG used
    /// in a stage that did not declare it again.
    ///
    /// ## Example
    /// ```dockerfile
    /// FROM alpine
    /// ENV PATH=$PAHT:/opt/bin
    /// ```
    ///
    /// Use instead:
    /// ```dockerfile
    /// FROM alpine
    /// ENV PATH=$PATH:/opt/bin
    /// ```
    name: "UndefinedVar",
    description: "Variables should be defined before their use",
    url: Some("https://docs.docker.com/go/dockerfile/rule/undefined-var/"),
    experimental: false,
}

/// Names BuildKit reads as build settings, never as variables.
const NOT_VARIABLES: [&str; 2] = ["BUILDKIT_SBOM_SCAN_CONTEXT", "BUILDKIT_SBOM_SCAN_STAGE"];

/// Check the names an instruction's expansion found unset. `declared` are the stage's ARG
/// names (valued or not), `env` the names set before the instruction (for suggestions);
/// `hint` goes with every finding.
pub(crate) fn check(
    sink: &mut Sink,
    config: &CheckConfig,
    unmatched: &BTreeSet<String>,
    declared: &[String],
    env: &[String],
    span: TextRange,
    hint: Option<&str>,
) {
    for name in unmatched {
        if declared.contains(name) || NOT_VARIABLES.contains(&name.as_str()) {
            continue;
        }
        let mut message = format!("Usage of undefined variable '${name}'");
        if let Some(close) = kiln_frontend::suggest::search(name, env, true) {
            let _ = write!(message, " (did you mean ${close}?)");
        }
        sink.warn_with_hint(config, &RULE, span, message, hint.map(str::to_owned));
    }
}
