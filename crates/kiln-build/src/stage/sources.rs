//! What a stage's steps read besides their own stage: the build context, earlier stages
//! (waited for) and images of the store.

use kiln_frontend::{Command, CommandKind, DepKind};

use crate::copy_step::CopySource;
use crate::error::StepError;
use crate::executor::Shared;

/// The build context as COPY reads it, filtered by `.dockerignore`: walked on first use,
/// then shared by every COPY/ADD of the build.
pub(super) fn context_root<'s>(
    sh: &'s Shared<'_>,
) -> Result<&'s kiln_fileop::SourceRoot, StepError> {
    sh.context_root
        .get_or_init(|| {
            kiln_fileop::SourceRoot::context(sh.req.context.to_owned(), sh.req.ignore).map_err(
                |e| std::sync::Arc::new(e) as std::sync::Arc<dyn std::error::Error + Send + Sync>,
            )
        })
        .as_ref()
        .map_err(|e| StepError::Context(std::sync::Arc::clone(e)))
}

/// Wait for the stages a `COPY --from` or `RUN --mount from=` reads.
pub(super) fn wait_for_sources(sh: &Shared<'_>, cmd: &Command) -> Result<(), StepError> {
    let plan = sh.req.plan;
    let mut refs: Vec<(&str, DepKind)> = Vec::new();
    match &cmd.kind {
        CommandKind::Copy(c) => refs.extend(
            c.from
                .as_ref()
                .map(|w| (w.text.as_str(), DepKind::CopyFrom)),
        ),
        CommandKind::Run(r) => refs.extend(
            r.mounts
                .iter()
                .filter_map(|m| Some((m.from.as_deref()?, DepKind::MountFrom))),
        ),
        _ => {}
    }
    for (r, kind) in refs {
        if let Some(i) = stage_ref(plan, r, kind) {
            sh.wait(i)?;
        }
    }
    Ok(())
}

/// An image of the store by name, and its layers' snapshots (topmost first), promised: a
/// layer is unpacked when a step first uses it ([`kiln_oci::Snapshots::promise_image`]).
pub(super) fn image_layers(
    sh: &Shared<'_>,
    name: &str,
) -> Result<(kiln_oci::Image, Vec<std::path::PathBuf>), StepError> {
    let image = sh
        .images
        .get(name)
        .map_err(|source| StepError::BaseNotFound {
            name: name.to_owned(),
            source,
        })?;
    let lowers = sh
        .sink
        .snapshots()
        .promise_image(&image)
        .map_err(StepError::snapshot)?;
    Ok((image, lowers))
}

/// Where `COPY --from=X` or `RUN --mount from=X` (`kind`) reads: an earlier stage or an image.
pub(super) fn from_source<'a>(
    sh: &'a Shared<'_>,
    from: &str,
    kind: DepKind,
) -> Result<CopySource<'a>, StepError> {
    let plan = sh.req.plan;
    if let Some(i) = stage_ref(plan, from, kind) {
        let r = sh.wait(i)?;
        return Ok(CopySource::Layers {
            lowers: r.lowers(),
            description: format!("stage `{}`", plan.stages[i].label()),
        });
    }
    let (_, lowers) = image_layers(sh, from)?;
    Ok(CopySource::Layers {
        lowers: kiln_layer::overlay::unique_stack(lowers),
        description: format!("image `{from}`"),
    })
}

/// The stage a `--from` names, as the planner resolved it (`kiln_frontend::plan`): a stage
/// name (any case), or for `COPY --from` also a stage index. `None` means an image: BuildKit
/// looks a mount's `from=` up by name only, so `from=0` is an image called `0`.
pub(super) fn stage_ref(plan: &kiln_frontend::Plan, r: &str, kind: DepKind) -> Option<usize> {
    let by_index = (kind == DepKind::CopyFrom)
        .then(|| r.parse::<usize>().ok())
        .flatten()
        .filter(|i| *i < plan.stages.len());
    by_index.or_else(|| {
        let lower = r.to_ascii_lowercase();
        plan.stages
            .iter()
            .position(|s| s.name.as_deref() == Some(lower.as_str()))
    })
}
