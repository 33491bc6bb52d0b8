//! Read-only merged views of directories for the caller's own use (COPY reads its sources and
//! checks its destination through one), outside any sandboxed process.
//!
//! The view is an overlay mount made in the calling thread after it unshares its mount
//! namespace: the mount exists for that thread only, the host never sees it, and it vanishes
//! when the thread ends, even if kiln is killed.

use std::path::{Path, PathBuf};

use crate::setup::{SetupError, io_err};
use crate::sys::Syscall;

/// In the calling thread (one the caller started for this, whose mounts and working
/// directory may change): a private mount namespace with `lower` (directories, topmost
/// first) mounted read-only and merged at `mountpoint`, which must exist. Returns the
/// directory to read: `mountpoint`, or the lone lower dir itself when there is nothing to
/// merge.
///
/// The lower dirs are given to overlayfs relative to their common parent, which becomes the
/// thread's working directory, so that 100+ of them fit in the one page mount options get.
pub fn mount_private_view(
    sys: &dyn Syscall,
    lower: &[PathBuf],
    mountpoint: &Path,
) -> Result<PathBuf, SetupError> {
    if let [only] = lower {
        return Ok(only.clone());
    }
    sys.unshare_thread_mounts().map_err(io_err(
        "unshare the mount namespace of a thread viewing",
        mountpoint,
    ))?;
    sys.make_rprivate(Path::new("/"))
        .map_err(io_err("make private the mounts under", Path::new("/")))?;
    crate::mounts::overlay(sys, lower, None, mountpoint)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::RecordingSyscall;

    #[test]
    fn a_view_is_a_private_read_only_overlay() {
        let sys = RecordingSyscall::new();
        let lower = [
            PathBuf::from("/s/snapshots/b2/fs"),
            PathBuf::from("/s/snapshots/a1/fs"),
        ];
        let at = mount_private_view(&sys, &lower, Path::new("/t/view")).unwrap();
        assert_eq!(at, PathBuf::from("/t/view"));
        assert_eq!(
            sys.calls(),
            [
                "unshare-thread mnt,fs",
                "make-rprivate /",
                "chdir /s/snapshots",
                "mount overlay overlay /t/view ro lowerdir=b2/fs:a1/fs",
            ]
        );
    }

    #[test]
    fn one_directory_needs_no_mount() {
        let sys = RecordingSyscall::new();
        let at = mount_private_view(&sys, &[PathBuf::from("/s/a")], Path::new("/t/view")).unwrap();
        assert_eq!(at, PathBuf::from("/s/a"));
        assert!(sys.calls().is_empty());
    }

    #[test]
    fn a_failed_unshare_says_what_it_was_for() {
        let sys =
            RecordingSyscall::new().failing("unshare-thread", std::io::ErrorKind::PermissionDenied);
        let lower = [PathBuf::from("/a"), PathBuf::from("/b")];
        let e = mount_private_view(&sys, &lower, Path::new("/t/view")).unwrap_err();
        assert!(e.to_string().contains("unshare the mount namespace"), "{e}");
    }
}
