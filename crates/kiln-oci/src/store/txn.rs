//! Transactions: blobs staged in `tmp/txn-*`, published with an `index.json` change at once.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::PathBuf;

use kiln_layer::{Digest, HashingWriter};
use rustix::fs::FlockOperation;

use super::{Store, sync_dir, unique};
use crate::config::ImageConfig;
use crate::error::{StoreError, io_err};
use crate::media::MediaTypes;
use crate::model::{Descriptor, Index, Manifest};

/// A set of staged blobs and, at [`Txn::commit`], one change of `index.json`.
///
/// Dropping a transaction without committing removes everything it staged: the store is left
/// as it was.
pub struct Txn<'s> {
    store: &'s Store,
    dir: PathBuf,
    _lock: File,
    staged: BTreeMap<Digest, u64>,
}

impl<'s> Txn<'s> {
    pub(super) fn new(store: &'s Store) -> Result<Self, StoreError> {
        let dir = store.layout.tmp_unique("txn");
        fs::create_dir(&dir).map_err(io_err("create", &dir))?;
        let lock_path = dir.join(".lock");
        let lock = File::create(&lock_path).map_err(io_err("create", &lock_path))?;
        rustix::fs::flock(&lock, FlockOperation::LockExclusive)
            .map_err(|e| io_err("lock", &lock_path)(e.into()))?;
        Ok(Self {
            store,
            dir,
            _lock: lock,
            staged: BTreeMap::new(),
        })
    }

    /// The store this transaction changes.
    pub fn store(&self) -> &'s Store {
        self.store
    }

    /// The staging directory (inside the store's `tmp/`), also usable as scratch space on the
    /// store's filesystem: whatever is left there is removed with the transaction.
    pub fn scratch_dir(&self) -> &std::path::Path {
        &self.dir
    }

    /// Whether the blob is staged here or already in the store.
    pub fn has_blob(&self, digest: &Digest) -> bool {
        self.staged.contains_key(digest) || self.store.has_blob(digest)
    }

    /// Where a blob can be read now: staged here, or in the store.
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        if self.staged.contains_key(digest) {
            self.dir.join(digest.hex())
        } else {
            self.store.blob_path(digest)
        }
    }

    /// Starts writing a blob.
    pub fn blob_writer(&mut self) -> Result<BlobWriter<'_, 's>, StoreError> {
        let path = self.dir.join(format!("partial-{}", unique()));
        let file = File::create(&path).map_err(io_err("create", &path))?;
        Ok(BlobWriter {
            txn: self,
            path,
            out: Some(HashingWriter::new(io::BufWriter::with_capacity(
                1 << 20,
                file,
            ))),
        })
    }

    /// Stages `bytes` as a blob; when `expected` is given, the content must have that digest.
    pub fn put_bytes(
        &mut self,
        bytes: &[u8],
        expected: Option<&Digest>,
        what: &str,
    ) -> Result<(Digest, u64), StoreError> {
        let actual = Digest::of(bytes);
        if let Some(e) = expected {
            check(what, e, bytes.len() as u64, &actual, bytes.len() as u64)?;
        }
        if self.has_blob(&actual) {
            return Ok((actual, bytes.len() as u64));
        }
        let mut w = self.blob_writer()?;
        w.write_all(bytes)
            .map_err(io_err("write", w.path.clone()))?;
        w.commit(None, what)
    }

    /// Stages `config` (as canonical JSON) and a `media` manifest of it and `layers`. Returns
    /// the manifest's descriptor and the image id (the config's digest).
    pub fn put_image(
        &mut self,
        media: MediaTypes,
        config: &ImageConfig,
        layers: Vec<Descriptor>,
    ) -> Result<(Descriptor, Digest), StoreError> {
        let bytes = crate::canonical::to_vec(config).map_err(|source| StoreError::Json {
            what: "the new config".into(),
            source,
        })?;
        let (digest, size) = self.put_bytes(&bytes, None, "config")?;
        let config = Descriptor::new(media.config(), digest.clone(), size);
        Ok((self.put_manifest(media, config, layers)?, digest))
    }

    /// Stages a `media` manifest of `config` and `layers`; returns its descriptor.
    pub fn put_manifest(
        &mut self,
        media: MediaTypes,
        config: Descriptor,
        layers: Vec<Descriptor>,
    ) -> Result<Descriptor, StoreError> {
        let manifest = Manifest {
            schema_version: 2,
            media_type: Some(media.manifest().to_owned()),
            config,
            layers,
            annotations: BTreeMap::default(),
            extra: BTreeMap::default(),
        };
        let bytes = crate::canonical::to_vec(&manifest).map_err(|source| StoreError::Json {
            what: "the new manifest".into(),
            source,
        })?;
        let (digest, size) = self.put_bytes(&bytes, None, "manifest")?;
        Ok(Descriptor::new(media.manifest(), digest, size))
    }

    /// Stages a file this process just wrote on the store's filesystem, hashing it as it
    /// wrote (a layer writer's digests), by renaming it: its size is checked, its bytes are
    /// not read again. Anything else goes through [`Txn::adopt_file`].
    pub fn adopt_written(
        &mut self,
        path: &std::path::Path,
        digest: &Digest,
        size: u64,
        what: &str,
    ) -> Result<(Digest, u64), StoreError> {
        let f = File::open(path).map_err(io_err("open", path))?;
        f.sync_all().map_err(io_err("fsync", path))?;
        let actual = f.metadata().map_err(io_err("stat", path))?.len();
        check(what, digest, size, digest, actual)?;
        if !self.has_blob(digest) {
            let dest = self.dir.join(digest.hex());
            fs::rename(path, &dest).map_err(io_err("rename", path))?;
            self.staged.insert(digest.clone(), size);
        }
        Ok((digest.clone(), size))
    }

    /// Stages a file already on the store's filesystem (for example in [`Txn::scratch_dir`])
    /// by renaming it, after hashing it and checking `expected` digest and size when given.
    pub fn adopt_file(
        &mut self,
        path: &std::path::Path,
        expected: Option<(&Digest, u64)>,
        what: &str,
    ) -> Result<(Digest, u64), StoreError> {
        let f = File::open(path).map_err(io_err("open", path))?;
        f.sync_all().map_err(io_err("fsync", path))?;
        let (actual, size) = kiln_layer::digest_reader(io::BufReader::with_capacity(1 << 20, f))
            .map_err(io_err("read", path))?;
        if let Some((e, esize)) = expected {
            check(what, e, esize, &actual, size)?;
        }
        if !self.has_blob(&actual) {
            let dest = self.dir.join(actual.hex());
            fs::rename(path, &dest).map_err(io_err("rename", path))?;
            self.staged.insert(actual.clone(), size);
        }
        Ok((actual, size))
    }

    /// Publishes the staged blobs and applies `change` to `index.json`, all under the store
    /// lock. `change` sees the current index (as other processes left it) and may fail, in
    /// which case nothing is published. Before writing, every blob the new index refers to at
    /// its top level is checked to exist.
    pub fn commit<R>(
        self,
        change: impl FnOnce(&mut Index) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        let _lock = self.store.lock()?;
        let mut index = self.store.index()?;
        let result = change(&mut index)?;
        // Checked before anything is published, so that a failure leaves the store as it was.
        for m in &index.manifests {
            if !self.staged.contains_key(&m.digest) && !self.store.has_blob(&m.digest) {
                return Err(StoreError::Vanished {
                    digest: m.digest.clone(),
                });
            }
        }
        let blobs = self.store.layout.blobs();
        for digest in self.staged.keys() {
            let dest = self.store.blob_path(digest);
            if !dest.exists() {
                let src = self.dir.join(digest.hex());
                fs::rename(&src, &dest).map_err(io_err("rename into the store", &src))?;
            }
        }
        sync_dir(&blobs)?;
        self.store.write_index_locked(&index)?;
        Ok(result)
    }
}

impl Drop for Txn<'_> {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn check(
    what: &str,
    expected: &Digest,
    expected_size: u64,
    actual: &Digest,
    actual_size: u64,
) -> Result<(), StoreError> {
    if expected != actual || expected_size != actual_size {
        return Err(StoreError::DigestMismatch {
            what: what.to_owned(),
            expected: expected.clone(),
            expected_size,
            actual: actual.clone(),
            actual_size,
        });
    }
    Ok(())
}

/// A blob being written into a transaction; [`BlobWriter::commit`] verifies and stages it.
pub struct BlobWriter<'t, 's> {
    txn: &'t mut Txn<'s>,
    path: PathBuf,
    out: Option<HashingWriter<io::BufWriter<File>>>,
}

impl BlobWriter<'_, '_> {
    /// Finishes the blob: flush, fsync, check against `expected` (digest, size) when given,
    /// and stage it under its digest. `what` names the object in errors.
    pub fn commit(
        mut self,
        expected: Option<(&Digest, u64)>,
        what: &str,
    ) -> Result<(Digest, u64), StoreError> {
        let out = self.out.take().expect("committed once");
        let (buf, actual, size) = out.finish();
        let file = buf
            .into_inner()
            .map_err(|e| io_err("write", &self.path)(e.into_error()))?;
        file.sync_all().map_err(io_err("fsync", &self.path))?;
        if let Some((e, esize)) = expected {
            check(what, e, esize, &actual, size)?;
        }
        if self.txn.has_blob(&actual) {
            let _ = fs::remove_file(&self.path);
        } else {
            let dest = self.txn.dir.join(actual.hex());
            fs::rename(&self.path, &dest).map_err(io_err("rename", &self.path))?;
            self.txn.staged.insert(actual.clone(), size);
        }
        Ok((actual, size))
    }
}

impl Write for BlobWriter<'_, '_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.out.as_mut().map_or(Ok(0), |o| o.write(buf))
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.as_mut().map_or(Ok(()), Write::flush)
    }
}

impl Drop for BlobWriter<'_, '_> {
    fn drop(&mut self) {
        if self.out.is_some() {
            let _ = fs::remove_file(&self.path);
        }
    }
}
