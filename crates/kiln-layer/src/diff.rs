//! What a build step changed, as a layer: the diff of a new tree against the lower dirs it was
//! made from.
//!
//! Two kinds of new tree give the same layer for the same change:
//! - [`NewTree::Upper`], overlayfs's upper dir: only what the step touched is there, deletions
//!   are 0/0 character devices and a replaced directory is marked opaque;
//! - [`NewTree::Full`], a complete copy of the rootfs the step ran in (the fallback when
//!   overlayfs cannot be used): anything missing from it was deleted.
//!
//! The old tree is a stack of overlay lower dirs ([`crate::overlay`]), topmost first.
//!
//! The layer's rules, shared by both kinds so that their output is byte-identical:
//! - an entry is written when it is new, or when its type, mode, owner, xattrs, size, mtime (to
//!   the nanosecond) or link target differ from the old one, or, for a regular file equal in all
//!   of these, when its content differs: a step that rewrites a file at the same size and mtime
//!   (`cp -p`, `touch -r`, tar, `useradd`'s backups) changed it, so size and mtime alone never
//!   decide. A file copied up by overlay but identical in content too is unchanged. Contents are
//!   only compared where the file may have been written: in an upper dir, every file there; in
//!   a full tree, files whose ctime is not before [`DiffOptions::settled_before`];
//! - a directory is also written, with its current metadata, before any entry written below it
//!   (as containerd's and BuildKit's differs do), so applying the layer never needs a parent it
//!   does not carry;
//! - a deletion is a `.wh.NAME` entry, except that when *every* old child of a directory is
//!   gone, the directory gets a single `.wh..wh..opq` instead: this is how an overlay-opaque
//!   directory (removed and re-created by the step) comes out, and a full tree that lost all of
//!   a directory's children gives the same bytes. A deleted directory is one `.wh.` entry;
//! - entries come in the order of [`crate::pack_dir`] (sorted by name bytes, depth first),
//!   whiteouts at their name's place, the opaque marker right after its directory; a file with
//!   several links written in the layer is a hard link to its first path;
//! - whiteout and opaque entries are empty regular files, mode 0, owned by root, mtime 0;
//!   `trusted.overlay.*` and `security.selinux` xattrs never reach the layer.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::compress::Compression;
use crate::entry::{self, Entry, EntryKind};
use crate::overlay::{child_stack, is_opaque, is_whiteout, merged_children};
use crate::writer::{LayerDigests, LayerWriter, PackError};

/// The new side of a diff.
#[derive(Debug, Clone, Copy)]
pub enum NewTree<'a> {
    /// An overlayfs upper dir: absent entries are unchanged.
    Upper(&'a Path),
    /// A complete tree: absent entries were deleted.
    Full(&'a Path),
}

/// How [`diff`] writes its layer.
#[derive(Debug, Clone, Default)]
pub struct DiffOptions {
    /// Compression of the output; the default is gzip.
    pub compression: Compression,
    /// Clamp mtimes to this many seconds since the epoch (`SOURCE_DATE_EPOCH`). The default,
    /// `None`, keeps each file's own mtime.
    pub source_date_epoch: Option<i64>,
    /// For a [`NewTree::Full`] copied from the lower dirs before the step ran: the ctime
    /// (seconds, nanoseconds) of a file made right after the copy. A regular file whose ctime is
    /// earlier was not touched since, so equal metadata means equal content. The default,
    /// `None`, compares the content of every regular file whose metadata is equal.
    pub settled_before: Option<(i64, i64)>,
}

/// What [`diff`] wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiffStats {
    /// Entries written (whiteouts included).
    pub entries: u64,
    /// Whiteout and opaque entries among them.
    pub deletions: u64,
}

/// Errors of diffing.
#[derive(Debug, thiserror::Error)]
pub enum DiffError {
    /// A file or directory of either tree could not be read.
    #[error("cannot read `{path}` while diffing")]
    Read {
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The layer could not be written.
    #[error("cannot write the diff layer")]
    Pack(#[source] PackError),
}

fn read_err(path: &Path) -> impl FnOnce(io::Error) -> DiffError + '_ {
    move |source| DiffError::Read {
        path: path.to_owned(),
        source,
    }
}

/// The file system's clock now, as a ctime: the `ctime` of a file created in `dir` (and removed
/// again), for [`DiffOptions::settled_before`]. Take it after copying a full tree and before the
/// step runs; `dir` must be outside the tree.
pub fn settle_mark(dir: &Path) -> io::Result<(i64, i64)> {
    let path = dir.join(".settled");
    let f = File::create(&path)?;
    let meta = f.metadata();
    fs::remove_file(&path)?;
    let meta = meta?;
    Ok((meta.ctime(), meta.ctime_nsec()))
}

/// Writes the changes of `new` against `lower` (overlay lower dirs, topmost first; empty for a
/// step over `scratch`) as a layer to `out`.
pub fn diff<W: Write>(
    new: NewTree<'_>,
    lower: &[PathBuf],
    out: W,
    opts: &DiffOptions,
) -> Result<(W, LayerDigests, DiffStats), DiffError> {
    let writer = LayerWriter::new(out, opts.compression)
        .map_err(DiffError::Pack)?
        .source_date_epoch(opts.source_date_epoch);
    let mut d = Differ {
        writer,
        pending: Vec::new(),
        links: HashMap::new(),
        stats: DiffStats::default(),
        settled_before: opts.settled_before,
    };
    let (root, full) = match new {
        NewTree::Upper(p) => (p, false),
        NewTree::Full(p) => (p, true),
    };
    d.dir(Path::new(""), root, lower, full)?;
    let (out, digests) = d.writer.finish().map_err(DiffError::Pack)?;
    Ok((out, digests, d.stats))
}

struct Differ<W: Write> {
    writer: LayerWriter<W>,
    /// Directories entered but not written yet; `None` once written.
    pending: Vec<Option<Entry>>,
    links: HashMap<(u64, u64), PathBuf>,
    stats: DiffStats,
    settled_before: Option<(i64, i64)>,
}

impl<W: Write> Differ<W> {
    fn flush_pending(&mut self) -> Result<(), DiffError> {
        for slot in &mut self.pending {
            if let Some(e) = slot.take() {
                self.writer.append(&e, None).map_err(DiffError::Pack)?;
                self.stats.entries += 1;
            }
        }
        Ok(())
    }

    fn emit(&mut self, entry: &Entry, data: Option<&Path>) -> Result<(), DiffError> {
        self.flush_pending()?;
        match data {
            Some(p) => {
                let mut f = File::open(p).map_err(read_err(p))?;
                self.writer
                    .append(entry, Some(&mut f))
                    .map_err(DiffError::Pack)?;
            }
            None => self.writer.append(entry, None).map_err(DiffError::Pack)?,
        }
        self.stats.entries += 1;
        Ok(())
    }

    fn whiteout(&mut self, path: PathBuf) -> Result<(), DiffError> {
        let mut e = Entry::new(path, EntryKind::File);
        e.mode = 0;
        self.stats.deletions += 1;
        self.emit(&e, None)
    }

    /// Diffs the directory `rel`: `new_dir` is its host path in the new tree, `old` its stack
    /// in the lower dirs, `full` whether absence in `new_dir` means deletion.
    fn dir(
        &mut self,
        rel: &Path,
        new_dir: &Path,
        old: &[PathBuf],
        full: bool,
    ) -> Result<(), DiffError> {
        let mut new_names = BTreeMap::new();
        for e in fs::read_dir(new_dir).map_err(read_err(new_dir))? {
            let e = e.map_err(read_err(new_dir))?;
            let meta = e.metadata().map_err(read_err(&e.path()))?;
            new_names.insert(e.file_name(), meta);
        }
        let old_children = if old.is_empty() {
            BTreeMap::new()
        } else {
            merged_children(old).map_err(read_err(&old[0]))?
        };
        let gone = |meta: Option<&fs::Metadata>| match meta {
            None => full,
            Some(m) => is_whiteout(m),
        };
        let deleted: BTreeSet<&OsString> = old_children
            .keys()
            .filter(|n| gone(new_names.get(*n)))
            .collect();
        if !old_children.is_empty() && deleted.len() == old_children.len() {
            self.stats.deletions += 1;
            let mut e = Entry::new(rel.join(".wh..wh..opq"), EntryKind::File);
            e.mode = 0;
            self.emit(&e, None)?;
        }
        let all_gone = !old_children.is_empty() && deleted.len() == old_children.len();
        let names: BTreeSet<&OsString> = new_names.keys().chain(old_children.keys()).collect();
        let mut names: Vec<&OsString> = names.into_iter().collect();
        names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        for name in names {
            let path = rel.join(name);
            if deleted.contains(name) {
                if !all_gone {
                    let mut wh = OsString::from(".wh.");
                    wh.push(name);
                    self.whiteout(rel.join(wh))?;
                }
                continue;
            }
            let Some(meta) = new_names.get(name) else {
                continue; // only in the old tree, unchanged (upper dir) or deleted (handled)
            };
            if is_whiteout(meta) || meta.file_type().is_socket() {
                continue; // a whiteout of something no lower has; sockets are not archived
            }
            let host = new_dir.join(name);
            let old_entry = old_children.get(name);
            let old_meta = match old_entry {
                Some(o) => Some(fs::symlink_metadata(&o.path).map_err(read_err(&o.path))?),
                None => None,
            };
            let changed = match (&old_meta, old_entry) {
                (Some(om), Some(o)) => {
                    let settled = self
                        .settled_before
                        .is_some_and(|t| (meta.ctime(), meta.ctime_nsec()) < t);
                    !same(meta, &host, om, &o.path, settled)?
                }
                _ => true,
            };
            if meta.is_dir() {
                let child_old = match (old_entry, &old_meta) {
                    (Some(o), Some(om)) if om.is_dir() => child_stack(old, o.layer, name),
                    _ => Vec::new(),
                };
                let child_full = full || is_opaque(&host);
                let entry = Entry::from_host(path.clone(), &host, meta).map_err(read_err(&host))?;
                if changed {
                    self.emit(&entry, None)?;
                    self.pending.push(None);
                } else {
                    self.pending.push(Some(entry));
                }
                self.dir(&path, &host, &child_old, child_full)?;
                self.pending.pop();
            } else if changed {
                let mut entry =
                    Entry::from_host(path.clone(), &host, meta).map_err(read_err(&host))?;
                if meta.nlink() > 1 {
                    let key = (meta.dev(), meta.ino());
                    if let Some(first) = self.links.get(&key) {
                        entry.kind = EntryKind::Hardlink(first.clone());
                        entry.size = 0;
                    } else {
                        self.links.insert(key, path.clone());
                    }
                }
                let data = (entry.kind == EntryKind::File).then_some(host.as_path());
                self.emit(&entry, data)?;
            }
        }
        Ok(())
    }
}

/// Whether the new entry equals the old one in everything a layer records. `settled`: the new
/// entry is known not to have been written since it was copied from the old one, so equal
/// metadata is enough; otherwise a regular file's content is compared too.
fn same(
    new: &fs::Metadata,
    new_path: &Path,
    old: &fs::Metadata,
    old_path: &Path,
    settled: bool,
) -> Result<bool, DiffError> {
    let (nt, ot) = (new.file_type(), old.file_type());
    let same_type = (nt.is_dir() && ot.is_dir())
        || (nt.is_file() && ot.is_file())
        || (nt.is_symlink() && ot.is_symlink())
        || (nt.is_char_device() && ot.is_char_device())
        || (nt.is_block_device() && ot.is_block_device())
        || (nt.is_fifo() && ot.is_fifo());
    if !same_type
        || new.mode() != old.mode()
        || new.uid() != old.uid()
        || new.gid() != old.gid()
        || new.mtime() != old.mtime()
        || new.mtime_nsec() != old.mtime_nsec()
        || (!nt.is_dir() && new.len() != old.len())
        || ((nt.is_char_device() || nt.is_block_device()) && new.rdev() != old.rdev())
    {
        return Ok(false);
    }
    if nt.is_symlink()
        && fs::read_link(new_path).map_err(read_err(new_path))?
            != fs::read_link(old_path).map_err(read_err(old_path))?
    {
        return Ok(false);
    }
    if entry::read_xattrs(new_path).map_err(read_err(new_path))?
        != entry::read_xattrs(old_path).map_err(read_err(old_path))?
    {
        return Ok(false);
    }
    if nt.is_file() && !settled && new.len() > 0 {
        return same_content(new_path, old_path);
    }
    Ok(true)
}

/// Whether two regular files (of equal length) hold the same bytes.
fn same_content(a: &Path, b: &Path) -> Result<bool, DiffError> {
    let mut fa = File::open(a).map_err(read_err(a))?;
    let mut fb = File::open(b).map_err(read_err(b))?;
    let (mut ba, mut bb) = (vec![0u8; 64 * 1024], vec![0u8; 64 * 1024]);
    loop {
        let n = read_full(&mut fa, &mut ba).map_err(read_err(a))?;
        let m = read_full(&mut fb, &mut bb).map_err(read_err(b))?;
        if n != m || ba[..n] != bb[..m] {
            return Ok(false);
        }
        if n == 0 {
            return Ok(true);
        }
    }
}

/// Reads until `buf` is full or the file ends; the bytes read.
fn read_full(f: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    use std::io::Read as _;
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}
