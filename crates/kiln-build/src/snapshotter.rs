//! The snapshotter: how a step gets filesystems over a stack of snapshots, chosen once per
//! command by [`Snapshotter::choose`] and asked everywhere one is made. A RUN's root
//! ([`Snapshotter::rootfs`]), a read-only view for COPY's sources and destination checks
//! ([`Snapshotter::view`]) and a `RUN --mount` of layers ([`Snapshotter::mount`]) are each an
//! overlay with overlayfs, or a merged copy without it.
//!
//! A view with two or more layers is an overlay mount made in a thread that first unshares its
//! mount namespace ([`kiln_sandbox::mount_private_view`], through the sandbox's `Syscall`
//! seam): the mount exists for that thread only, the host never sees it, and it vanishes when
//! the thread ends, even if kiln is killed.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use kiln_sandbox::{MountKind, Rootfs};

use crate::error::StepError;
use crate::run_mount::MountError;

/// How a step's filesystem is made and diffed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Snapshotter {
    /// An overlay mount over the snapshots; the upper dir is the diff.
    Overlay,
    /// A full copy of the merged snapshots, bind-mounted, diffed against them afterwards.
    Naive,
}

impl Snapshotter {
    /// `requested` when given (the command line's `--snapshotter`); otherwise overlay when
    /// this process can mount it and `root` (the store) is not itself on an overlayfs, whose
    /// directories overlay refuses as upper dirs. A command calls this once and passes the
    /// answer on.
    ///
    /// In a user namespace (rootless) overlayfs also needs a kernel that mounts it there
    /// (5.11+, with `userxattr`) on the store's filesystem: that is probed once per store, with
    /// a real mount, and the answer kept in the store ([`Layout::overlay_probe`]).
    ///
    /// [`Layout::overlay_probe`]: kiln_oci::store::Layout::overlay_probe
    pub fn choose(root: &Path, requested: Option<Self>) -> Self {
        requested.unwrap_or_else(|| {
            if !kiln_sandbox::overlay_available() || on_overlayfs(root) {
                Self::Naive
            } else if kiln_io::in_user_namespace() {
                probe_once(root)
            } else {
                Self::Overlay
            }
        })
    }

    /// The root filesystem of a RUN-like step over `lowers` (topmost first), made under
    /// `dir`: an overlay with `upper/` and `work/`, or `tree/`, a copy of the merged lowers,
    /// with the [`settle mark`](kiln_layer::diff::settle_mark) taken right after copying.
    pub(crate) fn rootfs(
        self,
        dir: &Path,
        lowers: &[PathBuf],
    ) -> Result<(Rootfs, Option<(i64, i64)>), StepError> {
        kiln_oci::snapshot::shares::separate(lowers)?;
        match self {
            Self::Overlay => {
                let mut lower = lowers.to_vec();
                if lower.is_empty() {
                    let empty = dir.join("empty");
                    fs::create_dir_all(&empty).map_err(|e| StepError::io("create", &empty, e))?;
                    lower.push(empty);
                }
                let rootfs = Rootfs::Overlay {
                    lower,
                    upper: dir.join("upper"),
                    work: dir.join("work"),
                };
                Ok((rootfs, None))
            }
            Self::Naive => {
                let full = dir.join("tree");
                merged_copy(lowers, &full, "for the step's filesystem")?;
                let mark = kiln_layer::diff::settle_mark(dir)
                    .map_err(|e| StepError::io("create a file in", dir, e))?;
                Ok((Rootfs::Bind { dir: full }, Some(mark)))
            }
        }
    }

    /// Runs `f` on a directory showing `lower` (snapshot dirs, topmost first) merged,
    /// read-only. `scratch` is an empty directory on the store's filesystem that `f` may not
    /// outlive.
    pub(crate) fn view<R: Send>(
        self,
        lower: &[PathBuf],
        scratch: &Path,
        f: impl FnOnce(&Path) -> R + Send,
    ) -> Result<R, StepError> {
        kiln_oci::snapshot::shares::separate(lower)?;
        match lower {
            [] => {
                let empty = scratch.join("empty");
                fs::create_dir_all(&empty).map_err(|e| StepError::io("create", &empty, e))?;
                Ok(f(&empty))
            }
            [only] => Ok(f(only)),
            _ if self == Self::Overlay => {
                let mnt = scratch.join("view");
                fs::create_dir_all(&mnt).map_err(|e| StepError::io("create", &mnt, e))?;
                // A thread of its own: the view's mount namespace and working directory die
                // with it.
                std::thread::scope(|s| {
                    s.spawn(|| {
                        let sys = kiln_sandbox::sys::LinuxSyscall;
                        let at = kiln_sandbox::mount_private_view(&sys, lower, &mnt)
                            .map_err(StepError::View)?;
                        Ok(f(&at))
                    })
                    .join()
                    .unwrap_or_else(|p| std::panic::resume_unwind(p))
                })
            }
            _ => {
                let merged = scratch.join("merged");
                merged_copy(lower, &merged, "for a read-only view")?;
                Ok(f(&merged))
            }
        }
    }

    /// A `RUN --mount` of `path` in the merged `lowers`: an overlay (writable into `scratch`
    /// unless `read_only`), or without overlayfs a throw-away merged copy. `found` is the
    /// resolved source when `lowers` is one host directory (the context), used for the copy.
    pub(crate) fn mount(
        self,
        lowers: &[PathBuf],
        found: &Path,
        path: &str,
        read_only: bool,
        scratch: &Path,
    ) -> Result<MountKind, MountError> {
        let io_err = |action: &'static str, path: &Path| {
            let path = path.to_owned();
            move |source: io::Error| {
                MountError::Io(kiln_io::IoError {
                    action,
                    path,
                    source,
                })
            }
        };
        fs::create_dir_all(scratch).map_err(io_err("create", scratch))?;
        kiln_oci::snapshot::shares::separate(lowers)?;
        if lowers.is_empty() {
            let empty = scratch.join("empty");
            fs::create_dir_all(&empty).map_err(io_err("create", &empty))?;
            return Ok(MountKind::Bind {
                root: empty,
                path: path.to_owned(),
                read_only,
            });
        }
        if self == Self::Overlay {
            let (up, work, view) = (
                scratch.join("up"),
                scratch.join("work"),
                scratch.join("view"),
            );
            for d in [&up, &work, &view] {
                fs::create_dir_all(d).map_err(io_err("create", d))?;
            }
            return Ok(MountKind::Overlay {
                lower: lowers.to_vec(),
                upper: (!read_only).then_some((up, work)),
                mountpoint: view,
                path: path.to_owned(),
                read_only,
            });
        }
        // No overlayfs: a copy, which the step may change at will.
        let tree = scratch.join("tree");
        fs::create_dir_all(&tree).map_err(io_err("create", &tree))?;
        let copy_err = |e: kiln_layer::overlay::OverlayError| {
            MountError::Io(kiln_io::IoError {
                action: "copy the mount source into",
                path: tree.clone(),
                source: io::Error::other(e.to_string()),
            })
        };
        if found.as_os_str().is_empty() {
            kiln_layer::overlay::copy_merged(lowers, &tree).map_err(copy_err)?;
            return Ok(MountKind::Bind {
                root: tree,
                path: path.to_owned(),
                read_only,
            });
        }
        if found.is_dir() {
            kiln_layer::overlay::copy_merged(&[found.to_owned()], &tree).map_err(copy_err)?;
            return Ok(MountKind::Bind {
                root: tree,
                path: String::new(),
                read_only,
            });
        }
        fs::copy(found, tree.join("file")).map_err(io_err("copy", found))?;
        Ok(MountKind::Bind {
            root: tree,
            path: "file".into(),
            read_only,
        })
    }
}

/// Makes `into` (a new directory) a copy of `lowers` (topmost first) merged; `purpose` says
/// what for in the error.
pub(crate) fn merged_copy(
    lowers: &[PathBuf],
    into: &Path,
    purpose: &'static str,
) -> Result<(), StepError> {
    fs::create_dir_all(into).map_err(|e| StepError::io("create", into, e))?;
    kiln_oci::snapshot::shares::separate(lowers)?;
    kiln_layer::overlay::copy_merged(lowers, into).map_err(|source| StepError::Merge {
        purpose,
        source: Box::new(source),
    })
}

/// Whether `path` is on an overlayfs, by the longest matching mount point.
/// The rootless answer kept in the store, or a probe's: an overlay of two directories
/// mounted in a thread of this process (its user namespace), as every view and RUN is.
fn probe_once(root: &Path) -> Snapshotter {
    let layout = kiln_oci::store::Layout::new(root);
    let record = layout.overlay_probe();
    match fs::read_to_string(&record).as_deref().map(str::trim) {
        Ok("overlay") => return Snapshotter::Overlay,
        Ok("naive") => return Snapshotter::Naive,
        _ => {}
    }
    let dir = layout.tmp_unique("overlay-probe");
    let works = probe_overlay(&dir).unwrap_or(false);
    let _ = fs::remove_dir_all(&dir);
    let answer = if works { "overlay" } else { "naive" };
    // Written whole or not at all; a store that cannot be written gets probed again.
    let tmp = layout.tmp_unique("overlay-probe-answer");
    if fs::write(&tmp, answer).is_ok() && fs::rename(&tmp, &record).is_err() {
        let _ = fs::remove_file(&tmp);
    }
    if works {
        Snapshotter::Overlay
    } else {
        Snapshotter::Naive
    }
}

fn probe_overlay(dir: &Path) -> io::Result<bool> {
    let (upper, lower, at) = (dir.join("a"), dir.join("b"), dir.join("merged"));
    for d in [&upper, &lower, &at] {
        fs::create_dir_all(d)?;
    }
    fs::write(lower.join("probe"), b"")?;
    let lowers = [upper, lower];
    std::thread::scope(|s| {
        s.spawn(|| {
            let sys = kiln_sandbox::sys::LinuxSyscall;
            kiln_sandbox::mount_private_view(&sys, &lowers, &at)
                .is_ok_and(|seen| seen.join("probe").exists())
        })
        .join()
        .map_err(|_| io::Error::other("the overlay probe's thread panicked"))
    })
}

fn on_overlayfs(path: &Path) -> bool {
    let (Ok(mounts), Ok(path)) = (
        std::fs::read_to_string("/proc/self/mountinfo"),
        std::fs::canonicalize(path),
    ) else {
        return false;
    };
    let mut best: Option<(usize, bool)> = None;
    for line in mounts.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let (Some(mount_point), Some(sep)) = (fields.get(4), fields.iter().position(|f| *f == "-"))
        else {
            continue;
        };
        let fstype = fields.get(sep + 1).copied().unwrap_or("");
        if path.starts_with(mount_point) && best.is_none_or(|(len, _)| mount_point.len() >= len) {
            best = Some((mount_point.len(), fstype == "overlay"));
        }
    }
    best.is_some_and(|(_, overlay)| overlay)
}
