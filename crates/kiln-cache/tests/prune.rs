//! Garbage collection: least recently used records go first, what images or other records
//! hold stays, and the budget is met.

mod common;

use std::time::Duration;

use kiln_cache::{Cache, LayerRef};

/// Five records, each with its own 1000-byte layer and snapshot, used in order r0..r4.
fn five(store: &kiln_oci::Store, cache: &Cache) -> Vec<LayerRef> {
    (0..5)
        .map(|i| {
            let name = format!("r{i}");
            let l = common::layer(store, &name, 1000);
            cache
                .put(&common::key(&name), &common::output(Some(l.clone()), &name))
                .unwrap();
            std::thread::sleep(Duration::from_millis(5));
            l
        })
        .collect()
}

#[test]
fn budget_removes_least_recently_used_first() {
    let (_dir, store) = common::store();
    let cache = Cache::open(&store).unwrap();
    let layers = five(&store, &cache);
    // Using r0 makes it the most recent.
    assert!(cache.get(&common::key("r0")).unwrap().is_some());

    let du = cache.du().unwrap();
    assert_eq!(du.records.len(), 5);
    assert_eq!(du.blob_bytes, 5000);
    let per_snapshot = du.records[0].snapshot_size.unwrap();
    assert!(per_snapshot > 0);
    assert_eq!(du.snapshot_bytes, 5 * per_snapshot);
    assert_eq!(du.reclaimable(), du.blob_bytes + du.snapshot_bytes);

    // Room for two records' blobs and snapshots.
    let budget = 2 * (1000 + per_snapshot);
    let report = cache.prune(Some(budget), None, false, &|_| false).unwrap();
    assert_eq!(
        report.removed,
        vec![common::key("r1"), common::key("r2"), common::key("r3")]
    );
    assert_eq!(report.deleted_blobs.len(), 3);
    assert_eq!(report.deleted_snapshots.len(), 3);
    assert_eq!(report.freed, 3 * (1000 + per_snapshot));
    for (i, l) in layers.iter().enumerate() {
        let kept = i == 0 || i == 4;
        assert_eq!(store.has_blob(&l.descriptor.digest), kept, "blob of r{i}");
        assert_eq!(common::has_snapshot(&store, l), kept, "snapshot of r{i}");
        assert_eq!(
            cache
                .peek(&common::key(&format!("r{i}")))
                .unwrap()
                .is_some(),
            kept
        );
    }
    let du = cache.du().unwrap();
    assert!(du.blob_bytes + du.snapshot_bytes <= budget);
}

#[test]
fn images_other_records_and_in_use_keep_their_layers() {
    let (_dir, store) = common::store();
    let cache = Cache::open(&store).unwrap();
    let layers = five(&store, &cache);
    // r0's layer is in an image; r1's layer is also r1b's; r2's is in use by a build.
    common::image(&store, &[&layers[0]]);
    cache
        .put(
            &common::key("r1b"),
            &common::output(Some(layers[1].clone()), "r1b"),
        )
        .unwrap();
    let busy = layers[2].descriptor.digest.clone();
    let busy_snapshot = layers[2].diff_id.clone();

    let all_but_r1b = |k: &kiln_cache::CacheKey| *k != common::key("r1b");
    // Remove r0..r4 by age; r1b was used just now.
    std::thread::sleep(Duration::from_millis(300));
    assert!(cache.get(&common::key("r1b")).unwrap().is_some());
    let report = cache
        .prune(None, Some(Duration::from_millis(200)), false, &|d| {
            *d == busy || *d == busy_snapshot
        })
        .unwrap();
    assert!(report.removed.iter().all(all_but_r1b));
    assert_eq!(report.removed.len(), 5, "{report:?}");
    assert!(
        store.has_blob(&layers[0].descriptor.digest),
        "image layer kept"
    );
    assert!(
        common::has_snapshot(&store, &layers[0]),
        "image snapshot kept"
    );
    assert!(
        store.has_blob(&layers[1].descriptor.digest),
        "shared layer kept"
    );
    assert!(store.has_blob(&busy), "in-use layer kept");
    assert!(
        common::has_snapshot(&store, &layers[2]),
        "in-use snapshot kept"
    );
    assert_eq!(report.kept_in_use, vec![busy, busy_snapshot]);
    assert!(!store.has_blob(&layers[3].descriptor.digest));
    assert!(!store.has_blob(&layers[4].descriptor.digest));
    assert_eq!(cache.records().unwrap().len(), 1);

    // `all` clears the rest and the stat cache, and keeps the image's layer.
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(ctx.path().join("f"), "x").unwrap();
    {
        let h = cache.stat_hasher(ctx.path()).unwrap();
        kiln_fileop::ContentHasher::sha256(&h, &ctx.path().join("f"), None).unwrap();
    }
    assert_eq!(cache.du().unwrap().stat_rows, 1);
    let report = cache.prune(None, None, true, &|_| false).unwrap();
    assert_eq!(report.removed, vec![common::key("r1b")]);
    assert_eq!(report.stat_rows_removed, 1);
    assert!(!store.has_blob(&layers[1].descriptor.digest));
    assert!(store.has_blob(&layers[0].descriptor.digest));
    assert!(cache.records().unwrap().is_empty());
}

#[test]
fn a_record_whose_layer_left_the_store_is_a_miss() {
    let (_dir, store) = common::store();
    let cache = Cache::open(&store).unwrap();
    let l = common::layer(&store, "gone", 10);
    let key = common::key("gone");
    cache
        .put(&key, &common::output(Some(l.clone()), "gone"))
        .unwrap();
    std::fs::remove_file(store.blob_path(&l.descriptor.digest)).unwrap();
    assert!(cache.get(&key).unwrap().is_none());
    assert!(
        cache.peek(&key).unwrap().is_none(),
        "the dangling record was dropped"
    );
    // And no record can be made for a layer the store lacks.
    let e = cache
        .put(&key, &common::output(Some(l), "gone"))
        .unwrap_err();
    assert!(e.to_string().contains("not in the store"), "{e}");
}

#[test]
fn an_uncompressed_layer_loses_blob_and_snapshot() {
    let (_dir, store) = common::store();
    let cache = Cache::open(&store).unwrap();
    // An uncompressed layer: its blob digest is its diff_id, and so its snapshot's id.
    let mut l = common::layer(&store, "plain", 1000);
    let old_snapshot = store
        .root()
        .join("snapshots")
        .join(kiln_oci::Layout::snapshot_id(&l.diff_id));
    l.diff_id = l.descriptor.digest.clone();
    let snapshot = store
        .root()
        .join("snapshots")
        .join(kiln_oci::Layout::snapshot_id(&l.diff_id));
    std::fs::rename(&old_snapshot, &snapshot).unwrap();
    std::fs::write(snapshot.join("diff_id"), l.diff_id.to_string()).unwrap();
    cache
        .put(
            &common::key("plain"),
            &common::output(Some(l.clone()), "plain"),
        )
        .unwrap();

    let report = cache.prune(Some(0), None, false, &|_| false).unwrap();
    assert_eq!(report.removed, vec![common::key("plain")]);
    assert!(!store.has_blob(&l.descriptor.digest), "blob removed");
    assert!(!common::has_snapshot(&store, &l), "snapshot removed");
    assert_eq!(report.deleted_snapshots, vec![l.diff_id.clone()]);
}
