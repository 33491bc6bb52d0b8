//! The store's error type.

use std::io;
use std::path::PathBuf;

use kiln_layer::Digest;

/// Errors of the content store and of reading images from it.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A filesystem operation failed.
    #[error(transparent)]
    Io(#[from] kiln_io::IoError),
    /// The root exists but is not an OCI image layout kiln can use.
    #[error("`{path}` is not an OCI image layout: {reason}")]
    NotLayout {
        /// The root.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A referenced blob is absent.
    #[error("blob `{digest}` ({what}) is missing from the store")]
    MissingBlob {
        /// The blob.
        digest: Digest,
        /// What it is (`config of image docker.io/library/busybox:latest`, ...).
        what: String,
    },
    /// Content does not match the digest or size it was announced with.
    #[error(
        "{what}: expected `{expected}` ({expected_size} bytes), got `{actual}` ({actual_size} bytes)"
    )]
    DigestMismatch {
        /// What was checked.
        what: String,
        /// The announced digest.
        expected: Digest,
        /// The announced size.
        expected_size: u64,
        /// The digest of the content.
        actual: Digest,
        /// The size of the content.
        actual_size: u64,
    },
    /// A JSON document does not parse.
    #[error("{what} is not valid JSON")]
    Json {
        /// The document (`manifest sha256:...`, `index.json`).
        what: String,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// A media type kiln cannot handle where it is found.
    #[error("{what} has unsupported media type `{media_type}`")]
    UnknownMediaType {
        /// Where it was found.
        what: String,
        /// The media type.
        media_type: String,
    },
    /// No image matches a name or id.
    #[error("no such image `{name}`")]
    NoSuchImage {
        /// The name or id asked for.
        name: String,
    },
    /// An id prefix matches several images.
    #[error("image id prefix `{name}` is ambiguous")]
    Ambiguous {
        /// The prefix.
        name: String,
    },
    /// A blob disappeared between a check and its use (a concurrent `rmi`); retrying helps.
    #[error("blob `{digest}` was removed by a concurrent operation; retry")]
    Vanished {
        /// The blob.
        digest: Digest,
    },
    /// A name is not a valid reference.
    #[error(transparent)]
    Reference(#[from] crate::reference::ReferenceError),
}

/// Shorthand for an [`StoreError::Io`] mapper.
pub(crate) fn io_err(
    action: &'static str,
    path: impl Into<PathBuf>,
) -> impl FnOnce(io::Error) -> StoreError {
    let err = kiln_io::io_err(action, path);
    move |source| StoreError::Io(err(source))
}
