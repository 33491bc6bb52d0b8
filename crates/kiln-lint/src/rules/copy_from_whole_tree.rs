//! `CopyFromWholeTree` (KL011): the final stage copies a build stage's whole tree.

use kiln_syntax::TextRange;

use crate::CheckConfig;
use crate::rule::declare_rule;
use crate::sink::Sink;

declare_rule! {
    /// ## What it does
    /// Flags a `COPY --from=<stage>` in the final stage whose source is that stage's whole
    /// filesystem (`/`), or the directory that stage copied the whole build context into
    /// (`COPY . .` under `WORKDIR /src` makes `/src` such a directory).
    ///
    /// ## Why is this bad?
    /// The point of a build stage is that the final image gets only its output. Copying its
    /// source tree brings the sources, intermediate objects, dependency caches and whatever
    /// else the context held, and makes the final layer change with every source edit.
    ///
    /// ## Example
    /// ```dockerfile
    /// FROM node:20-bookworm AS build
    /// WORKDIR /src
    /// COPY . .
    /// RUN npm ci && npm run build
    /// FROM nginx:1.27
    /// COPY --from=build /src /usr/share/nginx/html
    /// ```
    ///
    /// Use instead:
    /// ```dockerfile
    /// FROM nginx:1.27
    /// COPY --from=build /src/dist /usr/share/nginx/html
    /// ```
    code: "KL011",
    name: "CopyFromWholeTree",
    description: "The final stage should copy a build stage's output, not its whole tree",
    hadolint: [],
}

/// Check the source `src` of a `COPY --from=from` at `span`; `context_dirs` are the
/// directories that stage copied the whole context into.
pub(crate) fn check(
    sink: &mut Sink,
    config: &CheckConfig,
    from: &str,
    src: &str,
    context_dirs: &[String],
    span: TextRange,
) {
    let path = kiln_context::clean_path(&format!("/{src}"));
    let what = if path == "/" {
        "its whole filesystem".to_owned()
    } else if context_dirs.contains(&path) {
        format!("`{path}`, where it copied the whole build context,")
    } else {
        return;
    };
    sink.finding(
        config,
        &RULE,
        None,
        span,
        format!("the final stage copies {what} from `{from}`"),
        Some("copy only the build's output (a binary, `dist/`), not the source tree".to_owned()),
    );
}
