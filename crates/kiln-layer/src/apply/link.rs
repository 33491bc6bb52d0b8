//! Making an entry from a file that already has its content: a hard link to a RUN's own
//! output ([`LinkFrom::Adopt`]) or to another snapshot's file ([`LinkFrom::Share`]), so the
//! file is not created a second time.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags};

use super::{ApplyError, Meta, State, read_full};

/// Files that already exist with a layer's content, so [`apply`](super::apply) can hard-link
/// them instead of creating them again (an inode costs more than a directory entry).
#[derive(Debug, Clone)]
pub enum LinkFrom {
    /// The tree the layer was written from (a RUN's upper dir or full tree), whose regular
    /// files are discarded after: a regular file entry becomes a hard link to the file at the
    /// same path there, when that is a regular file of the entry's size, and gets the entry's
    /// metadata and exactly its xattrs.
    Adopt(PathBuf),
    /// Files that must not change (another snapshot's, for a `COPY --from` or the previous
    /// build of a COPY), by entry path (as written in the layer, without `./`): an entry is
    /// linked to its file only when that is a regular file that already has the entry's
    /// size, mode, owner, mtime (whole seconds) and exactly its xattrs (and, under `verify`,
    /// its content), and no earlier entry of this layer was linked to the same file
    /// (separate entries stay separate files). Nothing of the file is changed.
    Share {
        /// The files, by entry path.
        files: HashMap<Vec<u8>, PathBuf>,
        /// Also compare each file's content with the entry's before linking it (for files
        /// that are only likely to be the same: an earlier build's copy of a context file).
        verify: bool,
    },
}

/// What [`State::share`] made of an entry.
pub(super) enum Shared {
    /// A hard link to the shared file.
    Linked,
    /// A file of its own (the content differed).
    Written,
}

impl State<'_> {
    /// Makes `base` in `parent` from the file [`LinkFrom::Share`] has for `path`, when that
    /// file already is what the entry describes: a hard link to it. Under `verify` its
    /// content is compared with the entry's as the entry is read; when they differ the file
    /// is written (the part read so far from the shared file, which was equal, the rest from
    /// the entry). `None` when nothing was shared, and then nothing of the entry was read.
    pub(super) fn share<R: Read>(
        &mut self,
        e: &mut tar::Entry<'_, R>,
        path: &[u8],
        parent: &OwnedFd,
        base: &OsStr,
        meta: &Meta,
        name: &str,
    ) -> Result<Option<Shared>, ApplyError> {
        let Some(LinkFrom::Share { files, verify }) = &self.opts.link_from else {
            return Ok(None);
        };
        let verify = *verify;
        let Some(file) = files.get(path) else {
            return Ok(None);
        };
        let size = e.size();
        let Ok(st) = rustix::fs::lstat(file) else {
            return Ok(None);
        };
        let (uid, gid) = if self.opts.same_owner {
            (meta.uid, meta.gid)
        } else {
            (
                u64::from(rustix::process::geteuid().as_raw()),
                u64::from(rustix::process::getegid().as_raw()),
            )
        };
        let same = FileType::from_raw_mode(st.st_mode) == FileType::RegularFile
            && u64::try_from(st.st_size).ok() == Some(size)
            && st.st_mode & 0o7777 == meta.mode
            && u64::from(st.st_uid) == uid
            && u64::from(st.st_gid) == gid
            && st.st_mtime == meta.mtime
            && st.st_mtime_nsec == 0
            && same_xattrs(file, if self.opts.xattrs { &meta.xattrs } else { &[] });
        let id = (st.st_dev, st.st_ino);
        if !same || self.shared.contains(&id) {
            return Ok(None);
        }
        let fail = |source: io::Error| ApplyError::Entry {
            entry: name.to_owned(),
            source,
        };
        if verify {
            let Ok(mut theirs) = File::open(file) else {
                return Ok(None);
            };
            let mut ours = vec![0_u8; 256 * 1024];
            let mut other = vec![0_u8; 256 * 1024];
            let mut equal: u64 = 0;
            loop {
                let n = read_full(e, &mut ours).map_err(|source| ApplyError::Read { source })?;
                if n == 0 {
                    break;
                }
                let m = read_full(&mut theirs, &mut other[..n]).map_err(fail)?;
                if m != n || ours[..n] != other[..n] {
                    // Different after `equal` bytes: write the file, the equal part from theirs.
                    let mut out = Self::create(parent, base).map_err(fail)?;
                    io::Seek::rewind(&mut theirs).map_err(fail)?;
                    io::copy(&mut io::Read::take(&mut theirs, equal), &mut out).map_err(fail)?;
                    self.stats.bytes += equal;
                    self.write_data(e, &mut out, equal, &ours[..n], name)?;
                    self.stats.created += 1;
                    self.finish_fd(out.as_fd(), meta).map_err(fail)?;
                    return Ok(Some(Shared::Written));
                }
                equal += n as u64;
            }
            if equal != size {
                return Err(ApplyError::Truncated {
                    entry: name.to_owned(),
                    expected: size,
                    got: equal,
                });
            }
        }
        // Across filesystems, or past the link limit, it fails and the file is written.
        if rustix::fs::linkat(rustix::fs::CWD, file, parent, base, AtFlags::empty()).is_err() {
            if !verify {
                return Ok(None);
            }
            // The entry was read, and found equal to the shared file: copy that.
            let mut out = Self::create(parent, base).map_err(fail)?;
            io::copy(&mut File::open(file).map_err(fail)?, &mut out).map_err(fail)?;
            self.stats.bytes += size;
            self.stats.created += 1;
            self.finish_fd(out.as_fd(), meta).map_err(fail)?;
            return Ok(Some(Shared::Written));
        }
        self.shared.insert(id);
        Ok(Some(Shared::Linked))
    }

    /// Hard-links `base` in `parent` to the file at `path` under [`LinkFrom::Adopt`],
    /// when that is a regular file of `size` bytes; whether it did.
    pub(super) fn link(&self, path: &[u8], parent: &OwnedFd, base: &OsStr, size: u64) -> bool {
        let Some(link_root) = &self.link_root else {
            return false;
        };
        // The source is resolved inside its tree and never through a symlink.
        let Ok(src) = rustix::fs::openat2(
            link_root,
            OsStr::from_bytes(path),
            OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
            rustix::fs::ResolveFlags::BENEATH
                | rustix::fs::ResolveFlags::NO_SYMLINKS
                | rustix::fs::ResolveFlags::NO_MAGICLINKS,
        ) else {
            return false;
        };
        match rustix::fs::fstat(&src) {
            Ok(st)
                if FileType::from_raw_mode(st.st_mode) == FileType::RegularFile
                    && u64::try_from(st.st_size).ok() == Some(size) => {}
            _ => return false,
        }
        // `linkat` of an `O_PATH` descriptor through /proc needs no capability (unlike
        // `AT_EMPTY_PATH`); across filesystems it fails and the file is written instead.
        let proc = format!("/proc/self/fd/{}", src.as_raw_fd());
        rustix::fs::linkat(
            rustix::fs::CWD,
            proc.as_str(),
            parent,
            base,
            AtFlags::SYMLINK_FOLLOW,
        )
        .is_ok()
    }
}

/// Removes the xattrs of `fd` that `meta` does not name (overlayfs's `trusted.overlay.*` on a
/// linked file, say); what cannot be listed or removed is left.
pub(super) fn drop_other_xattrs(fd: &OwnedFd, meta: &Meta) {
    let mut buf = vec![0_u8; 4096];
    let Ok(n) = rustix::fs::flistxattr(fd, &mut buf) else {
        return;
    };
    for name in buf[..n].split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let keep = meta.xattrs.iter().any(|(k, _)| k.as_bytes() == name);
        if !keep {
            let _ = rustix::fs::fremovexattr(fd, OsStr::from_bytes(name));
        }
    }
}

/// Whether `file` has exactly the extended attributes `want` (names and values).
fn same_xattrs(file: &Path, want: &[(String, Vec<u8>)]) -> bool {
    let mut names = vec![0_u8; 4096];
    let Ok(n) = rustix::fs::llistxattr(file, &mut names) else {
        return false;
    };
    let have: Vec<&[u8]> = names[..n]
        .split(|b| *b == 0)
        .filter(|n| !n.is_empty())
        .collect();
    if have.len() != want.len() {
        return false;
    }
    let mut value = vec![0_u8; 65536];
    want.iter().all(|(k, v)| {
        have.contains(&k.as_bytes())
            && rustix::fs::lgetxattr(file, k.as_str(), &mut value)
                .is_ok_and(|n| value[..n] == v[..])
    })
}
