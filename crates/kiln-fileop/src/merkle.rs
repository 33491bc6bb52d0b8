//! The content hash of exactly what a COPY/ADD selects, for its cache key.
//!
//! # Format (version 1)
//!
//! A two-level Merkle tree. Each selected source entry is a *leaf*, in the order the copier
//! finishes them (sources in instruction order; inside a directory, depth first with names
//! sorted by bytes, each directory after its contents). Created destination directories and the parent's directories are not leaves: they
//! follow from the instruction and the parent, which the step key already holds. Archive
//! members are not leaves either; the archive file is.
//!
//! A leaf's digest is SHA-256 over, in this order (integers big-endian, `bytes` = a `u32`
//! length then the bytes):
//!
//! | field | encoding |
//! |---|---|
//! | format version | `u8` = 1 |
//! | source index (position among the instruction's sources) | `u32` |
//! | path: `/`-rooted in the source root; `<<NAME` for a heredoc; the URL for a download | `bytes` |
//! | kind: 0 file, 1 directory, 2 symlink, 3 char device, 4 block device, 5 fifo | `u8` |
//! | mode after `--chmod` (`0o7777` bits) | `u32` |
//! | uid, gid after `--chown` (context files count as `0:0`) | `u64`, `u64` |
//! | size (files; 0 otherwise) | `u64` |
//! | SHA-256 of the content (files; 32 zero bytes otherwise) | 32 bytes |
//! | symlink target (empty otherwise) | `bytes` |
//! | device number (devices; 0 otherwise) | `u64` |
//!
//! The root digest is SHA-256 over: the version byte `1`, the leaf count as `u64`, then every
//! leaf digest. mtimes never enter it, so touching a file without changing it keeps the key.
//! Changing any field above changes the format: bump the version byte.

use std::io::{self, Read};
use std::path::Path;

use kiln_layer::Digest;
use sha2::{Digest as _, Sha256};

use crate::plan::Data;
use crate::view::Stamp;

/// The format version written first in every leaf and in the root.
pub const MERKLE_VERSION: u8 = 1;

/// What a leaf is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeafKind {
    /// A regular file (sockets count as empty files, as they are copied).
    File,
    /// A directory.
    Dir,
    /// A symbolic link.
    Symlink,
    /// A character device.
    CharDevice,
    /// A block device.
    BlockDevice,
    /// A named pipe.
    Fifo,
}

impl LeafKind {
    fn code(self) -> u8 {
        match self {
            Self::File => 0,
            Self::Dir => 1,
            Self::Symlink => 2,
            Self::CharDevice => 3,
            Self::BlockDevice => 4,
            Self::Fifo => 5,
        }
    }
}

/// One selected source entry, before its content is hashed.
#[derive(Debug, Clone)]
pub struct Leaf {
    /// Position of the source in the instruction.
    pub source_index: u32,
    /// `/`-rooted path in the source root, `<<NAME` or the URL.
    pub path: String,
    /// What it is.
    pub kind: LeafKind,
    /// Mode after `--chmod`.
    pub mode: u32,
    /// Owner after `--chown`.
    pub uid: u64,
    /// Group after `--chown`.
    pub gid: u64,
    /// Content length of files.
    pub size: u64,
    /// Device number of devices.
    pub rdev: u64,
    /// Symlink target.
    pub link_target: String,
    pub(crate) data: Data,
    /// The source file's stamp from planning, so a content cache need not stat it again.
    pub(crate) stamp: Option<Stamp>,
}

impl Leaf {
    /// The leaf digest, given the SHA-256 of its content (ignored unless it is a file).
    pub fn digest(&self, content: &[u8; 32]) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update([MERKLE_VERSION]);
        h.update(self.source_index.to_be_bytes());
        put_bytes(&mut h, self.path.as_bytes());
        h.update([self.kind.code()]);
        h.update(self.mode.to_be_bytes());
        h.update(self.uid.to_be_bytes());
        h.update(self.gid.to_be_bytes());
        h.update(self.size.to_be_bytes());
        if self.kind == LeafKind::File {
            h.update(content);
        } else {
            h.update([0u8; 32]);
        }
        put_bytes(&mut h, self.link_target.as_bytes());
        let rdev = if matches!(self.kind, LeafKind::CharDevice | LeafKind::BlockDevice) {
            self.rdev
        } else {
            0
        };
        h.update(rdev.to_be_bytes());
        h.finalize().into()
    }
}

fn put_bytes(h: &mut Sha256, bytes: &[u8]) {
    let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
    h.update(len.to_be_bytes());
    h.update(bytes);
}

/// The Merkle hash of a COPY/ADD's selection: the root and every leaf, so that a cache miss
/// can name the file that changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MerkleHash {
    /// The root digest (what enters the step's cache key).
    pub root: Digest,
    /// `(path, leaf digest)` in selection order.
    pub leaves: Vec<(String, Digest)>,
}

impl MerkleHash {
    /// The root over `digests`, each [`Leaf::digest`] of the leaf at the same position.
    pub(crate) fn from_leaf_digests(leaves: &[Leaf], digests: Vec<[u8; 32]>) -> Self {
        let mut root = Sha256::new();
        root.update([MERKLE_VERSION]);
        root.update((leaves.len() as u64).to_be_bytes());
        for d in &digests {
            root.update(d);
        }
        Self {
            root: Digest::from_sha256(&root.finalize().into()),
            leaves: leaves
                .iter()
                .zip(digests)
                .map(|(leaf, d)| (leaf.path.clone(), Digest::from_sha256(&d)))
                .collect(),
        }
    }
}

/// Hashes file contents for [`Plan::merkle`](crate::Plan::merkle). kiln-cache implements it
/// over its stat cache (inode, size, mtime, ctime -> digest) so unchanged files are not read.
pub trait ContentHasher {
    /// The SHA-256 of the file at host path `path`. `stamp` is its `lstat` from planning,
    /// when there was one: a cache can check it instead of calling `stat` again.
    fn sha256(&self, path: &Path, stamp: Option<&Stamp>) -> io::Result<[u8; 32]>;
}

/// Reads every file in full.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReadingHasher;

impl ContentHasher for ReadingHasher {
    fn sha256(&self, path: &Path, _: Option<&Stamp>) -> io::Result<[u8; 32]> {
        sha256_reader(std::fs::File::open(path)?)
    }
}

/// The SHA-256 of everything `r` yields.
pub fn sha256_reader(mut r: impl Read) -> io::Result<[u8; 32]> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => h.update(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(h.finalize().into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf(path: &str) -> Leaf {
        Leaf {
            source_index: 0,
            path: path.to_owned(),
            kind: LeafKind::File,
            mode: 0o644,
            uid: 0,
            gid: 0,
            size: 1,
            rdev: 0,
            link_target: String::new(),
            data: Data::None,
            stamp: None,
        }
    }

    #[test]
    fn every_field_counts() {
        let base = leaf("/a").digest(&[1; 32]);
        assert_ne!(base, leaf("/b").digest(&[1; 32]));
        assert_ne!(base, leaf("/a").digest(&[2; 32]));
        let mut l = leaf("/a");
        l.mode = 0o755;
        assert_ne!(base, l.digest(&[1; 32]));
        let mut l = leaf("/a");
        l.uid = 1;
        assert_ne!(base, l.digest(&[1; 32]));
        let mut l = leaf("/a");
        l.source_index = 1;
        assert_ne!(base, l.digest(&[1; 32]));
    }

    #[test]
    fn fields_cannot_run_into_each_other() {
        // Length prefixes keep `("ab", "")` and `("a", "b")` apart.
        let mut x = leaf("/ab");
        x.kind = LeafKind::Symlink;
        let mut y = leaf("/a");
        y.kind = LeafKind::Symlink;
        y.link_target = "b".into();
        assert_ne!(x.digest(&[0; 32]), y.digest(&[0; 32]));
    }

    #[test]
    fn root_depends_on_order_and_count() {
        let a = leaf("/a");
        let b = leaf("/b");
        let root = |leaves: &[Leaf]| {
            let digests = leaves.iter().map(|l| l.digest(&[0; 32])).collect();
            MerkleHash::from_leaf_digests(leaves, digests)
        };
        let ab = root(&[a.clone(), b.clone()]);
        let ba = root(&[b, a.clone()]);
        let only_a = root(&[a]);
        assert_ne!(ab.root, ba.root);
        assert_ne!(ab.root, only_a.root);
        assert_eq!(ab.leaves.len(), 2);
    }
}
