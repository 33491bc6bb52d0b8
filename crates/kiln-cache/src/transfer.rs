//! Export and import: cache records with their layers as an OCI image layout.
//!
//! # Layout of an export (version 1)
//!
//! ```text
//! DIR/oci-layout          {"imageLayoutVersion":"1.0.0"}
//! DIR/index.json          one entry for the cache manifest, `org.opencontainers.image.ref.name`
//!                         = `latest` (BuildKit's default tag for local cache)
//! DIR/blobs/sha256/<hex>  the manifest, the records document, step configs, layers
//! ```
//! The manifest is an OCI 1.1 artifact manifest (an image manifest with `artifactType`):
//!
//! ```json
//! {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
//!  "artifactType": "application/vnd.kiln.cache.v1",
//!  "config": {"mediaType": "application/vnd.kiln.cache.records.v1+json", ...},
//!  "layers": [ every layer blob (its own layer media type) and every step config
//!              ("application/vnd.oci.image.config.v1+json"), each once, in record order ]}
//! ```
//! and the records document (its config blob) is canonical JSON:
//!
//! ```json
//! {"schemaVersion": 1, "keyVersion": 1,
//!  "records": [{"key": "sha256:...", "config": "sha256:...", "configSize": 123,
//!               "createdMs": 1700000000000,
//!               "layer": {"mediaType": "...", "digest": "sha256:...", "size": 456,
//!                         "diffId": "sha256:..."}}]}   // "layer" absent: no layer
//! ```
//! sorted by key. Layers leave compressed (gzip unless the export says otherwise); the
//! records keep each layer's `diffId`, so a hit is the same layer whatever its compression.
//! Because every blob the records name is listed in the manifest, the same
//! manifest and blobs can be pushed to a registry as they are (`type=registry`), and any OCI
//! tool can copy the layout. Import checks every blob against its digest.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use kiln_layer::{Digest, HashingReader};
use kiln_oci::model::{Descriptor, Index, Manifest, REF_NAME};
use kiln_oci::store::ExportCompression;
use kiln_oci::{MediaTypes, Store, media};
use serde::{Deserialize, Serialize};

use crate::error::{CacheError, io_err};
use crate::index::{Cache, LayerRef, StepOutput, now_ms, to_ms};
use crate::key::{CacheKey, KEY_VERSION};

/// The `artifactType` of an exported cache's manifest.
pub const ARTIFACT_TYPE: &str = "application/vnd.kiln.cache.v1";
/// The media type of the records document (the manifest's config).
pub const RECORDS_MEDIA_TYPE: &str = "application/vnd.kiln.cache.records.v1+json";
/// The tag of the cache manifest in the layout's `index.json`.
const EXPORT_TAG: &str = "latest";
/// The version of the records document.
const RECORDS_VERSION: u32 = 1;

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RecordsDoc {
    schema_version: u32,
    key_version: u8,
    records: Vec<ExportedRecord>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ExportedRecord {
    key: CacheKey,
    #[serde(with = "kiln_oci::model::digest_serde")]
    config: Digest,
    config_size: u64,
    created_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    layer: Option<ExportedLayer>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ExportedLayer {
    media_type: String,
    #[serde(with = "kiln_oci::model::digest_serde")]
    digest: Digest,
    size: u64,
    #[serde(with = "kiln_oci::model::digest_serde")]
    diff_id: Digest,
}

/// What [`Cache::export`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportReport {
    /// The cache manifest in the layout.
    pub manifest: Descriptor,
    /// Records exported.
    pub records: usize,
    /// Records left out because their layer blob is no longer in the store.
    pub skipped: usize,
    /// Distinct blobs the manifest lists (layers and configs).
    pub blobs: usize,
}

/// What [`Cache::import`] read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportReport {
    /// Records added to the index.
    pub added: usize,
    /// Records the index already had (kept as they were).
    pub already_present: usize,
    /// Layer blobs copied into the store.
    pub blobs_copied: usize,
}

impl Cache {
    /// Exports every record whose layer is in the store (see the module docs).
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
        let wanted: Option<BTreeSet<&CacheKey>> = keys.map(|k| k.iter().collect());
        let mut records = self.records()?;
        records.retain(|r| wanted.as_ref().is_none_or(|w| w.contains(&r.key)));
        records.sort_by(|a, b| a.key.cmp(&b.key));
        let out = Store::open(dir)?;
        let mut txn = out.txn()?;
        let mut layers: Vec<Descriptor> = Vec::new();
        let mut listed = BTreeSet::new();
        let mut doc = RecordsDoc {
            schema_version: RECORDS_VERSION,
            key_version: KEY_VERSION,
            records: Vec::new(),
        };
        let mut skipped = 0;
        for r in records {
            let mut layer = None;
            if let Some(l) = &r.output.layer {
                if !self.store().has_blob(&l.descriptor.digest) {
                    skipped += 1;
                    continue;
                }
                let d = self
                    .store()
                    .layer_variant(&l.descriptor, MediaTypes::Oci, compression)?;
                if listed.insert(d.digest.clone()) {
                    if !txn.has_blob(&d.digest) {
                        let mut src = self
                            .store()
                            .open_blob(&d.digest, &format!("layer of cache record `{}`", r.key))?;
                        let mut w = txn.blob_writer()?;
                        io::copy(&mut src, &mut w)
                            .map_err(io_err("copy", self.store().blob_path(&d.digest)))?;
                        w.commit(Some((&d.digest, d.size)), "exported layer")?;
                    }
                    layers.push(Descriptor::new(
                        d.media_type.clone(),
                        d.digest.clone(),
                        d.size,
                    ));
                }
                layer = Some(ExportedLayer {
                    media_type: d.media_type,
                    digest: d.digest,
                    size: d.size,
                    diff_id: l.diff_id.clone(),
                });
            }
            let (config, config_size) =
                txn.put_bytes(&r.output.config, Some(&r.config_digest), "step config")?;
            if listed.insert(config.clone()) {
                layers.push(Descriptor::new(
                    media::OCI_CONFIG,
                    config.clone(),
                    config_size,
                ));
            }
            doc.records.push(ExportedRecord {
                key: r.key,
                config,
                config_size,
                created_ms: to_ms(r.created),
                layer,
            });
        }
        let count = doc.records.len();
        let doc_bytes = kiln_oci::canonical::to_vec(&doc).expect("the records document serializes");
        let (doc_digest, doc_size) = txn.put_bytes(&doc_bytes, None, "cache records")?;
        let manifest = Manifest {
            schema_version: 2,
            media_type: Some(media::OCI_MANIFEST.to_owned()),
            config: Descriptor::new(RECORDS_MEDIA_TYPE, doc_digest, doc_size),
            layers,
            annotations: BTreeMap::new(),
            extra: BTreeMap::from([(
                "artifactType".to_owned(),
                serde_json::Value::from(ARTIFACT_TYPE),
            )]),
        };
        let bytes = kiln_oci::canonical::to_vec(&manifest).expect("a manifest serializes");
        let (digest, size) = txn.put_bytes(&bytes, None, "cache manifest")?;
        let mut descriptor = Descriptor::new(media::OCI_MANIFEST, digest, size);
        descriptor.extra.insert(
            "artifactType".to_owned(),
            serde_json::Value::from(ARTIFACT_TYPE),
        );
        let blobs = manifest.layers.len();
        txn.commit(|index| {
            index.manifests.retain(|d| d.ref_name() != Some(EXPORT_TAG));
            let mut tagged = descriptor.clone();
            tagged
                .annotations
                .insert(REF_NAME.to_owned(), EXPORT_TAG.to_owned());
            index.manifests.push(tagged);
            Ok(())
        })?;
        // The store's own bookkeeping is no part of the layout.
        let _ = fs::remove_dir(dir.join("tmp"));
        let _ = fs::remove_file(dir.join("lock"));
        Ok(ExportReport {
            manifest: descriptor,
            records: count,
            skipped,
            blobs,
        })
    }

    /// Imports an export made by [`Cache::export`] (from this or another machine): copies the
    /// layers this store lacks, checked against their digests, and adds the records this index
    /// lacks, marked used now. `dir` is only read.
    pub fn import(&self, dir: &Path) -> Result<ImportReport, CacheError> {
        let not_export = |path: PathBuf, reason: String| CacheError::NotExport { path, reason };
        let index_path = kiln_oci::Layout::new(dir).index();
        let index: Index =
            serde_json::from_slice(&fs::read(&index_path).map_err(io_err("read", &index_path))?)
                .map_err(|e| not_export(index_path.clone(), format!("not valid JSON: {e}")))?;
        let mut found = None;
        for d in &index.manifests {
            if !media::is_manifest(&d.media_type) {
                continue;
            }
            let bytes = read_layout_blob(dir, &d.digest, d.size)?;
            let m: Manifest = serde_json::from_slice(&bytes).map_err(|e| {
                not_export(
                    blob_path(dir, &d.digest),
                    format!("manifest is not valid JSON: {e}"),
                )
            })?;
            if m.config.media_type == RECORDS_MEDIA_TYPE {
                found = Some(m);
                break;
            }
        }
        let manifest = found.ok_or_else(|| {
            not_export(
                index_path.clone(),
                format!("no manifest has a `{RECORDS_MEDIA_TYPE}` config"),
            )
        })?;
        let doc_bytes = read_layout_blob(dir, &manifest.config.digest, manifest.config.size)?;
        let doc: RecordsDoc = serde_json::from_slice(&doc_bytes).map_err(|e| {
            not_export(
                blob_path(dir, &manifest.config.digest),
                format!("records are not valid: {e}"),
            )
        })?;
        if doc.schema_version != RECORDS_VERSION {
            return Err(not_export(
                blob_path(dir, &manifest.config.digest),
                format!(
                    "records document version {} is not the {RECORDS_VERSION} this kiln reads",
                    doc.schema_version
                ),
            ));
        }

        let mut txn = self.store().txn()?;
        let mut copied = 0;
        let mut outputs = Vec::with_capacity(doc.records.len());
        for r in doc.records {
            let config = read_layout_blob(dir, &r.config, r.config_size)?;
            let layer = match r.layer {
                None => None,
                Some(l) => {
                    if !txn.has_blob(&l.digest) {
                        let path = blob_path(dir, &l.digest);
                        let mut src = File::open(&path).map_err(io_err("open", &path))?;
                        let mut w = txn.blob_writer()?;
                        io::copy(&mut src, &mut w).map_err(io_err("read", &path))?;
                        w.commit(
                            Some((&l.digest, l.size)),
                            &format!("layer `{}` of the cache export", l.digest),
                        )?;
                        copied += 1;
                    }
                    Some(LayerRef {
                        descriptor: Descriptor::new(l.media_type, l.digest, l.size),
                        diff_id: l.diff_id,
                    })
                }
            };
            outputs.push((r.key, r.created_ms, StepOutput { layer, config }));
        }
        txn.commit(|_| Ok(()))?;
        let mut report = ImportReport {
            added: 0,
            already_present: 0,
            blobs_copied: copied,
        };
        let now = now_ms();
        for (key, created, output) in outputs {
            if self.peek(&key)?.is_some() {
                report.already_present += 1;
            } else {
                self.insert(&key, &output, created, now, false)?;
                report.added += 1;
            }
        }
        Ok(report)
    }
}

fn blob_path(dir: &Path, digest: &Digest) -> PathBuf {
    kiln_oci::Layout::new(dir).blob(digest)
}

/// Reads a small blob of a layout and checks its digest and size.
fn read_layout_blob(dir: &Path, digest: &Digest, size: u64) -> Result<Vec<u8>, CacheError> {
    let path = blob_path(dir, digest);
    let file = File::open(&path).map_err(io_err("open", &path))?;
    let mut r = HashingReader::new(file);
    let mut bytes = Vec::new();
    io::Read::read_to_end(&mut r, &mut bytes).map_err(io_err("read", &path))?;
    let (_, actual, actual_size) = r.finish();
    if &actual != digest || actual_size != size {
        return Err(CacheError::NotExport {
            path,
            reason: format!(
                "blob is `{actual}` ({actual_size} bytes), the export says `{digest}` ({size} bytes)"
            ),
        });
    }
    Ok(bytes)
}
