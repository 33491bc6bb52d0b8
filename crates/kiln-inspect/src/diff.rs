//! The difference between two images' final filesystems, path by path: what one has and
//! the other lacks, and for paths both have, which of type, content, mode, owner, link
//! target and mtime differ. Content is compared by SHA-256, computed while the layers stream.

use crate::analysis::ChangeKind;
use crate::merge::{Merged, prepare};
use crate::tree::{NodeId, PathTree};
use crate::walk::{Kind, LayerEntry, Meta};

/// Which image a layer belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The first image (the old one).
    Old,
    /// The second image (the new one).
    New,
    /// Both: a layer the images share at the same place in their stacks.
    Both,
}

/// What differs about a path both images have.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Aspects(u8);

impl Aspects {
    /// File, directory, symlink ... changed.
    pub const TYPE: Self = Self(1);
    /// A regular file's bytes.
    pub const CONTENT: Self = Self(2);
    /// The permission bits.
    pub const MODE: Self = Self(4);
    /// The numeric owner or group.
    pub const OWNER: Self = Self(8);
    /// A symlink's target or a hard link's source.
    pub const LINK: Self = Self(16);
    /// The modification time (the usual cause of a build that does not reproduce).
    pub const MTIME: Self = Self(32);

    const NAMES: [(Self, &'static str); 6] = [
        (Self::TYPE, "type"),
        (Self::CONTENT, "content"),
        (Self::MODE, "mode"),
        (Self::OWNER, "owner"),
        (Self::LINK, "link"),
        (Self::MTIME, "mtime"),
    ];

    /// Whether every aspect of `other` is in `self`.
    pub fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether nothing differs.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The names of the aspects (`content`, `mode` ...), in a fixed order.
    pub fn names(self) -> Vec<&'static str> {
        Self::NAMES
            .iter()
            .filter(|(a, _)| self.contains(*a))
            .map(|(_, n)| *n)
            .collect()
    }

    fn insert(&mut self, other: Self) {
        self.0 |= other.0;
    }
}

/// One path that differs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiffEntry {
    /// The path.
    pub node: NodeId,
    /// Added (only the new image has it), removed (only the old), or changed.
    pub change: ChangeKind,
    /// For a change, what differs.
    pub aspects: Aspects,
    /// The old image's version.
    pub old: Option<Meta>,
    /// The new image's version.
    pub new: Option<Meta>,
}

/// The difference between two images.
#[derive(Debug)]
pub struct ImageDiff {
    /// Every path of either image.
    pub tree: PathTree,
    /// The paths that differ, sorted by path.
    pub entries: Vec<DiffEntry>,
}

/// Builds an [`ImageDiff`] from the layers of both images, bottom first.
#[derive(Debug, Default)]
pub struct Differ {
    tree: PathTree,
    old: Merged,
    new: Merged,
    layers: (usize, usize),
    seen: Vec<u32>,
}

impl Differ {
    /// A differ with no layers yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the next layer of `side` from its entries (hashed: [`crate::Walk::hash`]).
    pub fn add_entries(&mut self, side: Side, entries: Vec<LayerEntry>) {
        let prepared = prepare(&mut self.tree, entries, &mut self.seen);
        let mut ignore = |_: crate::merge::Event<'_>| {};
        if side != Side::New {
            self.old
                .apply(&self.tree, self.layers.0, prepared.clone(), &mut ignore);
            self.layers.0 += 1;
        }
        if side != Side::Old {
            self.new
                .apply(&self.tree, self.layers.1, prepared, &mut ignore);
            self.layers.1 += 1;
        }
    }

    /// Compares the two final filesystems.
    pub fn finish(self) -> ImageDiff {
        let mut entries = Vec::new();
        for i in 1..self.tree.len() {
            let node = u32::try_from(i).unwrap_or(u32::MAX);
            let old = self.old.get(node).map(|v| &v.meta);
            let new = self.new.get(node).map(|v| &v.meta);
            let (change, aspects) = match (old, new) {
                (None, None) => continue,
                (None, Some(_)) => (ChangeKind::Added, Aspects::default()),
                (Some(_), None) => (ChangeKind::Removed, Aspects::default()),
                (Some(o), Some(n)) => {
                    let a = compare(o, n);
                    if a.is_empty() {
                        continue;
                    }
                    (ChangeKind::Changed, a)
                }
            };
            entries.push(DiffEntry {
                node,
                change,
                aspects,
                old: old.cloned(),
                new: new.cloned(),
            });
        }
        let tree = self.tree;
        let mut keyed: Vec<(String, DiffEntry)> = entries
            .into_iter()
            .map(|e| (tree.path(e.node), e))
            .collect();
        keyed.sort_by(|a, b| a.0.cmp(&b.0));
        ImageDiff {
            entries: keyed.into_iter().map(|(_, e)| e).collect(),
            tree,
        }
    }
}

fn compare(o: &Meta, n: &Meta) -> Aspects {
    let mut a = Aspects::default();
    if o.kind != n.kind {
        a.insert(Aspects::TYPE);
    } else if o.kind == Kind::File && (o.size != n.size || o.digest != n.digest) {
        a.insert(Aspects::CONTENT);
    }
    if o.link != n.link && o.kind == n.kind {
        a.insert(Aspects::LINK);
    }
    if o.mode != n.mode {
        a.insert(Aspects::MODE);
    }
    if o.uid != n.uid || o.gid != n.gid {
        a.insert(Aspects::OWNER);
    }
    if o.mtime != n.mtime {
        a.insert(Aspects::MTIME);
    }
    a
}
