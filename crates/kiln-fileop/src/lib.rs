//! BuildKit's `FileOp` for COPY and ADD: from what an instruction asks for to the entries of
//! its layer, exactly as BuildKit's Dockerfile frontend (`dispatchCopy`), its file solver
//! (`solver/llbsolver/file`) and fsutil's copier would leave them.
//!
//! Given sources (paths with wildcards in a [`SourceRoot`], URLs, heredocs), a destination and
//! the flags (`--chown`, `--chmod`, `--parents`, `--exclude`, `--link`, ADD's `--unpack` and
//! `--checksum`), [`plan`] resolves every rule against the parent's filesystem (a read-only
//! [`LowerView`]) and returns a [`Plan`]: the layer's entries in deterministic order. The
//! plan gives the [Merkle hash](merkle) of exactly the files selected (for the step's cache
//! key) and [writes the layer](Plan::write_layer) in one streaming pass through kiln-layer's
//! writer, reading each source file once, with no staging copy.
//!
//! The crate deliberately knows nothing of Dockerfiles, variables, stages or images: the
//! caller (kiln-build) passes expanded values, a source root and a view of the target, and
//! implements [`ModeChange`] for the frontend's `--chmod` type and [`Fetcher`] with TLS. It
//! never writes to the source or the parent: its only output is the layer.
//!
//! Where kiln departs from BuildKit on purpose (each is documented where it happens): an
//! unknown `--chown` name is an error (BuildKit silently uses 0); what BuildKit stamps with the
//! build time (created directories, heredoc files, downloads without `Last-Modified`) gets
//! [`CopyOp::created_mtime`] instead; extended attributes are not copied.

#![forbid(unsafe_code)]

pub mod archive;
pub mod chown;
mod error;
pub mod fetch;
mod gopath;
pub mod merkle;
mod op;
mod pathmap;
mod plan;
mod prefetch;
mod view;
mod wildcard;
mod write;

pub use archive::{ArchiveCompression, detect_compression, is_archive};
pub use chown::{ChownSpec, IdOrName};
pub use error::FileOpError;
pub use fetch::{FetchError, FetchMeta, Fetcher};
pub use merkle::{ContentHasher, MerkleHash, ReadingHasher, sha256_reader};
pub use op::{CopyOp, Inputs, ModeChange, OctalMode, OpKind, Source};
pub use plan::Origin;
pub use view::{DirView, EmptyView, Kind, LowerView, SourceRoot, Stamp, Stat};
pub use write::{LayerOptions, LayerOutput, Plan, PlannedEntry};

/// Plans `op`: resolves sources, destination, owners and modes against `inputs` and returns
/// the layer's entries, ready to hash and write.
///
/// Downloads happen here (their content decides what the layer holds), and local archives are
/// read here to learn their entries; plain files are only `lstat`ed until the layer is
/// written.
pub fn plan<'a>(op: &CopyOp, inputs: Inputs<'a>) -> Result<Plan<'a>, FileOpError> {
    let mut planner = plan::Planner::new(op, inputs)?;
    planner.run()?;
    Ok(Plan {
        source: inputs.source,
        entries: std::mem::take(&mut planner.entries),
        leaves: std::mem::take(&mut planner.leaves),
        _scratch: planner.scratch.take(),
    })
}

/// How many threads this process may run at once (read once: it is not free to ask).
pub(crate) fn threads() -> usize {
    static THREADS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *THREADS.get_or_init(|| std::thread::available_parallelism().map_or(1, usize::from))
}
