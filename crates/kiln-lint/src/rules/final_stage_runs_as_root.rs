//! `FinalStageRunsAsRoot` (KL010): the image's user is root.

use kiln_syntax::TextRange;

use crate::CheckConfig;
use crate::rule::declare_rule;
use crate::sink::Sink;

declare_rule! {
    /// ## What it does
    /// Flags the final stage when the image it makes runs as root: its last `USER` (in it or
    /// in a stage it is built on) is `root` or `0` (with any group; hadolint's DL3002), or
    /// there is no `USER` and the base image does not set a user other than root either (when
    /// the build does not know the base image's user, root is assumed: that is the default of
    /// nearly every base image, and of `scratch`). The finding is on that `USER`, or on the
    /// final `FROM`.
    ///
    /// ## Why is this bad?
    /// A process running as root in a container is root on the files and devices it is
    /// given, and one kernel or runtime bug away from root on the host. Most programs need no
    /// privilege at all; a dedicated user costs one line.
    ///
    /// ## Example
    /// ```dockerfile
    /// FROM debian:bookworm-slim
    /// COPY app /usr/local/bin/app
    /// CMD ["app"]
    /// ```
    ///
    /// Use instead:
    /// ```dockerfile
    /// FROM debian:bookworm-slim
    /// RUN useradd --system --uid 10001 app
    /// COPY app /usr/local/bin/app
    /// USER app
    /// CMD ["app"]
    /// ```
    code: "KL010",
    name: "FinalStageRunsAsRoot",
    description: "The final image should set a USER other than root",
    hadolint: ["DL3002"],
}

/// Whether `user` (`name[:group]`) is root.
fn is_root(user: &str) -> bool {
    let name = user.split(':').next().unwrap_or(user);
    name == "root" || name == "0"
}

/// Check the final stage, whose last USER is `last_user` (with its instruction's range), whose
/// base image sets `image_user` (`None` when it sets none or the build does not know), and
/// whose FROM is at `from`.
pub(crate) fn check(
    sink: &mut Sink,
    config: &CheckConfig,
    last_user: Option<(&str, TextRange)>,
    image_user: Option<&str>,
    from: TextRange,
) {
    match last_user {
        Some((user, span)) if is_root(user) => sink.finding(
            config,
            &RULE,
            Some("DL3002"),
            span,
            format!("the image runs as `{user}`: its last USER is root"),
            Some("switch to an unprivileged user after the steps that need root".to_owned()),
        ),
        Some(_) => {}
        None if image_user.is_some_and(|u| !u.is_empty() && !is_root(u)) => {}
        None => sink.finding(
            config,
            &RULE,
            None,
            from,
            "the image runs as root: no USER is set".to_owned(),
            Some("create an unprivileged user and end with `USER <name>`".to_owned()),
        ),
    }
}
