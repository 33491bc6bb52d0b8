//! Where files come from and what already exists: the source root (a build context with its
//! ignore rules, or a stage's root filesystem), the read-only view of the parent's filesystem,
//! and symlink resolution that never leaves either (continuity's `RootPath`).

use std::collections::HashSet;
use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Component, Path, PathBuf};

use kiln_context::{ContextError, IgnoreRules};

use crate::error::{FileOpError, read_err};

/// What an existing filesystem entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A regular file.
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
    /// A Unix socket (copied as an empty regular file, as BuildKit does).
    Socket,
}

/// The metadata of an existing entry that a copy needs (`lstat`, never following a link).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stat {
    /// What it is.
    pub kind: Kind,
    /// Permission bits with setuid, setgid and sticky (`0o7777` at most).
    pub mode: u32,
    /// Owner.
    pub uid: u64,
    /// Group.
    pub gid: u64,
    /// Modification time, whole seconds.
    pub mtime: i64,
    /// Size in bytes (regular files).
    pub size: u64,
    /// `(device, inode)` when the file has more than one link, to keep hard links as links.
    pub link_id: Option<(u64, u64)>,
    /// Device number for devices.
    pub rdev: u64,
    /// What a content cache checks the file against; `None` for entries kiln makes up
    /// (heredocs, planned entries).
    pub stamp: Option<Stamp>,
}

/// A file's identity and change times as `lstat` gave them: while all four are unchanged,
/// so is the content (with git's caveat about racily clean files, which the stat cache in
/// kiln-cache handles).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Stamp {
    /// Inode number.
    pub ino: u64,
    /// Size in bytes.
    pub size: u64,
    /// Modification time, ns since the epoch.
    pub mtime_ns: i64,
    /// Status change time, ns since the epoch.
    pub ctime_ns: i64,
}

impl Stamp {
    /// The stamp of `meta`.
    pub fn of(meta: &fs::Metadata) -> Self {
        Self {
            ino: meta.ino(),
            size: meta.size(),
            // Saturating: a time past 2262 (ext4 allows them) must not wrap.
            mtime_ns: ns(meta.mtime(), meta.mtime_nsec()),
            ctime_ns: ns(meta.ctime(), meta.ctime_nsec()),
        }
    }
}

impl Stat {
    /// Converts `lstat` metadata.
    pub fn from_metadata(meta: &fs::Metadata) -> Self {
        let ft = meta.file_type();
        let kind = if ft.is_dir() {
            Kind::Dir
        } else if ft.is_symlink() {
            Kind::Symlink
        } else if ft.is_char_device() {
            Kind::CharDevice
        } else if ft.is_block_device() {
            Kind::BlockDevice
        } else if ft.is_fifo() {
            Kind::Fifo
        } else if ft.is_socket() {
            Kind::Socket
        } else {
            Kind::File
        };
        Self {
            kind,
            mode: meta.mode() & 0o7777,
            uid: u64::from(meta.uid()),
            gid: u64::from(meta.gid()),
            mtime: meta.mtime(),
            size: if kind == Kind::File { meta.len() } else { 0 },
            link_id: (kind == Kind::File && meta.nlink() > 1).then(|| (meta.dev(), meta.ino())),
            rdev: meta.rdev(),
            stamp: Some(Stamp::of(meta)),
        }
    }
}

fn ns(secs: i64, nsecs: i64) -> i64 {
    secs.saturating_mul(1_000_000_000).saturating_add(nsecs)
}

fn lstat_host(path: &Path) -> Result<Option<Stat>, FileOpError> {
    match fs::symlink_metadata(path) {
        Ok(meta) => Ok(Some(Stat::from_metadata(&meta))),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
            ) =>
        {
            Ok(None)
        }
        Err(e) => Err(read_err(path)(e)),
    }
}

/// A read-only view of the filesystem a COPY writes onto (the parent step's root filesystem),
/// used to find existing directories, follow symlinks in the destination and read
/// `/etc/passwd`. Paths are relative to the root, never with `..`.
pub trait LowerView {
    /// `lstat` of `path`; `None` when nothing is there.
    fn lstat(&self, path: &Path) -> Result<Option<Stat>, FileOpError>;
    /// The target of the symlink at `path`.
    fn read_link(&self, path: &Path) -> Result<PathBuf, FileOpError>;
    /// The contents of the regular file at `path` (symlinks on the way already resolved by
    /// the caller); `None` when it does not exist.
    fn read_file(&self, path: &Path) -> Result<Option<Vec<u8>>, FileOpError>;
}

/// The empty filesystem: `scratch`, and what `--link` sees.
#[derive(Debug, Clone, Copy, Default)]
pub struct EmptyView;

impl LowerView for EmptyView {
    fn lstat(&self, _: &Path) -> Result<Option<Stat>, FileOpError> {
        Ok(None)
    }
    fn read_link(&self, path: &Path) -> Result<PathBuf, FileOpError> {
        Err(read_err(path)(io::ErrorKind::NotFound.into()))
    }
    fn read_file(&self, _: &Path) -> Result<Option<Vec<u8>>, FileOpError> {
        Ok(None)
    }
}

/// A root filesystem unpacked in a host directory (a snapshot, a merged overlay).
#[derive(Debug, Clone)]
pub struct DirView {
    root: PathBuf,
}

impl DirView {
    /// A view of the directory `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }
}

impl LowerView for DirView {
    fn lstat(&self, path: &Path) -> Result<Option<Stat>, FileOpError> {
        lstat_host(&self.root.join(path))
    }
    fn read_link(&self, path: &Path) -> Result<PathBuf, FileOpError> {
        let full = self.root.join(path);
        fs::read_link(&full).map_err(read_err(full))
    }
    fn read_file(&self, path: &Path) -> Result<Option<Vec<u8>>, FileOpError> {
        let mut file = match kiln_layer::safe_fs::open_in_root(&self.root, path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(read_err(self.root.join(path))(e)),
        };
        let mut data = Vec::new();
        file.read_to_end(&mut data)
            .map_err(read_err(self.root.join(path)))?;
        Ok(Some(data))
    }
}

/// A directory's visible entries, sorted by name bytes, each with its `lstat` when it could
/// be taken.
pub(crate) type Listing = Vec<(OsString, Option<Stat>)>;

/// Where COPY/ADD path sources are read: the build context (only what its ignore rules keep,
/// owned by `0:0` as BuildKit's context transfer makes it) or a stage's or image's root
/// filesystem (everything, owners kept).
#[derive(Debug, Clone)]
pub struct SourceRoot {
    dir: PathBuf,
    /// The paths `.dockerignore` leaves visible; `None` when nothing is hidden.
    visible: Option<HashSet<PathBuf>>,
    /// Whether this is the build context (its files become root's) rather than a rootfs.
    context: bool,
    description: String,
}

impl SourceRoot {
    /// The build context at `dir`, filtered by `rules` exactly as kiln-context's walker
    /// (fsutil's) keeps entries. The context is walked once here; build it once per build.
    pub fn context(dir: impl Into<PathBuf>, rules: &IgnoreRules) -> Result<Self, ContextError> {
        let dir = dir.into();
        if rules.matcher().is_empty() {
            // No rules hide anything: no walk, every path of the directory is visible.
            return Ok(Self {
                dir,
                visible: None,
                context: true,
                description: "the build context".to_owned(),
            });
        }
        let mut visible = HashSet::new();
        kiln_context::walk_each(&dir, rules, |entry| {
            visible.insert(entry.relative);
            Ok(())
        })?;
        Ok(Self {
            dir,
            visible: Some(visible),
            context: true,
            description: "the build context".to_owned(),
        })
    }

    /// A stage's or image's root filesystem at `dir`, described as `description` in errors
    /// (for example ``stage `build` ``).
    pub fn rootfs(dir: impl Into<PathBuf>, description: impl Into<String>) -> Self {
        Self {
            dir: dir.into(),
            visible: None,
            context: false,
            description: description.into(),
        }
    }

    /// What the root is, for messages.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// Whether this is the build context (owners become `0:0`).
    pub fn is_context(&self) -> bool {
        self.context
    }

    fn is_visible(&self, rel: &Path) -> bool {
        self.visible
            .as_ref()
            .is_none_or(|v| rel.as_os_str().is_empty() || v.contains(rel))
    }

    /// The host path of `rel`.
    pub(crate) fn host_path(&self, rel: &Path) -> PathBuf {
        self.dir.join(rel)
    }

    /// `lstat` of `rel`, `None` when missing or ignored; context entries are owned by `0:0`.
    pub(crate) fn lstat(&self, rel: &Path) -> Result<Option<Stat>, FileOpError> {
        if !self.is_visible(rel) {
            return Ok(None);
        }
        Ok(lstat_host(&self.dir.join(rel))?.map(|s| self.owned(s)))
    }

    /// Context entries are root's, as BuildKit's context transfer makes them.
    fn owned(&self, mut stat: Stat) -> Stat {
        if self.is_context() {
            stat.uid = 0;
            stat.gid = 0;
        }
        stat
    }

    pub(crate) fn read_link(&self, rel: &Path) -> Result<PathBuf, FileOpError> {
        let full = self.dir.join(rel);
        fs::read_link(&full).map_err(read_err(full))
    }

    /// The visible entries of directory `rel` with their `lstat` (as [`Self::lstat`] gives
    /// it), sorted by name bytes (Go's `os.ReadDir` order). Each entry is stat'ed relative to
    /// the open directory, which spares the kernel a walk of the whole path per file. An entry
    /// whose `lstat` fails (other than by being gone) comes without one: it is an error only
    /// if the copy gets to it and stats it again, as before listings carried stats.
    pub(crate) fn read_dir(&self, rel: &Path) -> Result<Listing, FileOpError> {
        let full = self.dir.join(rel);
        let mut out = Vec::new();
        for entry in fs::read_dir(&full).map_err(read_err(&full))? {
            let entry = entry.map_err(read_err(&full))?;
            let name = entry.file_name();
            if self.visible.is_some() && !self.is_visible(&rel.join(&name)) {
                continue;
            }
            match entry.metadata() {
                Ok(meta) => out.push((name, Some(self.owned(Stat::from_metadata(&meta))))),
                // Gone since the directory was read: as if it had not been there.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(_) => out.push((name, None)),
            }
        }
        out.sort_by(|a, b| a.0.as_encoded_bytes().cmp(b.0.as_encoded_bytes()));
        Ok(out)
    }

    /// Opens the regular file `rel` for reading, resolving inside the root.
    pub(crate) fn open(&self, rel: &Path) -> Result<File, FileOpError> {
        kiln_layer::safe_fs::open_in_root(&self.dir, rel).map_err(read_err(self.dir.join(rel)))
    }
}

/// Resolves `path` (relative components, already lexically clean) inside a root, following
/// symlinks as continuity's `RootPath` does: absolute link targets restart at the root, `..`
/// never climbs above it, at most 255 links. With `follow_last` false the final element is
/// not followed. Components after a missing one are kept as they are.
pub(crate) fn resolve(
    path: &Path,
    follow_last: bool,
    lstat: &mut dyn FnMut(&Path) -> Result<Option<Stat>, FileOpError>,
    read_link: &mut dyn FnMut(&Path) -> Result<PathBuf, FileOpError>,
) -> Result<PathBuf, FileOpError> {
    let mut queue: Vec<OsString> = normal_components(path).into_iter().rev().collect();
    let mut resolved = PathBuf::new();
    let mut links = 0;
    let mut missing = false;
    while let Some(part) = queue.pop() {
        if part == ".." {
            resolved.pop();
            continue;
        }
        let candidate = resolved.join(&part);
        if missing || (queue.is_empty() && !follow_last) {
            resolved = candidate;
            continue;
        }
        match lstat(&candidate)? {
            Some(stat) if stat.kind == Kind::Symlink => {
                links += 1;
                if links > 255 {
                    return Err(FileOpError::TooManyLinks {
                        path: format!("/{}", path.display()),
                    });
                }
                let target = read_link(&candidate)?;
                if target.is_absolute() {
                    resolved = PathBuf::new();
                }
                for part in raw_components(&target).into_iter().rev() {
                    queue.push(part);
                }
            }
            Some(_) => resolved = candidate,
            None => {
                missing = true;
                resolved = candidate;
            }
        }
    }
    Ok(resolved)
}

/// The normal components of a clean path, dropping the root.
pub(crate) fn normal_components(path: &Path) -> Vec<OsString> {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_owned()),
            _ => None,
        })
        .collect()
}

/// Components of a link target, keeping `..` (as `".."`) and dropping `.` and the root.
fn raw_components(path: &Path) -> Vec<OsString> {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_owned()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn resolve_in(root: &Path, p: &str, follow: bool) -> PathBuf {
        let view = DirView::new(root);
        resolve(Path::new(p), follow, &mut |p| view.lstat(p), &mut |p| {
            view.read_link(p)
        })
        .unwrap()
    }

    #[test]
    fn a_stamp_of_a_far_future_file_saturates() {
        let t = tempfile::tempdir().unwrap();
        let f = t.path().join("f");
        fs::write(&f, "x").unwrap();
        // 2300-01-01: past what i64 nanoseconds hold (2262), within what ext4 stores.
        let when = std::time::UNIX_EPOCH + std::time::Duration::from_hours(2_892_720);
        fs::File::options()
            .write(true)
            .open(&f)
            .unwrap()
            .set_modified(when)
            .unwrap();
        let meta = fs::symlink_metadata(&f).unwrap();
        assert_eq!(
            meta.mtime(),
            10_413_792_000,
            "the filesystem keeps the date"
        );
        assert_eq!(Stamp::of(&meta).mtime_ns, i64::MAX);
    }

    #[test]
    fn links_resolve_inside_the_root() {
        let t = tempfile::tempdir().unwrap();
        fs::create_dir_all(t.path().join("out/sub")).unwrap();
        symlink("/out/sub", t.path().join("abs")).unwrap();
        symlink("../../../out", t.path().join("up")).unwrap();
        symlink("loop", t.path().join("loop")).unwrap();
        assert_eq!(resolve_in(t.path(), "abs/f", true), Path::new("out/sub/f"));
        assert_eq!(resolve_in(t.path(), "up/sub", true), Path::new("out/sub"));
        assert_eq!(resolve_in(t.path(), "abs", false), Path::new("abs"));
        assert_eq!(
            resolve_in(t.path(), "no/such/x", true),
            Path::new("no/such/x")
        );
        let view = DirView::new(t.path());
        let err = resolve(Path::new("loop"), true, &mut |p| view.lstat(p), &mut |p| {
            view.read_link(p)
        })
        .unwrap_err();
        assert!(matches!(err, FileOpError::TooManyLinks { .. }));
    }
}
