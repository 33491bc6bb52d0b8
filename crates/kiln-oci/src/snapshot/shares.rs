//! Snapshots that share files: a `COPY --from` snapshot hard-links the files of the snapshot
//! it copies from instead of creating them again (see [`kiln_layer::LinkFrom::Share`]).
//!
//! Snapshots never change, so sharing an inode is safe; but one stack must never show the
//! same inode under two names that the layers made separately, or a RUN (and every walk that
//! keeps hard links by `(device, inode)`) would see a hard link BuildKit does not make. So a
//! snapshot that links another's files records the ids of its *family* (those snapshots and
//! theirs) in `shares`, a copy only links from snapshots whose family is disjoint from its
//! stack's, and [`separate`] gives a snapshot private copies of its shared files before a
//! stack that would show both is used (a layer's snapshot is shared by every stack that has
//! the layer, so one made for another stack can meet its family there).

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use std::os::fd::OwnedFd;

use kiln_layer::LinkFrom;
use rustix::fs::{FileType, Mode, OFlags, ResolveFlags, Timespec, Timestamps};

use crate::store::SnapshotDir;
use kiln_io::{IoError, io_err};

/// The snapshot directory whose tree is `tree` (`snapshots/<id>/fs`, with its marker), or
/// `None` for any other directory (a build context, say), which never shares.
fn snapshot_of(tree: &Path) -> Option<SnapshotDir> {
    let dir = SnapshotDir::at(tree.parent()?);
    (tree.file_name()? == "fs" && dir.tree() == tree && dir.marker().is_file()).then_some(dir)
}

/// The id of the snapshot whose tree is `tree`.
fn id_of(tree: &Path) -> Option<String> {
    let dir = snapshot_of(tree)?;
    Some(dir.dir().file_name()?.to_string_lossy().into_owned())
}

/// The ids of the snapshots `tree`'s snapshot shares files with, from its `shares` record.
fn shares_of(tree: &Path) -> BTreeSet<String> {
    let Some(dir) = snapshot_of(tree) else {
        return BTreeSet::new();
    };
    fs::read_to_string(dir.shares())
        .map(|s| s.lines().map(str::to_owned).collect())
        .unwrap_or_default()
}

/// The family of the snapshot whose tree is `tree`: its own id and the ids of every snapshot
/// it shares files with.
pub fn family(tree: &Path) -> BTreeSet<String> {
    let mut ids = shares_of(tree);
    ids.extend(id_of(tree));
    ids
}

/// The family of a stack: every member's.
pub fn stack_family(lowers: &[PathBuf]) -> BTreeSet<String> {
    lowers.iter().flat_map(|l| family(l)).collect()
}

/// Writes `ids` as the `shares` record of the snapshot being filled in `dir` (nothing when
/// empty).
pub(super) fn record(dir: &Path, ids: &BTreeSet<String>) -> Result<(), IoError> {
    if ids.is_empty() {
        return Ok(());
    }
    let path = SnapshotDir::at(dir).shares();
    let mut text = String::new();
    for id in ids {
        text.push_str(id);
        text.push('\n');
    }
    fs::write(&path, text).map_err(io_err("write", &path))
}

/// Makes the stack `lowers` (snapshot trees, topmost first) ready to be used: every member
/// only promised so far (a cache hit's, [`super::Snapshots::promise`]) is unpacked, and a
/// member that shares files with another member's family gets private copies of them, so
/// the stack shows no inode twice.
pub fn separate(lowers: &[PathBuf]) -> Result<(), IoError> {
    super::keep_promises(lowers).map_err(|e| {
        let at = lowers.first().cloned().unwrap_or_default();
        IoError::new(
            "unpack a snapshot of the stack at",
            at,
            std::io::Error::other(e),
        )
    })?;
    if lowers.len() < 2 {
        return Ok(());
    }
    // Each member's record is read once; most snapshots have none.
    let mut families: Vec<(BTreeSet<String>, BTreeSet<String>)> = lowers
        .iter()
        .map(|tree| {
            let shares = shares_of(tree);
            let mut family = shares.clone();
            family.extend(id_of(tree));
            (shares, family)
        })
        .collect();
    for (i, tree) in lowers.iter().enumerate() {
        if families[i].0.is_empty() {
            continue;
        }
        let meets = families
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .any(|(_, (_, family))| !families[i].0.is_disjoint(family));
        if meets {
            materialize(tree)?;
            // Its files are its own now: its family is itself alone.
            families[i] = (BTreeSet::new(), id_of(tree).into_iter().collect());
        }
    }
    Ok(())
}

/// Gives the snapshot at `tree` its own copy of every file whose inode has links outside it,
/// keeping its own hard links, directory times and file metadata, and drops its `shares`
/// record. Concurrent readers see either name's content, which is the same.
fn materialize(tree: &Path) -> Result<(), IoError> {
    let mut groups: HashMap<(u64, u64), (u64, Vec<PathBuf>)> = HashMap::new();
    let mut dirs = vec![tree.to_owned()];
    while let Some(dir) = dirs.pop() {
        for e in fs::read_dir(&dir).map_err(io_err("read", &dir))? {
            let e = e.map_err(io_err("read", &dir))?;
            let path = e.path();
            let meta = fs::symlink_metadata(&path).map_err(io_err("stat", &path))?;
            if meta.is_dir() {
                dirs.push(path);
            } else if meta.is_file() && meta.nlink() > 1 {
                groups
                    .entry((meta.dev(), meta.ino()))
                    .or_insert_with(|| (meta.nlink(), Vec::new()))
                    .1
                    .push(path);
            }
        }
    }
    // Renames change their directory's times; the layer's directories keep theirs.
    let mut parents: HashMap<PathBuf, fs::Metadata> = HashMap::new();
    for (nlink, names) in groups.into_values() {
        if names.len() as u64 >= nlink {
            continue;
        }
        for name in &names {
            if let Some(parent) = name.parent()
                && !parents.contains_key(parent)
            {
                let meta = fs::symlink_metadata(parent).map_err(io_err("stat", parent))?;
                parents.insert(parent.to_owned(), meta);
            }
        }
        own_copy(&names)?;
    }
    for (dir, meta) in parents {
        set_times(&dir, &meta)?;
    }
    if let Some(dir) = snapshot_of(tree) {
        let shares = dir.shares();
        match fs::remove_file(&shares) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err("remove", &shares)(e)),
        }
    }
    Ok(())
}

/// Replaces the hard-linked `names` (one inode) with one new inode of the same content and
/// metadata, linked under every name.
fn own_copy(names: &[PathBuf]) -> Result<(), IoError> {
    let Some(first) = names.first() else {
        return Ok(());
    };
    let meta = fs::symlink_metadata(first).map_err(io_err("stat", first))?;
    let tmp_name = |p: &Path| {
        let mut name = b".kiln-own-".to_vec();
        name.extend_from_slice(p.file_name().map_or(&b""[..], |n| n.as_bytes()));
        p.with_file_name(std::ffi::OsStr::from_bytes(&name))
    };
    let tmp = tmp_name(first);
    let _ = fs::remove_file(&tmp);
    fs::copy(first, &tmp).map_err(io_err("copy", first))?;
    let done = copy_meta(first, &tmp, &meta).and_then(|()| {
        for other in &names[1..] {
            let t = tmp_name(other);
            let _ = fs::remove_file(&t);
            fs::hard_link(&tmp, &t).map_err(io_err("link", &t))?;
            fs::rename(&t, other).map_err(io_err("rename", other))?;
        }
        fs::rename(&tmp, first).map_err(io_err("rename", first))
    });
    if done.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    done
}

/// Gives `to` the owner, mode, extended attributes and times of `from` (whose `meta` it is).
fn copy_meta(from: &Path, to: &Path, meta: &fs::Metadata) -> Result<(), IoError> {
    std::os::unix::fs::lchown(to, Some(meta.uid()), Some(meta.gid()))
        .map_err(io_err("chown", to))?;
    fs::set_permissions(to, fs::Permissions::from_mode(meta.mode() & 0o7777))
        .map_err(io_err("chmod", to))?;
    let mut names = vec![0_u8; 4096];
    let n = rustix::fs::llistxattr(from, &mut names).unwrap_or(0);
    let mut value = vec![0_u8; 65536];
    for name in names[..n].split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let name = std::ffi::OsStr::from_bytes(name);
        if let Ok(len) = rustix::fs::lgetxattr(from, name, &mut value) {
            rustix::fs::lsetxattr(to, name, &value[..len], rustix::fs::XattrFlags::empty())
                .map_err(|e| io_err("set an extended attribute of", to)(e.into()))?;
        }
    }
    set_times(to, meta)
}

/// Sets the access and modification times of `path` to `meta`'s, to the nanosecond.
fn set_times(path: &Path, meta: &fs::Metadata) -> Result<(), IoError> {
    let times = Timestamps {
        last_access: Timespec {
            tv_sec: meta.atime(),
            tv_nsec: meta.atime_nsec(),
        },
        last_modification: Timespec {
            tv_sec: meta.mtime(),
            tv_nsec: meta.mtime_nsec(),
        },
    };
    rustix::fs::utimensat(
        rustix::fs::CWD,
        path,
        &times,
        rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
    )
    .map_err(|e| io_err("set the times of", path)(e.into()))
}

/// The files a COPY may hard-link instead of writing: built from the stack it reads
/// (`sources`) and the stack it writes onto (`target`), both snapshot trees, topmost first.
/// Only snapshots whose family is disjoint from the target's lend their files.
#[derive(Debug)]
pub struct Sharing {
    /// Each source snapshot, opened, and its family when it may lend files.
    sources: Vec<(PathBuf, Option<OwnedFd>, Option<BTreeSet<String>>)>,
    files: HashMap<Vec<u8>, PathBuf>,
    families: BTreeSet<String>,
    verify: bool,
}

impl Sharing {
    /// What the previous build of a COPY (its snapshot `previous`) may lend the new one on
    /// `target`: the files at the same paths, when their content is still the same (checked
    /// as the layer is unpacked, so a changed file is never linked). Offer each entry with
    /// its own path as `rel`.
    pub fn previous(previous: &Path, target: &[PathBuf]) -> Self {
        let mut sharing = Self::new(&[previous.to_owned()], target);
        sharing.verify = true;
        sharing
    }

    /// What copying from `sources` onto `target` may share.
    pub fn new(sources: &[PathBuf], target: &[PathBuf]) -> Self {
        let target = stack_family(target);
        let sources = sources
            .iter()
            .map(|tree| {
                let fd = rustix::fs::open(
                    tree,
                    OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .ok();
                let family = family(tree);
                let lends = family.is_disjoint(&target).then_some(family);
                (tree.clone(), fd, lends)
            })
            .collect();
        Self {
            sources,
            files: HashMap::new(),
            families: BTreeSet::new(),
            verify: false,
        }
    }

    /// Offers the layer entry `entry` (its path in the layer), whose content is the file at
    /// `rel` in the merged sources: it is shared when the snapshot that shows `rel` (the
    /// topmost that has it, reached without symlinks) may lend it and it is a regular file.
    pub fn offer(&mut self, entry: &Path, rel: &Path) {
        let Some(key) =
            kiln_layer::safe_fs::components(entry.as_os_str().as_bytes()).map(|c| c.join(&b'/'))
        else {
            return;
        };
        for (tree, fd, lends) in &self.sources {
            let Some(fd) = fd else { return };
            let found = rustix::fs::openat2(
                fd,
                rel,
                OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
                ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
            );
            match found {
                Err(rustix::io::Errno::NOENT) => {}
                Err(_) => return,
                Ok(file) => {
                    let regular = rustix::fs::fstat(&file).is_ok_and(|st| {
                        FileType::from_raw_mode(st.st_mode) == FileType::RegularFile
                    });
                    if let (true, Some(family)) = (regular, lends) {
                        self.files.insert(key, tree.join(rel));
                        self.families.extend(family.iter().cloned());
                    }
                    return;
                }
            }
        }
    }

    /// The files to link, and the families the new snapshot joins.
    pub fn finish(self) -> (LinkFrom, BTreeSet<String>) {
        (
            LinkFrom::Share {
                files: self.files,
                verify: self.verify,
            },
            self.families,
        )
    }
}
