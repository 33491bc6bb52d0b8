//! The one shape of a failed filesystem or kernel call in kiln: what kiln was doing, to which
//! path, and the operating system's cause, kept as the error's source so that the command
//! line prints the whole chain (`cannot create `/s/tmp/x`: Permission denied (os error 13)`).
//!
//! Every library crate's error enum holds it as an `Io(#[from] IoError)` variant instead of
//! repeating the three fields, and makes it with [`IoContext::io`] or [`io_err`]:
//!
//! ```
//! use kiln_io::{IoContext as _, IoError};
//! fn read_marker(dir: &std::path::Path) -> Result<String, IoError> {
//!     let path = dir.join("diff_id");
//!     std::fs::read_to_string(&path).io("read", &path)
//! }
//! let e = read_marker(std::path::Path::new("/no/such/dir")).unwrap_err();
//! assert_eq!(e.to_string(), "cannot read `/no/such/dir/diff_id`");
//! assert_eq!(e.kind(), std::io::ErrorKind::NotFound);
//! ```

#![forbid(unsafe_code)]

use std::io;
use std::path::{Path, PathBuf};

/// A failed filesystem or kernel call.
#[derive(Debug, thiserror::Error)]
#[error("cannot {action} `{}`", path.display())]
pub struct IoError {
    /// What was being done, as a verb phrase that reads before the path (`create`, `read
    /// the spec`, `mount an overlay at`).
    pub action: &'static str,
    /// The file or directory (or, for a call without one, what it was about).
    pub path: PathBuf,
    /// The cause.
    #[source]
    pub source: io::Error,
}

impl IoError {
    /// An error of `action` on `path`, caused by `source`.
    pub fn new(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Self {
            action,
            path: path.into(),
            source,
        }
    }

    /// The cause's kind (`NotFound`, `PermissionDenied` ...).
    pub fn kind(&self) -> io::ErrorKind {
        self.source.kind()
    }
}

/// For `map_err`: turns an `io::Error` into an [`IoError`] of `action` on `path`.
pub fn io_err(action: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> IoError {
    let path = path.into();
    move |source| IoError {
        action,
        path,
        source,
    }
}

/// Names what a failed I/O result was doing.
pub trait IoContext<T> {
    /// The result, its error made an [`IoError`] of `action` on `path`.
    fn io(self, action: &'static str, path: impl AsRef<Path>) -> Result<T, IoError>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn io(self, action: &'static str, path: impl AsRef<Path>) -> Result<T, IoError> {
        self.map_err(|source| IoError::new(action, path.as_ref(), source))
    }
}

/// The inode of the initial user namespace (the kernel's `PROC_USER_INIT_INO`).
const INITIAL_USER_NAMESPACE: &str = "user:[4026531837]";

/// Whether this process runs in a user namespace of its own rather than the host's initial
/// one: rootless kiln, or kiln inside a container with a user namespace. There the kernel
/// refuses `trusted.*` extended attributes, so overlayfs is mounted with `userxattr` and keeps
/// its opaque-directory marks in `user.overlay.*`; and device nodes other than whiteouts
/// cannot be made. Read once per process (a process that enters a namespace itself does so
/// before it asks).
pub fn in_user_namespace() -> bool {
    static IN: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *IN.get_or_init(|| {
        std::fs::read_link("/proc/self/ns/user")
            .is_ok_and(|l| l.as_os_str() != INITIAL_USER_NAMESPACE)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cause_is_the_source_not_the_message() {
        let e = IoError::new(
            "create",
            "/s/x",
            io::Error::from(io::ErrorKind::PermissionDenied),
        );
        assert_eq!(e.to_string(), "cannot create `/s/x`");
        let cause = std::error::Error::source(&e).unwrap().to_string();
        assert_eq!(
            cause,
            io::Error::from(io::ErrorKind::PermissionDenied).to_string()
        );
    }
}
