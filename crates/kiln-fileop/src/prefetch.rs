//! Reading a source tree's directories ahead of the planner, on a thread of its own.
//!
//! Planning a COPY of a large directory is mostly `getdents` and one `lstat` per entry, and
//! the planner's own work (entries, owners, leaves) waits on each. A [`Prefetch`] walks the
//! same tree in the same order (depth first, names sorted by bytes, what
//! [`SourceRoot::read_dir`] gives) on a second core and keeps each directory's listing until
//! the planner asks for it. Results are exactly what the planner would have read itself, a
//! moment earlier; an error is kept and handed over when that directory is asked for. The
//! reader never follows symlinks and reads every directory below the start, including those
//! an `--exclude` will skip (a little wasted work on the other core, never a wrong answer).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

use crate::error::FileOpError;
use crate::view::{Kind, Listing, SourceRoot};

/// Listings read ahead for one source tree.
pub(crate) struct Prefetch<'r> {
    root: &'r SourceRoot,
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Default)]
struct State {
    /// Directories still to read, the next on top.
    stack: Vec<PathBuf>,
    /// Directories on the stack or being read: asking for one waits for it.
    scheduled: HashSet<PathBuf>,
    /// Listings read and not yet asked for.
    done: HashMap<PathBuf, Result<Listing, FileOpError>>,
    stop: bool,
}

impl<'r> Prefetch<'r> {
    /// A prefetch of the tree at `start` (a directory of `root`); [`Self::run`] reads it.
    pub(crate) fn new(root: &'r SourceRoot, start: PathBuf) -> Self {
        let state = State {
            stack: vec![start.clone()],
            scheduled: HashSet::from([start]),
            ..State::default()
        };
        Self {
            root,
            state: Mutex::new(state),
            changed: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Reads directories until the tree is done or [`Self::stop`] is called.
    pub(crate) fn run(&self) {
        /// However `run` ends (a panic too), nothing waits for it any more.
        struct Stop<'p, 'r>(&'p Prefetch<'r>);
        impl Drop for Stop<'_, '_> {
            fn drop(&mut self) {
                self.0.stop();
            }
        }
        let _stop = Stop(self);
        while self.read_next() {}
    }

    /// Reads the next directory; `false` when none is left or the reader is stopped.
    fn read_next(&self) -> bool {
        let Some(dir) = ({
            let mut state = self.lock();
            if state.stop { None } else { state.stack.pop() }
        }) else {
            return false;
        };
        let listing = self.root.read_dir(&dir);
        let mut state = self.lock();
        if !state.scheduled.remove(&dir) {
            // Skipped while it was being read: neither it nor anything below is wanted.
            return true;
        }
        if let Ok(entries) = &listing {
            // Pushed last-first, so the first name is read next: the planner's order.
            for (name, stat) in entries.iter().rev() {
                if stat.as_ref().is_some_and(|s| s.kind == Kind::Dir) {
                    let child = dir.join(name);
                    state.scheduled.insert(child.clone());
                    state.stack.push(child);
                }
            }
        }
        state.done.insert(dir, listing);
        drop(state);
        self.changed.notify_all();
        true
    }

    /// The listing of `dir`: waits for it while it is scheduled, and is `None` when the reader
    /// will never read it (outside the tree, already handed over, or stopped before it).
    pub(crate) fn take(&self, dir: &Path) -> Option<Result<Listing, FileOpError>> {
        let mut state = self.lock();
        loop {
            if let Some(listing) = state.done.remove(dir) {
                return Some(listing);
            }
            if state.stop || !state.scheduled.contains(dir) {
                return None;
            }
            state = self
                .changed
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// The planner will not ask for `dir` or anything below it (an `--exclude`d tree): the
    /// reader drops what it has of it and does not go on reading it.
    pub(crate) fn skip(&self, dir: &Path) {
        let mut state = self.lock();
        if !state.scheduled.contains(dir) && !state.done.contains_key(dir) {
            // Never read, or already handed over: nothing below it can be pending.
            return;
        }
        state.stack.retain(|d| !d.starts_with(dir));
        state.scheduled.retain(|d| !d.starts_with(dir));
        state.done.retain(|d, _| !d.starts_with(dir));
    }

    /// Makes [`Self::run`] return after the directory it is reading.
    pub(crate) fn stop(&self) {
        self.lock().stop = true;
        self.changed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn listings_are_what_read_dir_gives_and_are_handed_over_once() {
        let t = tempfile::tempdir().unwrap();
        for d in ["a/b", "a/c", "z"] {
            fs::create_dir_all(t.path().join("src").join(d)).unwrap();
        }
        fs::write(t.path().join("src/a/b/f"), "x").unwrap();
        std::os::unix::fs::symlink("a", t.path().join("src/link")).unwrap();
        let root = SourceRoot::rootfs(t.path(), "test");
        let prefetch = Prefetch::new(&root, PathBuf::from("src"));
        std::thread::scope(|s| {
            s.spawn(|| prefetch.run());
            for dir in ["src", "src/a", "src/a/b", "src/a/c", "src/z"] {
                let got = prefetch.take(Path::new(dir)).expect("scheduled").unwrap();
                assert_eq!(got, root.read_dir(Path::new(dir)).unwrap(), "{dir}");
            }
        });
        // Handed over once; never past a symlink; nothing outside the tree.
        for dir in ["src/a", "src/link", "other"] {
            assert!(prefetch.take(Path::new(dir)).is_none(), "{dir}");
        }
    }

    #[test]
    fn a_skipped_tree_is_not_read_and_not_waited_for() {
        let t = tempfile::tempdir().unwrap();
        for d in ["src/a/deep/er", "src/b"] {
            fs::create_dir_all(t.path().join(d)).unwrap();
        }
        let root = SourceRoot::rootfs(t.path(), "test");
        let prefetch = Prefetch::new(&root, PathBuf::from("src"));
        // Read by hand up to `src/a`, as if the reader had just got there.
        assert!(prefetch.read_next() && prefetch.read_next());
        prefetch.skip(Path::new("src/a"));
        prefetch.run();
        assert!(prefetch.take(Path::new("src")).is_some());
        for gone in ["src/a", "src/a/deep", "src/a/deep/er"] {
            assert!(prefetch.take(Path::new(gone)).is_none(), "{gone}");
        }
        assert!(prefetch.take(Path::new("src/b")).is_some());
    }

    #[test]
    fn a_stopped_prefetch_answers_nothing() {
        let t = tempfile::tempdir().unwrap();
        fs::create_dir_all(t.path().join("d/e")).unwrap();
        let root = SourceRoot::rootfs(t.path(), "test");
        let prefetch = Prefetch::new(&root, PathBuf::from("d"));
        prefetch.stop();
        prefetch.run();
        assert!(prefetch.take(Path::new("d")).is_none());
    }
}
