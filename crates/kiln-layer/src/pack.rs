//! Packing a directory tree into a deterministic layer.

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::compress::Compression;
use crate::entry::{Entry, EntryKind};
use crate::writer::{LayerDigests, LayerWriter, PackError};

/// How [`pack_dir`] writes a layer.
#[derive(Debug, Clone, Default)]
pub struct PackOptions {
    /// Compression of the output; the default is gzip level 6.
    pub compression: Compression,
    /// Clamp mtimes to this many seconds since the epoch. The default, `None`, keeps each
    /// file's own mtime (still reproducible: no build time leaks into the layer).
    pub source_date_epoch: Option<i64>,
}

/// `SOURCE_DATE_EPOCH` from the environment, when set to an integer.
pub fn source_date_epoch_from_env() -> Option<i64> {
    std::env::var("SOURCE_DATE_EPOCH").ok()?.trim().parse().ok()
}

/// Packs everything under `root` (not `root` itself) into a layer written to `out`.
///
/// Entries come in depth-first order with each directory's children sorted by name bytes, so
/// the same tree always gives the same bytes. A file with several links is written once, at
/// its first path in that order; its other paths become hard links to it. Extended attributes
/// are kept except `security.selinux` (a host label, not image content). Memory stays bounded
/// by the largest directory and the number of multiply-linked files, not the tree size.
pub fn pack_dir<W: Write>(
    root: &Path,
    out: W,
    opts: &PackOptions,
) -> Result<(W, LayerDigests), PackError> {
    let mut writer =
        LayerWriter::new(out, opts.compression)?.source_date_epoch(opts.source_date_epoch);
    let mut links = HashMap::new();
    walk(root, Path::new(""), &mut writer, &mut links)?;
    writer.finish()
}

fn read_err(path: &Path) -> impl FnOnce(io::Error) -> PackError + '_ {
    move |source| PackError::Read {
        path: path.to_owned(),
        source,
    }
}

fn walk<W: Write>(
    dir: &Path,
    rel: &Path,
    writer: &mut LayerWriter<W>,
    links: &mut HashMap<(u64, u64), PathBuf>,
) -> Result<(), PackError> {
    let mut names: Vec<_> = fs::read_dir(dir)
        .map_err(read_err(dir))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<Result<_, _>>()
        .map_err(read_err(dir))?;
    names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    for name in names {
        let abs = dir.join(&name);
        let rel = rel.join(&name);
        let meta = fs::symlink_metadata(&abs).map_err(read_err(&abs))?;
        let ft = meta.file_type();
        let kind = if ft.is_dir() {
            EntryKind::Dir
        } else if ft.is_symlink() {
            EntryKind::Symlink(fs::read_link(&abs).map_err(read_err(&abs))?)
        } else if meta.nlink() > 1 && !ft.is_dir() {
            if let Some(first) = links.get(&(meta.dev(), meta.ino())) {
                EntryKind::Hardlink(first.clone())
            } else {
                links.insert((meta.dev(), meta.ino()), rel.clone());
                kind_of(ft, meta.rdev())
            }
        } else {
            kind_of(ft, meta.rdev())
        };
        let entry = Entry {
            path: rel.clone(),
            size: if kind == EntryKind::File {
                meta.len()
            } else {
                0
            },
            kind,
            mode: meta.mode() & 0o7777,
            uid: u64::from(meta.uid()),
            gid: u64::from(meta.gid()),
            mtime: meta.mtime(),
            xattrs: read_xattrs(&abs)?,
        };
        if entry.kind == EntryKind::File {
            let mut f = File::open(&abs).map_err(read_err(&abs))?;
            writer
                .append(&entry, Some(&mut f))
                .map_err(|e| with_path(e, &abs))?;
        } else {
            writer.append(&entry, None)?;
        }
        if entry.kind == EntryKind::Dir {
            walk(&abs, &rel, writer, links)?;
        }
    }
    Ok(())
}

/// Errors about a file name its host path rather than its layer path.
fn with_path(e: PackError, abs: &Path) -> PackError {
    match e {
        PackError::Read { source, .. } => PackError::Read {
            path: abs.to_owned(),
            source,
        },
        PackError::Changed { expected, .. } => PackError::Changed {
            path: abs.to_owned(),
            expected,
        },
        other @ PackError::Write { .. } => other,
    }
}

fn kind_of(ft: fs::FileType, rdev: u64) -> EntryKind {
    let (major, minor) = (rustix::fs::major(rdev), rustix::fs::minor(rdev));
    if ft.is_char_device() {
        EntryKind::CharDevice { major, minor }
    } else if ft.is_block_device() {
        EntryKind::BlockDevice { major, minor }
    } else if ft.is_fifo() {
        EntryKind::Fifo
    } else {
        // Sockets cannot be archived meaningfully; like tar, treat anything else as a file.
        EntryKind::File
    }
}

fn read_xattrs(path: &Path) -> Result<BTreeMap<String, Vec<u8>>, PackError> {
    let mut out = BTreeMap::new();
    let mut list = vec![0u8; 4096];
    let n = loop {
        match rustix::fs::llistxattr(path, &mut list[..]) {
            Ok(n) => break n,
            Err(rustix::io::Errno::RANGE) => list.resize(list.len() * 4, 0),
            Err(rustix::io::Errno::NOTSUP | rustix::io::Errno::PERM) => return Ok(out),
            Err(e) => {
                return Err(PackError::Read {
                    path: path.to_owned(),
                    source: e.into(),
                });
            }
        }
    };
    for name in list[..n].split(|&b| b == 0).filter(|n| !n.is_empty()) {
        let Ok(name) = std::str::from_utf8(name) else {
            continue;
        };
        if name == "security.selinux" {
            continue;
        }
        let mut value = vec![0u8; 256];
        let len = loop {
            match rustix::fs::lgetxattr(path, name, &mut value[..]) {
                Ok(len) => break len,
                Err(rustix::io::Errno::RANGE) => value.resize(value.len() * 4, 0),
                Err(e) => {
                    return Err(PackError::Read {
                        path: path.to_owned(),
                        source: e.into(),
                    });
                }
            }
        };
        value.truncate(len);
        out.insert(name.to_owned(), value);
    }
    Ok(out)
}
