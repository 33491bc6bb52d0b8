//! Helpers shared by the integration tests: a store in a temporary directory, fake layers
//! with snapshots, records, images.

#![allow(dead_code)]

use std::fs;

use kiln_cache::{Cache, CacheKey, KeyBuilder, LayerRef, Parent, StepOutput};
use kiln_layer::Digest;
use kiln_oci::Store;
use kiln_oci::model::{Descriptor, Manifest};

/// A fresh store and its cache.
pub(crate) fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("root")).unwrap();
    (dir, store)
}

/// A distinct key for `name`.
pub(crate) fn key(name: &str) -> CacheKey {
    KeyBuilder::new(Parent::Scratch, format!("RUN {name}"), "linux/amd64")
        .finish()
        .0
}

/// Puts a "layer" blob of `size` bytes derived from `seed` into the store, and a snapshot of
/// it of about `size` bytes too. Not a real tar: the cache never reads layers.
pub(crate) fn layer(store: &Store, seed: &str, size: usize) -> LayerRef {
    let bytes: Vec<u8> = seed.bytes().cycle().take(size).collect();
    let mut txn = store.txn().unwrap();
    let (digest, len) = txn.put_bytes(&bytes, None, "test layer").unwrap();
    txn.commit(|_| Ok(())).unwrap();
    let diff_id = Digest::of(format!("diff {seed}").as_bytes());
    let snap = store
        .root()
        .join("snapshots")
        .join(kiln_oci::Layout::snapshot_id(&diff_id));
    fs::create_dir_all(snap.join("fs")).unwrap();
    fs::write(snap.join("fs/file"), &bytes).unwrap();
    fs::write(snap.join("diff_id"), diff_id.to_string()).unwrap();
    LayerRef {
        descriptor: Descriptor::new(kiln_oci::media::OCI_LAYER_GZIP, digest, len),
        diff_id,
    }
}

/// A step output with `layer` and a small config naming `seed`.
pub(crate) fn output(layer: Option<LayerRef>, seed: &str) -> StepOutput {
    StepOutput {
        layer,
        config: format!(r#"{{"architecture":"amd64","os":"linux","seed":"{seed}"}}"#).into_bytes(),
    }
}

/// Whether the snapshot of `l` is there.
pub(crate) fn has_snapshot(store: &Store, l: &LayerRef) -> bool {
    store
        .root()
        .join("snapshots")
        .join(kiln_oci::Layout::snapshot_id(&l.diff_id))
        .join("diff_id")
        .exists()
}

/// Adds an untagged image made of `layers` to the store's `index.json`.
pub(crate) fn image(store: &Store, layers: &[&LayerRef]) {
    let diff_ids: Vec<String> = layers
        .iter()
        .map(|l| format!("\"{}\"", l.diff_id))
        .collect();
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":[{}]}}}}"#,
        diff_ids.join(",")
    );
    let mut txn = store.txn().unwrap();
    let (cd, cs) = txn.put_bytes(config.as_bytes(), None, "config").unwrap();
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(kiln_oci::media::OCI_MANIFEST.into()),
        config: Descriptor::new(kiln_oci::media::OCI_CONFIG, cd, cs),
        layers: layers.iter().map(|l| l.descriptor.clone()).collect(),
        annotations: std::collections::BTreeMap::default(),
        extra: std::collections::BTreeMap::default(),
    };
    let bytes = kiln_oci::canonical::to_vec(&manifest).unwrap();
    let (md, ms) = txn.put_bytes(&bytes, None, "manifest").unwrap();
    let d = Descriptor::new(kiln_oci::media::OCI_MANIFEST, md, ms);
    txn.commit(|index| {
        kiln_oci::store::add_untagged(index, &d);
        Ok(())
    })
    .unwrap();
}

/// Opens a second handle on the same cache, as another process would.
pub(crate) fn reopen(store: &Store) -> Cache {
    Cache::open(store).unwrap()
}
