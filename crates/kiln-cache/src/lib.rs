//! The build step cache: canonical, versioned cache keys whose every component can be told
//! apart when a step misses; the index from keys to step results (`ROOT/cache.db`, SQLite in
//! WAL mode, shared safely by concurrent kiln processes); the context stat cache that lets an
//! unchanged context be re-checked instead of re-read; garbage collection of records, blobs
//! and snapshots; and export/import of records with their layers through a [`CacheRemote`]
//! (an OCI image layout directory, [`LocalLayout`]; the registry client plugs in as another),
//! imported lazily by a build ([`LazyImport`]: a layer is fetched only when its step hits),
//! with the store's `RUN --mount=type=cache` directories optionally, and the inline cache an
//! image's config carries ([`transfer::inline`]). Exports carry [`selection`] memos too, so
//! that a machine can key a `COPY --from` without the files of the stage it copies from. [`transfer`]'s docs give the export's layout
//! and why registries that refuse unknown manifest types accept it.
//!
//! The crate deliberately knows nothing of Dockerfile syntax, instructions' meaning, variable
//! scoping or how a step runs: the caller decides the canonical text of an instruction, which
//! args and env a step sees, and what a [`StepIdentity`] is, and it stores the step's layer
//! and config in the store before recording them here. Layers are opaque blobs to it and
//! configs opaque canonical JSON.

#![forbid(unsafe_code)]

pub mod canon;
mod db;
mod error;
pub mod explain;
mod gc;
mod index;
pub mod key;
pub mod remote;
pub mod selection;
mod stat;
pub mod transfer;

pub use canon::Canonical;
pub use db::{BUSY_TIMEOUT, SCHEMA_VERSION};
pub use error::CacheError;
pub use explain::{Change, Delta, FilesExplanation, KeyExplanation};
pub use gc::{DuReport, PruneReport, RecordUsage};
pub use index::{Cache, CacheRecord, LayerRef, Miss, StepIdentity, StepOutput};
pub use key::{CacheKey, KEY_VERSION, KeyBuilder, Parent};
pub use remote::{CacheRemote, LocalLayout, MemoryRemote, RemoteCalls, RemoteError};
pub use selection::{Selection, selection_key};
pub use stat::{DEFAULT_RACY_WINDOW, StatCachedHasher, context_root_id};
pub use transfer::inline::{BUILDKIT_INLINE_FIELD, INLINE_FIELD, InlineReport};
pub use transfer::{
    ARTIFACT_TYPE, ExportOptions, ExportReport, ImportReport, LOCAL_TAG, LazyImport, LazyReport,
    RECORDS_MEDIA_TYPE, RemoteSource,
};
