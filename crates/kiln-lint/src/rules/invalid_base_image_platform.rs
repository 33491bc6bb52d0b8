//! `InvalidBaseImagePlatform`: the base image is for another platform than the stage.

use kiln_frontend::Platform;
use kiln_syntax::{TextRange, go_quote};

use crate::CheckConfig;
use crate::rule::declare_rule;
use crate::sink::Sink;

declare_rule! {
    /// ## What it does
    /// Flags a stage whose base image, as the build resolved it, is for another OS or
    /// architecture than the stage is built for (its `--platform`, else the build's target
    /// platform). Only the build knows the resolved image, so this rule runs when the caller
    /// passes what it knows of base images ([`BaseImages`](crate::BaseImages)).
    ///
    /// ## Why is this bad?
    /// The image's programs will not run natively, or the stage will produce an image for
    /// the wrong platform; typically the image has no manifest for the platform asked for and
    /// another was picked.
    ///
    /// ## Example
    /// ```dockerfile
    /// # an image that only exists for linux/arm64, built with --platform linux/amd64
    /// FROM example.org/tools:arm64-only
    /// ```
    ///
    /// Use instead:
    /// ```dockerfile
    /// FROM example.org/tools:multiarch
    /// ```
    name: "InvalidBaseImagePlatform",
    description: "Base image platform does not match expected target platform",
    url: None,
    experimental: false,
}

/// Check the base image `image` (as the FROM names it, expanded) pulled for `actual` against
/// the `expected` platform: OS and architecture must be the same (the variant may differ).
pub(crate) fn check(
    sink: &mut Sink,
    config: &CheckConfig,
    image: &str,
    expected: &Platform,
    actual: &Platform,
    span: TextRange,
) {
    if expected.os != actual.os || expected.architecture != actual.architecture {
        sink.warn(
            config,
            &RULE,
            span,
            format!(
                "Base image {image} was pulled with platform {}, expected {} for current build",
                go_quote(&actual.to_string()),
                go_quote(&expected.to_string())
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(expected: &str, actual: &str) -> Vec<kiln_syntax::Diagnostic> {
        let mut sink = Sink::default();
        check(
            &mut sink,
            &CheckConfig::default(),
            "example.org/base:1",
            &Platform::parse(expected).unwrap(),
            &Platform::parse(actual).unwrap(),
            TextRange::new(1, 5),
        );
        sink.warnings
    }

    #[test]
    fn another_os_or_architecture_is_flagged() {
        let w = run("linux/amd64", "linux/arm64");
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].rule, "InvalidBaseImagePlatform");
        assert_eq!(
            w[0].message,
            "Base image example.org/base:1 was pulled with platform \"linux/arm64\", expected \"linux/amd64\" for current build"
        );
        assert_eq!(w[0].url, None);
        assert_eq!(run("linux/amd64", "windows/amd64").len(), 1);
    }

    #[test]
    fn the_same_platform_or_another_variant_is_not() {
        assert!(run("linux/amd64", "linux/amd64").is_empty());
        assert!(run("linux/arm/v7", "linux/arm/v6").is_empty());
    }
}
