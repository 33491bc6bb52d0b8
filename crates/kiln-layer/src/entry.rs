//! One entry of a layer, independent of where it came from (a directory walk, a build step).

use std::collections::BTreeMap;
use std::path::PathBuf;

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
}
