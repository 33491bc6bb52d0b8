//! Packing a directory tree into a deterministic layer.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
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

/// Packs everything under `root` (not `root` itself) into a layer written to `out`.
///
/// Entries come in depth-first order with each directory's children sorted by name bytes, so
/// the same tree always gives the same bytes. A file with several links is written once, at
/// its first path in that order; its other paths become hard links to it. Extended attributes
/// are kept except those [`crate::entry::read_xattrs`] leaves out (a host's `security.selinux`
/// label, overlayfs's `trusted.overlay.*` bookkeeping). Memory stays bounded
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
        let mut entry = Entry::from_host(rel.clone(), &abs, &meta).map_err(read_err(&abs))?;
        if meta.nlink() > 1 && !meta.is_dir() && !meta.is_symlink() {
            let key = (meta.dev(), meta.ino());
            if let Some(first) = links.get(&key) {
                entry.kind = EntryKind::Hardlink(first.clone());
                entry.size = 0;
            } else {
                links.insert(key, rel.clone());
            }
        }
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
