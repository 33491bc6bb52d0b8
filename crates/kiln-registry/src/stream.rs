//! A blob download as a stream: [`BlobStream`] is a reader of the blob's bytes that writes
//! them to the download file and hashes them as they pass, so that a pull unpacks a layer
//! while it downloads it (one pass: the bytes are never read back from disk).
//!
//! What the download file already holds (a download cut short, by this process or an
//! earlier one) is read from it first and the rest asked for with `Range`; a connection lost
//! mid-blob is resumed the same way, invisibly to the reader. At the blob's end its digest
//! and size are checked: a mismatch is a read error (the file is removed), so whatever
//! consumes the stream fails before it publishes anything.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::Path;

use kiln_http::{Method, Request};
use kiln_layer::Digest;
use kiln_oci::Descriptor;
use sha2::Digest as _;

use crate::error::RegistryError;
use crate::progress::Progress;
use crate::repository::Repository;

/// How often a blob download may be cut short and resumed before kiln gives up.
const RESUMES: u32 = 5;

/// Where the bytes come from.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Source<'a> {
    /// The repository's `blobs/<digest>`.
    Registry,
    /// A URL of a foreign layer's descriptor.
    Url(&'a str),
}

/// The bytes of one blob, downloaded into a file as they are read (see the module docs).
pub(crate) struct BlobStream<'a> {
    repo: &'a Repository,
    source: Source<'a>,
    blob: &'a Descriptor,
    dest: &'a Path,
    progress: &'a dyn Progress,
    file: File,
    hasher: sha2::Sha256,
    /// Bytes hashed so far (replayed from the file or downloaded).
    have: u64,
    /// Still reading back what the file held when the stream was opened.
    replaying: bool,
    body: Option<Box<dyn Read + Send>>,
    /// `have` when the current body was opened: a body that gives nothing is a failure.
    opened_at: u64,
    failures: u32,
    last_error: Option<RegistryError>,
    /// The digest was checked at the end.
    verified: bool,
    /// The typed cause of the last read error (a reader can only pass an `io::Error` on).
    error: Option<RegistryError>,
}

impl<'a> BlobStream<'a> {
    /// A stream of `blob` from `source` of `repo`, into `dest` (created, or resumed when it
    /// holds the start of the blob).
    pub(crate) fn open(
        repo: &'a Repository,
        source: Source<'a>,
        blob: &'a Descriptor,
        dest: &'a Path,
        progress: &'a dyn Progress,
    ) -> Result<Self, RegistryError> {
        let io_err = |action| kiln_io::io_err(action, dest);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(dest)
            .map_err(io_err("open"))?;
        let len = file.metadata().map_err(io_err("stat"))?.len();
        if len > blob.size {
            file.set_len(0).map_err(io_err("truncate"))?;
        }
        Ok(Self {
            repo,
            source,
            blob,
            dest,
            progress,
            file,
            hasher: sha2::Sha256::new(),
            have: 0,
            replaying: len > 0 && len <= blob.size,
            body: None,
            opened_at: 0,
            failures: 0,
            last_error: None,
            verified: false,
            error: None,
        })
    }

    /// The typed cause of the last failed read, when the stream failed (rather than its
    /// reader's consumer).
    pub(crate) fn take_error(&mut self) -> Option<RegistryError> {
        self.error.take()
    }

    /// Reads what is left (nothing, when a consumer read it to its end), checks the digest
    /// and returns the file, written up to the blob's end (not yet synced).
    pub(crate) fn finish(mut self) -> Result<File, RegistryError> {
        let mut buf = vec![0u8; 256 << 10];
        loop {
            match self.next(&mut buf) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(self.file)
    }

    fn io(&self, action: &'static str) -> impl FnOnce(io::Error) -> RegistryError + '_ {
        move |e| kiln_io::io_err(action, self.dest)(e).into()
    }

    fn next(&mut self, buf: &mut [u8]) -> Result<usize, RegistryError> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            if self.replaying {
                let want = usize::try_from(self.blob.size - self.have)
                    .unwrap_or(usize::MAX)
                    .min(buf.len());
                let n = self.file.read(&mut buf[..want]).map_err(self.io("read"))?;
                if n > 0 {
                    self.hasher.update(&buf[..n]);
                    self.have += n as u64;
                    return Ok(n);
                }
                // The file's end: the rest comes from the network, written after it.
                self.replaying = false;
                continue;
            }
            if self.have >= self.blob.size {
                if !self.verified {
                    let hasher = std::mem::take(&mut self.hasher);
                    let actual = Digest::from_sha256(&hasher.finalize().into());
                    if actual != self.blob.digest {
                        let _ = std::fs::remove_file(self.dest);
                        return Err(self.repo.mismatch(self.blob, actual, self.have));
                    }
                    self.verified = true;
                    self.body = None;
                }
                return Ok(0);
            }
            let Some(body) = self.body.as_mut() else {
                self.open_body()?;
                continue;
            };
            let want = usize::try_from(self.blob.size - self.have)
                .unwrap_or(usize::MAX)
                .min(buf.len());
            match body.read(&mut buf[..want]) {
                Ok(0) => {
                    // The body ended early without an error: resume all the same.
                    self.body = None;
                    if self.have == self.opened_at {
                        self.failures += 1;
                    }
                }
                Ok(n) => {
                    self.file.write_all(&buf[..n]).map_err(self.io("write"))?;
                    self.hasher.update(&buf[..n]);
                    self.have += n as u64;
                    self.progress.blob_progress(self.blob, self.have);
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.body = None;
                    if self.have == self.opened_at {
                        self.failures += 1;
                    }
                    self.last_error = Some(RegistryError::Transport {
                        action: "pull a blob from",
                        registry: self.repo.registry().to_owned(),
                        source: kiln_http::HttpError::CutShort(e),
                    });
                }
            }
        }
    }

    /// Asks for the bytes from `have` on; a failed attempt only counts as a failure.
    fn open_body(&mut self) -> Result<(), RegistryError> {
        if self.failures > RESUMES {
            return Err(self
                .last_error
                .take()
                .unwrap_or_else(|| self.repo.mismatch(self.blob, Digest::of(b""), self.have)));
        }
        let object = self.blob.digest.to_string();
        let mut headers = Vec::new();
        if self.have > 0 {
            headers.push(("range", format!("bytes={}-", self.have)));
        }
        let sent = match self.source {
            Source::Registry => self.repo.call(
                "pull blob",
                Method::Get,
                &format!("blobs/{object}"),
                &headers,
                None,
            ),
            Source::Url(url) => {
                let mut req = Request::new(Method::Get, url);
                for (n, v) in &headers {
                    req = req.header(n, v.clone());
                }
                self.repo
                    .shared
                    .client
                    .send(&req)
                    .map_err(|source| RegistryError::Transport {
                        action: "pull a foreign layer from",
                        registry: url.to_owned(),
                        source,
                    })
            }
        };
        let r = match sent {
            Ok(r) => r,
            Err(e @ RegistryError::Transport { .. }) => {
                self.failures += 1;
                self.last_error = Some(e);
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let skip = match r.status() {
            // The server ignored the range: skip what is already here.
            200 => self.have,
            206 => 0,
            status => {
                if status == 416 {
                    // The registry's blob is shorter than what the file holds: start over
                    // next time.
                    let _ = std::fs::remove_file(self.dest);
                }
                return Err(match self.source {
                    Source::Registry => self.repo.status_error("pull blob", &object, r),
                    Source::Url(url) => RegistryError::Status {
                        action: "pull foreign layer",
                        registry: url.to_owned(),
                        repository: self.repo.name().to_owned(),
                        object,
                        status,
                        message: None,
                    },
                });
            }
        };
        let mut body = r.into_reader();
        if skip > 0 {
            let skipped = io::copy(&mut (&mut body).take(skip), &mut io::sink());
            if !matches!(skipped, Ok(n) if n == skip) {
                self.failures += 1;
                return Ok(());
            }
        }
        self.body = Some(Box::new(body));
        self.opened_at = self.have;
        Ok(())
    }
}

impl Read for BlobStream<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.next(buf).map_err(|e| {
            let message = e.to_string();
            self.error = Some(e);
            io::Error::other(message)
        })
    }
}

/// The URLs of a foreign (non-distributable) layer, as its descriptor lists them; empty for
/// any other blob. Docker fetches such a layer from them and never pushes it.
pub(crate) fn foreign_urls(d: &Descriptor) -> Vec<&str> {
    let foreign = d.media_type.contains("foreign") || d.media_type.contains("nondistributable");
    if !foreign {
        return Vec::new();
    }
    d.extra
        .get("urls")
        .and_then(|u| u.as_array())
        .map(|a| a.iter().filter_map(|v| v.as_str()).collect())
        .unwrap_or_default()
}
