//! Layer compression: parallel gzip, zstd, or none; and detection when reading.
//!
//! gzip output is made of independent gzip members, one per [`GZIP_CHUNK`] bytes of input,
//! compressed on worker threads and written in order (the approach of pigz's independent
//! mode). Concatenated members are a valid gzip stream (RFC 1952 section 2.2) that every layer
//! reader (Go's `compress/gzip`, containerd, skopeo, GNU gzip) decompresses as one. The output
//! depends only on the input, the level and `GZIP_CHUNK`, never on the number of threads, so
//! digests are stable across machines. Each member has a fixed header (mtime 0, no name, OS
//! byte 255).

use std::collections::VecDeque;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use flate2::GzBuilder;
use flate2::write::GzEncoder;

/// How a layer is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// A plain tar (`application/vnd.oci.image.layer.v1.tar`).
    None,
    /// gzip at `level` 0-9 (`...tar+gzip`). The default is level 6, as `gzip` and Docker use.
    Gzip {
        /// Deflate level, 0 (store) to 9 (best).
        level: u32,
    },
    /// zstd at `level` 1-22 (`...tar+zstd`).
    Zstd {
        /// zstd level; 3 is zstd's own default.
        level: i32,
    },
}

impl Default for Compression {
    fn default() -> Self {
        Self::Gzip { level: 6 }
    }
}

/// Input bytes per gzip member. Part of the output format: changing it changes digests.
pub const GZIP_CHUNK: usize = 1 << 20;

/// A writer that compresses into `W` with the chosen [`Compression`].
pub struct Compressor<W: Write> {
    inner: Inner<W>,
}

enum Inner<W: Write> {
    None(W),
    Gzip(ParallelGzip<W>),
    Zstd(zstd::Encoder<'static, W>),
}

impl<W: Write> Compressor<W> {
    /// Starts compressing into `out`.
    pub fn new(out: W, compression: Compression) -> io::Result<Self> {
        let inner = match compression {
            Compression::None => Inner::None(out),
            Compression::Gzip { level } => Inner::Gzip(ParallelGzip::new(out, level.min(9))),
            Compression::Zstd { level } => Inner::Zstd(zstd::Encoder::new(out, level)?),
        };
        Ok(Self { inner })
    }

    /// Flushes the last block and returns the inner writer.
    pub fn finish(self) -> io::Result<W> {
        match self.inner {
            Inner::None(w) => Ok(w),
            Inner::Gzip(g) => g.finish(),
            Inner::Zstd(z) => z.finish(),
        }
    }
}

impl<W: Write> Write for Compressor<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.inner {
            Inner::None(w) => w.write(buf),
            Inner::Gzip(g) => g.write(buf),
            Inner::Zstd(z) => z.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.inner {
            Inner::None(w) => w.flush(),
            // Members are only complete at chunk boundaries; flushing mid-chunk would change
            // the output, so flush only the inner writer.
            Inner::Gzip(g) => g.out.flush(),
            Inner::Zstd(z) => z.flush(),
        }
    }
}

type Job = (Vec<u8>, SyncSender<io::Result<Vec<u8>>>);

/// gzip with independent members compressed on worker threads.
struct ParallelGzip<W: Write> {
    out: W,
    level: u32,
    buf: Vec<u8>,
    jobs: Option<SyncSender<Job>>,
    workers: Vec<JoinHandle<()>>,
    pending: VecDeque<Receiver<io::Result<Vec<u8>>>>,
    max_pending: usize,
    members: u64,
}

impl<W: Write> ParallelGzip<W> {
    fn new(out: W, level: u32) -> Self {
        let threads = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        let (tx, rx) = sync_channel::<Job>(threads);
        let rx = Arc::new(Mutex::new(rx));
        let workers = (0..threads)
            .map(|_| {
                let rx = Arc::clone(&rx);
                std::thread::spawn(move || {
                    loop {
                        let job = rx.lock().map_or(None, |r| r.recv().ok());
                        let Some((input, reply)) = job else { break };
                        let _ = reply.send(gzip_member(&input, level));
                    }
                })
            })
            .collect();
        Self {
            out,
            level,
            buf: Vec::with_capacity(GZIP_CHUNK),
            jobs: Some(tx),
            workers,
            pending: VecDeque::new(),
            max_pending: threads * 2,
            members: 0,
        }
    }

    fn submit(&mut self) -> io::Result<()> {
        let input = std::mem::replace(&mut self.buf, Vec::with_capacity(GZIP_CHUNK));
        let (reply_tx, reply_rx) = sync_channel(1);
        self.members += 1;
        let job = (input, reply_tx);
        let unsent = match &self.jobs {
            Some(jobs) => jobs.send(job).err().map(|e| e.0),
            None => Some(job),
        };
        // No worker left (should not happen): compress inline.
        if let Some((input, reply)) = unsent {
            reply
                .send(gzip_member(&input, self.level))
                .map_err(io::Error::other)?;
        }
        self.pending.push_back(reply_rx);
        while self.pending.len() > self.max_pending {
            self.write_oldest()?;
        }
        Ok(())
    }

    fn write_oldest(&mut self) -> io::Result<()> {
        if let Some(rx) = self.pending.pop_front() {
            let member = rx
                .recv()
                .map_err(|_| io::Error::other("gzip worker thread died"))??;
            self.out.write_all(&member)?;
        }
        Ok(())
    }

    fn finish(mut self) -> io::Result<W> {
        if !self.buf.is_empty() || self.members == 0 {
            self.submit()?;
        }
        while !self.pending.is_empty() {
            self.write_oldest()?;
        }
        self.jobs = None;
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
        self.out.flush()?;
        Ok(self.out)
    }
}

impl<W: Write> Write for ParallelGzip<W> {
    fn write(&mut self, mut data: &[u8]) -> io::Result<usize> {
        let total = data.len();
        while !data.is_empty() {
            let room = GZIP_CHUNK - self.buf.len();
            let take = room.min(data.len());
            self.buf.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.buf.len() == GZIP_CHUNK {
                self.submit()?;
            }
        }
        Ok(total)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

// No Drop: when a `ParallelGzip` is dropped unfinished, its job sender goes with it and the
// workers end on their own after their current chunk.

fn gzip_member(input: &[u8], level: u32) -> io::Result<Vec<u8>> {
    // A bare GzBuilder fixes the header: mtime 0, no file name, no extra field.
    let mut enc: GzEncoder<Vec<u8>> = GzBuilder::new().write(
        Vec::with_capacity(input.len() / 2 + 64),
        flate2::Compression::new(level),
    );
    enc.write_all(input)?;
    enc.finish()
}

/// The compression a stream starts with, judged by its magic bytes.
pub fn detect(prefix: &[u8]) -> Compression {
    if prefix.starts_with(&[0x1f, 0x8b]) {
        Compression::default()
    } else if prefix.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Compression::Zstd { level: 3 }
    } else {
        Compression::None
    }
}

/// Wraps `reader` in the decompressor its magic bytes call for (gzip, including multi-member
/// gzip; zstd; or none). Returns the detected compression too.
pub fn decompress<'a, R: Read + 'a>(reader: R) -> io::Result<(Box<dyn Read + 'a>, Compression)> {
    let mut br = BufReader::with_capacity(256 * 1024, reader);
    let kind = detect(br.fill_buf()?);
    let r: Box<dyn Read + 'a> = match kind {
        Compression::None => Box::new(br),
        Compression::Gzip { .. } => Box::new(flate2::bufread::MultiGzDecoder::new(br)),
        Compression::Zstd { .. } => Box::new(zstd::Decoder::with_buffer(br)?),
    };
    Ok((r, kind))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(data: &[u8], c: Compression) -> Vec<u8> {
        let mut w = Compressor::new(Vec::new(), c).unwrap();
        w.write_all(data).unwrap();
        let out = w.finish().unwrap();
        let mut back = Vec::new();
        {
            let (mut r, detected) = decompress(&out[..]).unwrap();
            assert_eq!(
                std::mem::discriminant(&detected),
                std::mem::discriminant(&c)
            );
            r.read_to_end(&mut back).unwrap();
        }
        assert_eq!(back, data);
        out
    }

    #[test]
    fn gzip_multi_member_roundtrip_and_determinism() {
        let data: Vec<u8> = (0..(GZIP_CHUNK * 3 + 17))
            .map(|i| u8::try_from(i % 251).unwrap())
            .collect();
        let a = roundtrip(&data, Compression::default());
        let b = roundtrip(&data, Compression::default());
        assert_eq!(a, b);
        roundtrip(b"", Compression::default());
        roundtrip(&data, Compression::Zstd { level: 3 });
        roundtrip(&data, Compression::None);
    }
}
