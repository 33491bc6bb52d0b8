//! A step's extra mounts ([`Spec::mounts`]): host binds, overlays of host directories, tmpfs
//! and files made on the step's private `/dev` tmpfs, set up by the init after the rootfs and
//! before `pivot_root`.
//!
//! Targets resolve inside the rootfs ([`crate::setup`]'s walk: symlinks never lead out of
//! it), and so do bind sources inside the directory that confines them. Missing targets become
//! stubs, removed when the step ends, so nothing of a mount reaches the upper dir. A file's
//! bytes only ever live on tmpfs: they are written on `/dev` (the step's own tmpfs, gone with
//! its mount namespace) and, for a target elsewhere, bound there read-only and unlinked from
//! `/dev` at once.

use std::path::{Component, Path, PathBuf};

use crate::setup::{
    SetupError, Stub, common_ancestor, ensure_in, io_err, mark_mounted, resolve_in,
};
use crate::spec::{FileContent, MountKind, MountSpec, Spec};
use crate::sys::{Kind, MountOpts, Syscall};

/// The number of normal components of a target, for ordering parents before children.
fn depth(target: &str) -> usize {
    Path::new(target)
        .components()
        .filter(|c| matches!(c, Component::Normal(_)))
        .count()
}

/// Sets up every mount of `spec` in the rootfs at `root`, whose `/dev` tmpfs is mounted at
/// `dev`. Created mount points are appended to `stubs`.
pub(crate) fn mount_extra(
    spec: &Spec,
    sys: &dyn Syscall,
    root: &Path,
    dev: &Path,
    stubs: &mut Vec<Stub>,
) -> Result<(), SetupError> {
    let mut order: Vec<&MountSpec> = spec.mounts.iter().collect();
    order.sort_by_key(|m| depth(&m.target));
    let mut done: Vec<&Path> = Vec::new();
    for (n, m) in order.into_iter().enumerate() {
        let rel = PathBuf::from(m.target.trim_start_matches('/'));
        // A mount point inside an earlier mount (`/foo/bar/baz` in a cache at `/foo/bar`) is
        // made in that mount's directory and stays there, as runc leaves it: it is not in the
        // step's rootfs, and removing it could pull it from under a parallel step that shares
        // the directory.
        let nested = done.iter().any(|d| Path::new(&m.target).starts_with(d));
        done.push(Path::new(&m.target));
        let mut no_stubs = Vec::new();
        let stubs: &mut Vec<Stub> = if nested { &mut no_stubs } else { &mut *stubs };
        if depth(&m.target) == 0 {
            return Err(SetupError::Resolve {
                path: PathBuf::from(&m.target),
                reason: "cannot mount over the root",
            });
        }
        match &m.kind {
            MountKind::Bind {
                root: source_root,
                path,
                read_only,
            } => {
                let source = resolve_in(sys, source_root, Path::new(path))?;
                bind_at(sys, root, &rel, &source, *read_only, stubs)?;
            }
            MountKind::Overlay {
                lower,
                upper,
                mountpoint,
                path,
                read_only,
            } => {
                let base = overlay(sys, lower, upper.as_ref(), mountpoint)?;
                let source = resolve_in(sys, &base, Path::new(path))?;
                bind_at(sys, root, &rel, &source, *read_only, stubs)?;
            }
            MountKind::Tmpfs { size } => {
                let target = ensure_in(sys, root, &rel, false, Some(stubs))?;
                if sys.kind(&target) != Some(Kind::Dir) {
                    return Err(SetupError::Resolve {
                        path: rel,
                        reason: "a tmpfs needs a directory as its mount point",
                    });
                }
                let data = match size {
                    Some(s) => format!("mode=1777,size={s}"),
                    None => "mode=1777".to_owned(),
                };
                let opts = MountOpts {
                    nosuid: true,
                    nodev: true,
                    ..MountOpts::NONE
                };
                sys.mount("tmpfs", &target, "tmpfs", opts, &data)
                    .map_err(io_err("mount a tmpfs at", &target))?;
                mark_mounted(stubs, root, &target);
            }
            MountKind::File {
                content,
                mode,
                uid,
                gid,
            } => {
                let bytes = match content {
                    FileContent::Inline(b) => b.clone(),
                    FileContent::Host(p) => sys.read_file(p).map_err(io_err("read", p))?,
                };
                file_at(sys, root, dev, &rel, n, (&bytes, *mode, *uid, *gid), stubs)?;
            }
        }
    }
    Ok(())
}

/// Binds `source` (resolved already) at `rel` inside `root`, read-only when asked.
fn bind_at(
    sys: &dyn Syscall,
    root: &Path,
    rel: &Path,
    source: &Path,
    read_only: bool,
    stubs: &mut Vec<Stub>,
) -> Result<(), SetupError> {
    let file = sys.kind(source) != Some(Kind::Dir);
    let target = ensure_in(sys, root, rel, file, Some(stubs))?;
    let target_is_dir = sys.kind(&target) == Some(Kind::Dir);
    if target_is_dir == file {
        return Err(SetupError::Resolve {
            path: rel.to_owned(),
            reason: if file {
                "cannot mount a file on a directory"
            } else {
                "cannot mount a directory on a file"
            },
        });
    }
    sys.bind(source, &target)
        .map_err(io_err("bind-mount over", &target))?;
    if read_only {
        sys.remount_readonly(&target)
            .map_err(io_err("make read-only", &target))?;
    }
    mark_mounted(stubs, root, &target);
    Ok(())
}

/// Mounts the overlay of `lower` (and `upper`) at `mountpoint`; returns the directory to take
/// the source from (the lone lower dir itself when there is nothing to stack).
pub(crate) fn overlay(
    sys: &dyn Syscall,
    lower: &[PathBuf],
    upper: Option<&(PathBuf, PathBuf)>,
    mountpoint: &Path,
) -> Result<PathBuf, SetupError> {
    match (lower, upper) {
        ([], _) => Err(SetupError::Resolve {
            path: mountpoint.to_owned(),
            reason: "an overlay mount needs a lower directory",
        }),
        ([only], None) => Ok(only.clone()),
        _ => {
            // Relative lower dirs under their common parent keep the options in one page.
            let base = common_ancestor(lower);
            sys.chdir(&base).map_err(io_err("enter", &base))?;
            let upper = upper.map(|(u, w)| (u.as_path(), w.as_path()));
            let data =
                crate::spec::Spec::overlay_options(lower, upper, &base, sys.in_user_namespace());
            let opts = MountOpts {
                rdonly: upper.is_none(),
                ..MountOpts::NONE
            };
            sys.mount("overlay", mountpoint, "overlay", opts, &data)
                .map_err(io_err("mount an overlay at", mountpoint))?;
            Ok(mountpoint.to_owned())
        }
    }
}

/// A file's content and ownership: bytes, mode, uid, gid.
type FileData<'a> = (&'a [u8], u32, u32, u32);

/// Creates the file of a [`MountKind::File`] at `rel`: in place when it is inside `/dev`,
/// else on `/dev` under a temporary name, bound read-only at the target and unlinked.
fn file_at(
    sys: &dyn Syscall,
    root: &Path,
    dev: &Path,
    rel: &Path,
    n: usize,
    (bytes, mode, uid, gid): FileData<'_>,
    stubs: &mut Vec<Stub>,
) -> Result<(), SetupError> {
    if rel.starts_with("dev") {
        let (Some(parent), Some(name)) = (rel.parent(), rel.file_name()) else {
            return Err(SetupError::Resolve {
                path: rel.to_owned(),
                reason: "a file needs a name",
            });
        };
        // Parents inside /dev are on its tmpfs: no stubs to remove.
        let dir = ensure_in(sys, root, parent, false, None)?;
        if !dir.starts_with(dev) {
            return Err(SetupError::Resolve {
                path: rel.to_owned(),
                reason: "it leads out of /dev",
            });
        }
        let path = dir.join(name);
        return sys
            .write_file(&path, bytes, mode, uid, gid)
            .map_err(io_err("create the file", &path));
    }
    let staging = dev.join(format!(".kiln-file-{n}"));
    sys.write_file(&staging, bytes, mode, uid, gid)
        .map_err(io_err("create the file", &staging))?;
    let bound = bind_at(sys, root, rel, &staging, true, stubs);
    // The bind keeps the inode: the name on /dev goes either way.
    let removed = sys
        .remove(&staging, false)
        .map_err(io_err("remove", &staging));
    bound.and(removed)
}
