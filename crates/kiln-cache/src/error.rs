//! The cache's error type.

use std::io;
use std::path::PathBuf;

use kiln_layer::Digest;

/// Errors of the cache index, the stat cache, garbage collection and export/import.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// An SQLite operation on `cache.db` failed.
    #[error("cannot {action} in the cache index `{path}`")]
    Db {
        /// What kiln was doing (`open`, `look up key sha256:...`, ...).
        action: String,
        /// The database file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: rusqlite::Error,
    },
    /// `cache.db` was written by a newer kiln.
    #[error(
        "the cache index `{path}` has schema version {found}, newer than the {supported} this kiln knows"
    )]
    SchemaTooNew {
        /// The database file.
        path: PathBuf,
        /// Its `user_version`.
        found: i64,
        /// The newest version this build knows.
        supported: i64,
    },
    /// A row of the index does not hold what its schema says.
    #[error("the cache index `{path}` is damaged: {reason}")]
    Corrupt {
        /// The database file.
        path: PathBuf,
        /// What is wrong (names the key or digest).
        reason: String,
    },
    /// A filesystem operation failed.
    #[error(transparent)]
    Io(#[from] kiln_io::IoError),
    /// The content store failed.
    #[error(transparent)]
    Store(#[from] kiln_oci::StoreError),
    /// A record names a layer blob that is not in the store.
    #[error("cache record `{key}` names layer `{digest}`, which is not in the store")]
    MissingLayer {
        /// The record's key.
        key: String,
        /// The layer blob.
        digest: Digest,
    },
    /// A cache remote failed (the registry, a layout directory).
    #[error("cannot {action} in {remote}: {source}")]
    Remote {
        /// The remote ([`crate::CacheRemote::name`]).
        remote: String,
        /// What kiln was doing (`fetch blob sha256:...`, `push the manifest`).
        action: String,
        /// The remote's error.
        source: crate::remote::RemoteError,
    },
    /// An exported cache is not what kiln writes.
    #[error("`{path}` is not a kiln cache export: {reason}")]
    NotExport {
        /// The layout directory (or the file in it).
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A remote holds nothing under the tag (a branch's first build): its caller may go on
    /// without it.
    #[error("`{remote} (tag `{tag}`)` is not a kiln cache export: no manifest is tagged `{tag}`")]
    NoExport {
        /// The remote.
        remote: String,
        /// The tag.
        tag: String,
    },
}

/// Shorthand for a [`CacheError::Io`] mapper.
pub(crate) fn io_err(
    action: &'static str,
    path: impl Into<PathBuf>,
) -> impl FnOnce(io::Error) -> CacheError {
    let err = kiln_io::io_err(action, path);
    move |source| CacheError::Io(err(source))
}
