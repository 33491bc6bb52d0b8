//! COPY and ADD: the expanded instruction handed to `kiln-fileop`, which resolves it against
//! the source (the context, a stage, an image) and the stage's own filesystem and writes the
//! layer (BuildKit's `dispatchCopy`).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use kiln_fileop::{
    ChownSpec, ContentHasher, CopyOp, DirView, Fetcher, Inputs, LayerOptions, MerkleHash,
    ModeChange, OpKind, Source, SourceRoot,
};
use kiln_frontend::instruction::{Chmod, CopyFlags, SourcesAndDest, is_url};
use kiln_layer::Digest;
use kiln_oci::snapshot::shares::Sharing;

use crate::error::StepError;
use crate::layers::{Layer, LayerSink};

/// `--chmod` as kiln-fileop wants it.
#[derive(Debug)]
struct ChmodMode(Chmod);

impl ModeChange for ChmodMode {
    fn apply(&self, mode: u32, is_dir: bool) -> u32 {
        self.0.apply(mode, is_dir)
    }

    fn octal(&self) -> Option<u32> {
        match self.0 {
            Chmod::Octal(m) => Some(m),
            Chmod::Symbolic(_) => None,
        }
    }
}

/// Where COPY reads its path sources.
pub(crate) enum CopySource<'a> {
    /// The build context, as filtered by its ignore rules (made once per build).
    Context {
        /// The context.
        root: &'a SourceRoot,
    },
    /// A stage's or an image's layers (snapshots, topmost first).
    Layers {
        /// The snapshots.
        lowers: Vec<PathBuf>,
        /// `stage "build"` or `image "busybox"`, for errors.
        description: String,
    },
}

/// One COPY or ADD, expanded.
pub(crate) struct CopyInput<'a> {
    /// Sources and destination.
    pub paths: &'a SourcesAndDest,
    /// Shared flags.
    pub flags: &'a CopyFlags,
    /// `--parents` (COPY).
    pub parents: bool,
    /// COPY or ADD (with ADD's options).
    pub kind: OpKind,
    /// The stage's WORKDIR.
    pub workdir: String,
    /// Where the sources are.
    pub source: CopySource<'a>,
    /// The stage's layers (snapshots, topmost first).
    pub target: Vec<PathBuf>,
    /// How the views of layers are made.
    pub snapshotter: crate::snapshotter::Snapshotter,
    /// Downloads.
    pub fetcher: &'a (dyn Fetcher + Sync),
    /// `SOURCE_DATE_EPOCH`.
    pub source_date_epoch: Option<i64>,
}

/// The `CopyOp` of an expanded COPY/ADD.
fn copy_op(input: &CopyInput<'_>) -> Result<CopyOp, StepError> {
    let chmod: Option<Arc<dyn ModeChange>> = match &input.flags.chmod {
        None => None,
        Some(w) => Some(Arc::new(ChmodMode(
            Chmod::parse(&w.text).ok_or_else(|| StepError::Chmod(w.text.clone()))?,
        ))),
    };
    let mut sources: Vec<Source> = input
        .paths
        .sources
        .iter()
        .map(|s| {
            if matches!(input.kind, OpKind::Add { .. }) && is_url(&s.text) {
                Source::Url(s.text.clone())
            } else {
                Source::Path(s.text.clone())
            }
        })
        .collect();
    sources.extend(input.paths.heredocs.iter().map(|h| Source::Heredoc {
        name: h.path.clone(),
        data: h.data.clone().into_bytes(),
    }));
    let op = CopyOp {
        sources,
        dest: input.paths.dest.text.clone(),
        workdir: input.workdir.clone(),
        chown: input
            .flags
            .chown
            .as_ref()
            .map(|w| ChownSpec::parse(&w.text)),
        chmod,
        parents: input.parents,
        exclude: input.flags.exclude.iter().map(|w| w.text.clone()).collect(),
        link: input.flags.link,
        kind: input.kind.clone(),
        created_mtime: input.source_date_epoch.unwrap_or(0),
    };
    Ok(op)
}

/// Plan the COPY/ADD against its source and the stage's filesystem and hand the plan to
/// `f`, inside the views that the plan reads (they exist only while `f` runs).
fn with_plan<R: Send>(
    sink: &LayerSink<'_>,
    input: &CopyInput<'_>,
    f: &(dyn Fn(&kiln_fileop::Plan<'_>) -> Result<R, StepError> + Sync),
) -> Result<R, StepError> {
    let op = copy_op(input)?;
    let scratch = sink.scratch_dir("copy")?;
    let plan_in = |source: Option<&SourceRoot>, target: &std::path::Path| -> Result<R, StepError> {
        let view = DirView::new(target);
        let inputs = Inputs {
            source,
            target: &view,
            fetcher: Some(input.fetcher),
            scratch_dir: Some(&scratch),
        };
        let plan = kiln_fileop::plan(&op, inputs)?;
        f(&plan)
    };
    let target_scratch = scratch.join("target");
    match &input.source {
        CopySource::Context { root } => {
            input
                .snapshotter
                .view(&input.target, &target_scratch, |t| plan_in(Some(root), t))?
        }
        CopySource::Layers {
            lowers,
            description,
        } => {
            let source_scratch = scratch.join("source");
            input.snapshotter.view(lowers, &source_scratch, |src| {
                let root = SourceRoot::rootfs(src, description.clone());
                input
                    .snapshotter
                    .view(&input.target, &target_scratch, |t| plan_in(Some(&root), t))
            })??
        }
    }
}

/// The Merkle hash of exactly the files the COPY/ADD selects (its cache key's file part),
/// hashing contents through `hasher` (a stat cache for the build context).
pub(crate) fn copy_merkle(
    sink: &LayerSink<'_>,
    input: &CopyInput<'_>,
    hasher: &(dyn ContentHasher + Sync),
) -> Result<MerkleHash, StepError> {
    with_plan(sink, input, &|plan| Ok(plan.merkle(hasher)?))
}

/// Run the COPY/ADD and commit its layer; with it, the Merkle root of the files as they were
/// written (which differs from the key's when a file changed in between). Files copied from
/// another snapshot become hard links to it in the new snapshot where that is safe (see
/// `kiln_oci::snapshot::shares`), so a `COPY --from` creates no file again; a COPY from the
/// context links the files that are still what they were from `previous` (the snapshot this
/// step made last time), so a change to one file of a big COPY writes that file, not all.
pub(crate) fn copy_step(
    sink: &LayerSink<'_>,
    input: &CopyInput<'_>,
    previous: Option<&Path>,
) -> Result<(Layer, Digest), StepError> {
    let file = sink.layer_path();
    let opts = LayerOptions {
        compression: sink.compression(),
        source_date_epoch: input.source_date_epoch,
    };
    let (digests, files, sharing) = with_plan(sink, input, &|plan| {
        let out = std::fs::File::create(&file).map_err(|e| StepError::io("create", &file, e))?;
        let written = plan.write_layer(std::io::BufWriter::new(out), &opts)?;
        let mut w = written.out;
        std::io::Write::flush(&mut w).map_err(|e| StepError::io("write", &file, e))?;
        let sharing = match &input.source {
            CopySource::Layers { lowers, .. } => {
                let mut sharing = Sharing::new(lowers, &input.target);
                for (entry, rel) in plan.source_files() {
                    sharing.offer(entry, rel);
                }
                Some(sharing.finish())
            }
            CopySource::Context { .. } => previous.map(|previous| {
                let mut sharing = Sharing::previous(previous, &input.target);
                for (entry, _) in plan.source_files() {
                    sharing.offer(entry, entry);
                }
                sharing.finish()
            }),
        };
        Ok((written.digests, written.merkle.root, sharing))
    })?;
    let (link_from, shares) =
        sharing.map_or_else(|| (None, BTreeSet::new()), |(l, s)| (Some(l), s));
    Ok((
        sink.commit_layer(&file, &digests, link_from, &shares)?,
        files,
    ))
}
