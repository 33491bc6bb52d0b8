//! The analysis of one image: per-layer changes, wasted bytes with the layer responsible,
//! and dive's efficiency numbers, from one pass over the layers' headers.

use std::io::{Read, Seek};

use kiln_layer::Digest;

use crate::caches::{CacheKind, cache_dirs};
use crate::merge::{Event, Merged, prepare};
use crate::tree::{NodeId, PathTree};
use crate::walk::{Kind, LayerEntry, Op, Walk};

/// What the caller knows of a layer before reading it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerInfo {
    /// The blob's digest (compressed, if the blob is).
    pub digest: Digest,
    /// The uncompressed digest (the config's `rootfs.diff_ids` entry), when known.
    pub diff_id: Option<Digest>,
    /// The history entry that made it: its index in the config's history and its
    /// `created_by`. `None` when the history has no entry for it.
    pub history: Option<(usize, String)>,
}

/// Whether a path is new in a layer, written over a lower version, or deleted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ChangeKind {
    /// No layer below had the path.
    Added,
    /// A layer below had the path; this layer writes it again.
    Changed,
    /// The layer deletes the path (a whiteout), with what was under it.
    Removed,
}

impl ChangeKind {
    /// `added`, `changed` or `removed`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Added => "added",
            Self::Changed => "changed",
            Self::Removed => "removed",
        }
    }
}

/// One path a layer adds, changes or removes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// The path.
    pub node: NodeId,
    /// What happened to it.
    pub change: ChangeKind,
    /// What it is (for a removal: what it was).
    pub kind: Kind,
    /// The bytes it adds (a file's length, a symlink's target length), or for a removal the
    /// bytes it took away (everything that was under it).
    pub bytes: u64,
}

/// Files and bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Paths that are not directories.
    pub files: u64,
    /// Their content bytes.
    pub bytes: u64,
}

/// One layer's statistics.
#[derive(Clone, Debug)]
pub struct LayerReport {
    /// What the caller said of it.
    pub info: LayerInfo,
    /// Its content size as Docker shows it (`kiln history`'s SIZE): the last entry of each
    /// path, files by length, symlinks by target length.
    pub size: u64,
    /// dive's size of the layer: the sum of every entry's tar header size.
    pub dive_size: u64,
    /// What it adds, changes and removes, in the layer's order (directories included).
    pub changes: Vec<Change>,
    /// Non-directories added.
    pub added: Tally,
    /// Non-directories written over a lower version.
    pub changed: Tally,
    /// Paths deleted, with the bytes they held.
    pub removed: Tally,
}

/// Why bytes of the image are wasted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum WasteReason {
    /// Layer `by` wrote the file again with different content or size.
    Overwritten {
        /// The layer that wrote it again.
        by: usize,
    },
    /// Layer `by` wrote the file again with the same size but another mode or owner: most
    /// likely a `chmod`/`chown` of it, which copies the whole file into a new layer.
    MetadataOnly {
        /// The layer that wrote it again.
        by: usize,
    },
    /// Layer `by` deleted the file (or replaced it with a path of another type).
    Deleted {
        /// The layer that deleted it.
        by: usize,
    },
    /// The file is a package-manager cache or build leftover in the final filesystem.
    Cache(CacheKind),
}

/// One wasted file: `bytes` of `node` that layer `layer` wrote for nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Waste {
    /// The path.
    pub node: NodeId,
    /// The bytes wasted.
    pub bytes: u64,
    /// The layer that wrote them (the one whose instruction to fix, with `reason`).
    pub layer: usize,
    /// Why they are wasted.
    pub reason: WasteReason,
}

/// Wasted files grouped by layer and reason: one finding per fix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// The layer that wrote the bytes.
    pub layer: usize,
    /// Why they are wasted.
    pub reason: WasteReason,
    /// The total wasted.
    pub bytes: u64,
    /// How many files.
    pub files: u64,
    /// The largest of them, largest first (at most five).
    pub examples: Vec<(NodeId, u64)>,
}

/// A path dive counts as inefficient: a leaf of more than one layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inefficiency {
    /// The path.
    pub node: NodeId,
    /// In how many layers it is a leaf (dive's `count`).
    pub count: u32,
    /// The sum of its sizes in those layers (dive's `sizeBytes`).
    pub bytes: u64,
}

/// dive's image numbers, computed as dive computes them (see the crate docs).
#[derive(Clone, Debug, PartialEq)]
pub struct DiveMetrics {
    /// `efficiencyScore`: the sum over leaf paths of their smallest size, over the sum of all
    /// their sizes; 1 when nothing has a size.
    pub efficiency: f64,
    /// `sizeBytes`: the sum of the layers' dive sizes.
    pub size_bytes: u64,
    /// The same without the first layer (dive's "user" bytes).
    pub user_size_bytes: u64,
    /// `inefficientBytes`: the sum of the inefficiencies' bytes.
    pub wasted_bytes: u64,
    /// `wasted_bytes / user_size_bytes`; 0 when there are no user bytes.
    pub wasted_user_percent: f64,
    /// The inefficient paths, largest first (then by path).
    pub inefficiencies: Vec<Inefficiency>,
}

/// The analysis of an image.
#[derive(Debug)]
pub struct Analysis {
    /// Every path of every layer.
    pub tree: PathTree,
    /// The layers, bottom first.
    pub layers: Vec<LayerReport>,
    /// Every wasted file.
    pub waste: Vec<Waste>,
    /// dive's numbers.
    pub dive: DiveMetrics,
    /// The final filesystem: non-directories and their content bytes.
    pub total: Tally,
    /// The final filesystem's non-directories, in node order, each with the layer that
    /// wrote it (what a treemap or a file browser of the image draws).
    pub files: Vec<FinalFile>,
}

/// A path in the final filesystem that is not a directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FinalFile {
    /// The path.
    pub node: NodeId,
    /// Its content bytes (a file's length, a symlink's target length).
    pub bytes: u64,
    /// The layer whose entry it is.
    pub layer: usize,
}

impl Analysis {
    /// The bytes of all waste.
    pub fn wasted_bytes(&self) -> u64 {
        self.waste.iter().map(|w| w.bytes).sum()
    }

    /// The bytes of the final filesystem under each node (indexed by [`NodeId`]): a file's
    /// own bytes, a directory's sum over everything under it; 0 for paths the image no
    /// longer has. The root holds `total.bytes`.
    pub fn dir_bytes(&self) -> Vec<u64> {
        let mut sums = vec![0u64; self.tree.len()];
        for f in &self.files {
            let mut n = Some(f.node);
            while let Some(at) = n {
                sums[at as usize] += f.bytes;
                n = self.tree.parent(at);
            }
        }
        sums
    }

    /// The waste grouped by layer and reason, largest first.
    pub fn findings(&self) -> Vec<Finding> {
        let mut groups: foldhash::HashMap<(usize, WasteReason), Finding> =
            foldhash::HashMap::default();
        for w in &self.waste {
            let f = groups
                .entry((w.layer, w.reason))
                .or_insert_with(|| Finding {
                    layer: w.layer,
                    reason: w.reason,
                    bytes: 0,
                    files: 0,
                    examples: Vec::new(),
                });
            f.bytes += w.bytes;
            f.files += 1;
            f.examples.push((w.node, w.bytes));
        }
        let mut out: Vec<Finding> = groups.into_values().collect();
        for f in &mut out {
            f.examples.sort_by(|a, b| {
                b.1.cmp(&a.1)
                    .then_with(|| self.tree.path(a.0).cmp(&self.tree.path(b.0)))
            });
            f.examples.truncate(5);
        }
        out.sort_by(|a, b| {
            b.bytes
                .cmp(&a.bytes)
                .then(a.layer.cmp(&b.layer))
                .then(a.reason.cmp(&b.reason))
        });
        out
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct Eff {
    cumulative: u64,
    min: u64,
    count: u32,
}

/// Builds an [`Analysis`] one layer at a time, bottom first.
#[derive(Debug, Default)]
pub struct Analyzer {
    tree: PathTree,
    merged: Merged,
    layers: Vec<LayerReport>,
    waste: Vec<Waste>,
    eff: Vec<Eff>,
    inefficient: Vec<NodeId>,
    seen: Vec<u32>,
    marks: Vec<u32>,
}

impl Analyzer {
    /// An analyzer with no layers yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads the next layer (plain, gzip or zstd tar) from a seekable file: an uncompressed
    /// one is read header by header, seeking over the content.
    pub fn add_layer_file<R: Read + Seek>(
        &mut self,
        info: LayerInfo,
        file: R,
    ) -> std::io::Result<()> {
        let mut entries = Vec::new();
        Walk::default().file(file, |e| entries.push(e))?;
        self.add_entries(info, entries);
        Ok(())
    }

    /// Reads the next layer from a stream.
    pub fn add_layer<R: Read>(&mut self, info: LayerInfo, reader: R) -> std::io::Result<()> {
        let mut entries = Vec::new();
        Walk::default().reader(reader, |e| entries.push(e))?;
        self.add_entries(info, entries);
        Ok(())
    }

    /// Adds the next layer from its entries (headers only; nothing reads content).
    pub fn add_entries(&mut self, info: LayerInfo, entries: Vec<LayerEntry>) {
        let layer = self.layers.len();
        let dive_size = entries
            .iter()
            .map(|e| match &e.op {
                Op::Write(m) if m.kind == Kind::File => m.size,
                _ => 0,
            })
            .sum();
        let prepared = prepare(&mut self.tree, entries, &mut self.seen);
        self.dive_layer(layer, &prepared);
        let mut report = LayerReport {
            info,
            size: prepared.writes.iter().map(|(_, m)| m.content_size()).sum(),
            dive_size,
            changes: Vec::new(),
            added: Tally::default(),
            changed: Tally::default(),
            removed: Tally::default(),
        };
        let waste = &mut self.waste;
        let tree = &self.tree;
        // Removals grouped under the whiteout (or replaced path) they come from.
        let mut removed_at: Vec<(NodeId, Kind, u64)> = Vec::new();
        self.merged
            .apply(tree, layer, prepared, &mut |event| match event {
                Event::Removed {
                    node,
                    old,
                    root,
                    whiteout,
                } => {
                    let bytes = old.meta.content_size();
                    if old.meta.kind == Kind::File && old.meta.size > 0 {
                        waste.push(Waste {
                            node,
                            bytes: old.meta.size,
                            layer: old.layer,
                            reason: WasteReason::Deleted { by: layer },
                        });
                    }
                    if whiteout {
                        if old.meta.kind != Kind::Dir {
                            report.removed.files += 1;
                            report.removed.bytes += bytes;
                        }
                        if let Some(r) = removed_at.iter_mut().find(|r| r.0 == root) {
                            r.2 += bytes;
                        } else {
                            let kind = if node == root {
                                old.meta.kind
                            } else {
                                Kind::Dir
                            };
                            removed_at.push((root, kind, bytes));
                        }
                    }
                }
                Event::Written { node, old, new } => {
                    let old = old.filter(|o| !(o.implicit && o.layer == layer));
                    let change = if old.is_some() {
                        ChangeKind::Changed
                    } else {
                        ChangeKind::Added
                    };
                    let bytes = new.content_size();
                    if new.kind != Kind::Dir {
                        let t = match change {
                            ChangeKind::Added => &mut report.added,
                            _ => &mut report.changed,
                        };
                        t.files += 1;
                        t.bytes += bytes;
                    }
                    report.changes.push(Change {
                        node,
                        change,
                        kind: new.kind,
                        bytes,
                    });
                    if let Some(old) = old
                        && old.meta.kind == Kind::File
                        && old.meta.size > 0
                    {
                        let same_size_new_owner = new.kind == Kind::File
                            && new.size == old.meta.size
                            && (new.mode != old.meta.mode
                                || new.uid != old.meta.uid
                                || new.gid != old.meta.gid);
                        let reason = if same_size_new_owner {
                            WasteReason::MetadataOnly { by: layer }
                        } else {
                            WasteReason::Overwritten { by: layer }
                        };
                        waste.push(Waste {
                            node,
                            bytes: old.meta.size,
                            layer: old.layer,
                            reason,
                        });
                    }
                }
            });
        for (node, kind, bytes) in removed_at {
            report.changes.push(Change {
                node,
                change: ChangeKind::Removed,
                kind,
                bytes,
            });
        }
        self.layers.push(report);
    }

    /// dive's efficiency bookkeeping for one layer: each path that is a leaf of the layer's
    /// own tree (no other path of the layer below it) adds its size to the path's total; a
    /// whiteout's size is that of the directory it deletes (a deleted file counts 0).
    fn dive_layer(&mut self, layer: usize, prepared: &crate::merge::Prepared) {
        let stamp = u32::try_from(layer).unwrap_or(u32::MAX - 1);
        self.marks.resize(self.tree.len(), u32::MAX);
        self.eff.resize(self.tree.len(), Eff::default());
        let paths: Vec<NodeId> = prepared
            .deletions
            .iter()
            .map(|(n, _)| *n)
            .chain(prepared.writes.iter().map(|(n, _)| *n))
            .collect();
        for &n in &paths {
            let mut p = self.tree.parent(n);
            while let Some(a) = p {
                if self.marks[a as usize] == stamp {
                    break;
                }
                self.marks[a as usize] = stamp;
                p = self.tree.parent(a);
            }
        }
        let mut sizes: Vec<(NodeId, u64)> = Vec::new();
        for (n, op) in &prepared.deletions {
            let size = match op {
                Op::Whiteout => match self.merged.get(*n) {
                    Some(v) if v.meta.kind == Kind::Dir => self.merged.subtree_size(&self.tree, *n),
                    _ => 0,
                },
                _ => 0,
            };
            sizes.push((*n, size));
        }
        // An opaque directory that the layer also writes is one node of dive's tree.
        for (n, meta) in &prepared.writes {
            if let Some(s) = sizes.iter_mut().find(|s| s.0 == *n) {
                s.1 = meta.size;
            } else {
                sizes.push((
                    *n,
                    if meta.kind == Kind::File {
                        meta.size
                    } else {
                        0
                    },
                ));
            }
        }
        for (n, size) in sizes {
            if self.marks[n as usize] == stamp {
                continue; // not a leaf of this layer
            }
            let e = &mut self.eff[n as usize];
            e.min = if e.count == 0 { size } else { e.min.min(size) };
            e.cumulative += size;
            e.count += 1;
            if e.count == 2 {
                self.inefficient.push(n);
            }
        }
    }

    /// Finishes: the caches left in the final filesystem, dive's totals.
    pub fn finish(self) -> Analysis {
        let Self {
            tree,
            merged,
            layers,
            mut waste,
            eff,
            inefficient,
            ..
        } = self;
        for (dir, kind) in cache_dirs(&tree) {
            for n in tree.subtree(dir) {
                if let Some(v) = merged.get(n)
                    && v.meta.kind == Kind::File
                    && v.meta.size > 0
                {
                    waste.push(Waste {
                        node: n,
                        bytes: v.meta.size,
                        layer: v.layer,
                        reason: WasteReason::Cache(kind),
                    });
                }
            }
        }
        let mut total = Tally::default();
        let mut files = Vec::new();
        for (node, v) in merged.present() {
            if v.meta.kind != Kind::Dir {
                total.files += 1;
                total.bytes += v.meta.content_size();
                files.push(FinalFile {
                    node,
                    bytes: v.meta.content_size(),
                    layer: v.layer,
                });
            }
        }
        let (min, all) = eff
            .iter()
            .filter(|e| e.count > 0)
            .fold((0u64, 0u64), |(m, a), e| (m + e.min, a + e.cumulative));
        #[allow(clippy::cast_precision_loss)]
        let efficiency = if all == 0 {
            1.0
        } else {
            min as f64 / all as f64
        };
        let mut inefficiencies: Vec<Inefficiency> = inefficient
            .into_iter()
            .map(|n| Inefficiency {
                node: n,
                count: eff[n as usize].count,
                bytes: eff[n as usize].cumulative,
            })
            .collect();
        inefficiencies.sort_by(|a, b| {
            b.bytes
                .cmp(&a.bytes)
                .then_with(|| tree.path(a.node).cmp(&tree.path(b.node)))
        });
        let size_bytes: u64 = layers.iter().map(|l| l.dive_size).sum();
        let user_size_bytes: u64 = layers.iter().skip(1).map(|l| l.dive_size).sum();
        let wasted_bytes = inefficiencies.iter().map(|i| i.bytes).sum();
        #[allow(clippy::cast_precision_loss)]
        let wasted_user_percent = if user_size_bytes == 0 {
            0.0
        } else {
            wasted_bytes as f64 / user_size_bytes as f64
        };
        Analysis {
            tree,
            layers,
            waste,
            dive: DiveMetrics {
                efficiency,
                size_bytes,
                user_size_bytes,
                wasted_bytes,
                wasted_user_percent,
                inefficiencies,
            },
            total,
            files,
        }
    }
}
