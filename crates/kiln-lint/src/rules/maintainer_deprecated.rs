//! `MaintainerDeprecated`: the MAINTAINER instruction.

use kiln_syntax::Instruction;

use crate::CheckConfig;
use crate::rule::declare_rule;
use crate::sink::Sink;

declare_rule! {
    /// ## What it does
    /// Flags the `MAINTAINER` instruction.
    ///
    /// ## Why is this bad?
    /// It has been deprecated since Docker 1.13: it fills the image's legacy `author` field,
    /// which tools no longer read. The OCI annotation label says the same where it is looked
    /// for.
    ///
    /// ## Example
    /// ```dockerfile
    /// MAINTAINER Jane Doe <jane@example.org>
    /// ```
    ///
    /// Use instead:
    /// ```dockerfile
    /// LABEL org.opencontainers.image.authors="Jane Doe <jane@example.org>"
    /// ```
    name: "MaintainerDeprecated",
    description: "The MAINTAINER instruction is deprecated, use a label instead to define an image author",
    url: Some("https://docs.docker.com/go/dockerfile/rule/maintainer-deprecated/"),
    experimental: false,
}

/// Check an instruction as written (a MAINTAINER is flagged even when its arguments are wrong).
pub(crate) fn check(sink: &mut Sink, config: &CheckConfig, inst: &Instruction) {
    if inst.name() == "maintainer" {
        sink.warn(
            config,
            &RULE,
            inst.span,
            "Maintainer instruction is deprecated in favor of using label".to_owned(),
        );
    }
}
