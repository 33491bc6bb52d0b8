//! Pushing an image of the store.
//!
//! Layers leave compressed: the store's compressed variant of the image
//! ([`Store::compressed_variant`]) is made once and remembered, so a second push compresses
//! nothing. Blobs the registry has are skipped (HEAD), blobs the store knows to be in
//! another repository of the same registry are mounted from it, the rest are uploaded
//! (`jobs` at once; in chunks when large), then the manifest is put under the tag. A
//! multi-platform image (an index) is pushed as stored: each manifest, then the index.

use std::sync::{Mutex, PoisonError};

use kiln_layer::Digest;
use kiln_oci::store::ExportCompression;
use kiln_oci::{Descriptor, Image, Index, Reference, Store, media};

use crate::error::RegistryError;
use crate::progress::{BlobOutcome, Progress};
use crate::repository::Repository;
use crate::{Registries, sources};

/// How to push.
#[derive(Debug, Clone, Copy, Default)]
pub struct PushOptions {
    /// How layers are compressed on their way out; gzip by default.
    pub compression: ExportCompression,
}

/// What a push did.
#[derive(Debug, Clone)]
pub struct Pushed {
    /// The pushed manifest's (or index's) digest: what `kiln push` prints.
    pub digest: Digest,
    /// Its media type.
    pub media_type: String,
    /// Its size.
    pub size: u64,
    /// Blobs uploaded.
    pub uploaded: usize,
    /// Blobs mounted from another repository.
    pub mounted: usize,
    /// Blobs the registry already had.
    pub present: usize,
}

impl Registries {
    /// Pushes `image` (of `store`) to `reference` (see the module docs); returns the pushed
    /// manifest's digest and what moved.
    pub fn push(
        &self,
        store: &Store,
        image: &Image,
        reference: &Reference,
        opts: &PushOptions,
        progress: &dyn Progress,
    ) -> Result<Pushed, RegistryError> {
        let (top, top_bytes, manifests) = if media::is_index(&image.descriptor.media_type) {
            let bytes = store.read_blob(&image.descriptor.digest, "index")?;
            let index: Index =
                serde_json::from_slice(&bytes).map_err(|source| RegistryError::Json {
                    registry: reference.domain.clone(),
                    repository: reference.path.clone(),
                    what: format!("index `{}` in the store", image.descriptor.digest),
                    source,
                })?;
            let mut children = Vec::new();
            for d in index
                .manifests
                .iter()
                .filter(|d| media::is_manifest(&d.media_type))
            {
                let bytes = store.read_blob(&d.digest, "manifest")?;
                let m = Image::read_manifest(store, d)?;
                children.push((d.clone(), bytes, m));
            }
            (image.descriptor.clone(), bytes, children)
        } else {
            let out = store.compressed_variant(image, opts.compression)?;
            let bytes = store.read_blob(&out.manifest_descriptor.digest, "manifest")?;
            let d = out.manifest_descriptor.clone();
            (d.clone(), bytes.clone(), vec![(d, bytes, out.manifest)])
        };
        let mut repo = self.repository(reference);
        // Every blob once, with where to mount it from.
        let mut blobs: Vec<(Descriptor, Option<String>)> = Vec::new();
        for (_, _, m) in &manifests {
            for d in std::iter::once(&m.config).chain(&m.layers) {
                if blobs.iter().any(|(b, _)| b.digest == d.digest) {
                    continue;
                }
                let from =
                    sources::mount_source(store, &d.digest, &reference.domain, &reference.path);
                if let Some(f) = &from {
                    repo = repo.with_pull_scope(f);
                }
                blobs.push((d.clone(), from));
            }
        }
        let counts = self.push_blobs(&repo, store, &blobs, progress)?;
        for (d, bytes, _) in &manifests {
            if d.digest != top.digest {
                repo.put_manifest(&d.digest.to_string(), bytes, &d.media_type)?;
            }
        }
        let object = reference
            .tag
            .clone()
            .unwrap_or_else(|| top.digest.to_string());
        let digest = repo.put_manifest(&object, &top_bytes, &top.media_type)?;
        sources::record(
            store,
            blobs.iter().map(|(d, _)| &d.digest),
            &reference.repository(),
        );
        Ok(Pushed {
            digest,
            media_type: top.media_type.clone(),
            size: top_bytes.len() as u64,
            uploaded: counts.0,
            mounted: counts.1,
            present: counts.2,
        })
    }

    /// Pushes `blobs`, `jobs` at once; returns (uploaded, mounted, present).
    fn push_blobs(
        &self,
        repo: &Repository,
        store: &Store,
        blobs: &[(Descriptor, Option<String>)],
        progress: &dyn Progress,
    ) -> Result<(usize, usize, usize), RegistryError> {
        let work = Mutex::new(blobs.iter().rev().collect::<Vec<_>>());
        let counts = Mutex::new((0, 0, 0));
        let failure: Mutex<Option<RegistryError>> = Mutex::new(None);
        let threads = self.shared.jobs.min(blobs.len()).max(1);
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(|| {
                    loop {
                        if failure
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .is_some()
                        {
                            return;
                        }
                        let Some((d, from)) =
                            work.lock().unwrap_or_else(PoisonError::into_inner).pop()
                        else {
                            return;
                        };
                        let result = push_one(repo, store, d, from.as_deref(), progress);
                        match result {
                            Ok(outcome) => {
                                progress.blob_finished(d, outcome);
                                let mut c = counts.lock().unwrap_or_else(PoisonError::into_inner);
                                match outcome {
                                    BlobOutcome::Uploaded => c.0 += 1,
                                    BlobOutcome::Mounted => c.1 += 1,
                                    _ => c.2 += 1,
                                }
                            }
                            Err(e) => {
                                failure
                                    .lock()
                                    .unwrap_or_else(PoisonError::into_inner)
                                    .get_or_insert(e);
                                return;
                            }
                        }
                    }
                });
            }
        });
        if let Some(e) = failure.into_inner().unwrap_or_else(PoisonError::into_inner) {
            return Err(e);
        }
        Ok(counts.into_inner().unwrap_or_else(PoisonError::into_inner))
    }
}

/// Pushes one blob of the store.
fn push_one(
    repo: &Repository,
    store: &Store,
    d: &Descriptor,
    mount_from: Option<&str>,
    progress: &dyn Progress,
) -> Result<BlobOutcome, RegistryError> {
    if !crate::stream::foreign_urls(d).is_empty() {
        // Docker does not push non-distributable layers: they stay where their URLs say.
        return Ok(BlobOutcome::Foreign);
    }
    if !store.has_blob(&d.digest) {
        return Err(RegistryError::Store(kiln_oci::StoreError::MissingBlob {
            digest: d.digest.clone(),
            what: format!("blob of the image pushed to `{}`", repo.name()),
        }));
    }
    progress.blob_started(d);
    repo.push_blob(d, &store.blob_path(&d.digest), mount_from, progress)
}
