//! `LegacyKeyValueFormat`: `ENV key value` and `LABEL key value`.

use kiln_frontend::instruction::KeyValue;
use kiln_syntax::TextRange;

use crate::CheckConfig;
use crate::rule::declare_rule;
use crate::sink::Sink;

declare_rule! {
    /// ## What it does
    /// Flags `ENV` and `LABEL` pairs written with a space instead of `=`.
    ///
    /// ## Why is this bad?
    /// In the legacy form everything after the key is the value, spaces included, so
    /// `ENV A 1 B 2` sets one variable `A` to `1 B 2`; the `key=value` form sets several
    /// pairs per instruction and says where each value ends.
    ///
    /// ## Example
    /// ```dockerfile
    /// ENV DEPS curl git
    /// ```
    ///
    /// Use instead:
    /// ```dockerfile
    /// ENV DEPS="curl git"
    /// ```
    name: "LegacyKeyValueFormat",
    description: "Legacy key/value format with whitespace separator should not be used",
    url: Some("https://docs.docker.com/go/dockerfile/rule/legacy-key-value-format/"),
    experimental: false,
}

/// Check the pairs of an ENV or LABEL (`keyword` as written).
pub(crate) fn check(
    sink: &mut Sink,
    config: &CheckConfig,
    keyword: &str,
    pairs: &[KeyValue],
    span: TextRange,
) {
    for _ in pairs.iter().filter(|kv| kv.legacy) {
        sink.warn(
            config,
            &RULE,
            span,
            format!(
                "\"{keyword} key=value\" should be used instead of legacy \"{keyword} key value\" format"
            ),
        );
    }
}
