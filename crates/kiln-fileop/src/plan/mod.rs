//! Turning a [`CopyOp`] into the entries of its layer, as BuildKit's `FileOp` copy
//! (`solver/llbsolver/file` over fsutil's `copy.Copy`) would leave them on disk.
//!
//! The plan is an ordered map from layer path to entry. It overlays the parent's filesystem
//! ([`LowerView`]) so that each source sees what earlier sources of the same instruction
//! wrote, as BuildKit's sequential copies do. No file content is read here (only archives
//! being extracted and downloads): content streams from the sources when the layer is written.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use kiln_context::PatternMatcher;
use kiln_layer::{Entry, EntryKind};

use crate::error::FileOpError;
use crate::gopath;
use crate::merkle::Leaf;
use crate::op::{CopyOp, Inputs, OpKind, Source};
use crate::prefetch::Prefetch;
use crate::view::{
    EmptyView, Kind, Listing, LowerView, SourceRoot, Stat, normal_components, resolve,
};
use crate::wildcard;

mod copy;

/// Where a planned file's bytes come from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Data {
    /// No content (directories, links, devices, sockets copied as empty files).
    None,
    /// A file of the source root, by its resolved relative path.
    Source(PathBuf),
    /// A host file kiln wrote (a download, an extracted archive member).
    Scratch(PathBuf),
    /// Bytes in memory (a heredoc).
    Bytes(Arc<[u8]>),
}

/// Why an entry is in the layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Copied (or extracted, or downloaded) from a source.
    Copied,
    /// A missing destination directory kiln created.
    Created,
    /// An existing directory of the parent, written again with its own metadata (or with
    /// the changes BuildKit makes to it) because something below it changed.
    Parent,
}

/// One entry of the planned layer.
#[derive(Debug, Clone)]
pub(crate) struct Planned {
    pub(crate) entry: Entry,
    pub(crate) data: Data,
    /// Entries sharing a group are one file with several names (hard links).
    pub(crate) link_group: Option<usize>,
    pub(crate) origin: Origin,
    /// A directory this plan creates where the parent has nothing: nothing below it can
    /// exist in the parent, so lookups there need not touch the filesystem.
    pub(crate) fresh: bool,
}

pub(crate) struct Planner<'a> {
    pub(crate) op: &'a CopyOp,
    pub(crate) inputs: Inputs<'a>,
    /// The destination view: the parent, or nothing under `--link`.
    lower: &'a dyn LowerView,
    pub(crate) owner: Option<(u64, u64)>,
    pub(crate) entries: crate::pathmap::PathMap<Planned>,
    pub(crate) leaves: Vec<Leaf>,
    pub(crate) link_groups: usize,
    /// fsutil keeps one inode map per copied source: hard links are kept within it.
    inodes: HashMap<(u64, u64), usize>,
    include: Option<PatternMatcher>,
    exclude: Option<PatternMatcher>,
    pending: Vec<Pending>,
    pub(crate) scratch: Option<tempfile::TempDir>,
    source_index: u32,
    /// The tree being copied, read ahead on another thread.
    prefetch: Option<Arc<Prefetch<'a>>>,
}

/// A directory whose creation waits until something inside it is included (fsutil's
/// `parentDirs`).
struct Pending {
    dst: PathBuf,
    stat: Stat,
    copied: bool,
}

/// A source node as the copier sees it: a tree in the source root, or a lone file made by
/// kiln (heredoc, download).
pub(crate) enum Node {
    Tree(PathBuf),
    Single {
        stat: Stat,
        data: Data,
        leaf_path: String,
    },
}

impl<'a> Planner<'a> {
    pub(crate) fn new(op: &'a CopyOp, inputs: Inputs<'a>) -> Result<Self, FileOpError> {
        let lower: &dyn LowerView = if op.effective_link() {
            &EmptyView
        } else {
            inputs.target
        };
        let owner = op
            .chown
            .as_ref()
            .map(|c| c.resolve(inputs.target))
            .transpose()?;
        let exclude = if op.exclude.is_empty() {
            None
        } else {
            Some(PatternMatcher::new(&op.exclude).map_err(FileOpError::Pattern)?)
        };
        Ok(Self {
            op,
            inputs,
            lower,
            owner,
            entries: crate::pathmap::PathMap::default(),
            leaves: Vec::new(),
            link_groups: 0,
            inodes: HashMap::new(),
            include: None,
            exclude,
            pending: Vec::new(),
            scratch: None,
            source_index: 0,
            prefetch: None,
        })
    }

    pub(crate) fn run(&mut self) -> Result<(), FileOpError> {
        let op = self.op;
        for (i, source) in op.sources.iter().enumerate() {
            self.source_index = u32::try_from(i).unwrap_or(u32::MAX);
            match source {
                Source::Path(p) => self.path_source(p)?,
                Source::Url(u) => self.url_source(u)?,
                Source::Heredoc { name, data } => {
                    let stat = file_stat(0o644, data.len() as u64, op.created_mtime);
                    let node = Node::Single {
                        stat,
                        data: Data::Bytes(Arc::from(data.as_slice())),
                        leaf_path: format!("<<{name}"),
                    };
                    self.copy_one(node, &gopath::base(name), false)?;
                }
            }
        }
        self.add_parent_entries()?;
        Ok(())
    }

    /// [`SourceRoot::read_dir`], from the prefetch when it has read the directory.
    fn list_dir(&self, rel: &Path) -> Result<Listing, FileOpError> {
        match self.prefetch.as_ref().and_then(|p| p.take(rel)) {
            Some(listing) => listing,
            None => self.source_root().read_dir(rel),
        }
    }

    /// The copy will not go into directory `rel` (excluded): the prefetch need not read it.
    fn skip_prefetch(&self, rel: &Path) {
        if let Some(p) = &self.prefetch {
            p.skip(rel);
        }
    }

    /// Runs `copy` with the directory tree at `rel` read ahead on another thread (when there
    /// is another core to read it on).
    fn with_prefetch<R>(&mut self, rel: &Path, copy: impl FnOnce(&mut Self) -> R) -> R {
        if crate::threads() < 2 {
            return copy(self);
        }
        let prefetch = Arc::new(Prefetch::new(self.source_root(), rel.to_owned()));
        std::thread::scope(|s| {
            let reader = Arc::clone(&prefetch);
            let spawned = std::thread::Builder::new()
                .name("kiln-prefetch".into())
                .spawn_scoped(s, move || reader.run());
            if spawned.is_err() {
                // No reader: the planner reads every directory itself.
                prefetch.stop();
            }
            self.prefetch = Some(Arc::clone(&prefetch));
            let result = copy(self);
            self.prefetch = None;
            prefetch.stop();
            result
        })
    }

    fn source_root(&self) -> &'a SourceRoot {
        self.inputs
            .source
            .expect("path sources need a source root (Inputs::source)")
    }

    /// The destination as fsutil receives it: absolute, cleaned, trailing `/` kept.
    pub(crate) fn dest(&self) -> String {
        let workdir = if self.op.workdir.is_empty() {
            "/"
        } else {
            &self.op.workdir
        };
        gopath::clean_keep_slash(&gopath::dest_in_workdir(&self.op.dest, workdir))
    }

    fn path_source(&mut self, src: &str) -> Result<(), FileOpError> {
        let root = self.source_root();
        let mut src = src.to_owned();
        self.include = None;
        let mut required = None;
        if self.op.parents {
            // `--parents`: copy from the pivot (or the root) and keep the path through an
            // include pattern, as dockerfile2llb does.
            let (parent, pattern) = match src.split_once("/./") {
                Some((parent, pattern)) => (parent.to_owned(), pattern.to_owned()),
                None => ("/".to_owned(), src.clone()),
            };
            let pattern = gopath::clean(&format!("/{pattern}"))
                .trim_start_matches('/')
                .to_owned();
            if !wildcard::contains_wildcards(&parent) && !wildcard::contains_wildcards(&pattern) {
                required = Some(gopath::clean(&format!("/{parent}/{pattern}")));
            }
            self.include = Some(PatternMatcher::new([&pattern]).map_err(FileOpError::Pattern)?);
            src = parent;
        }
        if let Some(req) = required {
            let rel = PathBuf::from(req.trim_start_matches('/'));
            let resolved = self.resolve_source(&rel, true)?;
            if root.lstat(&resolved)?.is_none() {
                return Err(not_found(&req, root));
            }
        }
        let cleaned = gopath::clean_keep_slash(&src);
        let (literal, pattern) = wildcard::split_wildcards(&cleaned);
        let matches: Vec<PathBuf> = if pattern.is_empty() {
            vec![literal.iter().collect()]
        } else {
            let base = self.resolve_source(&literal.iter().collect::<PathBuf>(), true)?;
            let mut out = Vec::new();
            self.glob(&base, &pattern, &mut out)?;
            if out.is_empty() {
                // BuildKit copies local sources with AllowEmptyWildcard: nothing, no error.
                return Ok(());
            }
            out
        };
        for m in matches {
            let resolved = self.resolve_source(&m, true)?;
            if root.lstat(&resolved)?.is_none() {
                return Err(not_found(
                    &gopath::clean(&format!("/{}", m.display())),
                    root,
                ));
            }
            if self.unpack_local() && self.try_unpack_source(&resolved, &m)? {
                continue;
            }
            let base = gopath::base(&format!("/{}", m.display()));
            self.copy_one(Node::Tree(resolved), &base, true)?;
        }
        Ok(())
    }

    fn unpack_local(&self) -> bool {
        matches!(self.op.kind, OpKind::Add { unpack, .. } if unpack != Some(false))
    }

    /// fsutil's `resolveWildcards`: the pattern elements matched one by one under `base`,
    /// entries in name order, never descending through symlinks or into a matched directory.
    fn glob(
        &self,
        dir: &Path,
        pattern: &[String],
        out: &mut Vec<PathBuf>,
    ) -> Result<(), FileOpError> {
        let root = self.source_root();
        let Some(stat) = root.lstat(dir)? else {
            return Ok(());
        };
        if stat.kind != Kind::Dir {
            return Ok(());
        }
        for (name, stat) in root.read_dir(dir)? {
            if !wildcard::matches(&pattern[0], &name.to_string_lossy()) {
                continue;
            }
            let path = dir.join(&name);
            if pattern.len() == 1 {
                out.push(path);
            } else if match stat {
                Some(s) => s.kind == Kind::Dir,
                None => root.lstat(&path)?.is_some_and(|s| s.kind == Kind::Dir),
            } {
                self.glob(&path, &pattern[1..], out)?;
            }
        }
        Ok(())
    }

    pub(crate) fn resolve_source(&self, rel: &Path, follow: bool) -> Result<PathBuf, FileOpError> {
        let root = self.source_root();
        resolve(rel, follow, &mut |p| root.lstat(p), &mut |p| {
            root.read_link(p)
        })
    }

    /// `lstat` in the destination: planned entries first, then the parent, with everything
    /// below a planned non-directory hidden.
    pub(crate) fn dest_lstat(&self, path: &Path) -> Result<Option<Stat>, FileOpError> {
        if path.as_os_str().is_empty() {
            // The root always exists.
            let mut root = file_stat(0o755, 0, 0);
            root.kind = Kind::Dir;
            return Ok(Some(root));
        }
        if let Some(p) = self.entries.get(path) {
            return Ok(Some(stat_of(&p.entry)));
        }
        for ancestor in path.ancestors().skip(1) {
            if let Some(p) = self.entries.get(ancestor) {
                // Below a planned non-directory, or below a directory this plan created
                // (every planned directory under that one is new too): nothing is there.
                if p.entry.kind != EntryKind::Dir || p.fresh {
                    return Ok(None);
                }
                break;
            }
        }
        self.lower.lstat(path)
    }

    pub(crate) fn resolve_dest(&self, path: &str) -> Result<PathBuf, FileOpError> {
        resolve(
            Path::new(path.trim_start_matches('/')),
            true,
            &mut |p| self.dest_lstat(p),
            &mut |p| self.dest_read_link(p),
        )
    }

    /// The target of a symlink in the destination (planned, else the parent's).
    pub(crate) fn dest_read_link(&self, path: &Path) -> Result<PathBuf, FileOpError> {
        match self.entries.get(path).map(|e| &e.entry.kind) {
            Some(EntryKind::Symlink(t)) => Ok(t.clone()),
            _ => self.lower.read_link(path),
        }
    }

    /// The mode of directories kiln creates for the destination: an octal `--chmod`'s `0o777`
    /// bits, else `0755`, as today's BuildKit does (Dockerfile frontend 1.25, fsutil's
    /// `MkdirAll` with the copy's mode; `testCopyChmod`). This deliberately differs from
    /// Docker 20.10's BuildKit, which made them `0755` whatever `--chmod` said.
    fn created_dir_mode(&self) -> u32 {
        self.op
            .chmod
            .as_ref()
            .and_then(|c| c.octal())
            .map_or(0o755, |m| m & 0o777)
    }

    /// fsutil's `MkdirAll`: every missing directory of `path` is created with `mode`, the
    /// chown owner (or root) and `created_mtime`.
    pub(crate) fn mkdir_all(&mut self, path: &Path, mode: u32) -> Result<(), FileOpError> {
        let mut current = PathBuf::new();
        for part in normal_components(path) {
            current.push(part);
            match self.dest_lstat(&current)? {
                Some(s) if s.kind == Kind::Dir => {}
                Some(_) => return Err(FileOpError::NotADirectory { path: current }),
                None => {
                    let (uid, gid) = self.owner.unwrap_or((0, 0));
                    let mut entry = Entry::new(current.clone(), EntryKind::Dir);
                    entry.mode = mode;
                    entry.uid = uid;
                    entry.gid = gid;
                    entry.mtime = self.op.created_mtime;
                    self.insert(entry, Data::None, Origin::Created).fresh = true;
                }
            }
        }
        Ok(())
    }

    /// Puts `entry` in the plan, replacing whatever was planned at its path and below.
    pub(crate) fn insert(&mut self, entry: Entry, data: Data, origin: Origin) -> &mut Planned {
        if entry.kind != EntryKind::Dir {
            self.entries.remove_below(&entry.path);
        }
        let path = entry.path.clone();
        self.entries.insert(
            path,
            Planned {
                entry,
                data,
                link_group: None,
                origin,
                fresh: false,
            },
        )
    }

    /// The planned entry at `path`, taking the parent's directory into the plan first.
    fn planned_dir(&mut self, path: &Path) -> Result<&mut Planned, FileOpError> {
        if !self.entries.contains_key(path) {
            let stat = self
                .lower
                .lstat(path)?
                .ok_or_else(|| FileOpError::NotADirectory {
                    path: path.to_owned(),
                })?;
            let entry = entry_from_stat(path, &stat, EntryKind::Dir);
            self.insert(entry, Data::None, Origin::Parent);
        }
        Ok(self.entries.get_mut(path).expect("just inserted"))
    }

    /// Every planned entry's parents must be in the layer: existing ones with the parent's
    /// metadata, as the diff of BuildKit's snapshot would show them.
    fn add_parent_entries(&mut self) -> Result<(), FileOpError> {
        let mut missing = Vec::new();
        for path in self.entries.keys() {
            for ancestor in path.ancestors().skip(1) {
                // A planned ancestor has its own turn in this loop.
                if ancestor.as_os_str().is_empty() || self.entries.contains_key(ancestor) {
                    break;
                }
                missing.push(ancestor.to_path_buf());
            }
        }
        missing.sort();
        missing.dedup();
        for path in missing {
            self.planned_dir(&path)?;
        }
        Ok(())
    }

    pub(crate) fn scratch_dir(&mut self) -> Result<PathBuf, FileOpError> {
        if self.scratch.is_none() {
            let dir = self
                .inputs
                .scratch_dir
                .map_or_else(std::env::temp_dir, Path::to_path_buf);
            let tmp = tempfile::Builder::new()
                .prefix("kiln-fileop-")
                .tempdir_in(&dir)
                .map_err(|source| FileOpError::Scratch { path: dir, source })?;
            self.scratch = Some(tmp);
        }
        Ok(self
            .scratch
            .as_ref()
            .expect("just created")
            .path()
            .to_path_buf())
    }
}

pub(crate) fn not_found(path: &str, root: &SourceRoot) -> FileOpError {
    FileOpError::NotFound {
        path: path.trim_end_matches('/').to_owned(),
        root: root.description().to_owned(),
    }
}

pub(crate) fn file_stat(mode: u32, size: u64, mtime: i64) -> Stat {
    Stat {
        kind: Kind::File,
        mode,
        uid: 0,
        gid: 0,
        mtime,
        size,
        link_id: None,
        rdev: 0,
        stamp: None,
    }
}

pub(crate) fn entry_from_stat(path: &Path, stat: &Stat, kind: EntryKind) -> Entry {
    let mut entry = Entry::new(path.to_owned(), kind);
    entry.mode = stat.mode;
    entry.uid = stat.uid;
    entry.gid = stat.gid;
    entry.mtime = stat.mtime;
    entry.size = if entry.kind == EntryKind::File {
        stat.size
    } else {
        0
    };
    entry
}

pub(crate) fn stat_of(entry: &Entry) -> Stat {
    let kind = match entry.kind {
        EntryKind::Dir => Kind::Dir,
        EntryKind::Symlink(_) => Kind::Symlink,
        EntryKind::CharDevice { .. } => Kind::CharDevice,
        EntryKind::BlockDevice { .. } => Kind::BlockDevice,
        EntryKind::Fifo => Kind::Fifo,
        EntryKind::File | EntryKind::Hardlink(_) => Kind::File,
    };
    Stat {
        kind,
        mode: entry.mode,
        uid: entry.uid,
        gid: entry.gid,
        mtime: entry.mtime,
        size: entry.size,
        link_id: None,
        rdev: 0,
        stamp: None,
    }
}
