//! `UnusedStage` (KL007): a stage no other stage uses.

use kiln_syntax::TextRange;

use crate::CheckConfig;
use crate::rule::declare_rule;
use crate::sink::Sink;

declare_rule! {
    /// ## What it does
    /// Flags a stage, other than the last, that no other stage builds on (`FROM <stage>`),
    /// copies from (`COPY --from`) or mounts (`RUN --mount=from=`), in its instructions or in
    /// the `ONBUILD` triggers of a stage built on. Without `--target` nothing builds it; with
    /// a name it can still be a `--target` of its own, which the message says (suppress the
    /// rule there with `# kiln ignore=UnusedStage` above its `FROM`).
    ///
    /// ## Why is this bad?
    /// A stage nobody uses is dead code: readers work out what it is for, and it rots, since
    /// no build checks that it still builds. Often it is the sign of a mistake, such as a
    /// `COPY --from` that names the wrong stage.
    ///
    /// ## Example
    /// ```dockerfile
    /// FROM golang:1.23 AS build
    /// RUN go build -o /app .
    /// FROM golang:1.23 AS tools
    /// RUN go install golang.org/x/tools/cmd/stringer@latest
    /// FROM gcr.io/distroless/static-debian12
    /// COPY --from=build /app /app
    /// ```
    ///
    /// Use instead:
    /// ```dockerfile
    /// FROM golang:1.23 AS build
    /// RUN go build -o /app .
    /// FROM gcr.io/distroless/static-debian12
    /// COPY --from=build /app /app
    /// ```
    code: "KL007",
    name: "UnusedStage",
    description: "Every stage but the last should be used by another stage",
    hadolint: [],
}

/// Report the unused stage number `index` (0-based), named `name`, whose FROM is at `span`.
pub(crate) fn check(
    sink: &mut Sink,
    config: &CheckConfig,
    index: usize,
    name: Option<&str>,
    span: TextRange,
) {
    let (message, hint) = match name {
        Some(name) => (
            format!("no stage uses the stage `{name}`; only `--target {name}` builds it"),
            "delete the stage, or if it is a target of its own, suppress this with `# kiln ignore=UnusedStage` above it",
        ),
        None => (
            format!("no stage uses stage {index}, and without a name no `--target` can build it"),
            "delete the stage, or use it with `COPY --from`",
        ),
    };
    sink.finding(config, &RULE, None, span, message, Some(hint.to_owned()));
}
