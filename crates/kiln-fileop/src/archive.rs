//! ADD of local tar archives: detection by content (gzip, bzip2, xz, zstd or plain, never by
//! name) and extraction into the destination, as BuildKit's `unpack` over go-archive's
//! `Untar` does.
//!
//! Rules kept from BuildKit: a source is an archive when it is a regular file (after
//! following symlinks) whose decompressed stream yields one valid tar header; an empty tar is
//! copied as a file. The destination (the whole destination path, trailing `/` or not) is
//! created `0755` with the `--chown` owner. Entries keep the header's mode, mtime and owner
//! (all owners become the `--chown` user when given); `--chmod` does not apply to them.
//! Missing parents inside the archive are created `0755`, owned by root. A later entry
//! replaces an earlier one of the same name. A `.` entry leaves the destination alone.
//! Names and link targets are confined to the destination as BuildKit confines them, by
//! extracting in a chroot of it (go-archive's `chrootarchive`): symlinks met on the way resolve
//! as if the destination were `/`, and a name or hard link target that climbs out with `..`
//! stops at that root (`../x` is `x`). A symlink's target is stored as written: it is only
//! text until something follows it, and whatever follows it in kiln resolves it inside the
//! root (`symlink -> ../tmp/t` at `/` leads to `/tmp/t`).
//!
//! Deviations: extended attributes and whiteout-looking names are not special-cased
//! (xattrs are dropped); a hard link must name an entry of the same archive.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use kiln_layer::{Entry, EntryKind};
use tar::EntryType;

use crate::error::FileOpError;
use crate::gopath;
use crate::plan::{Data, Origin, Planner, file_stat};
use crate::view::{Kind, resolve};

/// How an archive is compressed, detected from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveCompression {
    /// A plain tar.
    None,
    /// gzip (`1f 8b`).
    Gzip,
    /// bzip2 (`BZh`).
    Bzip2,
    /// xz (`fd 37 7a 58 5a 00`).
    Xz,
    /// zstd (`28 b5 2f fd`).
    Zstd,
}

/// Detects the compression of `magic` (the first bytes of a file).
pub fn detect_compression(magic: &[u8]) -> ArchiveCompression {
    if magic.starts_with(&[0x1f, 0x8b]) {
        ArchiveCompression::Gzip
    } else if magic.starts_with(b"BZh") {
        ArchiveCompression::Bzip2
    } else if magic.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        ArchiveCompression::Xz
    } else if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        ArchiveCompression::Zstd
    } else {
        ArchiveCompression::None
    }
}

/// Opens `reader` decompressed, whatever of the supported formats it is in.
pub fn decompressed<'a>(reader: impl Read + 'a) -> io::Result<Box<dyn Read + 'a>> {
    let mut br = BufReader::with_capacity(64 * 1024, reader);
    Ok(match detect_compression(br.fill_buf()?) {
        ArchiveCompression::None => Box::new(br),
        ArchiveCompression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(br)),
        ArchiveCompression::Bzip2 => Box::new(bzip2::bufread::MultiBzDecoder::new(br)),
        ArchiveCompression::Xz => Box::new(xz2::bufread::XzDecoder::new_multi_decoder(br)),
        ArchiveCompression::Zstd => Box::new(zstd::Decoder::with_buffer(br)?),
    })
}

/// Whether the file at host path `path` is a tar archive BuildKit would extract.
pub fn is_archive(path: &Path) -> bool {
    let Ok(file) = File::open(path) else {
        return false;
    };
    let Ok(r) = decompressed(file) else {
        return false;
    };
    let mut archive = tar::Archive::new(r);
    let Ok(mut entries) = archive.entries() else {
        return false;
    };
    matches!(entries.next(), Some(Ok(_)))
}

impl Planner<'_> {
    /// ADD of a matched local source: extracts it when it is an archive. `resolved` is the
    /// source with every symlink followed, `written` the path as matched (for messages).
    pub(crate) fn try_unpack_source(
        &mut self,
        resolved: &Path,
        written: &Path,
    ) -> Result<bool, FileOpError> {
        let root = self.inputs.source.expect("path sources need a source root");
        let Some(stat) = root.lstat(resolved)? else {
            return Ok(false);
        };
        let host = root.host_path(resolved);
        if stat.kind != Kind::File || !is_archive(&host) {
            return Ok(false);
        }
        let name = format!("/{}", written.display());
        let file = root.open(resolved)?;
        self.extract(file, &name)?;
        self.push_leaf(name, &stat, None);
        if let Some(leaf) = self.leaves.last_mut() {
            leaf.data = Data::Source(resolved.to_owned());
        }
        Ok(true)
    }

    /// ADD `--unpack=true` of a download at host path `path`.
    pub(crate) fn try_unpack_file(&mut self, path: &Path, url: &str) -> Result<bool, FileOpError> {
        if !is_archive(path) {
            return Ok(false);
        }
        let file = File::open(path).map_err(crate::error::read_err(path))?;
        let size = file.metadata().map_or(0, |m| m.len());
        self.extract(file, url)?;
        self.push_leaf(url.to_owned(), &file_stat(0o600, size, 0), None);
        if let Some(leaf) = self.leaves.last_mut() {
            leaf.data = Data::Scratch(path.to_owned());
        }
        Ok(true)
    }

    fn extract(&mut self, file: impl Read, archive: &str) -> Result<(), FileOpError> {
        let arch_err = |source: io::Error| FileOpError::Archive {
            archive: archive.to_owned(),
            source,
        };
        let dest = self.resolve_dest(&gopath::clean(&self.dest()))?;
        self.mkdir_all(&dest, 0o755)?;
        let scratch = self.scratch_dir()?;
        let mut tar = tar::Archive::new(decompressed(file).map_err(arch_err)?);
        for (index, entry) in tar.entries().map_err(arch_err)?.enumerate() {
            let mut entry = entry.map_err(arch_err)?;
            let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            let cleaned = gopath::clean(&format!("/{raw}"));
            let rel = cleaned.trim_start_matches('/');
            if rel == "." || rel.is_empty() {
                continue;
            }
            let rel = Path::new(rel);
            let parent = rel.parent().unwrap_or(Path::new(""));
            let parent = self.resolve_in_dest(&dest, parent)?;
            let name = rel.file_name().expect("cleaned names end in a name");
            let target = dest.join(&parent).join(name);
            // Missing parents: 0755, root, as go-archive's MkdirAllAndChownNew.
            let owner = self.owner;
            self.owner = None;
            let parents_made = self.mkdir_all(&dest.join(&parent), 0o755);
            self.owner = owner;
            parents_made?;

            let header = entry.header();
            let mode = header.mode().map_err(arch_err)? & 0o7777;
            let (uid, gid) = match self.owner {
                Some(o) => o,
                None => (
                    header.uid().map_err(arch_err)?,
                    header.gid().map_err(arch_err)?,
                ),
            };
            let mtime = i64::try_from(header.mtime().map_err(arch_err)?).unwrap_or(i64::MAX);
            let kind = header.entry_type();
            let mut planned = Entry::new(target.clone(), EntryKind::Dir);
            planned.mode = mode;
            planned.uid = uid;
            planned.gid = gid;
            planned.mtime = mtime;
            match kind {
                // Over an existing directory too: the archive's metadata wins.
                EntryType::Directory => {
                    self.insert(planned, Data::None, Origin::Copied);
                }
                EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                    let path = scratch.join(format!("x{}-{index}", self.leaves.len()));
                    let mut out = File::create(&path).map_err(|source| FileOpError::Scratch {
                        path: path.clone(),
                        source,
                    })?;
                    let size = io::copy(&mut entry, &mut out).map_err(arch_err)?;
                    planned.kind = EntryKind::File;
                    planned.size = size;
                    self.insert(planned, Data::Scratch(path), Origin::Copied);
                }
                EntryType::Symlink => {
                    let link = entry
                        .link_name_bytes()
                        .map(|b| String::from_utf8_lossy(&b).into_owned())
                        .unwrap_or_default();
                    planned.kind = EntryKind::Symlink(PathBuf::from(link));
                    self.insert(planned, Data::None, Origin::Copied);
                }
                EntryType::Link => {
                    let link = entry
                        .link_name_bytes()
                        .map(|b| String::from_utf8_lossy(&b).into_owned())
                        .unwrap_or_default();
                    // Its parents resolve as the entry's own do: through symlinks of earlier
                    // layers or entries (`var/run -> /run`), inside the destination.
                    let cleaned = gopath::clean(&format!("/{link}"));
                    let link_rel = Path::new(cleaned.trim_start_matches('/'));
                    let source = match link_rel.file_name() {
                        Some(base) => {
                            let up = link_rel.parent().unwrap_or(Path::new(""));
                            dest.join(self.resolve_in_dest(&dest, up)?).join(base)
                        }
                        None => dest.clone(),
                    };
                    self.hard_link(&source, &target)
                        .ok_or_else(|| FileOpError::ArchiveLink {
                            archive: archive.to_owned(),
                            entry: raw.clone(),
                            target: link.clone(),
                        })?;
                }
                EntryType::Char | EntryType::Block => {
                    let major = header.device_major().ok().flatten().unwrap_or(0);
                    let minor = header.device_minor().ok().flatten().unwrap_or(0);
                    planned.kind = if kind == EntryType::Char {
                        EntryKind::CharDevice { major, minor }
                    } else {
                        EntryKind::BlockDevice { major, minor }
                    };
                    self.insert(planned, Data::None, Origin::Copied);
                }
                EntryType::Fifo => {
                    planned.kind = EntryKind::Fifo;
                    self.insert(planned, Data::None, Origin::Copied);
                }
                // PAX and GNU long-name records are folded into entries by `tar`; anything
                // else (global headers, volume labels) creates nothing, as in go-archive.
                _ => {}
            }
        }
        Ok(())
    }

    /// Resolves `rel` below `dest` as if `dest` were the root (go-archive's chroot).
    fn resolve_in_dest(&self, dest: &Path, rel: &Path) -> Result<PathBuf, FileOpError> {
        resolve(
            rel,
            true,
            &mut |p| self.dest_lstat(&dest.join(p)),
            &mut |p| self.dest_read_link(&dest.join(p)),
        )
    }

    /// Plans `target` as another name of the planned regular file `source`.
    fn hard_link(&mut self, source: &Path, target: &Path) -> Option<()> {
        let holder = self.entries.get(source)?;
        if holder.entry.kind != EntryKind::File {
            return None;
        }
        let group = if let Some(g) = holder.link_group {
            g
        } else {
            self.link_groups += 1;
            self.link_groups
        };
        let mut copy = holder.clone();
        self.entries.get_mut(source)?.link_group = Some(group);
        target.clone_into(&mut copy.entry.path);
        copy.link_group = Some(group);
        copy.origin = Origin::Copied;
        let (entry, data) = (copy.entry, copy.data);
        self.insert(entry, data, Origin::Copied);
        self.entries.get_mut(target)?.link_group = Some(group);
        Some(())
    }
}
