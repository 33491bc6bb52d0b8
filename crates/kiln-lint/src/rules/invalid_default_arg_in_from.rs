//! `InvalidDefaultArgInFrom`: a FROM that only names a valid image when build args are given.

use kiln_syntax::TextRange;
use kiln_syntax::shell::Lexer;

use crate::CheckConfig;
use crate::rule::declare_rule;
use crate::sink::Sink;

declare_rule! {
    /// ## What it does
    /// Flags a FROM whose image, expanded with the global ARGs' defaults (no `--build-arg`),
    /// is empty or not a valid image reference, such as `busybox:` from `busybox:$VERSION`
    /// with `ARG VERSION` and no default.
    ///
    /// ## Why is this bad?
    /// The Dockerfile builds only when the right `--build-arg` is passed; without it the
    /// build fails with an obscure reference error. A default (or a `${VAR:-default}`) makes
    /// the plain build work.
    ///
    /// ## Example
    /// ```dockerfile
    /// ARG TAG
    /// FROM busybox:${TAG}
    /// ```
    ///
    /// Use instead:
    /// ```dockerfile
    /// ARG TAG=latest
    /// FROM busybox:${TAG}
    /// ```
    name: "InvalidDefaultArgInFrom",
    description: "Default value for global ARG results in an empty or invalid base image name",
    url: Some("https://docs.docker.com/go/dockerfile/rule/invalid-default-arg-in-from/"),
    experimental: false,
}

/// Check every stage's base as written (`bases`: text and FROM range) against `defaults`,
/// the global ARGs evaluated without build args. An expansion that fails ends the check
/// quietly (the build reports it).
pub(crate) fn check(
    sink: &mut Sink,
    config: &CheckConfig,
    lexer: &Lexer,
    defaults: &[(String, String)],
    bases: &[(&str, TextRange)],
) {
    for &(base, span) in bases {
        let Ok(name) = lexer.process_word(base, &defaults) else {
            return;
        };
        if kiln_oci::Reference::parse(&name).is_err() {
            sink.warn(
                config,
                &RULE,
                span,
                format!("Default value for ARG {base} results in empty or invalid base image name"),
            );
        }
    }
}
