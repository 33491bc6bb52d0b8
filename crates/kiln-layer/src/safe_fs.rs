//! Filesystem operations that stay inside a root directory, whatever the names they are given.
//!
//! Every lookup goes through `openat2(2)` with `RESOLVE_IN_ROOT`: `..` and absolute symlinks are
//! resolved as if the root were `/`, so no name or link can reach outside it. Final components
//! are then handled with `*at` calls that do not follow symlinks. Linux 5.6 or later is needed.

use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::fs::{AtFlags, Dir, Mode, OFlags, ResolveFlags};

/// Opens a directory to serve as a root for the other functions.
pub fn open_root(path: &Path) -> io::Result<OwnedFd> {
    Ok(rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

/// Opens the directory at `rel` (bytes, `/`-separated) inside `root`, contained in it.
pub fn open_dir_in(root: &OwnedFd, rel: &[u8]) -> io::Result<OwnedFd> {
    let rel: &[u8] = if rel.is_empty() { b"." } else { rel };
    Ok(rustix::fs::openat2(
        root,
        OsStr::from_bytes(rel),
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    )?)
}

/// Opens the file `rel` under the directory `root` for reading; symlinks and `..` on the way
/// are resolved inside `root`, so an untrusted archive unpacked there cannot make kiln read a
/// host file through a planted link.
pub fn open_in_root(root: &Path, rel: &Path) -> io::Result<File> {
    let dir = open_root(root)?;
    let fd = rustix::fs::openat2(
        &dir,
        rel,
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    )?;
    Ok(File::from(fd))
}

/// Splits an archive path into components: a leading `/` and `.` components are dropped
/// (contained), `..` is refused (`None`).
pub fn components(path: &[u8]) -> Option<Vec<&[u8]>> {
    let mut out = Vec::new();
    for c in path.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => return None,
            c => out.push(c),
        }
    }
    Some(out)
}

/// Removes `name` in `dir` and, if it is a directory, everything below it. A missing `name` is
/// not an error. Symlinks are removed, never followed.
pub fn remove_all_at(dir: &OwnedFd, name: &[u8]) -> io::Result<()> {
    let name = OsStr::from_bytes(name);
    match rustix::fs::unlinkat(dir, name, AtFlags::empty()) {
        Ok(()) | Err(rustix::io::Errno::NOENT) => return Ok(()),
        Err(rustix::io::Errno::ISDIR | rustix::io::Errno::PERM) => {}
        Err(e) => return Err(e.into()),
    }
    let sub = rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    clear_dir(&sub, |_| false)?;
    rustix::fs::unlinkat(dir, name, AtFlags::REMOVEDIR)?;
    Ok(())
}

/// Removes every child of `dir` for which `keep` (given the child's name) is false.
pub fn clear_dir(dir: &OwnedFd, keep: impl Fn(&[u8]) -> bool) -> io::Result<()> {
    let mut names = Vec::new();
    let mut it = Dir::read_from(dir)?;
    while let Some(entry) = it.read() {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." && !keep(name) {
            names.push(name.to_vec());
        }
    }
    for name in names {
        remove_all_at(dir, &name)?;
    }
    Ok(())
}
