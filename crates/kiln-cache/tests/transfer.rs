//! Export and import: another machine's cache, carried as an OCI layout, fills a fresh store.

mod common;

use kiln_cache::{ARTIFACT_TYPE, Cache, RECORDS_MEDIA_TYPE};
use kiln_oci::store::ExportCompression;

#[test]
fn export_import_round_trip_into_a_fresh_store() {
    let (_a, source) = common::store();
    let cache = Cache::open(&source).unwrap();
    let l1 = common::layer(&source, "one", 300);
    let l2 = common::layer(&source, "two", 500);
    let steps = [
        ("one", Some(l1.clone())),
        ("two", Some(l2.clone())),
        ("env", None),
        ("shared", Some(l1.clone())),
    ];
    for (name, layer) in &steps {
        cache
            .put(&common::key(name), &common::output(layer.clone(), name))
            .unwrap();
    }
    let out = tempfile::tempdir().unwrap();
    let layout = out.path().join("cache");
    let report = cache.export(&layout).unwrap();
    assert_eq!(report.records, 4);
    // Two layers and four configs, each once.
    assert_eq!(report.blobs, 6);

    // It is a plain OCI layout with one tagged artifact manifest.
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let entries = index["manifests"].as_array().unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["artifactType"], ARTIFACT_TYPE);
    assert_eq!(
        entries[0]["annotations"]["org.opencontainers.image.ref.name"],
        "latest"
    );
    assert!(layout.join("oci-layout").is_file());
    assert!(!layout.join("tmp").exists() && !layout.join("lock").exists());
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            layout
                .join("blobs/sha256")
                .join(report.manifest.digest.hex()),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(manifest["config"]["mediaType"], RECORDS_MEDIA_TYPE);

    // A fresh store on "another machine".
    let (_b, fresh) = common::store();
    let other = Cache::open(&fresh).unwrap();
    let imported = other.import(&layout).unwrap();
    assert_eq!(imported.added, 4);
    assert_eq!(imported.blobs_copied, 2);
    for (name, layer) in &steps {
        let r = other.get(&common::key(name)).unwrap().expect("imported");
        assert_eq!(r.output, common::output(layer.clone(), name));
        if let Some(l) = layer {
            assert!(fresh.has_blob(&l.descriptor.digest));
        }
    }
    // Importing again changes nothing.
    let again = other.import(&layout).unwrap();
    assert_eq!(
        (again.added, again.already_present, again.blobs_copied),
        (0, 4, 0)
    );

    // Exporting a subset lists only its blobs.
    let subset = out.path().join("subset");
    let r = cache
        .export_keys(
            &subset,
            Some(&[common::key("env")]),
            ExportCompression::default(),
        )
        .unwrap();
    assert_eq!((r.records, r.blobs), (1, 1));
}

#[test]
fn a_corrupt_layer_is_refused_and_nothing_is_recorded() {
    let (_a, source) = common::store();
    let cache = Cache::open(&source).unwrap();
    let l = common::layer(&source, "layer", 200);
    cache
        .put(&common::key("x"), &common::output(Some(l.clone()), "x"))
        .unwrap();
    let out = tempfile::tempdir().unwrap();
    cache.export(out.path()).unwrap();
    std::fs::write(
        out.path()
            .join("blobs/sha256")
            .join(l.descriptor.digest.hex()),
        vec![0u8; 200],
    )
    .unwrap();
    let (_b, fresh) = common::store();
    let other = Cache::open(&fresh).unwrap();
    let e = other.import(out.path()).unwrap_err();
    assert!(
        e.to_string().contains(&l.descriptor.digest.to_string()),
        "{e}"
    );
    assert!(other.records().unwrap().is_empty());
    assert!(!fresh.has_blob(&l.descriptor.digest));
}

#[test]
fn a_plain_image_layout_is_not_a_cache_export() {
    let (_a, source) = common::store();
    let l = common::layer(&source, "layer", 10);
    common::image(&source, &[&l]);
    let cache = Cache::open(&source).unwrap();
    let e = cache.import(source.root()).unwrap_err();
    assert!(e.to_string().contains("is not a kiln cache export"), "{e}");
}

#[test]
fn selection_memos_travel_with_their_records() {
    use kiln_cache::{LazyImport, LocalLayout, Selection, selection_key};
    use kiln_layer::Digest;
    let (_a, source) = common::store();
    let cache = Cache::open(&source).unwrap();
    let l1 = common::layer(&source, "one", 300);
    let copy = common::key("copy --from");
    let other_step = common::key("other");
    cache
        .put(&copy, &common::output(Some(l1.clone()), "copy"))
        .unwrap();
    cache
        .put(&other_step, &common::output(None, "other"))
        .unwrap();
    let sel = Selection {
        key: selection_key(std::slice::from_ref(&l1.diff_id), "COPY /deps /opt/deps"),
        root: Digest::of(b"merkle root"),
    };
    let unexported = Selection {
        key: selection_key(std::slice::from_ref(&l1.diff_id), "COPY /elsewhere /x"),
        root: Digest::of(b"another root"),
    };
    cache
        .put_selections(&copy, std::slice::from_ref(&sel))
        .unwrap();
    cache
        .put_selections(&other_step, std::slice::from_ref(&unexported))
        .unwrap();
    let out = tempfile::tempdir().unwrap();
    let layout = out.path().join("cache");
    cache
        .export_keys(
            &layout,
            Some(std::slice::from_ref(&copy)),
            ExportCompression::default(),
        )
        .unwrap();

    // A lazy import answers from the records document alone.
    let (_b, fresh) = common::store();
    let lazy_store = Cache::open(&fresh).unwrap();
    let mut lazy = LazyImport::new();
    lazy.add(
        lazy_store
            .open_remote(Box::new(LocalLayout::new(&layout)), "latest")
            .unwrap(),
    );
    assert_eq!(lazy.selection(&sel.key), Some(sel.root.clone()));
    assert_eq!(
        lazy.selection(&unexported.key),
        None,
        "not an exported step's"
    );

    // A full import keeps it with its record; pruning the record drops it.
    let (_c, other) = common::store();
    let imported = Cache::open(&other).unwrap();
    imported.import(&layout).unwrap();
    assert_eq!(
        imported.selection(&sel.key).unwrap(),
        Some(sel.root.clone())
    );
    assert_eq!(imported.selections_of(&copy).unwrap(), vec![sel.clone()]);
    imported.remove(&copy).unwrap();
    assert_eq!(imported.selection(&sel.key).unwrap(), None);
}
