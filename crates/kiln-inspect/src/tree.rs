//! Compact path interning: every path of every layer becomes a `u32` node of one tree.
//!
//! A component name (`usr`, `__init__.py`) is stored once however many directories hold it,
//! and a node is four `u32`s (parent, name, first child, next sibling), so a 50,000-file
//! image costs about a megabyte here. Paths are byte strings, as tar stores them; they are
//! shown lossily as UTF-8 only when rendered.

use foldhash::HashMap;

/// A node of a [`PathTree`]: one path, with or without an entry in any layer.
pub type NodeId = u32;

/// The root (`/`), always node 0.
pub const ROOT: NodeId = 0;

const NONE: u32 = u32::MAX;

#[derive(Clone, Copy, Debug)]
struct Node {
    parent: u32,
    name: u32,
    first_child: u32,
    next_sibling: u32,
}

/// Interned paths. Invariant: node 0 is the root, a node's parent is created before it.
#[derive(Debug)]
pub struct PathTree {
    nodes: Vec<Node>,
    names: Vec<Box<[u8]>>,
    name_ids: HashMap<Box<[u8]>, u32>,
    children: HashMap<(u32, u32), u32>,
}

impl Default for PathTree {
    fn default() -> Self {
        Self::new()
    }
}

impl PathTree {
    /// A tree holding only the root.
    pub fn new() -> Self {
        Self {
            nodes: vec![Node {
                parent: NONE,
                name: NONE,
                first_child: NONE,
                next_sibling: NONE,
            }],
            names: Vec::new(),
            name_ids: HashMap::default(),
            children: HashMap::default(),
        }
    }

    /// How many nodes (paths) the tree holds, the root included.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the tree holds only the root.
    pub fn is_empty(&self) -> bool {
        self.nodes.len() == 1
    }

    /// The node of `path` (relative or absolute, `/`-separated; empty and `.` components are
    /// skipped), created with its missing ancestors.
    ///
    /// # Panics
    /// When the tree would hold more than `u32::MAX - 1` nodes or names.
    pub fn intern(&mut self, path: &[u8]) -> NodeId {
        let mut node = ROOT;
        for comp in path.split(|&b| b == b'/') {
            if comp.is_empty() || comp == b"." {
                continue;
            }
            let name = if let Some(&id) = self.name_ids.get(comp) {
                id
            } else {
                let id = u32::try_from(self.names.len()).expect("fewer than 2^32 names");
                self.names.push(comp.into());
                self.name_ids.insert(comp.into(), id);
                id
            };
            node = if let Some(&child) = self.children.get(&(node, name)) {
                child
            } else {
                let child = u32::try_from(self.nodes.len()).expect("fewer than 2^32 paths");
                let parent = &mut self.nodes[node as usize];
                let next_sibling = parent.first_child;
                parent.first_child = child;
                self.nodes.push(Node {
                    parent: node,
                    name,
                    first_child: NONE,
                    next_sibling,
                });
                self.children.insert((node, name), child);
                child
            };
        }
        node
    }

    /// The node of `path` if the tree has it (never creates one).
    pub fn lookup(&self, path: &[u8]) -> Option<NodeId> {
        let mut node = ROOT;
        for comp in path.split(|&b| b == b'/') {
            if comp.is_empty() || comp == b"." {
                continue;
            }
            let name = *self.name_ids.get(comp)?;
            node = *self.children.get(&(node, name))?;
        }
        Some(node)
    }

    /// The parent of `node`; `None` for the root.
    pub fn parent(&self, node: NodeId) -> Option<NodeId> {
        let p = self.nodes[node as usize].parent;
        (p != NONE).then_some(p)
    }

    /// The last component of `node`'s path (empty for the root).
    pub fn name(&self, node: NodeId) -> &[u8] {
        match self.nodes[node as usize].name {
            NONE => b"",
            n => &self.names[n as usize],
        }
    }

    /// The children of `node`, newest first.
    pub fn children(&self, node: NodeId) -> Children<'_> {
        Children {
            tree: self,
            next: self.nodes[node as usize].first_child,
        }
    }

    /// `node` and everything below it, depth first (`node` first).
    pub fn subtree(&self, node: NodeId) -> Vec<NodeId> {
        let mut out = Vec::new();
        let mut stack = vec![node];
        while let Some(n) = stack.pop() {
            out.push(n);
            stack.extend(self.children(n));
        }
        out
    }

    /// `node`'s path, absolute (`/usr/bin/env`), shown lossily as UTF-8.
    pub fn path(&self, node: NodeId) -> String {
        let mut parts = Vec::new();
        let mut n = node;
        while let Some(p) = self.parent(n) {
            parts.push(self.name(n));
            n = p;
        }
        if parts.is_empty() {
            return "/".to_owned();
        }
        let mut s = String::new();
        for part in parts.iter().rev() {
            s.push('/');
            s.push_str(&String::from_utf8_lossy(part));
        }
        s
    }

    /// Whether `ancestor` is `node` or above it.
    pub fn is_within(&self, node: NodeId, ancestor: NodeId) -> bool {
        let mut n = node;
        loop {
            if n == ancestor {
                return true;
            }
            match self.parent(n) {
                Some(p) => n = p,
                None => return false,
            }
        }
    }
}

/// The children of a node ([`PathTree::children`]).
#[derive(Debug)]
pub struct Children<'a> {
    tree: &'a PathTree,
    next: u32,
}

impl Iterator for Children<'_> {
    type Item = NodeId;

    fn next(&mut self) -> Option<NodeId> {
        if self.next == NONE {
            return None;
        }
        let n = self.next;
        self.next = self.tree.nodes[n as usize].next_sibling;
        Some(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interns_each_path_and_name_once() {
        let mut t = PathTree::new();
        let a = t.intern(b"./usr/bin/env");
        let b = t.intern(b"/usr/bin/env");
        let c = t.intern(b"usr/bin/");
        assert_eq!(a, b);
        assert_eq!(t.parent(a), Some(c));
        assert_eq!(t.path(a), "/usr/bin/env");
        assert_eq!(t.path(ROOT), "/");
        t.intern(b"bin/env");
        assert_eq!(t.names.len(), 3, "`env` is stored once");
        assert_eq!(t.lookup(b"usr/bin"), Some(c));
        assert_eq!(t.lookup(b"usr/lib"), None);
        assert_eq!(t.subtree(t.lookup(b"usr").unwrap()).len(), 3);
        assert!(t.is_within(a, c));
        assert!(!t.is_within(c, a));
    }
}
