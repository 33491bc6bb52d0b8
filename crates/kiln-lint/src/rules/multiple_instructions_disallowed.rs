//! `MultipleInstructionsDisallowed`: two CMDs (ENTRYPOINTs, HEALTHCHECKs) in one stage.

use kiln_syntax::TextRange;

use crate::CheckConfig;
use crate::rule::declare_rule;
use crate::sink::Sink;

declare_rule! {
    /// ## What it does
    /// Flags a `CMD`, `ENTRYPOINT` or `HEALTHCHECK` that a later one of the same stage
    /// replaces. The finding points at the earlier one, the one that has no effect.
    ///
    /// ## Why is this bad?
    /// Only the last of each is kept in the image, so the earlier one is dead code that
    /// looks like it matters. (A stage built on another starts afresh: replacing the base
    /// stage's CMD is normal.)
    ///
    /// ## Example
    /// ```dockerfile
    /// FROM alpine
    /// CMD ["echo", "hello"]
    /// CMD ["echo", "world"]
    /// ```
    ///
    /// Use instead:
    /// ```dockerfile
    /// FROM alpine
    /// CMD ["echo", "world"]
    /// ```
    name: "MultipleInstructionsDisallowed",
    description: "Multiple instructions of the same type should not be used in the same stage",
    url: Some("https://docs.docker.com/go/dockerfile/rule/multiple-instructions-disallowed/"),
    experimental: false,
}

/// Where the last CMD, ENTRYPOINT or HEALTHCHECK of a stage was (BuildKit's
/// `instructionTracker`).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Tracker {
    last: Option<TextRange>,
}

/// Check an instruction (`keyword` as written) against the earlier one of its kind.
pub(crate) fn check(
    sink: &mut Sink,
    config: &CheckConfig,
    tracker: &mut Tracker,
    keyword: &str,
    span: TextRange,
) {
    if let Some(earlier) = tracker.last {
        sink.warn(
            config,
            &RULE,
            earlier,
            format!(
                "Multiple {keyword} instructions should not be used in the same stage because only the last one will be used"
            ),
        );
    }
    tracker.last = Some(span);
}
