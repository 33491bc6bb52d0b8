//! Applying a layer to a directory: whiteouts, links, devices, ownership, modes, xattrs, and
//! never a byte outside the target.
//!
//! Containment rules, checked per entry:
//! - a `..` component anywhere in a name or a hard link target is refused;
//! - a leading `/` is dropped (the name is contained, as Docker does);
//! - every parent is resolved with [`crate::safe_fs`] (`RESOLVE_IN_ROOT`), so symlinks planted by
//!   this or an earlier layer resolve inside the target;
//! - the final component is replaced, never written through: an existing entry is removed
//!   first and files are created with `O_EXCL | O_NOFOLLOW`;
//! - hard links are made with `linkat` between two contained directories, so a link's target
//!   is always a file inside the target.
//!
//! Whiteouts follow the OCI image spec: `.wh.NAME` removes `NAME` from lower layers,
//! `.wh..wh..opq` empties its directory of everything lower layers put there; entries of the
//! same layer are never hidden by its own whiteouts.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Gid, Mode, OFlags, Timespec, Timestamps, Uid, XattrFlags};
use rustix::io::Errno;
use tar::EntryType;

use crate::compress::decompress;

mod link;

use crate::safe_fs::{clear_dir, components, open_dir_in, open_root, remove_all_at};
pub use link::LinkFrom;
use link::{Shared, drop_other_xattrs};

/// How [`apply`] treats what it unpacks.
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// Interpret `.wh.` entries as OCI whiteouts. The default, `true`, is what layers need;
    /// turn it off to unpack a plain archive.
    pub whiteouts: bool,
    /// Give entries the uid/gid of the tar header. The default is `true` when running as root;
    /// otherwise files belong to the caller.
    pub same_owner: bool,
    /// Set extended attributes from `SCHILY.xattr.` records. The default is `true`; an
    /// attribute the filesystem or the caller's privileges refuse is counted in
    /// [`ApplyStats::skipped_xattrs`], not an error.
    pub xattrs: bool,
    /// Create device nodes. The default is `true`; when `false` they are skipped.
    pub devices: bool,
    /// Where regular files can be hard-linked from instead of written again (see
    /// [`LinkFrom`]). The default, `None`, writes every file from the layer.
    pub link_from: Option<LinkFrom>,
}

/// Reads until `buf` is full or the reader ends (retrying interrupted reads); how many bytes
/// it read.
pub fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

impl Default for ApplyOptions {
    fn default() -> Self {
        Self {
            whiteouts: true,
            same_owner: rustix::process::geteuid().is_root(),
            xattrs: true,
            devices: true,
            link_from: None,
        }
    }
}

/// What [`apply`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplyStats {
    /// Entries unpacked (whiteouts included).
    pub entries: u64,
    /// File content bytes written.
    pub bytes: u64,
    /// Regular files created and written (whiteout markers unpacked as files not counted).
    pub created: u64,
    /// Regular files hard-linked from [`ApplyOptions::link_from`] instead (no new inode).
    pub linked: u64,
    /// Extended attributes the target refused.
    pub skipped_xattrs: u64,
}

/// Errors of applying a layer.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The target directory cannot be opened.
    #[error("cannot open the target directory `{path}`")]
    Target {
        /// The target.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The layer stream is corrupt or truncated.
    #[error("cannot read the layer (corrupt or truncated tar)")]
    Read {
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// An entry would escape the target or is otherwise refused.
    #[error("layer entry `{entry}` is refused: {reason}")]
    Unsafe {
        /// The entry's name as written in the layer.
        entry: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// An entry's content ends before the size its header announced.
    #[error("layer entry `{entry}` is truncated: expected {expected} bytes, got {got}")]
    Truncated {
        /// The entry.
        entry: String,
        /// Size from the header.
        expected: u64,
        /// Bytes present.
        got: u64,
    },
    /// The filesystem refused an operation for an entry.
    #[error("cannot unpack layer entry `{entry}`")]
    Entry {
        /// The entry.
        entry: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
}

/// Unpacks the layer read from `layer` (plain, gzip or zstd, detected) into `target`.
pub fn apply<R: Read>(
    layer: R,
    target: &Path,
    opts: &ApplyOptions,
) -> Result<ApplyStats, ApplyError> {
    let root = open_root(target).map_err(|source| ApplyError::Target {
        path: target.to_owned(),
        source,
    })?;
    let (reader, _) = decompress(layer).map_err(|source| ApplyError::Read { source })?;
    let mut archive = tar::Archive::new(reader);
    let link_root = match &opts.link_from {
        Some(LinkFrom::Adopt(dir)) => {
            Some(open_root(dir).map_err(|source| ApplyError::Target {
                path: dir.clone(),
                source,
            })?)
        }
        _ => None,
    };
    let mut state = State {
        root,
        link_root,
        shared: HashSet::new(),
        opts,
        written: HashSet::new(),
        dirs: Vec::new(),
        stats: ApplyStats::default(),
    };
    for entry in archive
        .entries()
        .map_err(|source| ApplyError::Read { source })?
    {
        let mut entry = entry.map_err(|source| ApplyError::Read { source })?;
        state.entry(&mut entry)?;
    }
    // Directory metadata last, deepest first, so creating children does not undo mtimes and
    // a read-only directory does not stop its own contents from being written.
    for d in std::mem::take(&mut state.dirs).into_iter().rev() {
        state.finish_dir(&d)?;
    }
    Ok(state.stats)
}

struct Meta {
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: i64,
    xattrs: Vec<(String, Vec<u8>)>,
}

struct PendingDir {
    path: Vec<u8>,
    name: String,
    meta: Meta,
}

struct State<'a> {
    root: OwnedFd,
    link_root: Option<OwnedFd>,
    /// The files [`LinkFrom::Share`] linked so far, as `(device, inode)`.
    shared: HashSet<(u64, u64)>,
    opts: &'a ApplyOptions,
    written: HashSet<Vec<u8>>,
    dirs: Vec<PendingDir>,
    stats: ApplyStats,
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

impl State<'_> {
    fn entry<R: Read>(&mut self, e: &mut tar::Entry<'_, R>) -> Result<(), ApplyError> {
        let raw = e.path_bytes().into_owned();
        let name = lossy(&raw);
        let kind = e.header().entry_type();
        if matches!(
            kind,
            EntryType::XGlobalHeader
                | EntryType::XHeader
                | EntryType::GNULongName
                | EntryType::GNULongLink
        ) {
            return Ok(());
        }
        let unsafe_err = |reason| ApplyError::Unsafe {
            entry: name.clone(),
            reason,
        };
        let comps = components(&raw).ok_or_else(|| unsafe_err("its name contains `..`"))?;
        let Some((&base, parents)) = comps.split_last() else {
            // The root itself (`./`): its metadata is the target's business, not the layer's.
            return Ok(());
        };
        let meta = Self::meta(e).map_err(|source| ApplyError::Read { source })?;
        let fail = |source: io::Error| ApplyError::Entry {
            entry: name.clone(),
            source,
        };
        self.stats.entries += 1;

        if self.opts.whiteouts && base.starts_with(b".wh.") {
            return self.whiteout(&name, parents, base).map_err(fail);
        }
        let path = comps.join(&b'/');
        let parent = self.ensure_dir(parents).map_err(fail)?;
        let is_dir = kind == EntryType::Directory;
        Self::clear_slot(&parent, base, is_dir).map_err(fail)?;
        let base_os = OsStr::from_bytes(base);
        match kind {
            EntryType::Directory => {
                match rustix::fs::mkdirat(&parent, base_os, Mode::from_raw_mode(0o700)) {
                    Ok(()) | Err(Errno::EXIST) => {}
                    Err(e) => return Err(fail(e.into())),
                }
                self.dirs.push(PendingDir {
                    path: path.clone(),
                    name: name.clone(),
                    meta,
                });
            }
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                match self.share(e, &path, &parent, base_os, &meta, &name)? {
                    Some(Shared::Linked) => self.stats.linked += 1,
                    Some(Shared::Written) => {}
                    None if self.link(&path, &parent, base_os, e.size()) => {
                        let fd = rustix::fs::openat(
                            &parent,
                            base_os,
                            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                            Mode::empty(),
                        )
                        .map_err(|e| fail(e.into()))?;
                        self.stats.linked += 1;
                        self.finish_fd(&fd, &meta).map_err(fail)?;
                        drop_other_xattrs(&fd, &meta);
                    }
                    None => {
                        let mut file = Self::create(&parent, base_os).map_err(fail)?;
                        self.write_data(e, &mut file, 0, &[], &name)?;
                        if !base.starts_with(b".wh.") {
                            self.stats.created += 1;
                        }
                        self.finish_fd(file.as_fd(), &meta).map_err(fail)?;
                    }
                }
            }
            EntryType::Symlink => {
                let target = e
                    .link_name_bytes()
                    .ok_or_else(|| unsafe_err("a symlink without a target"))?;
                rustix::fs::symlinkat(OsStr::from_bytes(&target), &parent, base_os)
                    .map_err(|e| fail(e.into()))?;
                self.finish_at(&parent, base, &meta, false).map_err(fail)?;
            }
            EntryType::Link => {
                let target = e
                    .link_name_bytes()
                    .ok_or_else(|| unsafe_err("a hard link without a target"))?;
                let tcomps = components(&target)
                    .ok_or_else(|| unsafe_err("its link target contains `..`"))?;
                let Some((&tbase, tparents)) = tcomps.split_last() else {
                    return Err(unsafe_err("a hard link to the layer root"));
                };
                let tparent = open_dir_in(&self.root, &tparents.join(&b'/')).map_err(fail)?;
                rustix::fs::linkat(
                    &tparent,
                    OsStr::from_bytes(tbase),
                    &parent,
                    base_os,
                    AtFlags::empty(),
                )
                .map_err(|e| fail(e.into()))?;
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                if kind != EntryType::Fifo && !self.opts.devices {
                    return Ok(());
                }
                let (ft, dev) = if kind == EntryType::Fifo {
                    (FileType::Fifo, 0)
                } else {
                    let h = e.header();
                    let major = h.device_major().ok().flatten().unwrap_or(0);
                    let minor = h.device_minor().ok().flatten().unwrap_or(0);
                    let ft = if kind == EntryType::Char {
                        FileType::CharacterDevice
                    } else {
                        FileType::BlockDevice
                    };
                    (ft, rustix::fs::makedev(major, minor))
                };
                rustix::fs::mknodat(&parent, base_os, ft, Mode::from_raw_mode(0o600), dev)
                    .map_err(|e| fail(e.into()))?;
                self.finish_at(&parent, base, &meta, true).map_err(fail)?;
            }
            _ => return Err(unsafe_err("an unsupported entry type")),
        }
        self.written.insert(path);
        Ok(())
    }

    /// A new regular file `base` in `parent`, empty, writable, mode 0600 until finished.
    fn create(parent: &OwnedFd, base: &OsStr) -> io::Result<File> {
        let fd = rustix::fs::openat(
            parent,
            base,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )?;
        Ok(File::from(fd))
    }

    /// Writes `head` (bytes of the entry already read) and the rest of the entry `e` to
    /// `file`, which holds the entry's first `before` bytes already, checking that the entry
    /// has the size its header announced.
    fn write_data<R: Read>(
        &mut self,
        e: &mut tar::Entry<'_, R>,
        file: &mut File,
        before: u64,
        head: &[u8],
        name: &str,
    ) -> Result<(), ApplyError> {
        let expected = e.size();
        io::Write::write_all(file, head).map_err(|source| ApplyError::Entry {
            entry: name.to_owned(),
            source,
        })?;
        let written =
            head.len() as u64 + io::copy(e, file).map_err(|source| ApplyError::Read { source })?;
        if before + written != expected {
            return Err(ApplyError::Truncated {
                entry: name.to_owned(),
                expected,
                got: before + written,
            });
        }
        self.stats.bytes += written;
        Ok(())
    }

    fn meta<R: Read>(e: &mut tar::Entry<'_, R>) -> io::Result<Meta> {
        let h = e.header();
        let mut meta = Meta {
            mode: h.mode()? & 0o7777,
            uid: h.uid()?,
            gid: h.gid()?,
            mtime: i64::try_from(h.mtime()?).unwrap_or(0),
            xattrs: Vec::new(),
        };
        if let Some(pax) = e.pax_extensions()? {
            for ext in pax {
                let ext = ext?;
                let key = ext.key().map_err(io::Error::other)?;
                let value = ext.value_bytes();
                let num = || {
                    std::str::from_utf8(value)
                        .ok()
                        .and_then(|v| v.split('.').next()?.parse::<i64>().ok())
                };
                match key {
                    "uid" => {
                        meta.uid = num()
                            .and_then(|n| u64::try_from(n).ok())
                            .unwrap_or(meta.uid);
                    }
                    "gid" => {
                        meta.gid = num()
                            .and_then(|n| u64::try_from(n).ok())
                            .unwrap_or(meta.gid);
                    }
                    "mtime" => {
                        meta.mtime = num().unwrap_or(meta.mtime);
                    }
                    k => {
                        if let Some(x) = k.strip_prefix("SCHILY.xattr.") {
                            meta.xattrs.push((x.to_owned(), value.to_vec()));
                        }
                    }
                }
            }
        }
        Ok(meta)
    }

    /// Opens (creating as needed, mode 0755) the directory made of `comps` inside the root.
    fn ensure_dir(&mut self, comps: &[&[u8]]) -> io::Result<OwnedFd> {
        match open_dir_in(&self.root, &comps.join(&b'/')) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            other => return other,
        }
        let mut fd = open_dir_in(&self.root, b"")?;
        for i in 0..comps.len() {
            let prefix = comps[..=i].join(&b'/');
            fd = match open_dir_in(&self.root, &prefix) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    match rustix::fs::mkdirat(
                        &fd,
                        OsStr::from_bytes(comps[i]),
                        Mode::from_raw_mode(0o755),
                    ) {
                        Ok(()) => {}
                        // A dangling symlink: its contained target does not exist. Creating
                        // directories along a link is refused rather than guessed at.
                        Err(Errno::EXIST) => {
                            return Err(io::Error::new(
                                io::ErrorKind::NotFound,
                                format!(
                                    "`{}` is a symlink to a directory that does not exist inside the target",
                                    lossy(&prefix)
                                ),
                            ));
                        }
                        Err(e) => return Err(e.into()),
                    }
                    open_dir_in(&self.root, &prefix)?
                }
                other => other?,
            };
        }
        Ok(fd)
    }

    /// Makes room for a new entry `base` in `parent`: keeps an existing directory when the new
    /// entry is one, removes anything else.
    fn clear_slot(parent: &OwnedFd, base: &[u8], is_dir: bool) -> io::Result<()> {
        match rustix::fs::statat(parent, OsStr::from_bytes(base), AtFlags::SYMLINK_NOFOLLOW) {
            Err(Errno::NOENT) => Ok(()),
            Err(e) => Err(e.into()),
            Ok(st) => {
                let existing_dir = FileType::from_raw_mode(st.st_mode) == FileType::Directory;
                if existing_dir && is_dir {
                    Ok(())
                } else {
                    remove_all_at(parent, base)
                }
            }
        }
    }

    fn whiteout(&mut self, name: &str, parents: &[&[u8]], base: &[u8]) -> io::Result<()> {
        let hidden = &base[4..];
        let parent_path = parents.join(&b'/');
        if hidden == b".wh..opq" {
            let dir = match open_dir_in(&self.root, &parent_path) {
                Ok(dir) => dir,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(e),
            };
            let written = &self.written;
            return clear_dir(&dir, |child| {
                let mut p = parent_path.clone();
                if !p.is_empty() {
                    p.push(b'/');
                }
                p.extend_from_slice(child);
                written.contains(&p)
            });
        }
        if hidden.starts_with(b".wh.") {
            // Other aufs metadata (`.wh..wh.plnk`, ...) carries nothing for us.
            return Ok(());
        }
        if hidden.is_empty() || hidden == b"." || hidden == b".." {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("whiteout `{name}` names no file inside its directory"),
            ));
        }
        let mut path = parent_path.clone();
        if !path.is_empty() {
            path.push(b'/');
        }
        path.extend_from_slice(hidden);
        if self.written.contains(&path) {
            return Ok(());
        }
        match open_dir_in(&self.root, &parent_path) {
            Ok(dir) => remove_all_at(&dir, hidden),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn finish_fd(&mut self, fd: impl AsFd, meta: &Meta) -> io::Result<()> {
        if self.opts.same_owner {
            rustix::fs::fchown(&fd, Some(uid(meta.uid)), Some(gid(meta.gid)))?;
        }
        rustix::fs::fchmod(&fd, Mode::from_raw_mode(meta.mode))?;
        if self.opts.xattrs {
            for (k, v) in &meta.xattrs {
                if rustix::fs::fsetxattr(&fd, k.as_str(), v, XattrFlags::empty()).is_err() {
                    self.stats.skipped_xattrs += 1;
                }
            }
        }
        rustix::fs::futimens(&fd, &times(meta.mtime))?;
        Ok(())
    }

    fn finish_at(
        &mut self,
        parent: &OwnedFd,
        base: &[u8],
        meta: &Meta,
        chmod: bool,
    ) -> io::Result<()> {
        let b = OsStr::from_bytes(base);
        if self.opts.same_owner {
            rustix::fs::chownat(
                parent,
                b,
                Some(uid(meta.uid)),
                Some(gid(meta.gid)),
                AtFlags::SYMLINK_NOFOLLOW,
            )?;
        }
        if chmod {
            rustix::fs::chmodat(parent, b, Mode::from_raw_mode(meta.mode), AtFlags::empty())?;
        }
        if self.opts.xattrs && !meta.xattrs.is_empty() {
            // Through the parent's descriptor, so the name cannot be redirected.
            let mut p = format!("/proc/self/fd/{}/", parent.as_raw_fd()).into_bytes();
            p.extend_from_slice(base);
            for (k, v) in &meta.xattrs {
                if rustix::fs::lsetxattr(OsStr::from_bytes(&p), k.as_str(), v, XattrFlags::empty())
                    .is_err()
                {
                    self.stats.skipped_xattrs += 1;
                }
            }
        }
        rustix::fs::utimensat(parent, b, &times(meta.mtime), AtFlags::SYMLINK_NOFOLLOW)?;
        Ok(())
    }

    fn finish_dir(&mut self, d: &PendingDir) -> Result<(), ApplyError> {
        let fd = match rustix::fs::openat2(
            &self.root,
            OsStr::from_bytes(&d.path),
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
            rustix::fs::ResolveFlags::IN_ROOT | rustix::fs::ResolveFlags::NO_MAGICLINKS,
        ) {
            Ok(fd) => fd,
            // Replaced or removed by a later entry of the same layer.
            Err(Errno::NOENT | Errno::LOOP | Errno::NOTDIR) => return Ok(()),
            Err(e) => {
                return Err(ApplyError::Entry {
                    entry: d.name.clone(),
                    source: e.into(),
                });
            }
        };
        self.finish_fd(&fd, &d.meta)
            .map_err(|source| ApplyError::Entry {
                entry: d.name.clone(),
                source,
            })
    }
}

fn uid(n: u64) -> Uid {
    Uid::from_raw(u32::try_from(n).unwrap_or(u32::MAX - 1))
}

fn gid(n: u64) -> Gid {
    Gid::from_raw(u32::try_from(n).unwrap_or(u32::MAX - 1))
}

fn times(mtime: i64) -> Timestamps {
    let t = Timespec {
        tv_sec: mtime,
        tv_nsec: 0,
    };
    Timestamps {
        last_access: t,
        last_modification: t,
    }
}
