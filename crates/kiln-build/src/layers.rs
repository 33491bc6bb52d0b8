//! Layers of a build: each new layer is written to a file in the build's transaction, adopted
//! as a blob there (published to the store when the build succeeds, or, when it fails with
//! the cache on, for the cache records of the steps that finished: never as an image), and given a
//! snapshot at once (unpacked from the layer, a RUN's files hard-linked from the tree it
//! wrote them in rather than created again) so that later steps can stack it under their
//! overlay.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use kiln_layer::{Compression, Digest, LayerDigests, LinkFrom};
use kiln_oci::model::Descriptor;
use kiln_oci::snapshot::Snapshots;
use kiln_oci::store::Txn;
use kiln_oci::{MediaTypes, Store};

use crate::error::StepError;

/// A layer of an image being built, or of its base image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layer {
    /// The blob.
    pub descriptor: Descriptor,
    /// The uncompressed digest.
    pub diff_id: Digest,
    /// Where its snapshot (overlay lower dir) is.
    pub snapshot: PathBuf,
}

/// The snapshots of `layers` (bottom first) as overlay lower dirs, topmost first, each at
/// most once ([`kiln_layer::overlay::unique_stack`]).
pub(crate) fn stack(layers: &[Layer]) -> Vec<PathBuf> {
    kiln_layer::overlay::unique_stack(layers.iter().rev().map(|l| l.snapshot.clone()))
}

/// Where a build puts its blobs and snapshots.
pub(crate) struct LayerSink<'s> {
    txn: Mutex<Txn<'s>>,
    scratch: PathBuf,
    snapshots: Snapshots,
    media: MediaTypes,
    compression: Compression,
    seq: AtomicU64,
    /// Regular files the build's snapshots created, and those hard-linked from the trees
    /// their layers were diffed from instead.
    files_created: AtomicU64,
    files_linked: AtomicU64,
}

impl<'s> LayerSink<'s> {
    /// A sink for one build: one transaction of `store`.
    pub(crate) fn new(
        store: &'s Store,
        media: MediaTypes,
        compression: Compression,
    ) -> Result<Self, StepError> {
        let txn = store.txn().map_err(StepError::store)?;
        let scratch = txn.scratch_dir().to_owned();
        let snapshots = Snapshots::new(store).map_err(StepError::snapshot)?;
        Ok(Self {
            txn: Mutex::new(txn),
            scratch,
            snapshots,
            media,
            compression,
            seq: AtomicU64::new(0),
            files_created: AtomicU64::new(0),
            files_linked: AtomicU64::new(0),
        })
    }

    /// Regular files the build's new snapshots created, and those they hard-linked instead.
    pub(crate) fn snapshot_files(&self) -> (u64, u64) {
        (
            self.files_created.load(Ordering::Relaxed),
            self.files_linked.load(Ordering::Relaxed),
        )
    }

    /// The store's snapshots.
    pub(crate) fn snapshots(&self) -> &Snapshots {
        &self.snapshots
    }

    /// Compression of new layers.
    pub(crate) fn compression(&self) -> Compression {
        self.compression
    }

    /// A fresh directory on the store's filesystem for one step, removed when the step drops
    /// it (and in any case with the transaction): a build's scratch space stays about one
    /// step's worth per running stage, not the sum of every step.
    pub(crate) fn scratch_dir(&self, what: &str) -> Result<ScratchDir, StepError> {
        let dir = self.scratch.join(format!(
            "{what}-{}",
            self.seq.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir_all(&dir).map_err(|e| StepError::io("create", &dir, e))?;
        Ok(ScratchDir(dir))
    }

    /// A path for a new layer file in the scratch space.
    pub(crate) fn layer_path(&self) -> PathBuf {
        self.scratch.join(format!(
            "layer-{}",
            self.seq.fetch_add(1, Ordering::Relaxed)
        ))
    }

    /// Adopt the layer written at `file` (with `digests` from its writer) as a blob, and make
    /// its snapshot by unpacking it: a snapshot holds exactly its layer, because every layer
    /// with the same `diff_id` shares it. `link_from` names files that already hold the
    /// layer's content (a RUN's upper dir, discarded after; the snapshots a `COPY --from`
    /// read, whose families are `shares`): the snapshot's regular files are hard links to
    /// them, so what a step outputs is created once, not again.
    pub(crate) fn commit_layer(
        &self,
        file: &Path,
        digests: &LayerDigests,
        link_from: Option<LinkFrom>,
        shares: &BTreeSet<String>,
    ) -> Result<Layer, StepError> {
        let (digest, size) = self
            .txn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .adopt_written(file, &digests.digest, digests.size, "new layer")
            .map_err(StepError::store)?;
        let blob = self.blob_path(&digest);
        let (snapshot, stats) = self
            .snapshots
            .ensure_from_file(&blob, &digests.diff_id, link_from, shares)
            .map_err(StepError::snapshot)?;
        if let Some(s) = stats {
            self.files_created.fetch_add(s.created, Ordering::Relaxed);
            self.files_linked.fetch_add(s.linked, Ordering::Relaxed);
        }
        Ok(Layer {
            descriptor: Descriptor::new(self.media.layer(self.compression), digest, size),
            diff_id: digests.diff_id.clone(),
            snapshot,
        })
    }

    /// Where a blob can be read now (staged in this build, or in the store).
    pub(crate) fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.txn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .blob_path(digest)
    }

    /// Stage an image's config and manifest (see `kiln_oci::store::Txn::put_image`).
    pub(crate) fn put_image(
        &self,
        media: MediaTypes,
        config: &kiln_oci::ImageConfig,
        layers: Vec<Descriptor>,
    ) -> Result<(Descriptor, Digest), StepError> {
        self.txn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .put_image(media, config, layers)
            .map_err(StepError::store)
    }

    /// Publish every staged blob and apply `change` to the store's index.
    pub(crate) fn finish(
        self,
        change: impl FnOnce(&mut kiln_oci::Index) -> Result<(), kiln_oci::StoreError>,
    ) -> Result<(), StepError> {
        self.txn
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .commit(change)
            .map_err(StepError::store)
    }
}

/// A step's scratch directory ([`LayerSink::scratch_dir`]), removed on drop. Nothing is ever
/// mounted in it on the host (views and sandboxes mount in their own namespaces).
pub(crate) struct ScratchDir(PathBuf);

impl std::ops::Deref for ScratchDir {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scratch_dir_goes_with_its_step() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = ScratchDir(tmp.path().join("run-0"));
        fs::create_dir_all(dir.join("upper/a")).unwrap();
        fs::write(dir.join("upper/a/f"), b"x").unwrap();
        let path = dir.to_path_buf();
        drop(dir);
        assert!(!path.exists());
    }
}
