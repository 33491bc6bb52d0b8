//! `UnpinnedBaseImage` (KL001): a base image without a tag or digest, or with `latest`.

use kiln_syntax::TextRange;

use crate::CheckConfig;
use crate::rule::declare_rule;
use crate::sink::Sink;

declare_rule! {
    /// ## What it does
    /// Flags a `FROM` whose image (after its ARGs are expanded) has neither a tag nor a
    /// digest, or has the tag `latest`. Stages, `scratch` and names that are not image
    /// references are left alone.
    ///
    /// ## Why is this bad?
    /// Without a tag the build means `latest`, and `latest` moves: the same Dockerfile builds
    /// a different image next month, with another distribution release or language runtime,
    /// and a cache that matches nothing. A tag that names a version (better: a digest) makes
    /// the build repeatable and its upgrades deliberate.
    ///
    /// ## Example
    /// ```dockerfile
    /// FROM debian
    /// FROM node:latest
    /// ```
    ///
    /// Use instead:
    /// ```dockerfile
    /// FROM debian:bookworm-20240812
    /// FROM node:20.17-bookworm-slim@sha256:<digest>
    /// ```
    code: "KL001",
    name: "UnpinnedBaseImage",
    description: "Base images should be pinned to a version tag or a digest",
    hadolint: ["DL3006", "DL3007"],
}

/// Check the base image `image` of the FROM at `span`.
pub(crate) fn check(sink: &mut Sink, config: &CheckConfig, image: &str, span: TextRange) {
    if image.contains('@') || kiln_oci::Reference::parse(image).is_err() {
        return;
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    let (alias, message) = match last.split_once(':') {
        None => (
            "DL3006",
            format!(
                "the base image `{image}` has no tag or digest, so the build takes whatever `latest` is that day"
            ),
        ),
        Some((_, "latest")) => (
            "DL3007",
            format!("the base image `{image}` is pinned to `latest`, which moves"),
        ),
        Some(_) => return,
    };
    sink.finding(
        config,
        &RULE,
        Some(alias),
        span,
        message,
        Some("name a version tag, and add `@sha256:...` for a repeatable build".to_owned()),
    );
}
