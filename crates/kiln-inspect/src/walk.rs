//! Reading a layer's tar headers, one entry at a time, without keeping the layer.
//!
//! Content bytes are skipped: with a seek on an uncompressed blob (kiln stores the layers it
//! builds uncompressed, so analysing them reads headers only), by decompressing past them
//! otherwise. Only [`Walk::hash`] reads content, to hash regular files (for `diff`).

use std::io::{self, BufReader, Read, Seek, SeekFrom};

use sha2::{Digest as _, Sha256};

/// What a layer entry is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link.
    Symlink,
    /// A hard link to another path of the same layer.
    Hardlink,
    /// A character device.
    CharDevice,
    /// A block device.
    BlockDevice,
    /// A named pipe.
    Fifo,
}

impl Kind {
    /// A one-word name (`file`, `dir`, `symlink` ...).
    pub fn name(self) -> &'static str {
        match self {
            Self::File => "file",
            Self::Dir => "dir",
            Self::Symlink => "symlink",
            Self::Hardlink => "hardlink",
            Self::CharDevice => "char-device",
            Self::BlockDevice => "block-device",
            Self::Fifo => "fifo",
        }
    }
}

/// The metadata of one written path, as its tar header gives it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Meta {
    /// What it is.
    pub kind: Kind,
    /// Content length of a regular file (the real size of a sparse one); 0 for anything else.
    pub size: u64,
    /// Permission bits with setuid, setgid and sticky.
    pub mode: u32,
    /// Numeric owner.
    pub uid: u64,
    /// Numeric group.
    pub gid: u64,
    /// Modification time, whole seconds since the epoch.
    pub mtime: u64,
    /// A symlink's target or a hard link's source, verbatim.
    pub link: Option<Box<[u8]>>,
    /// SHA-256 of a regular file's content, when the walk hashes ([`Walk::hash`]).
    pub digest: Option<[u8; 32]>,
}

impl Meta {
    /// The bytes Docker counts for this entry in a layer's size: a file's length, a
    /// symlink's target length, nothing else.
    pub fn content_size(&self) -> u64 {
        match self.kind {
            Kind::File => self.size,
            Kind::Symlink => self.link.as_ref().map_or(0, |l| l.len() as u64),
            _ => 0,
        }
    }
}

/// One entry of a layer, its path normalized (relative, no `./`, no trailing `/`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// The path is written.
    Write(Meta),
    /// `.wh.NAME`: the path (`NAME`'s) is deleted from the layers below.
    Whiteout,
    /// `.wh..wh..opq`: the directory (the path) hides everything the layers below put in it.
    Opaque,
}

/// An entry: a normalized path and what the layer does there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerEntry {
    /// The path, relative, `/`-separated, without `./` or a trailing `/` (whiteout prefixes
    /// removed: the path is the one deleted).
    pub path: Vec<u8>,
    /// What happens there.
    pub op: Op,
}

/// How to walk a layer.
#[derive(Clone, Copy, Debug, Default)]
pub struct Walk {
    /// Read and hash every regular file's content into [`Meta::digest`]. The default,
    /// `false`, reads headers only.
    pub hash: bool,
}

impl Walk {
    /// Walks the layer `file` (plain, gzip or zstd tar), calling `f` for each entry in order.
    /// An uncompressed layer is skipped through with seeks when not hashing.
    pub fn file<R: Read + Seek>(self, mut file: R, f: impl FnMut(LayerEntry)) -> io::Result<()> {
        let mut magic = [0u8; 4];
        let n = kiln_layer::read_full(&mut file, &mut magic)?;
        file.seek(SeekFrom::Start(0))?;
        let plain = matches!(
            kiln_layer::compress::detect(&magic[..n]),
            kiln_layer::Compression::None
        );
        if plain && !self.hash {
            let mut archive =
                tar::Archive::new(SeekBuf(BufReader::with_capacity(SKIP_BUFFER, file)));
            return walk_entries(archive.entries_with_seek()?, self, f);
        }
        self.reader(file, f)
    }

    /// Walks the layer stream `reader` (plain, gzip or zstd tar).
    pub fn reader<R: Read>(self, reader: R, f: impl FnMut(LayerEntry)) -> io::Result<()> {
        let (r, _) = kiln_layer::decompress(reader)?;
        let mut archive = tar::Archive::new(r);
        walk_entries(archive.entries()?, self, f)
    }
}

/// The read buffer of a walk that seeks: a header and a little more. Larger, and the reads
/// that fetch headers would bring most of the small files' content along (a 64 KiB buffer
/// over 20 KiB files reads every byte); smaller, and a PAX header takes two reads.
const SKIP_BUFFER: usize = 2048;

/// A buffered reader whose relative seeks stay in the buffer when they can: tar skips a small
/// file's content with a seek, and `BufReader::seek` would throw the buffer away each time.
struct SeekBuf<R>(BufReader<R>);

impl<R: Read> Read for SeekBuf<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl<R: Read + Seek> Seek for SeekBuf<R> {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        match pos {
            SeekFrom::Current(n) => {
                self.0.seek_relative(n)?;
                self.0.stream_position()
            }
            other => self.0.seek(other),
        }
    }
}

fn walk_entries<R: Read>(
    entries: tar::Entries<'_, R>,
    walk: Walk,
    mut f: impl FnMut(LayerEntry),
) -> io::Result<()> {
    for entry in entries {
        let mut entry = entry?;
        let header = entry.header();
        let kind = match header.entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                Kind::File
            }
            tar::EntryType::Directory => Kind::Dir,
            tar::EntryType::Symlink => Kind::Symlink,
            tar::EntryType::Link => Kind::Hardlink,
            tar::EntryType::Char => Kind::CharDevice,
            tar::EntryType::Block => Kind::BlockDevice,
            tar::EntryType::Fifo => Kind::Fifo,
            // PAX and GNU long-name records are folded into their entry by `tar`; anything
            // else (volume labels, unknown types) holds no file.
            _ => continue,
        };
        let raw = entry.path_bytes();
        let path = kiln_layer::entry::normalized_path(&raw);
        if path.is_empty() {
            // `./`: the root's own metadata, which no layer tool shows as a file.
            continue;
        }
        let (dir, base) = match path.iter().rposition(|&b| b == b'/') {
            Some(i) => (&path[..=i], &path[i + 1..]),
            None => (&b""[..], path),
        };
        if let Some(name) = base.strip_prefix(b".wh.") {
            let op = if name == b".wh..opq" {
                LayerEntry {
                    path: kiln_layer::entry::normalized_path(dir).to_vec(),
                    op: Op::Opaque,
                }
            } else if name.starts_with(b".wh.") {
                // Other AUFS metadata (`.wh..wh.plnk`): nothing a merged filesystem shows.
                continue;
            } else {
                LayerEntry {
                    path: [dir, name].concat(),
                    op: Op::Whiteout,
                }
            };
            f(op);
            continue;
        }
        let path = path.to_vec();
        let size = if kind == Kind::File {
            header
                .as_gnu()
                .filter(|_| header.entry_type() == tar::EntryType::GNUSparse)
                .and_then(|g| g.real_size().ok())
                .unwrap_or_else(|| entry.size())
        } else {
            0
        };
        let mode = header.mode()? & 0o7777;
        let uid = header.uid()?;
        let gid = header.gid()?;
        let mtime = header.mtime()?;
        let link = match kind {
            Kind::Symlink | Kind::Hardlink => entry.link_name_bytes().map(|l| {
                if kind == Kind::Hardlink {
                    kiln_layer::entry::normalized_path(&l).into()
                } else {
                    l.as_ref().into()
                }
            }),
            _ => None,
        };
        let digest = if walk.hash && kind == Kind::File {
            let mut h = Sha256::new();
            io::copy(&mut entry, &mut HashWriter(&mut h))?;
            Some(h.finalize().into())
        } else {
            None
        };
        f(LayerEntry {
            path,
            op: Op::Write(Meta {
                kind,
                size,
                mode,
                uid,
                gid,
                mtime,
                link,
                digest,
            }),
        });
    }
    Ok(())
}

struct HashWriter<'a>(&'a mut Sha256);

impl io::Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
