//! Import: reading an export's manifest and records, and fetching its blobs, verified.

use std::path::Path;

use kiln_layer::Digest;
use kiln_oci::model::{Descriptor, Manifest};
use kiln_oci::store::Txn;
use kiln_oci::{Store, media};

use super::{ExportedRecord, LOCAL_TAG, RECORDS_MEDIA_TYPE, RECORDS_VERSION, RecordsDoc};
use crate::error::{CacheError, io_err};
use crate::index::{Cache, LayerRef, StepOutput, now_ms};
use crate::remote::{CacheRemote, LocalLayout};

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

/// An export's manifest and records, read from a remote.
pub(super) struct Opened {
    pub(super) manifest: Manifest,
    pub(super) doc: RecordsDoc,
}

/// The error of an export that is not what kiln writes.
fn not_export(remote: &dyn CacheRemote, tag: &str, reason: String) -> CacheError {
    CacheError::NotExport {
        path: format!("{} (tag `{tag}`)", remote.name()).into(),
        reason,
    }
}

/// Reads the manifest tagged `tag` and its records document from `remote`.
pub(super) fn open(
    store: &Store,
    remote: &dyn CacheRemote,
    tag: &str,
) -> Result<Opened, CacheError> {
    let (bytes, media_type) = remote
        .get_manifest(tag)
        .map_err(|source| CacheError::Remote {
            remote: remote.name(),
            action: format!("read the manifest `{tag}`"),
            source,
        })?
        .ok_or_else(|| CacheError::NoExport {
            remote: remote.name(),
            tag: tag.to_owned(),
        })?;
    if !media::is_manifest(&media_type) {
        return Err(not_export(
            remote,
            tag,
            format!("`{tag}` is a `{media_type}`, not an image manifest"),
        ));
    }
    let manifest: Manifest = serde_json::from_slice(&bytes)
        .map_err(|e| not_export(remote, tag, format!("manifest is not valid JSON: {e}")))?;
    if manifest.config.media_type != RECORDS_MEDIA_TYPE {
        return Err(not_export(
            remote,
            tag,
            format!("the manifest's config is not `{RECORDS_MEDIA_TYPE}`"),
        ));
    }
    let doc_bytes = fetch_small(store, remote, &manifest.config, "the records document")?;
    let doc: RecordsDoc = serde_json::from_slice(&doc_bytes)
        .map_err(|e| not_export(remote, tag, format!("records are not valid: {e}")))?;
    if doc.schema_version != RECORDS_VERSION {
        return Err(not_export(
            remote,
            tag,
            format!(
                "records document version {} is not the {RECORDS_VERSION} this kiln reads",
                doc.schema_version
            ),
        ));
    }
    Ok(Opened { manifest, doc })
}

/// Fetches a small blob into memory and checks it.
pub(super) fn fetch_small(
    store: &Store,
    remote: &dyn CacheRemote,
    d: &Descriptor,
    what: &str,
) -> Result<Vec<u8>, CacheError> {
    if d.size == 0 && d.digest == Digest::of(b"") {
        return Ok(Vec::new());
    }
    let dir = store.layout().tmp_unique("cache-fetch");
    std::fs::create_dir_all(&dir).map_err(io_err("create", &dir))?;
    let path = dir.join(d.digest.hex());
    fetch(remote, d, &path, what)?;
    let bytes = std::fs::read(&path).map_err(io_err("read", &path));
    let _ = std::fs::remove_dir_all(&dir);
    let bytes = bytes?;
    let actual = Digest::of(&bytes);
    if actual != d.digest || bytes.len() as u64 != d.size {
        return Err(CacheError::Remote {
            remote: remote.name(),
            action: format!("fetch {what} `{}`", d.digest),
            source: format!(
                "it is `{actual}` ({} bytes), the export says `{}` ({} bytes)",
                bytes.len(),
                d.digest,
                d.size
            )
            .into(),
        });
    }
    Ok(bytes)
}

fn fetch(
    remote: &dyn CacheRemote,
    d: &Descriptor,
    dest: &Path,
    what: &str,
) -> Result<(), CacheError> {
    remote
        .fetch_blob(d, dest)
        .map_err(|source| CacheError::Remote {
            remote: remote.name(),
            action: format!("fetch {what} `{}`", d.digest),
            source,
        })
}

/// Fetches blob `d` into `txn`, checked against its digest and size, unless the store (or
/// `txn`) has it; whether it was fetched.
pub(super) fn fetch_into(
    remote: &dyn CacheRemote,
    d: &Descriptor,
    txn: &mut Txn<'_>,
    what: &str,
) -> Result<bool, CacheError> {
    if txn.has_blob(&d.digest) {
        return Ok(false);
    }
    let path = txn.scratch_dir().join(format!("fetch-{}", d.digest.hex()));
    fetch(remote, d, &path, what)?;
    let adopted = txn.adopt_file(
        &path,
        Some((&d.digest, d.size)),
        &format!("{what} `{}` from {}", d.digest, remote.name()),
    );
    if adopted.is_err() {
        let _ = std::fs::remove_file(&path);
    }
    adopted?;
    Ok(true)
}

impl Cache {
    /// Imports an export in the OCI layout `dir` made by [`Cache::export`] (from this or
    /// another machine) at once: see [`Cache::import_from`]. `dir` is only read.
    pub fn import(&self, dir: &Path) -> Result<ImportReport, CacheError> {
        self.import_from(&LocalLayout::new(dir), LOCAL_TAG)
    }

    /// Imports the export tagged `tag` of `remote` at once: fetches the layers and configs this
    /// store lacks, checked against their digests, and adds the records this index lacks,
    /// marked used now. Nothing is recorded when a blob is refused. (A build imports lazily
    /// instead: [`Cache::open_remote`].)
    pub fn import_from(
        &self,
        remote: &dyn CacheRemote,
        tag: &str,
    ) -> Result<ImportReport, CacheError> {
        let opened = open(self.store(), remote, tag)?;
        let mut txn = self.store().txn()?;
        let mut copied = 0;
        let mut outputs = Vec::with_capacity(opened.doc.records.len());
        let selections = opened.doc.selections;
        for r in opened.doc.records {
            let (output, fetched) = fetch_record(self.store(), remote, &r, &mut txn)?;
            copied += usize::from(fetched);
            outputs.push((r.key, r.created_ms, output));
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
        for s in &selections {
            self.put_selections(&s.step, &[s.selection()])?;
        }
        Ok(report)
    }
}

/// A record's config and layer, the layer fetched into `txn` as it is in the export; whether
/// the layer was fetched.
fn fetch_record(
    store: &Store,
    remote: &dyn CacheRemote,
    r: &ExportedRecord,
    txn: &mut Txn<'_>,
) -> Result<(StepOutput, bool), CacheError> {
    let config = fetch_small(
        store,
        remote,
        &Descriptor::new(media::OCI_CONFIG, r.config.clone(), r.config_size),
        "step config",
    )?;
    let mut fetched = false;
    let layer = match &r.layer {
        None => None,
        Some(l) => {
            fetched = fetch_into(remote, &l.descriptor(), txn, "layer")?;
            Some(LayerRef {
                descriptor: l.descriptor(),
                diff_id: l.diff_id.clone(),
            })
        }
    };
    Ok((StepOutput { layer, config }, fetched))
}
