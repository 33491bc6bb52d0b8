//! Layers as overlayfs lower dirs: unpacking a layer into overlay's whiteout format, reading a
//! stack of such dirs as one merged tree, and copying that merged tree into a plain directory
//! (the fallback when overlayfs cannot be mounted).
//!
//! Overlay's format, as the kernel writes it in an upper dir and reads it in lower dirs: a
//! removed entry is a character device 0/0 of the same name, and a directory that hides
//! everything below it carries the extended attribute `trusted.overlay.opaque=y`, or
//! `user.overlay.opaque=y` in a user namespace of its own (rootless: overlayfs is mounted
//! with `userxattr` there, and the kernel refuses `trusted.*`).

use std::collections::{BTreeMap, HashMap};
use std::ffi::{OsStr, OsString};
use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::apply::{ApplyError, ApplyOptions, ApplyStats, LinkFrom, apply};

/// The xattr marking an opaque directory for overlayfs mounted by the host's root.
pub const OPAQUE_XATTR: &str = "trusted.overlay.opaque";

/// The xattr marking an opaque directory for overlayfs mounted with `userxattr`, in a user
/// namespace.
pub const USER_OPAQUE_XATTR: &str = "user.overlay.opaque";

/// The opaque-directory xattr that this process's overlay mounts read: [`USER_OPAQUE_XATTR`]
/// in a user namespace of its own ([`kiln_io::in_user_namespace`]), else [`OPAQUE_XATTR`].
pub fn opaque_xattr() -> &'static str {
    if kiln_io::in_user_namespace() {
        USER_OPAQUE_XATTR
    } else {
        OPAQUE_XATTR
    }
}

/// Whether `name` is an xattr of overlayfs's own format (`trusted.overlay.*`,
/// `user.overlay.*`): never part of a layer.
pub fn is_overlay_xattr(name: &str) -> bool {
    name.starts_with("trusted.overlay.") || name.starts_with("user.overlay.")
}

/// Whether `meta` is an overlay whiteout (a 0/0 character device).
pub fn is_whiteout(meta: &fs::Metadata) -> bool {
    meta.file_type().is_char_device() && meta.rdev() == 0
}

/// Whether the directory at `path` is opaque, marked in either namespace (the kernel wrote
/// the mark it reads; an unpack wrote [`opaque_xattr`]).
pub fn is_opaque(path: &Path) -> bool {
    [OPAQUE_XATTR, USER_OPAQUE_XATTR].into_iter().any(|name| {
        let mut v = [0u8; 4];
        matches!(rustix::fs::lgetxattr(path, name, &mut v), Ok(1) if v[0] == b'y')
    })
}

/// A stack of lower dirs (topmost first) with each dir only at its topmost place: overlayfs
/// refuses a lower dir given twice (`ELOOP`), which an image whose layers repeat (`COPY g g`
/// twice, two empty layers) would ask for.
///
/// The merged tree is the same: a layer applied again over a stack that already holds it
/// re-creates every entry and deletion it had, so its lower copy shows nowhere the upper one
/// does not.
pub fn unique_stack<I, P>(lowers: I) -> Vec<PathBuf>
where
    I: IntoIterator<Item = P>,
    P: Into<PathBuf>,
{
    let mut seen = std::collections::HashSet::new();
    lowers
        .into_iter()
        .map(Into::into)
        .filter(|p| seen.insert(p.clone()))
        .collect()
}

/// Errors of the overlay helpers.
#[derive(Debug, thiserror::Error)]
pub enum OverlayError {
    /// The layer could not be applied.
    #[error("cannot unpack the layer into `{path}`")]
    Apply {
        /// The target.
        path: PathBuf,
        /// The cause.
        #[source]
        source: ApplyError,
    },
    /// A filesystem operation failed.
    #[error(transparent)]
    Io(#[from] kiln_io::IoError),
}

fn io_err<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> OverlayError + 'a {
    let err = kiln_io::io_err(action, path);
    move |source| OverlayError::Io(err(source))
}

/// Unpacks `layer` into the empty directory `target` as an overlay lower dir: `.wh.NAME`
/// entries become 0/0 character devices and `.wh..wh..opq` an opaque directory. A whiteout of
/// a name the same layer also carries is dropped (a layer's whiteouts hide lower layers only).
/// With `link_from`, regular files that exist already are hard links to them rather than new
/// files ([`ApplyOptions::link_from`]).
pub fn unpack_lower<R: Read>(
    layer: R,
    target: &Path,
    link_from: Option<LinkFrom>,
) -> Result<ApplyStats, OverlayError> {
    let opts = ApplyOptions {
        whiteouts: false,
        link_from,
        ..ApplyOptions::default()
    };
    let stats = apply(layer, target, &opts).map_err(|source| OverlayError::Apply {
        path: target.to_owned(),
        source,
    })?;
    convert_whiteouts(target)?;
    Ok(stats)
}

fn convert_whiteouts(dir: &Path) -> Result<(), OverlayError> {
    let mut subdirs = Vec::new();
    let mut marks = Vec::new();
    for e in fs::read_dir(dir).map_err(io_err("read", dir))? {
        let e = e.map_err(io_err("read", dir))?;
        let name = e.file_name();
        let ft = e.file_type().map_err(io_err("stat", &e.path()))?;
        if let Some(hidden) = name.as_bytes().strip_prefix(b".wh.") {
            marks.push((e.path(), hidden.to_vec()));
        } else if ft.is_dir() {
            subdirs.push(e.path());
        }
    }
    // Converting changes the directory's mtime; it keeps the layer's, so that every unpack of
    // a layer gives the same snapshot.
    let dir_mtime = if marks.is_empty() {
        None
    } else {
        Some(fs::symlink_metadata(dir).map_err(io_err("stat", dir))?)
    };
    for (path, hidden) in marks {
        let marker = fs::symlink_metadata(&path).map_err(io_err("stat", &path))?;
        fs::remove_file(&path).map_err(io_err("remove", &path))?;
        if hidden == b".wh..opq" {
            rustix::fs::setxattr(dir, opaque_xattr(), b"y", rustix::fs::XattrFlags::empty())
                .map_err(|e| io_err("mark opaque", dir)(e.into()))?;
        } else {
            let target = dir.join(OsStr::from_bytes(&hidden));
            if fs::symlink_metadata(&target).is_err() {
                rustix::fs::mknodat(
                    rustix::fs::CWD,
                    &target,
                    rustix::fs::FileType::CharacterDevice,
                    rustix::fs::Mode::empty(),
                    0,
                )
                .map_err(|e| io_err("create the whiteout", &target)(e.into()))?;
                set_mtime(&target, &marker)?;
            }
        }
    }
    if let Some(meta) = dir_mtime {
        set_mtime(dir, &meta)?;
    }
    for d in subdirs {
        convert_whiteouts(&d)?;
    }
    Ok(())
}

/// Gives `path` (not following a final link) the mtime, as its atime too, of `like`.
fn set_mtime(path: &Path, like: &fs::Metadata) -> Result<(), OverlayError> {
    let at = rustix::fs::Timespec {
        tv_sec: like.mtime(),
        tv_nsec: like.mtime_nsec() as _,
    };
    let times = rustix::fs::Timestamps {
        last_access: at,
        last_modification: at,
    };
    rustix::fs::utimensat(
        rustix::fs::CWD,
        path,
        &times,
        rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
    )
    .map_err(|e| io_err("set the time of", path)(e.into()))
}

/// One entry of a merged directory: the lower dir (index into the stack) that provides it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergedEntry {
    /// Index of the providing dir in the stack given to [`merged_children`].
    pub layer: usize,
    /// The entry's path in that dir.
    pub path: PathBuf,
}

/// The children of the merged directory `rel`, seen through `stack` (host paths of `rel` in
/// each lower dir that contributes to it, topmost first): what overlayfs would show, by name.
pub fn merged_children(stack: &[PathBuf]) -> io::Result<BTreeMap<OsString, MergedEntry>> {
    let mut seen: HashMap<OsString, bool> = HashMap::new();
    let mut out = BTreeMap::new();
    for (layer, dir) in stack.iter().enumerate() {
        let rd = match fs::read_dir(dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for e in rd {
            let e = e?;
            let name = e.file_name();
            if seen.contains_key(&name) {
                continue;
            }
            let ft = e.file_type()?;
            let whiteout = ft.is_char_device() && e.metadata()?.rdev() == 0;
            seen.insert(name.clone(), whiteout);
            if !whiteout {
                out.insert(
                    name,
                    MergedEntry {
                        layer,
                        path: e.path(),
                    },
                );
            }
        }
    }
    Ok(out)
}

/// The stack of a child directory `name` whose topmost provider is `stack[from]`: every lower
/// dir from there down where `name` is a directory, stopping after an opaque one and before
/// one where `name` is not a directory.
pub fn child_stack(stack: &[PathBuf], from: usize, name: &OsStr) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for dir in &stack[from..] {
        let p = dir.join(name);
        match fs::symlink_metadata(&p) {
            Ok(m) if m.is_dir() => {
                let opaque = is_opaque(&p);
                out.push(p);
                if opaque {
                    break;
                }
            }
            Ok(_) => break,
            Err(_) => {}
        }
    }
    out
}

/// Copies the merged view of `lower` (overlay lower dirs, topmost first) into the empty
/// directory `dest`, keeping modes, owners, mtimes (to the nanosecond), xattrs (overlay's own
/// excepted), device nodes, symlinks and hard links. This is the fallback snapshotter's rootfs.
pub fn copy_merged(lower: &[PathBuf], dest: &Path) -> Result<(), OverlayError> {
    let mut links = HashMap::new();
    copy_dir(lower, dest, &mut links)?;
    match lower.first() {
        Some(top) => {
            let meta = fs::metadata(top).map_err(io_err("stat", top))?;
            copy_meta(top, dest, &meta)
        }
        None => rustix::fs::chmod(dest, rustix::fs::Mode::from_raw_mode(0o755))
            .map_err(|e| io_err("chmod", dest)(e.into())),
    }
}

fn copy_dir(
    stack: &[PathBuf],
    dest: &Path,
    links: &mut HashMap<(u64, u64), PathBuf>,
) -> Result<(), OverlayError> {
    let children = merged_children(stack).map_err(io_err("read", dest))?;
    for (name, entry) in children {
        let src = &entry.path;
        let to = dest.join(&name);
        let meta = fs::symlink_metadata(src).map_err(io_err("stat", src))?;
        let ft = meta.file_type();
        if ft.is_dir() {
            fs::create_dir(&to).map_err(io_err("create", &to))?;
            copy_dir(&child_stack(stack, entry.layer, &name), &to, links)?;
        } else if ft.is_symlink() {
            let target = fs::read_link(src).map_err(io_err("read the link", src))?;
            std::os::unix::fs::symlink(&target, &to).map_err(io_err("create", &to))?;
        } else if meta.nlink() > 1
            && let Some(first) = links.get(&(meta.dev(), meta.ino()))
        {
            fs::hard_link(first, &to).map_err(io_err("link", &to))?;
            continue;
        } else if ft.is_file() {
            let mut from = File::open(src).map_err(io_err("open", src))?;
            let mut out = File::create(&to).map_err(io_err("create", &to))?;
            io::copy(&mut from, &mut out).map_err(io_err("copy", src))?;
        } else {
            let kind = if ft.is_char_device() {
                rustix::fs::FileType::CharacterDevice
            } else if ft.is_block_device() {
                rustix::fs::FileType::BlockDevice
            } else if ft.is_fifo() {
                rustix::fs::FileType::Fifo
            } else {
                continue; // sockets
            };
            rustix::fs::mknodat(
                rustix::fs::CWD,
                &to,
                kind,
                rustix::fs::Mode::empty(),
                meta.rdev(),
            )
            .map_err(|e| io_err("create", &to)(e.into()))?;
        }
        if meta.nlink() > 1 && !ft.is_dir() {
            links.insert((meta.dev(), meta.ino()), to.clone());
        }
        copy_meta(src, &to, &meta)?;
    }
    Ok(())
}

/// Owner, mode, xattrs and times of `src` onto `to` (times last).
fn copy_meta(src: &Path, to: &Path, meta: &fs::Metadata) -> Result<(), OverlayError> {
    let is_link = meta.file_type().is_symlink();
    rustix::fs::chownat(
        rustix::fs::CWD,
        to,
        Some(rustix::fs::Uid::from_raw(meta.uid())),
        Some(rustix::fs::Gid::from_raw(meta.gid())),
        rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
    )
    .map_err(|e| io_err("chown", to)(e.into()))?;
    if !is_link {
        rustix::fs::chmod(to, rustix::fs::Mode::from_raw_mode(meta.mode() & 0o7777))
            .map_err(|e| io_err("chmod", to)(e.into()))?;
    }
    for (name, value) in crate::entry::read_xattrs(src).map_err(io_err("read xattrs of", src))? {
        rustix::fs::lsetxattr(to, name.as_str(), &value, rustix::fs::XattrFlags::empty())
            .map_err(|e| io_err("set xattrs of", to)(e.into()))?;
    }
    let ts = |s, ns| rustix::fs::Timespec {
        tv_sec: s,
        tv_nsec: ns,
    };
    rustix::fs::utimensat(
        rustix::fs::CWD,
        to,
        &rustix::fs::Timestamps {
            last_access: ts(meta.atime(), meta.atime_nsec()),
            last_modification: ts(meta.mtime(), meta.mtime_nsec()),
        },
        rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
    )
    .map_err(|e| io_err("set times of", to)(e.into()))?;
    Ok(())
}
