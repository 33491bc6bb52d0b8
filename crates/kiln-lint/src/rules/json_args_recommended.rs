//! `JSONArgsRecommended`: CMD or ENTRYPOINT in shell form.

use kiln_syntax::TextRange;

use crate::CheckConfig;
use crate::rule::declare_rule;
use crate::sink::Sink;

declare_rule! {
    /// ## What it does
    /// Flags a `CMD` or `ENTRYPOINT` written in shell form when the stage has no `SHELL`
    /// (its own, its base stage's or its base image's).
    ///
    /// ## Why is this bad?
    /// Shell form runs the command as a child of `/bin/sh -c`, which does not pass signals
    /// on: `docker stop` sends SIGTERM to the shell, the program never sees it, and the
    /// container is killed after the grace period instead of stopping cleanly. A stage that
    /// chose its own `SHELL` is taken to know what it does.
    ///
    /// ## Example
    /// ```dockerfile
    /// FROM alpine
    /// ENTRYPOINT my-server --port 80
    /// ```
    ///
    /// Use instead:
    /// ```dockerfile
    /// FROM alpine
    /// ENTRYPOINT ["my-server", "--port", "80"]
    /// ```
    name: "JSONArgsRecommended",
    description: "JSON arguments recommended for ENTRYPOINT/CMD to prevent unintended behavior related to OS signals",
    url: Some("https://docs.docker.com/go/dockerfile/rule/json-args-recommended/"),
    experimental: false,
}

/// Check a CMD or ENTRYPOINT (`keyword` as written).
pub(crate) fn check(
    sink: &mut Sink,
    config: &CheckConfig,
    keyword: &str,
    shell_form: bool,
    shell: &[String],
    span: TextRange,
) {
    if shell_form && shell.is_empty() {
        sink.warn(
            config,
            &RULE,
            span,
            format!(
                "JSON arguments recommended for {keyword} to prevent unintended behavior related to OS signals"
            ),
        );
    }
}
