//! Lazy import: an export's records answer a build's lookups, and a record's blobs are
//! fetched only when its step hits.

use std::collections::{HashMap, HashSet};
use std::io;
use std::sync::Mutex;

use kiln_layer::{Compression, Digest};
use kiln_oci::media;
use kiln_oci::model::Descriptor;
use kiln_oci::store::Txn;

use super::import::{fetch_into, fetch_small, open};
use super::{ExportedLayer, ExportedMount, ExportedRecord};
use crate::error::{CacheError, io_err};
use crate::index::{Cache, CacheRecord, LayerRef, StepOutput, now_ms};
use crate::key::CacheKey;
use crate::remote::CacheRemote;

/// One export opened for a build: its records, read; its blobs, still in the remote.
pub struct RemoteSource {
    remote: Box<dyn CacheRemote>,
    name: String,
    blobs: HashSet<Digest>,
    records: HashMap<CacheKey, ExportedRecord>,
    pub(super) mounts: Vec<ExportedMount>,
    /// Selection memos by key: their root.
    selections: HashMap<Digest, Digest>,
}

impl std::fmt::Debug for RemoteSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteSource")
            .field("name", &self.name)
            .field("records", &self.records.len())
            .field("mounts", &self.mounts.len())
            .finish_non_exhaustive()
    }
}

impl RemoteSource {
    /// The remote's name ([`CacheRemote::name`]).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// How many records it has.
    pub fn records(&self) -> usize {
        self.records.len()
    }

    /// How many cache mounts it carries.
    pub fn mounts(&self) -> usize {
        self.mounts.len()
    }

    pub(super) fn remote(&self) -> &dyn CacheRemote {
        &*self.remote
    }
}

impl Cache {
    /// Opens the export tagged `tag` of `remote` for a lazy import: reads its manifest and
    /// records document, and nothing else.
    pub fn open_remote(
        &self,
        remote: Box<dyn CacheRemote>,
        tag: &str,
    ) -> Result<RemoteSource, CacheError> {
        let opened = open(self.store(), &*remote, tag)?;
        let mut blobs: HashSet<Digest> = opened
            .manifest
            .layers
            .iter()
            .map(|d| d.digest.clone())
            .collect();
        blobs.insert(opened.manifest.config.digest.clone());
        Ok(RemoteSource {
            name: remote.name(),
            remote,
            blobs,
            records: opened
                .doc
                .records
                .into_iter()
                .map(|r| (r.key.clone(), r))
                .collect(),
            mounts: opened.doc.mounts,
            selections: opened
                .doc
                .selections
                .into_iter()
                .map(|s| (s.key, s.root))
                .collect(),
        })
    }
}

/// What a [`LazyImport`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LazyReport {
    /// Lookups it answered (steps that hit a remote record).
    pub hits: usize,
    /// Layer blobs fetched.
    pub layers_fetched: usize,
    /// Their bytes.
    pub bytes_fetched: u64,
    /// Cache mounts restored.
    pub mounts_restored: usize,
}

/// The remote caches of a build (`--cache-from`, in order), imported lazily (see the module
/// docs of [`crate::transfer`]). Shared by the build's stage threads.
#[derive(Debug, Default)]
pub struct LazyImport {
    sources: Vec<RemoteSource>,
    report: Mutex<LazyReport>,
}

impl LazyImport {
    /// No sources yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a source, tried after those added before.
    pub fn add(&mut self, source: RemoteSource) {
        self.sources.push(source);
    }

    /// The sources, in order.
    pub fn sources(&self) -> &[RemoteSource] {
        &self.sources
    }

    /// Whether some source has a record of `key`.
    pub fn has(&self, key: &CacheKey) -> bool {
        self.sources.iter().any(|s| s.records.contains_key(key))
    }

    /// The root a source's selection memo keeps under `key` ([`crate::selection`]), from the
    /// first source that has one.
    pub fn selection(&self, key: &Digest) -> Option<Digest> {
        self.sources
            .iter()
            .find_map(|s| s.selections.get(key).cloned())
    }

    /// Whether the blob `digest` is in the remote called `remote` as this import found it
    /// (so an export there need not ask).
    pub fn came_from(&self, remote: &str, digest: &Digest) -> bool {
        self.sources
            .iter()
            .any(|s| s.name == remote && s.blobs.contains(digest))
    }

    /// What it did so far.
    pub fn report(&self) -> LazyReport {
        self.report
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The record of `key` from the first source that has it (the next one that has it when
    /// that one's blobs cannot be fetched or are refused), made local: its config and
    /// layer fetched (unless the store has them), checked, stored and recorded in `cache`
    /// as an ordinary import would, then looked up there. `None` when no source has `key`:
    /// nothing is fetched.
    pub fn materialize(
        &self,
        cache: &Cache,
        key: &CacheKey,
    ) -> Result<Option<CacheRecord>, CacheError> {
        // The first source that has it; when its blobs cannot be had (gone from a branch's
        // cache, refused), the next one that has it too.
        let mut failed = None;
        for (source, record) in self
            .sources
            .iter()
            .filter_map(|s| s.records.get(key).map(|r| (s, r)))
        {
            match self.fetch(cache, source, key, record) {
                Ok(()) => return cache.get(key),
                Err(e) => failed = failed.or(Some(e)),
            }
        }
        failed.map_or(Ok(None), Err)
    }

    /// Makes `record` of `source` local (see [`LazyImport::materialize`]).
    fn fetch(
        &self,
        cache: &Cache,
        source: &RemoteSource,
        key: &CacheKey,
        record: &ExportedRecord,
    ) -> Result<(), CacheError> {
        let store = cache.store();
        let remote = source.remote();
        let config = fetch_small(
            store,
            remote,
            &Descriptor::new(media::OCI_CONFIG, record.config.clone(), record.config_size),
            "step config",
        )?;
        let mut txn = store.txn()?;
        let (layer, fetched, memo) = match &record.layer {
            None => (None, None, None),
            Some(l) => {
                let (layer, fetched, memo) = local_layer(remote, l, &mut txn)?;
                (Some(layer), fetched, memo)
            }
        };
        txn.commit(|_| Ok(()))?;
        if let Some((plain, compression, compressed)) = memo {
            store.remember_layer_variant(&plain, compression, &compressed);
        }
        cache.insert(
            key,
            &StepOutput { layer, config },
            record.created_ms,
            now_ms(),
            false,
        )?;
        let mut r = self
            .report
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        r.hits += 1;
        if let Some(bytes) = fetched {
            r.layers_fetched += 1;
            r.bytes_fetched += bytes;
        }
        Ok(())
    }

    /// Restores the cache mounts the sources carry where the store has none of that key or
    /// an empty one (the first source's, when several carry it); how many it restored.
    pub fn restore_mounts(&self, cache: &Cache) -> Result<usize, CacheError> {
        let mut done = HashSet::new();
        let mut restored = 0;
        for s in &self.sources {
            for m in &s.mounts {
                if done.insert(m.key.clone())
                    && super::mounts::restore(cache.store(), s.remote(), m)?
                {
                    restored += 1;
                }
            }
        }
        self.report
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .mounts_restored += restored;
        Ok(restored)
    }
}

/// A remembered variant: the plain layer, the compression, the compressed blob.
type Memo = (Digest, Compression, Descriptor);

/// The layer of an exported record as the machine that built it had it: uncompressed, its
/// digest its diff id (the compressed blob is fetched, checked, kept, and decompressed into
/// the plain one). A layer in a media type kiln cannot decompress is kept as it is. Returns
/// the layer, the bytes fetched (`None`: nothing was), and the variant to remember.
fn local_layer(
    remote: &dyn CacheRemote,
    l: &ExportedLayer,
    txn: &mut Txn<'_>,
) -> Result<(LayerRef, Option<u64>, Option<Memo>), CacheError> {
    let as_is = LayerRef {
        descriptor: l.descriptor(),
        diff_id: l.diff_id.clone(),
    };
    let compression = media::layer_compression(&l.media_type);
    let Some(compression) = compression.filter(|c| *c != Compression::None) else {
        let fetched = fetch_into(remote, &as_is.descriptor, txn, "layer")?;
        return Ok((as_is, fetched.then_some(l.size), None));
    };
    let plain_type = if l.media_type.starts_with("application/vnd.docker.") {
        media::DOCKER_LAYER
    } else {
        media::OCI_LAYER
    };
    let plain_path = txn.blob_path(&l.diff_id);
    if txn.has_blob(&l.diff_id) {
        let size = std::fs::metadata(&plain_path)
            .map_err(io_err("stat", &plain_path))?
            .len();
        let plain = LayerRef {
            descriptor: Descriptor::new(plain_type, l.diff_id.clone(), size),
            diff_id: l.diff_id.clone(),
        };
        return Ok((plain, None, None));
    }
    let fetched = fetch_into(remote, &as_is.descriptor, txn, "layer")?;
    let path = txn.blob_path(&l.digest);
    let file = std::fs::File::open(&path).map_err(io_err("open", &path))?;
    let (mut tar, _) = kiln_layer::decompress(io::BufReader::with_capacity(1 << 20, file))
        .map_err(io_err("read", &path))?;
    let mut w = txn.blob_writer()?;
    io::copy(&mut tar, &mut w).map_err(io_err("decompress", &path))?;
    let (digest, size) = w.commit(None, "uncompressed layer")?;
    if digest != l.diff_id {
        return Err(CacheError::Remote {
            remote: remote.name(),
            action: format!("fetch layer `{}`", l.digest),
            source: format!(
                "it decompresses to `{digest}`, the record says its diff id is `{}`",
                l.diff_id
            )
            .into(),
        });
    }
    let plain = LayerRef {
        descriptor: Descriptor::new(plain_type, digest.clone(), size),
        diff_id: l.diff_id.clone(),
    };
    Ok((
        plain,
        fetched.then_some(l.size),
        Some((digest, compression, as_is.descriptor)),
    ))
}
