//! A map keyed by relative paths, in path-component order (every directory right before what
//! it holds), with cheap comparisons.
//!
//! `BTreeMap<PathBuf, _>` compares keys component by component, re-parsing both paths at every
//! comparison; with tens of thousands of entries that dominated planning a large COPY. Here the
//! key is the path's bytes with `/` stored as NUL (which a path cannot contain): plain byte
//! order on that is exactly component order, so comparisons are `memcmp`.

use std::collections::BTreeMap;
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};

/// The ordering key of `path`.
fn key(path: &Path) -> Vec<u8> {
    path.as_os_str()
        .as_bytes()
        .iter()
        .map(|&b| if b == b'/' { 0 } else { b })
        .collect()
}

/// A map from relative paths to `V`, iterated in component order.
#[derive(Debug, Clone)]
pub(crate) struct PathMap<V> {
    inner: BTreeMap<Vec<u8>, (PathBuf, V)>,
}

impl<V> Default for PathMap<V> {
    fn default() -> Self {
        Self {
            inner: BTreeMap::new(),
        }
    }
}

impl<V> PathMap<V> {
    pub(crate) fn get(&self, path: impl AsRef<Path>) -> Option<&V> {
        self.inner.get(&key(path.as_ref())).map(|(_, v)| v)
    }

    pub(crate) fn get_mut(&mut self, path: impl AsRef<Path>) -> Option<&mut V> {
        self.inner.get_mut(&key(path.as_ref())).map(|(_, v)| v)
    }

    pub(crate) fn contains_key(&self, path: impl AsRef<Path>) -> bool {
        self.inner.contains_key(&key(path.as_ref()))
    }

    pub(crate) fn insert(&mut self, path: PathBuf, value: V) -> Option<V> {
        self.inner.insert(key(&path), (path, value)).map(|(_, v)| v)
    }

    pub(crate) fn remove(&mut self, path: impl AsRef<Path>) -> Option<V> {
        self.inner.remove(&key(path.as_ref())).map(|(_, v)| v)
    }

    pub(crate) fn keys(&self) -> impl Iterator<Item = &PathBuf> {
        self.inner.values().map(|(p, _)| p)
    }

    pub(crate) fn values(&self) -> impl Iterator<Item = &V> {
        self.inner.values().map(|(_, v)| v)
    }

    /// Entries from `path` on (inclusive), in order.
    pub(crate) fn range_from(&self, path: &Path) -> impl Iterator<Item = (&PathBuf, &V)> {
        self.inner.range(key(path)..).map(|(_, (p, v))| (p, v))
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
}
