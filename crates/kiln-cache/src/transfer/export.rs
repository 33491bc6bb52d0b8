//! Export: records, their layers and configs (and cache mounts) through a [`CacheRemote`].

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use kiln_layer::Digest;
use kiln_oci::model::{Descriptor, Manifest};
use kiln_oci::store::ExportCompression;
use kiln_oci::{MediaTypes, media};

use super::{
    ARTIFACT_TYPE, ExportedLayer, ExportedRecord, ExportedSelection, LOCAL_TAG, LazyImport,
    RECORDS_MEDIA_TYPE, RECORDS_VERSION, RecordsDoc,
};
use crate::error::{CacheError, io_err};
use crate::index::{Cache, to_ms};
use crate::key::{CacheKey, KEY_VERSION};
use crate::remote::{CacheRemote, LocalLayout};

/// How many blobs go up at once.
const PARALLEL_UPLOADS: usize = 4;

/// How [`Cache::export_to`] exports.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    /// The tag the manifest gets (`latest` in a layout directory).
    pub tag: String,
    /// How layers leave the machine (gzip by default).
    pub compression: ExportCompression,
    /// Export the store's `RUN --mount=type=cache` directories too.
    pub mounts: bool,
}

impl Default for ExportOptions {
    fn default() -> Self {
        Self {
            tag: LOCAL_TAG.to_owned(),
            compression: ExportCompression::default(),
            mounts: false,
        }
    }
}

/// What an export wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportReport {
    /// The cache manifest.
    pub manifest: Descriptor,
    /// Records exported.
    pub records: usize,
    /// Records left out because their layer blob is no longer in the store.
    pub skipped: usize,
    /// Distinct blobs the manifest lists (layers, configs, cache mounts).
    pub blobs: usize,
    /// Blobs uploaded.
    pub uploaded: usize,
    /// Blobs not uploaded: the remote had them, or this build imported them from it.
    pub already_there: usize,
    /// Cache mounts exported.
    pub mounts: usize,
}

/// A blob the export lists, and where its bytes are.
struct Outgoing {
    descriptor: Descriptor,
    path: PathBuf,
}

impl Cache {
    /// Exports every record whose layer is in the store into the OCI layout at `dir`.
    pub fn export(&self, dir: &Path) -> Result<ExportReport, CacheError> {
        self.export_keys(dir, None, ExportCompression::default())
    }

    /// Exports the records of `keys` (all records when `None`) into the OCI layout at `dir`,
    /// created when missing; an earlier export there is replaced as the tagged manifest (its
    /// blobs stay). Layers leave compressed as `compression` says (gzip by default: kiln
    /// stores the layers it builds plain), each compressed once and remembered by the store.
    pub fn export_keys(
        &self,
        dir: &Path,
        keys: Option<&[CacheKey]>,
        compression: ExportCompression,
    ) -> Result<ExportReport, CacheError> {
        let opts = ExportOptions {
            compression,
            ..ExportOptions::default()
        };
        self.export_to(&LocalLayout::new(dir), keys, &opts, None)
    }

    /// Exports the records of `keys` (all when `None`) to `remote` under `opts.tag` (see the
    /// module docs): the blobs `remote` lacks, several at once, then the records document and
    /// the manifest. Blobs `imported` fetched from a remote of the same name are not asked
    /// about.
    pub fn export_to(
        &self,
        remote: &dyn CacheRemote,
        keys: Option<&[CacheKey]>,
        opts: &ExportOptions,
        imported: Option<&LazyImport>,
    ) -> Result<ExportReport, CacheError> {
        let wanted: Option<BTreeSet<&CacheKey>> = keys.map(|k| k.iter().collect());
        let mut records = self.records()?;
        records.retain(|r| wanted.as_ref().is_none_or(|w| w.contains(&r.key)));
        records.sort_by(|a, b| a.key.cmp(&b.key));
        let scratch = Scratch::new(self.store().layout().tmp_unique("cache-export"))?;
        let mut outgoing: Vec<Outgoing> = Vec::new();
        let mut listed = BTreeSet::new();
        let mut doc = RecordsDoc {
            schema_version: RECORDS_VERSION,
            key_version: KEY_VERSION,
            records: Vec::new(),
            mounts: Vec::new(),
            selections: Vec::new(),
        };
        let mut skipped = 0;
        for r in records {
            let mut layer = None;
            if let Some(l) = &r.output.layer {
                if !self.store().has_blob(&l.descriptor.digest) {
                    skipped += 1;
                    continue;
                }
                let d =
                    self.store()
                        .layer_variant(&l.descriptor, MediaTypes::Oci, opts.compression)?;
                if listed.insert(d.digest.clone()) {
                    outgoing.push(Outgoing {
                        descriptor: Descriptor::new(d.media_type.clone(), d.digest.clone(), d.size),
                        path: self.store().blob_path(&d.digest),
                    });
                }
                layer = Some(ExportedLayer {
                    media_type: d.media_type,
                    digest: d.digest,
                    size: d.size,
                    diff_id: l.diff_id.clone(),
                });
            }
            let config = r.config_digest.clone();
            let config_size = r.output.config.len() as u64;
            if listed.insert(config.clone()) {
                outgoing.push(Outgoing {
                    descriptor: Descriptor::new(media::OCI_CONFIG, config.clone(), config_size),
                    path: scratch.put(&r.output.config)?,
                });
            }
            for sel in self.selections_of(&r.key)? {
                doc.selections.push(ExportedSelection {
                    step: r.key.clone(),
                    key: sel.key,
                    root: sel.root,
                });
            }
            doc.records.push(ExportedRecord {
                key: r.key,
                config,
                config_size,
                created_ms: to_ms(r.created),
                layer,
            });
        }
        if opts.mounts {
            for (m, path) in super::mounts::pack_all(self.store(), &scratch.0, opts.compression)? {
                if listed.insert(m.layer.digest.clone()) {
                    outgoing.push(Outgoing {
                        descriptor: m.layer.descriptor(),
                        path,
                    });
                }
                doc.mounts.push(m);
            }
        }
        let count = doc.records.len();
        let doc_bytes = kiln_oci::canonical::to_vec(&doc).expect("the records document serializes");
        let config = Descriptor::new(
            RECORDS_MEDIA_TYPE,
            Digest::of(&doc_bytes),
            doc_bytes.len() as u64,
        );
        let layers: Vec<Descriptor> = outgoing.iter().map(|o| o.descriptor.clone()).collect();
        // The records document goes up with the blobs, skipped like them: a rebuild that
        // exports the same records finds it there already.
        outgoing.push(Outgoing {
            descriptor: config.clone(),
            path: scratch.put(&doc_bytes)?,
        });
        let (uploaded, already_there) = push_blobs(remote, &outgoing, imported)?;
        let manifest = Manifest {
            schema_version: 2,
            media_type: Some(media::OCI_MANIFEST.to_owned()),
            config,
            layers,
            annotations: BTreeMap::new(),
            extra: BTreeMap::from([(
                "artifactType".to_owned(),
                serde_json::Value::from(ARTIFACT_TYPE),
            )]),
        };
        let bytes = kiln_oci::canonical::to_vec(&manifest).expect("a manifest serializes");
        let digest = remote
            .put_manifest(&opts.tag, &bytes, media::OCI_MANIFEST)
            .map_err(|source| CacheError::Remote {
                remote: remote.name(),
                action: format!("store the cache manifest as `{}`", opts.tag),
                source,
            })?;
        let mut descriptor = Descriptor::new(media::OCI_MANIFEST, digest, bytes.len() as u64);
        descriptor.extra.insert(
            "artifactType".to_owned(),
            serde_json::Value::from(ARTIFACT_TYPE),
        );
        Ok(ExportReport {
            manifest: descriptor,
            records: count,
            skipped,
            blobs: manifest.layers.len(),
            uploaded,
            already_there,
            mounts: doc.mounts.len(),
        })
    }
}

/// Uploads what `remote` lacks of `blobs`, [`PARALLEL_UPLOADS`] at once; returns how many went
/// up and how many were there already.
fn push_blobs(
    remote: &dyn CacheRemote,
    blobs: &[Outgoing],
    imported: Option<&LazyImport>,
) -> Result<(usize, usize), CacheError> {
    let name = remote.name();
    let next = Mutex::new(0usize);
    let counts = Mutex::new((0usize, 0usize));
    let worker = || -> Result<(), CacheError> {
        loop {
            let i = {
                let mut n = next
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                let i = *n;
                *n += 1;
                i
            };
            let Some(b) = blobs.get(i) else {
                return Ok(());
            };
            let d = &b.descriptor;
            let known = imported.is_some_and(|l| l.came_from(&name, &d.digest));
            let there = known
                || remote
                    .has_blob(&d.digest)
                    .map_err(|source| CacheError::Remote {
                        remote: name.clone(),
                        action: format!("ask for blob `{}`", d.digest),
                        source,
                    })?;
            if !there {
                remote
                    .push_blob(d, &b.path)
                    .map_err(|source| CacheError::Remote {
                        remote: name.clone(),
                        action: format!("upload blob `{}`", d.digest),
                        source,
                    })?;
            }
            let mut c = counts
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if there { c.1 += 1 } else { c.0 += 1 }
        }
    };
    let results: Vec<Result<(), CacheError>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..PARALLEL_UPLOADS.min(blobs.len()))
            .map(|_| s.spawn(worker))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    results.into_iter().collect::<Result<(), _>>()?;
    Ok(counts
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner))
}

/// A directory of the store's `tmp/` for the export's small blobs, removed when dropped.
pub(super) struct Scratch(pub(super) PathBuf);

impl Scratch {
    pub(super) fn new(dir: PathBuf) -> Result<Self, CacheError> {
        fs::create_dir_all(&dir).map_err(io_err("create", &dir))?;
        Ok(Self(dir))
    }

    /// Writes `bytes` as the file named by their digest; returns its path.
    pub(super) fn put(&self, bytes: &[u8]) -> Result<PathBuf, CacheError> {
        let path = self.0.join(Digest::of(bytes).hex());
        fs::write(&path, bytes).map_err(io_err("write", &path))?;
        Ok(path)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}
