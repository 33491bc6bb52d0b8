//! One entry of a layer, independent of where it came from (a directory walk, a build step).

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// What an entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular file; its bytes follow the header (`size` of them).
    File,
    /// A directory.
    Dir,
    /// A symbolic link to `target` (stored verbatim, never resolved).
    Symlink(PathBuf),
    /// A hard link to an earlier entry of the same layer, named by its layer path.
    Hardlink(PathBuf),
    /// A character device.
    CharDevice {
        /// Device major number.
        major: u32,
        /// Device minor number.
        minor: u32,
    },
    /// A block device.
    BlockDevice {
        /// Device major number.
        major: u32,
        /// Device minor number.
        minor: u32,
    },
    /// A named pipe.
    Fifo,
}

/// The normalized metadata of one layer entry.
///
/// Only what enters the tar header is kept: no atime, no ctime, no user or group names. The path
/// is relative to the layer root, without a leading `/` or `./`; directories carry no trailing
/// slash here (the header adds it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Path inside the layer, relative, `/`-separated.
    pub path: PathBuf,
    /// What the entry is.
    pub kind: EntryKind,
    /// Permission bits including setuid, setgid and sticky (`0o7777` at most).
    pub mode: u32,
    /// Numeric owner.
    pub uid: u64,
    /// Numeric group.
    pub gid: u64,
    /// Modification time in whole seconds since the epoch (sub-second parts are dropped).
    pub mtime: i64,
    /// Content length; only meaningful for [`EntryKind::File`], zero otherwise.
    pub size: u64,
    /// Extended attributes (`security.capability`, `user.*`, ...), written as PAX
    /// `SCHILY.xattr.` records in name order.
    pub xattrs: BTreeMap<String, Vec<u8>>,
}

impl Entry {
    /// An entry of `kind` at `path` with mode `0o644` (files) or `0o755` (others), owned by
    /// root, mtime 0, no xattrs.
    pub fn new(path: impl Into<PathBuf>, kind: EntryKind) -> Self {
        let mode = if kind == EntryKind::File {
            0o644
        } else {
            0o755
        };
        Self {
            path: path.into(),
            kind,
            mode,
            uid: 0,
            gid: 0,
            mtime: 0,
            size: 0,
            xattrs: BTreeMap::new(),
        }
    }

    /// The entry for the file at `host`, whose metadata (not followed) is `meta`, at layer
    /// path `path`: its type, mode, owner, mtime, size (regular files) and the xattrs that
    /// belong in a layer ([`read_xattrs`]). A socket becomes a file, as in tar; hard links are
    /// the caller's business.
    pub fn from_host(path: PathBuf, host: &Path, meta: &fs::Metadata) -> io::Result<Self> {
        let ft = meta.file_type();
        let (major, minor) = (
            rustix::fs::major(meta.rdev()),
            rustix::fs::minor(meta.rdev()),
        );
        let kind = if ft.is_dir() {
            EntryKind::Dir
        } else if ft.is_symlink() {
            EntryKind::Symlink(fs::read_link(host)?)
        } else if ft.is_char_device() {
            EntryKind::CharDevice { major, minor }
        } else if ft.is_block_device() {
            EntryKind::BlockDevice { major, minor }
        } else if ft.is_fifo() {
            EntryKind::Fifo
        } else {
            EntryKind::File
        };
        Ok(Self {
            path,
            size: if kind == EntryKind::File {
                meta.len()
            } else {
                0
            },
            kind,
            mode: meta.mode() & 0o7777,
            uid: u64::from(meta.uid()),
            gid: u64::from(meta.gid()),
            mtime: meta.mtime(),
            xattrs: read_xattrs(host)?,
        })
    }
}

/// The xattrs of `path` that belong in a layer: all but `trusted.overlay.*` (overlayfs's
/// bookkeeping) and `security.selinux` (a host label).
pub fn read_xattrs(path: &Path) -> io::Result<BTreeMap<String, Vec<u8>>> {
    let mut out = BTreeMap::new();
    let mut list = vec![0u8; 1024];
    let n = loop {
        match rustix::fs::llistxattr(path, &mut list[..]) {
            Ok(n) => break n,
            Err(rustix::io::Errno::RANGE) => list.resize(list.len() * 4, 0),
            Err(rustix::io::Errno::NOTSUP | rustix::io::Errno::PERM) => return Ok(out),
            Err(e) => return Err(e.into()),
        }
    };
    for name in list[..n].split(|&b| b == 0).filter(|n| !n.is_empty()) {
        let Ok(name) = std::str::from_utf8(name) else {
            continue;
        };
        if crate::overlay::is_overlay_xattr(name) || name == "security.selinux" {
            continue;
        }
        let mut value = vec![0u8; 256];
        let len = loop {
            match rustix::fs::lgetxattr(path, name, &mut value[..]) {
                Ok(len) => break len,
                Err(rustix::io::Errno::RANGE) => value.resize(value.len() * 4, 0),
                Err(e) => return Err(e.into()),
            }
        };
        value.truncate(len);
        out.insert(name.to_owned(), value);
    }
    Ok(out)
}

/// The path of a tar entry as a layer means it: `./a/b/`, `/a/b` and `a/b` are `a/b`, and
/// the root (`./`, `.`, `/`) is empty.
pub fn normalized_path(mut path: &[u8]) -> &[u8] {
    loop {
        if let Some(rest) = path.strip_prefix(b"./") {
            path = rest;
        } else if let Some(rest) = path.strip_prefix(b"/") {
            path = rest;
        } else {
            break;
        }
    }
    while let Some(rest) = path.strip_suffix(b"/") {
        path = rest;
    }
    if path == b"." { b"" } else { path }
}
