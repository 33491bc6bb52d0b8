//! Remotes: a layout directory and the in-memory remote behind the same trait; a lazy import
//! fetches a record's blobs when asked and checks them; inline caches in image configs.

mod common;

use std::sync::Arc;

use kiln_cache::{
    Cache, CacheRemote, ExportOptions, LazyImport, LocalLayout, MemoryRemote, StepOutput,
};
use kiln_layer::Compression;
use kiln_oci::model::Descriptor;

/// A real layer (a tar with one file), stored plain as kiln stores what it builds.
fn real_layer(store: &kiln_oci::Store, seed: &str) -> kiln_cache::LayerRef {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("file"), seed).unwrap();
    let opts = kiln_layer::PackOptions {
        compression: Compression::None,
        source_date_epoch: Some(0),
    };
    let (bytes, digests) = kiln_layer::pack_dir(dir.path(), Vec::new(), &opts).unwrap();
    let mut txn = store.txn().unwrap();
    let (digest, size) = txn.put_bytes(&bytes, None, "layer").unwrap();
    txn.commit(|_| Ok(())).unwrap();
    assert_eq!(digest, digests.diff_id);
    kiln_cache::LayerRef {
        descriptor: Descriptor::new(kiln_oci::media::OCI_LAYER, digest, size),
        diff_id: digests.diff_id,
    }
}

fn output(layer: kiln_cache::LayerRef) -> StepOutput {
    StepOutput {
        layer: Some(layer),
        config: Vec::new(),
    }
}

#[test]
fn a_lazy_import_from_a_layout_fetches_only_what_is_materialized() {
    let (_a, source) = common::store();
    let cache = Cache::open(&source).unwrap();
    let one = real_layer(&source, "one");
    let two = real_layer(&source, "two");
    cache
        .put(&common::key("one"), &output(one.clone()))
        .unwrap();
    cache
        .put(&common::key("two"), &output(two.clone()))
        .unwrap();
    let out = tempfile::tempdir().unwrap();
    cache.export(out.path()).unwrap();

    let (_b, fresh) = common::store();
    let other = Cache::open(&fresh).unwrap();
    let mut lazy = LazyImport::new();
    lazy.add(
        other
            .open_remote(Box::new(LocalLayout::new(out.path())), "latest")
            .unwrap(),
    );
    assert!(lazy.has(&common::key("one")) && lazy.has(&common::key("two")));
    assert!(other.records().unwrap().is_empty(), "nothing recorded yet");
    assert!(!fresh.has_blob(&one.diff_id) && !fresh.has_blob(&two.diff_id));

    let got = lazy
        .materialize(&other, &common::key("one"))
        .unwrap()
        .expect("a hit on a remote record");
    // The layer is the one the source built: uncompressed, its digest its diff id.
    assert_eq!(got.output.layer.as_ref(), Some(&one));
    assert!(fresh.has_blob(&one.diff_id));
    assert!(
        !fresh.has_blob(&two.diff_id),
        "the other record's layer stays remote"
    );
    assert_eq!(lazy.report().layers_fetched, 1);
    // Persisted like an ordinary import.
    assert!(other.get(&common::key("one")).unwrap().is_some());
    assert!(other.get(&common::key("two")).unwrap().is_none());
    assert!(
        lazy.materialize(&other, &common::key("absent"))
            .unwrap()
            .is_none()
    );
}

#[test]
fn a_corrupt_remote_layer_is_refused_and_nothing_is_recorded() {
    let (_a, source) = common::store();
    let cache = Cache::open(&source).unwrap();
    let layer = real_layer(&source, "x");
    cache
        .put(&common::key("x"), &output(layer.clone()))
        .unwrap();
    let remote = Arc::new(MemoryRemote::new("r"));
    let opts = ExportOptions::default();
    cache.export_to(&*remote, None, &opts, None).unwrap();
    let compressed = source
        .layer_variant(
            &layer.descriptor,
            kiln_oci::MediaTypes::Oci,
            kiln_oci::store::ExportCompression::default(),
        )
        .unwrap();
    remote.corrupt(&compressed.digest, vec![0; 64]);

    let (_b, fresh) = common::store();
    let other = Cache::open(&fresh).unwrap();
    let mut lazy = LazyImport::new();
    lazy.add(
        other
            .open_remote(Box::new(Arc::clone(&remote)), "latest")
            .unwrap(),
    );
    let e = lazy.materialize(&other, &common::key("x")).unwrap_err();
    assert!(
        e.to_string().contains(&compressed.digest.to_string()),
        "{e}"
    );
    assert!(other.records().unwrap().is_empty());
    assert!(!fresh.has_blob(&compressed.digest) && !fresh.has_blob(&layer.diff_id));
}

#[test]
fn a_layout_remote_keeps_tags_and_the_artifact_type() {
    let dir = tempfile::tempdir().unwrap();
    let remote = LocalLayout::new(dir.path().join("cache"));
    assert_eq!(remote.get_manifest("main").unwrap(), None);
    let bytes = br#"{"schemaVersion":2,"artifactType":"application/x.test"}"#;
    let d = remote
        .put_manifest("main", bytes, kiln_oci::media::OCI_MANIFEST)
        .unwrap();
    remote
        .put_manifest("branch", b"{}", kiln_oci::media::OCI_MANIFEST)
        .unwrap();
    assert!(remote.has_blob(&d).unwrap());
    assert_eq!(
        remote.get_manifest("main").unwrap(),
        Some((bytes.to_vec(), kiln_oci::media::OCI_MANIFEST.to_owned()))
    );
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("cache/index.json")).unwrap())
            .unwrap();
    assert_eq!(index["manifests"].as_array().unwrap().len(), 2);
    assert_eq!(index["manifests"][0]["artifactType"], "application/x.test");
}

#[test]
fn an_image_with_buildkits_inline_cache_yields_no_records_and_a_note() {
    let (_a, store) = common::store();
    let cache = Cache::open(&store).unwrap();
    let l = common::layer(&store, "base", 10);
    common::image(&store, &[&l]);
    let entry = store.images().unwrap().remove(0);
    let mut image = kiln_oci::Image::read(&store, &entry.descriptor, Vec::new()).unwrap();
    image.config.extra.insert(
        kiln_cache::BUILDKIT_INLINE_FIELD.to_owned(),
        serde_json::Value::from("eyJsYXllcnMiOltdfQ=="),
    );
    let report = cache.import_inline(&image, "docker-built").unwrap();
    assert_eq!(report.added, 0);
    assert!(
        report.note.unwrap().contains("BuildKit's inline cache"),
        "a note says why nothing was imported"
    );
    assert!(cache.records().unwrap().is_empty());

    // kiln's own field with a layer index the image does not have is an error naming it.
    image.config.extra.insert(
        kiln_cache::INLINE_FIELD.to_owned(),
        kiln_cache::transfer::inline::to_value(&[(common::key("s"), Some(7))]),
    );
    let e = cache.import_inline(&image, "docker-built").unwrap_err();
    assert!(e.to_string().contains("names layer 7"), "{e}");
}

#[test]
fn sources_are_tried_in_order_and_the_next_one_stands_in_for_a_broken_one() {
    let (_a, source) = common::store();
    let cache = Cache::open(&source).unwrap();
    let layer = real_layer(&source, "shared");
    cache
        .put(&common::key("s"), &output(layer.clone()))
        .unwrap();
    let (branch, main) = (
        Arc::new(MemoryRemote::new("branch")),
        Arc::new(MemoryRemote::new("main")),
    );
    for r in [&branch, &main] {
        cache
            .export_to(&**r, None, &ExportOptions::default(), None)
            .unwrap();
    }
    let open = |other: &Cache| {
        let mut lazy = LazyImport::new();
        for r in [&branch, &main] {
            lazy.add(
                other
                    .open_remote(Box::new(Arc::clone(r)), "latest")
                    .unwrap(),
            );
            r.reset_calls();
        }
        lazy
    };
    let (_b, fresh) = common::store();
    let other = Cache::open(&fresh).unwrap();
    let lazy = open(&other);
    assert!(
        lazy.materialize(&other, &common::key("s"))
            .unwrap()
            .is_some()
    );
    assert_eq!(branch.calls().fetched.len(), 1, "the first source");
    assert!(main.calls().fetched.is_empty());

    // The branch's layer is broken: main's is used.
    let compressed = source
        .layer_variant(
            &layer.descriptor,
            kiln_oci::MediaTypes::Oci,
            kiln_oci::store::ExportCompression::default(),
        )
        .unwrap();
    branch.corrupt(&compressed.digest, b"broken".to_vec());
    let (_c, third) = common::store();
    let other = Cache::open(&third).unwrap();
    let lazy = open(&other);
    let got = lazy
        .materialize(&other, &common::key("s"))
        .unwrap()
        .unwrap();
    assert_eq!(got.output.layer, Some(layer));
    assert_eq!(main.calls().fetched.len(), 1);
}
