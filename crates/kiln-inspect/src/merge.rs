//! The merged filesystem of a stack of layers, as a container sees it, applied one layer at a
//! time with OCI's rules: a layer's whiteouts and opaque directories delete from the layers
//! below it; its entries then replace what is there (the last entry of a path wins; a
//! non-directory replacing a directory hides the directory's contents); missing parents
//! appear as `0:0 0755` directories.

use crate::tree::{NodeId, PathTree};
use crate::walk::{Kind, LayerEntry, Meta, Op};

/// One path's version in the merged filesystem.
#[derive(Clone, Debug)]
pub(crate) struct Version {
    /// The layer (index, bottom first) whose entry this is.
    pub layer: usize,
    /// Its metadata.
    pub meta: Meta,
    /// A parent directory no entry wrote (made so the path's children have one).
    pub implicit: bool,
}

/// What applying a layer did, path by path, for whoever keeps statistics.
pub(crate) enum Event<'a> {
    /// `old` left the filesystem: deleted (a whiteout, an opaque directory) or hidden by a
    /// path of another type. `root` is the whiteout or replaced path the removal comes from.
    Removed {
        node: NodeId,
        old: &'a Version,
        root: NodeId,
        whiteout: bool,
    },
    /// The layer wrote `node` over `old` (if there was one).
    Written {
        node: NodeId,
        old: Option<&'a Version>,
        new: &'a Meta,
    },
}

/// The merged filesystem: the current version of each node of a [`PathTree`].
#[derive(Debug, Default)]
pub(crate) struct Merged {
    top: Vec<Option<Version>>,
}

/// A layer's entries interned and de-duplicated: deletions, then writes in tar order.
#[derive(Clone)]
pub(crate) struct Prepared {
    pub deletions: Vec<(NodeId, Op)>,
    pub writes: Vec<(NodeId, Meta)>,
}

/// Interns `entries` into `tree` and keeps the last entry of each path (Docker and
/// containerd apply entries in order, so the last one is what stays). `seen` is scratch
/// space, one slot per node.
pub(crate) fn prepare(
    tree: &mut PathTree,
    entries: Vec<LayerEntry>,
    seen: &mut Vec<u32>,
) -> Prepared {
    let mut interned: Vec<(NodeId, Op)> = Vec::with_capacity(entries.len());
    for e in entries {
        let node = tree.intern(&e.path);
        interned.push((node, e.op));
    }
    seen.resize(tree.len(), u32::MAX);
    let mut deletions = Vec::new();
    let mut writes = Vec::new();
    // Walk backwards so the last write of a path is the one kept; whiteouts and opaque
    // markers are kept whatever else the layer does there.
    for (i, (node, op)) in interned.into_iter().enumerate().rev() {
        match op {
            Op::Write(meta) => {
                if seen[node as usize] == u32::MAX {
                    seen[node as usize] = u32::try_from(i).unwrap_or(0);
                    writes.push((node, meta));
                }
            }
            op => deletions.push((node, op)),
        }
    }
    for (node, _) in &writes {
        seen[*node as usize] = u32::MAX;
    }
    writes.reverse();
    deletions.reverse();
    Prepared { deletions, writes }
}

impl Merged {
    /// The current version of `node`.
    pub(crate) fn get(&self, node: NodeId) -> Option<&Version> {
        self.top.get(node as usize).and_then(Option::as_ref)
    }

    /// Every present node with its version, in node order.
    pub(crate) fn present(&self) -> impl Iterator<Item = (NodeId, &Version)> {
        self.top
            .iter()
            .enumerate()
            .filter_map(|(i, v)| Some((u32::try_from(i).ok()?, v.as_ref()?)))
    }

    /// The sum of the regular-file sizes present at and under `node`.
    pub(crate) fn subtree_size(&self, tree: &PathTree, node: NodeId) -> u64 {
        tree.subtree(node)
            .into_iter()
            .filter_map(|n| self.get(n))
            .map(|v| v.meta.size)
            .sum()
    }

    fn remove_subtree(
        &mut self,
        tree: &PathTree,
        root: NodeId,
        include_root: bool,
        whiteout: bool,
        on: &mut impl FnMut(Event<'_>),
    ) {
        for n in tree.subtree(root) {
            if n == root && !include_root {
                continue;
            }
            if let Some(old) = self.top.get_mut(n as usize).and_then(Option::take) {
                on(Event::Removed {
                    node: n,
                    old: &old,
                    root,
                    whiteout,
                });
            }
        }
    }

    /// Applies layer `layer`'s prepared entries, reporting each change to `on`.
    pub(crate) fn apply(
        &mut self,
        tree: &PathTree,
        layer: usize,
        prepared: Prepared,
        on: &mut impl FnMut(Event<'_>),
    ) {
        self.top.resize(tree.len(), None);
        for (node, op) in &prepared.deletions {
            match op {
                Op::Whiteout => self.remove_subtree(tree, *node, true, true, on),
                Op::Opaque => {
                    // Each child goes with what is under it, so a removal is reported at
                    // the path that went (`/tmp/junk`), not at the directory that stays.
                    for child in tree.children(*node).collect::<Vec<_>>() {
                        self.remove_subtree(tree, child, true, true, on);
                    }
                }
                Op::Write(_) => {}
            }
        }
        for (node, meta) in prepared.writes {
            // Parents: present directories, made so when missing or of another type.
            let mut missing = Vec::new();
            let mut p = tree.parent(node);
            while let Some(n) = p {
                match self.get(n) {
                    Some(v) if v.meta.kind == Kind::Dir => break,
                    Some(_) => {
                        self.remove_subtree(tree, n, true, false, on);
                        missing.push(n);
                    }
                    None if n == crate::tree::ROOT => break,
                    None => missing.push(n),
                }
                p = tree.parent(n);
            }
            for n in missing {
                self.top[n as usize] = Some(Version {
                    layer,
                    meta: Meta {
                        kind: Kind::Dir,
                        size: 0,
                        mode: 0o755,
                        uid: 0,
                        gid: 0,
                        mtime: 0,
                        link: None,
                        digest: None,
                    },
                    implicit: true,
                });
            }
            let replaces_dir = self
                .get(node)
                .is_some_and(|v| v.meta.kind == Kind::Dir && meta.kind != Kind::Dir);
            if replaces_dir {
                self.remove_subtree(tree, node, false, false, on);
            }
            let old = self.top[node as usize].take();
            on(Event::Written {
                node,
                old: old.as_ref(),
                new: &meta,
            });
            self.top[node as usize] = Some(Version {
                layer,
                meta,
                implicit: false,
            });
        }
    }
}
