//! The planned layer: its entries, its Merkle hash, and writing it in one streaming pass.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use kiln_layer::{Compression, Entry, EntryKind, LayerDigests, LayerWriter, PackError};
use sha2::{Digest as _, Sha256};

use crate::error::{FileOpError, read_err};
use crate::merkle::{ContentHasher, Leaf, MerkleHash};
use crate::plan::{Data, Origin, Planned};
use crate::view::SourceRoot;

/// From how many leaves [`Plan::merkle`] spreads the work over threads.
const PARALLEL_LEAVES: usize = 4096;

/// The result of planning a COPY/ADD: the layer's entries in layer order, ready to write.
///
/// Holds any downloads or extracted archive members in a scratch directory, removed when the
/// plan is dropped.
pub struct Plan<'a> {
    pub(crate) source: Option<&'a SourceRoot>,
    pub(crate) entries: crate::pathmap::PathMap<Planned>,
    pub(crate) leaves: Vec<Leaf>,
    pub(crate) _scratch: Option<tempfile::TempDir>,
}

/// One entry of the planned layer, as it will be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedEntry {
    /// The entry (hard link members after the first are [`EntryKind::Hardlink`]).
    pub entry: Entry,
    /// Why it is there.
    pub origin: Origin,
}

/// How [`Plan::write_layer`] writes.
#[derive(Debug, Clone, Default)]
pub struct LayerOptions {
    /// Compression of the blob; the default is gzip level 6.
    pub compression: Compression,
    /// Clamp mtimes to `SOURCE_DATE_EPOCH`; the default, `None`, keeps them.
    pub source_date_epoch: Option<i64>,
}

/// A written layer.
#[derive(Debug)]
pub struct LayerOutput<W> {
    /// The writer given, after the last byte.
    pub out: W,
    /// diff id, blob digest and sizes.
    pub digests: LayerDigests,
    /// The entries written, in order.
    pub entries: Vec<PlannedEntry>,
    /// The Merkle hash of the selection, computed from the bytes that were written.
    pub merkle: MerkleHash,
}

impl Plan<'_> {
    /// The entries in layer order: sorted by path components, so each directory comes before
    /// its contents; the first member of each hard-link group (in that order) carries the
    /// data and later members link to it.
    pub fn entries(&self) -> Vec<PlannedEntry> {
        let mut first: HashMap<usize, PathBuf> = HashMap::new();
        self.entries
            .values()
            .map(|p| {
                let mut entry = p.entry.clone();
                if let Some(g) = p.link_group {
                    match first.get(&g) {
                        Some(holder) => {
                            entry.kind = EntryKind::Hardlink(holder.clone());
                            entry.size = 0;
                        }
                        None => {
                            first.insert(g, entry.path.clone());
                        }
                    }
                }
                PlannedEntry {
                    entry,
                    origin: p.origin,
                }
            })
            .collect()
    }

    /// The regular files of the layer whose content is a file of the source root, as
    /// `(entry path, path relative to the source root)`, in layer order; of a hard-link group,
    /// the member that carries the data. A caller that knows where the source root's files
    /// live can link them instead of writing them again.
    pub fn source_files(&self) -> Vec<(&Path, &Path)> {
        let mut groups = std::collections::HashSet::new();
        self.entries
            .values()
            .filter(|p| p.entry.kind == EntryKind::File)
            .filter(|p| p.link_group.is_none_or(|g| groups.insert(g)))
            .filter_map(|p| match &p.data {
                Data::Source(rel) => Some((p.entry.path.as_path(), rel.as_path())),
                _ => None,
            })
            .collect()
    }

    /// The Merkle hash of the selection, hashing contents with `hasher` (for the cache lookup
    /// before anything is written). See [`crate::merkle`] for the format. Large selections
    /// are hashed on several threads.
    pub fn merkle(&self, hasher: &(dyn ContentHasher + Sync)) -> Result<MerkleHash, FileOpError> {
        self.merkle_with(None, hasher)
    }

    /// The Merkle hash, taking contents from `known` (what writing the layer hashed) first.
    fn merkle_with(
        &self,
        known: Option<&HashMap<&Data, [u8; 32]>>,
        hasher: &(dyn ContentHasher + Sync),
    ) -> Result<MerkleHash, FileOpError> {
        let leaf_digests = |leaves: &[Leaf]| -> Result<Vec<[u8; 32]>, FileOpError> {
            leaves
                .iter()
                .map(|leaf| {
                    let content = match (&leaf.data, known.and_then(|k| k.get(&leaf.data))) {
                        (_, Some(d)) => *d,
                        (Data::None, None) => Sha256::digest(b"").into(),
                        (Data::Bytes(b), None) => Sha256::digest(b).into(),
                        (Data::Scratch(p), None) => hasher.sha256(p, None).map_err(read_err(p))?,
                        (Data::Source(rel), None) => {
                            let root = self.source.expect("source data needs a root");
                            let host = root.host_path(rel);
                            hasher
                                .sha256(&host, leaf.stamp.as_ref())
                                .map_err(read_err(host))?
                        }
                    };
                    Ok(leaf.digest(&content))
                })
                .collect()
        };
        let threads = crate::threads();
        let digests = if threads < 2 || self.leaves.len() < PARALLEL_LEAVES {
            leaf_digests(&self.leaves)?
        } else {
            let chunk = self.leaves.len().div_ceil(threads);
            let parts: Vec<_> = std::thread::scope(|s| {
                let mut chunks = self.leaves.chunks(chunk);
                let first = chunks.next().unwrap_or_default();
                // The first chunk here, the others on threads of their own (or here too
                // when a thread cannot be had).
                let others: Vec<_> = chunks
                    .map(|c| {
                        std::thread::Builder::new()
                            .name("kiln-merkle".into())
                            .spawn_scoped(s, move || leaf_digests(c))
                            .map_err(|_| c)
                    })
                    .collect();
                let mut parts = vec![leaf_digests(first)];
                for other in others {
                    parts.push(match other {
                        Ok(h) => h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)),
                        Err(c) => leaf_digests(c),
                    });
                }
                parts
            });
            let mut digests = Vec::with_capacity(self.leaves.len());
            for part in parts {
                digests.extend(part?);
            }
            digests
        };
        Ok(MerkleHash::from_leaf_digests(&self.leaves, digests))
    }

    /// Writes the layer to `out`, streaming each file from its source (no staging copy) and
    /// hashing it on the way for the Merkle hash.
    pub fn write_layer<W: Write>(
        &self,
        out: W,
        opts: &LayerOptions,
    ) -> Result<LayerOutput<W>, FileOpError> {
        let mut writer = LayerWriter::new(out, opts.compression)
            .map_err(FileOpError::Layer)?
            .source_date_epoch(opts.source_date_epoch);
        let mut known: HashMap<&Data, [u8; 32]> = HashMap::new();
        let entries = self.entries();
        for (planned, written) in self.entries.values().zip(&entries) {
            let entry = &written.entry;
            if entry.kind != EntryKind::File {
                writer.append(entry, None).map_err(FileOpError::Layer)?;
                continue;
            }
            let mut hashing = HashingRead {
                inner: self.open(&planned.data)?,
                sha: Sha256::new(),
            };
            writer
                .append(entry, Some(&mut hashing))
                .map_err(|e| self.with_host_path(e, &planned.data))?;
            known.insert(&planned.data, hashing.sha.finalize().into());
        }
        let merkle = self.merkle_with(Some(&known), &crate::merkle::ReadingHasher)?;
        let (out, digests) = writer.finish().map_err(FileOpError::Layer)?;
        Ok(LayerOutput {
            out,
            digests,
            entries,
            merkle,
        })
    }

    fn open<'d>(&self, data: &'d Data) -> Result<Box<dyn Read + 'd>, FileOpError> {
        Ok(match data {
            Data::None => Box::new(io::empty()),
            Data::Bytes(b) => Box::new(&b[..]),
            Data::Scratch(p) => Box::new(std::fs::File::open(p).map_err(read_err(p))?),
            Data::Source(rel) => {
                Box::new(self.source.expect("source data needs a root").open(rel)?)
            }
        })
    }

    fn with_host_path(&self, e: PackError, data: &Data) -> FileOpError {
        let host = |p: &Path| match data {
            Data::Source(rel) => self
                .source
                .map_or_else(|| p.to_owned(), |r| r.host_path(rel)),
            _ => p.to_owned(),
        };
        match e {
            PackError::Read { path, source } => FileOpError::Read {
                path: host(&path),
                source,
            },
            other => FileOpError::Layer(other),
        }
    }
}

/// Hashes what the layer writer reads (the content hash for the Merkle leaves).
struct HashingRead<R> {
    inner: R,
    sha: Sha256,
}

impl<R: Read> Read for HashingRead<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.sha.update(&buf[..n]);
        Ok(n)
    }
}
