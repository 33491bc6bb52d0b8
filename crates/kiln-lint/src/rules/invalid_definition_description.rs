//! `InvalidDefinitionDescription` (experimental): a comment above ARG or FROM AS that is not
//! its description.

use kiln_syntax::TextRange;

use crate::CheckConfig;
use crate::rule::declare_rule;
use crate::sink::Sink;

declare_rule! {
    /// ## What it does
    /// Flags the comment right above a global or stage `ARG`, or above a named stage's
    /// `FROM`, when its first word is not the name it describes. Experimental: it runs only
    /// with `# check=experimental=InvalidDefinitionDescription` (or `all`).
    ///
    /// ## Why is this bad?
    /// A comment of the form `# <name> <description>` is the documentation of the build
    /// argument or stage that tools (`docker buildx build --call outline`, `targets`) show.
    /// A comment that happens to sit above without naming it is lost there; separate it with
    /// an empty comment line (`#`) if it is not meant as a description.
    ///
    /// ## Example
    /// ```dockerfile
    /// # The version of Go to build with
    /// ARG GO_VERSION=1.22
    /// ```
    ///
    /// Use instead:
    /// ```dockerfile
    /// # GO_VERSION the version of Go to build with
    /// ARG GO_VERSION=1.22
    /// ```
    name: "InvalidDefinitionDescription",
    description: "Comment for build stage or argument should follow the format: `# <arg/stage name> <description>`. If this is not intended to be a description comment, add an empty line or comment between the instruction and the comment.",
    url: Some("https://docs.docker.com/go/dockerfile/rule/invalid-definition-description/"),
    experimental: true,
}

/// Check the comment lines above an `instruction` (`ARG` or `FROM`) that defines `names`.
pub(crate) fn check(
    sink: &mut Sink,
    config: &CheckConfig,
    instruction: &str,
    names: &[&str],
    comments: &[String],
    span: TextRange,
) {
    let (Some(last), Some(first_name)) = (comments.last(), names.first()) else {
        return;
    };
    let first_word = last.split(' ').next().unwrap_or_default();
    if names.contains(&first_word) {
        return;
    }
    let example = if names.len() > 1 {
        "<arg_key>"
    } else {
        first_name
    };
    sink.warn(
        config,
        &RULE,
        span,
        format!("Comment for {instruction} should follow the format: `# {example} <description>`"),
    );
}
