//! `ExposeProtoCasing`: `EXPOSE 80/TCP`.

use kiln_syntax::TextRange;

use crate::CheckConfig;
use crate::rule::declare_rule;
use crate::rules::expose_invalid_format::split_port;
use crate::sink::Sink;

declare_rule! {
    /// ## What it does
    /// Flags an `EXPOSE` port whose protocol is not lowercase.
    ///
    /// ## Why is this bad?
    /// The protocol is stored lowercased (`80/tcp`), so the image does not say what the file
    /// says, and tools comparing the two disagree.
    ///
    /// ## Example
    /// ```dockerfile
    /// EXPOSE 80/TCP
    /// ```
    ///
    /// Use instead:
    /// ```dockerfile
    /// EXPOSE 80/tcp
    /// ```
    name: "ExposeProtoCasing",
    description: "Protocol in EXPOSE instruction should be lowercase",
    url: Some("https://docs.docker.com/go/dockerfile/rule/expose-proto-casing/"),
    experimental: false,
}

/// Check one expanded EXPOSE word.
pub(crate) fn check(sink: &mut Sink, config: &CheckConfig, port: &str, span: TextRange) {
    if let Some(parts) = split_port(port)
        && parts.proto != parts.proto.to_lowercase()
    {
        sink.warn(
            config,
            &RULE,
            span,
            format!("Defined protocol '{port}' in EXPOSE instruction should be lowercase"),
        );
    }
}
