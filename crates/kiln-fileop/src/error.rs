//! The one error type of a COPY/ADD file operation.

use std::io;
use std::path::PathBuf;

use crate::fetch::FetchError;

/// Everything that can make a COPY or ADD fail. Paths are the user's (source paths as
/// written, destinations inside the image) unless the variant says "host path".
#[derive(Debug, thiserror::Error)]
pub enum FileOpError {
    /// A source (or a `--parents` path without wildcards) does not exist in its root; the
    /// wording follows BuildKit's `failed to compute cache key: ... not found`.
    #[error("failed to compute cache key: `{path}` not found in {root}")]
    NotFound {
        /// The source path as BuildKit cleans it (absolute within the source root).
        path: String,
        /// What the source root is ("the build context", "stage `build`"...).
        root: String,
    },
    /// Reading a source or the parent's filesystem failed (host path).
    #[error("cannot read `{}`", path.display())]
    Read {
        /// Host path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Resolving a path met more than 255 symbolic links.
    #[error("too many levels of symbolic links resolving `{path}`")]
    TooManyLinks {
        /// The path being resolved.
        path: String,
    },
    /// A directory would be copied onto something that is not a directory.
    #[error("cannot copy to non-directory: `/{}`", path.display())]
    CopyToNonDirectory {
        /// Destination inside the image.
        path: PathBuf,
    },
    /// A file would replace a directory.
    #[error("cannot replace to directory `/{}` with file", path.display())]
    ReplaceDirectoryWithFile {
        /// Destination inside the image.
        path: PathBuf,
    },
    /// A parent of the destination exists and is not a directory.
    #[error("cannot create directory `/{}`: not a directory", path.display())]
    NotADirectory {
        /// The path that is not a directory, inside the image.
        path: PathBuf,
    },
    /// `--chown` names a user the target's `/etc/passwd` does not have.
    #[error("unknown user `{name}` in `--chown`: not found in `{file}`")]
    UnknownUser {
        /// The user name.
        name: String,
        /// The file read, inside the target (`/etc/passwd`).
        file: String,
    },
    /// `--chown` names a group the target's `/etc/group` does not have.
    #[error("unknown group `{name}` in `--chown`: not found in `{file}`")]
    UnknownGroup {
        /// The group name.
        name: String,
        /// The file read, inside the target (`/etc/group`).
        file: String,
    },
    /// `/etc/passwd` or `/etc/group` of the target cannot be read.
    #[error("cannot read `{file}` of the target to resolve `--chown`")]
    UserDb {
        /// The file, inside the target.
        file: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// An `--exclude` pattern is invalid.
    #[error("invalid `--exclude` or `--parents` pattern")]
    Pattern(#[source] kiln_context::PatternError),
    /// A local archive cannot be read or is corrupt.
    #[error("cannot extract archive `{archive}`")]
    Archive {
        /// The source path of the archive.
        archive: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// An archive hard link names something the archive did not create.
    #[error(
        "archive `{archive}` entry `{entry}` links to `{target}`, which the archive does not hold"
    )]
    ArchiveLink {
        /// The source path of the archive.
        archive: String,
        /// The link entry.
        entry: String,
        /// Its target as stored.
        target: String,
    },
    /// A URL source was given but no [`Fetcher`](crate::Fetcher) was.
    #[error("cannot download `{url}`: no fetcher was configured")]
    NoFetcher {
        /// The URL.
        url: String,
    },
    /// Downloading a URL failed.
    #[error("cannot download `{url}`")]
    Fetch {
        /// The URL.
        url: String,
        /// The cause.
        #[source]
        source: FetchError,
    },
    /// `--checksum` is not `sha256:` and 64 hex digits.
    #[error("invalid checksum `{value}`: expected `sha256:` and 64 lowercase hex digits")]
    BadChecksum {
        /// The value given.
        value: String,
    },
    /// The downloaded content does not have the `--checksum` digest.
    #[error("digest mismatch for `{url}`: expected `{expected}`, got `{actual}`")]
    ChecksumMismatch {
        /// The URL.
        url: String,
        /// The `--checksum` value.
        expected: String,
        /// The digest of what was downloaded.
        actual: String,
    },
    /// A temporary file for a download or an extracted archive could not be written.
    #[error("cannot write scratch file `{}`", path.display())]
    Scratch {
        /// Host path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Writing the layer failed.
    #[error("cannot write the layer")]
    Layer(#[source] kiln_layer::PackError),
}

impl FileOpError {
    /// A short suggestion for a `hint:` line, when there is one.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            Self::NotFound { .. } => Some(
                "check the path is relative to the source root and not excluded by `.dockerignore`",
            ),
            Self::UnknownUser { .. } | Self::UnknownGroup { .. } => Some(
                "create the user in an earlier `RUN` step, or use numeric ids (`--chown=1000:1000`)",
            ),
            Self::ChecksumMismatch { .. } => {
                Some("the remote file changed; update `--checksum` if the change is expected")
            }
            _ => None,
        }
    }
}

pub(crate) fn read_err(path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> FileOpError {
    let path = path.into();
    move |source| FileOpError::Read { path, source }
}
