//! The streaming layer writer: entries in, a compressed tar out, digests computed on the way.

use std::io::{self, Read, Write};
use std::path::PathBuf;

use crate::compress::{Compression, Compressor};
use crate::digest::{Digest, HashingWriter};
use crate::entry::{Entry, EntryKind};
use crate::header::{self, BLOCK};

/// Errors of writing a layer.
#[derive(Debug, thiserror::Error)]
pub enum PackError {
    /// A source file or directory could not be read.
    #[error("cannot read `{path}`")]
    Read {
        /// The file that failed.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A file's length differs from the size its entry announced (it changed while packed).
    #[error("`{path}` changed while it was packed: expected {expected} bytes")]
    Changed {
        /// The file that changed.
        path: PathBuf,
        /// The size announced in the header.
        expected: u64,
    },
    /// The output could not be written.
    #[error("cannot write the layer")]
    Write {
        /// The cause.
        #[source]
        source: io::Error,
    },
}

fn write_err(source: io::Error) -> PackError {
    PackError::Write { source }
}

/// The digests and sizes of a finished layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerDigests {
    /// Digest of the uncompressed tar: the image config's `rootfs.diff_ids` entry.
    pub diff_id: Digest,
    /// Length of the uncompressed tar.
    pub uncompressed_size: u64,
    /// Digest of the bytes written out (the blob): the manifest's layer digest.
    pub digest: Digest,
    /// Length of the bytes written out.
    pub size: u64,
    /// How the blob is compressed.
    pub compression: Compression,
}

type Stack<W> = HashingWriter<Compressor<Tally<W>>>;

/// What a compressed stream's bytes are checked by: hashed and counted, or, when the stream is
/// not compressed (its bytes are the tar's, hashed already), only counted.
enum Tally<W> {
    Hash(HashingWriter<W>),
    Count(W, u64),
}

impl<W: Write> Tally<W> {
    fn new(out: W, compression: Compression) -> Self {
        match compression {
            Compression::None => Self::Count(out, 0),
            _ => Self::Hash(HashingWriter::new(out)),
        }
    }

    /// The writer, the digest (when hashed) and the byte count.
    fn finish(self) -> (W, Option<Digest>, u64) {
        match self {
            Self::Hash(h) => {
                let (w, d, n) = h.finish();
                (w, Some(d), n)
            }
            Self::Count(w, n) => (w, None, n),
        }
    }
}

impl<W: Write> Write for Tally<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Self::Hash(h) => h.write(buf),
            Self::Count(w, n) => {
                let k = w.write(buf)?;
                *n += k as u64;
                Ok(k)
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Self::Hash(h) => h.flush(),
            Self::Count(w, _) => w.flush(),
        }
    }
}

/// Writes a layer tar stream entry by entry.
///
/// The caller appends entries in the order they should appear; for a deterministic layer that
/// is sorted order with each directory before its contents (what [`crate::pack_dir`] does).
/// Hard links must name an entry appended earlier. Headers follow the fixed rules of
/// [`crate::header`]; mtimes later than `source_date_epoch` (when set) are clamped to it.
pub struct LayerWriter<W: Write> {
    out: Stack<W>,
    header: Vec<u8>,
    buf: Vec<u8>,
    source_date_epoch: Option<i64>,
    compression: Compression,
}

impl<W: Write> LayerWriter<W> {
    /// Starts a layer written to `out` with `compression`.
    pub fn new(out: W, compression: Compression) -> Result<Self, PackError> {
        let compressor =
            Compressor::new(Tally::new(out, compression), compression).map_err(write_err)?;
        Ok(Self {
            out: HashingWriter::new(compressor),
            header: Vec::with_capacity(2 * BLOCK),
            buf: vec![0; 256 * 1024],
            source_date_epoch: None,
            compression,
        })
    }

    /// Clamps every mtime to at most `epoch` (seconds), as `SOURCE_DATE_EPOCH` asks. The
    /// default, `None`, keeps the entries' own mtimes.
    #[must_use]
    pub fn source_date_epoch(mut self, epoch: Option<i64>) -> Self {
        self.source_date_epoch = epoch;
        self
    }

    /// Appends one entry. For [`EntryKind::File`], `data` must yield exactly `entry.size`
    /// bytes; other kinds take no data.
    pub fn append(&mut self, entry: &Entry, data: Option<&mut dyn Read>) -> Result<(), PackError> {
        let mtime = match self.source_date_epoch {
            Some(epoch) => entry.mtime.min(epoch),
            None => entry.mtime,
        };
        self.header.clear();
        header::encode(entry, mtime, &mut self.header);
        self.out.write_all(&self.header).map_err(write_err)?;
        if entry.kind != EntryKind::File {
            return Ok(());
        }
        let mut left = entry.size;
        if let Some(data) = data {
            while left > 0 {
                let want =
                    usize::try_from(left.min(self.buf.len() as u64)).unwrap_or(self.buf.len());
                let n = match data.read(&mut self.buf[..want]) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(source) => {
                        return Err(PackError::Read {
                            path: entry.path.clone(),
                            source,
                        });
                    }
                };
                self.out.write_all(&self.buf[..n]).map_err(write_err)?;
                left -= n as u64;
            }
            // A file that grew is as much a change as one that shrank.
            let grew = left == 0 && matches!(data.read(&mut self.buf[..1]), Ok(n) if n > 0);
            if left > 0 || grew {
                return Err(PackError::Changed {
                    path: entry.path.clone(),
                    expected: entry.size,
                });
            }
        } else if left > 0 {
            return Err(PackError::Changed {
                path: entry.path.clone(),
                expected: entry.size,
            });
        }
        let rem = usize::try_from(entry.size % BLOCK as u64).unwrap_or(0);
        if rem != 0 {
            self.out
                .write_all(&[0u8; BLOCK][..BLOCK - rem])
                .map_err(write_err)?;
        }
        Ok(())
    }

    /// Writes the end-of-archive marker (two zero blocks), finishes compression and returns
    /// the output with the layer's digests.
    pub fn finish(mut self) -> Result<(W, LayerDigests), PackError> {
        self.out.write_all(&[0u8; 2 * BLOCK]).map_err(write_err)?;
        finish_stack(self.out, self.compression)
    }
}

fn finish_stack<W: Write>(
    out: Stack<W>,
    compression: Compression,
) -> Result<(W, LayerDigests), PackError> {
    let (compressor, diff_id, uncompressed_size) = out.finish();
    let tally = compressor.finish().map_err(write_err)?;
    let (w, digest, size) = tally.finish();
    // An uncompressed blob is the tar itself.
    let digest = digest.unwrap_or_else(|| diff_id.clone());
    Ok((
        w,
        LayerDigests {
            diff_id,
            uncompressed_size,
            digest,
            size,
            compression,
        },
    ))
}

/// Compresses an existing tar stream as it is (no re-normalization), computing the layer's
/// digests in the same pass, as `docker import` keeps the tarball it is given.
///
/// `reader` must yield an uncompressed tar; callers that accept compressed input first pass it
/// through [`crate::decompress`].
pub fn compress_tar<R: Read, W: Write>(
    mut reader: R,
    out: W,
    compression: Compression,
) -> Result<(W, LayerDigests), PackError> {
    let compressor =
        Compressor::new(Tally::new(out, compression), compression).map_err(write_err)?;
    let mut stack = HashingWriter::new(compressor);
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(source) => {
                return Err(PackError::Read {
                    path: PathBuf::from("-"),
                    source,
                });
            }
        };
        stack.write_all(&buf[..n]).map_err(write_err)?;
    }
    finish_stack(stack, compression)
}
