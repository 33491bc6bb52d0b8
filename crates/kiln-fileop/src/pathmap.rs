//! A map keyed by relative paths, iterated in path-component order (every directory right
//! before what it holds), with lookups that cost one hash of the path's bytes.
//!
//! A large COPY plans tens of thousands of entries and looks each up several times, so
//! lookups must not allocate or compare paths component by component (an earlier
//! `BTreeMap<PathBuf, _>` did both, and dominated planning). Entries live in insertion order
//! behind a hash index of their bytes; the ordered view is sorted when first asked for after a
//! change. A tree walk inserts in nearly that order already, and the sort (a stable, run-aware
//! merge sort) is then close to linear. Paths are compared as bytes: the planner only makes
//! clean paths, where byte equality is path equality.

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

type Hasher = foldhash::fast::RandomState;

fn bytes(path: &Path) -> &[u8] {
    path.as_os_str().as_bytes()
}

/// Component order on path bytes: byte order with `/` below every other byte.
fn component_cmp(a: &[u8], b: &[u8]) -> Ordering {
    match a.iter().zip(b).position(|(x, y)| x != y) {
        Some(i) => {
            let rank = |c: u8| if c == b'/' { 0 } else { u16::from(c) + 1 };
            rank(a[i]).cmp(&rank(b[i]))
        }
        None => a.len().cmp(&b.len()),
    }
}

/// A map from relative paths to `V`, iterated in component order.
#[derive(Debug, Clone)]
pub(crate) struct PathMap<V> {
    /// Entries in insertion order; `None` where one was removed.
    slots: Vec<Option<(PathBuf, V)>>,
    index: HashMap<Box<[u8]>, usize, Hasher>,
    /// Every proper ancestor of every path ever inserted: where [`Self::remove_below`] has
    /// anything to do.
    prefixes: HashSet<Box<[u8]>, Hasher>,
    /// Slot numbers in component order, made on demand.
    order: OnceLock<Vec<usize>>,
}

impl<V> Default for PathMap<V> {
    fn default() -> Self {
        Self {
            slots: Vec::new(),
            index: HashMap::default(),
            prefixes: HashSet::default(),
            order: OnceLock::new(),
        }
    }
}

impl<V> PathMap<V> {
    pub(crate) fn get(&self, path: impl AsRef<Path>) -> Option<&V> {
        let slot = *self.index.get(bytes(path.as_ref()))?;
        self.slots[slot].as_ref().map(|(_, v)| v)
    }

    pub(crate) fn get_mut(&mut self, path: impl AsRef<Path>) -> Option<&mut V> {
        let slot = *self.index.get(bytes(path.as_ref()))?;
        self.slots[slot].as_mut().map(|(_, v)| v)
    }

    pub(crate) fn contains_key(&self, path: impl AsRef<Path>) -> bool {
        self.index.contains_key(bytes(path.as_ref()))
    }

    /// Puts `value` at `path` (replacing what was there) and returns it in place.
    pub(crate) fn insert(&mut self, path: PathBuf, value: V) -> &mut V {
        if let Some(&slot) = self.index.get(bytes(&path)) {
            return &mut self.slots[slot].insert((path, value)).1;
        }
        for ancestor in path.ancestors().skip(1) {
            if ancestor.as_os_str().is_empty() || !self.prefixes.insert(bytes(ancestor).into()) {
                break;
            }
        }
        self.index.insert(bytes(&path).into(), self.slots.len());
        self.order.take();
        &mut self
            .slots
            .push_mut(Some((path, value)))
            .as_mut()
            .expect("just pushed")
            .1
    }

    pub(crate) fn remove(&mut self, path: impl AsRef<Path>) -> Option<V> {
        let slot = self.index.remove(bytes(path.as_ref()))?;
        self.order.take();
        self.slots[slot].take().map(|(_, v)| v)
    }

    /// Removes every entry strictly below `path`.
    pub(crate) fn remove_below(&mut self, path: &Path) {
        if !self.prefixes.contains(bytes(path)) {
            return;
        }
        let doomed: Vec<PathBuf> = self
            .slots
            .iter()
            .flatten()
            .filter(|(p, _)| p != path && p.starts_with(path))
            .map(|(p, _)| p.clone())
            .collect();
        for p in doomed {
            self.remove(&p);
        }
    }

    fn order(&self) -> &[usize] {
        self.order.get_or_init(|| {
            let mut order: Vec<usize> = self.index.values().copied().collect();
            // Insertion order first, so that the sort finds the runs a walk made.
            order.sort_unstable();
            order.sort_by(|&a, &b| component_cmp(self.key(a), self.key(b)));
            order
        })
    }

    fn key(&self, slot: usize) -> &[u8] {
        bytes(&self.slots[slot].as_ref().expect("indexed slots are full").0)
    }

    pub(crate) fn keys(&self) -> impl Iterator<Item = &PathBuf> {
        self.order()
            .iter()
            .filter_map(|&s| self.slots[s].as_ref().map(|(p, _)| p))
    }

    pub(crate) fn values(&self) -> impl Iterator<Item = &V> {
        self.order()
            .iter()
            .filter_map(|&s| self.slots[s].as_ref().map(|(_, v)| v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn component_order() {
        let mut m = PathMap::default();
        for p in ["a.b", "a/b/c", "a", "a/b", "ab", "a-b/x"] {
            m.insert(PathBuf::from(p), ());
        }
        let order: Vec<_> = m.keys().map(|p| p.to_str().unwrap()).collect();
        let mut expected = vec!["a.b", "a/b/c", "a", "a/b", "ab", "a-b/x"];
        expected.sort_by(|x, y| Path::new(x).cmp(Path::new(y)));
        assert_eq!(order, expected, "the same order as comparing `Path`s");
        assert!(m.contains_key("a/b") && !m.contains_key("a/c"));
    }

    #[test]
    fn remove_below_keeps_the_path_and_its_neighbours() {
        let mut m = PathMap::default();
        for p in ["a", "a/b", "a/b/c", "a/bc", "a.b", "ab/c"] {
            m.insert(PathBuf::from(p), p.len());
        }
        m.remove_below(Path::new("a"));
        let left: Vec<_> = m.keys().map(|p| p.to_str().unwrap()).collect();
        assert_eq!(left, ["a", "a.b", "ab/c"]);
        // Removed paths can come back, in order.
        m.insert(PathBuf::from("a/b"), 9);
        m.insert(PathBuf::from("a/b"), 3);
        let all: Vec<_> = m
            .keys()
            .map(|p| p.to_str().unwrap())
            .zip(m.values().copied())
            .collect();
        assert_eq!(all, [("a", 1), ("a/b", 3), ("a.b", 3), ("ab/c", 4)]);
    }
}
