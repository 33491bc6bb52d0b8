//! Snapshots: layers unpacked once into `snapshots/`, in overlay's format, verified.

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};

use kiln_oci::{ImportOptions, Reference, Snapshots, Store};

fn tar_of(files: &[(&str, &str)]) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    for (rel, content) in files {
        let p = dir.path().join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, content).unwrap();
    }
    kiln_layer::pack_dir(
        dir.path(),
        Vec::new(),
        &kiln_layer::PackOptions {
            compression: kiln_layer::Compression::None,
            source_date_epoch: Some(0),
        },
    )
    .unwrap()
    .0
}

#[test]
fn layers_are_unpacked_once_as_overlay_lower_dirs() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    let tar = tar_of(&[
        ("a/x", "1"),
        ("a/.wh.gone", ""),
        ("b/.wh..wh..opq", ""),
        ("b/y", "2"),
    ]);
    let r = Reference::parse("t:1").unwrap();
    kiln_oci::import_rootfs(&store, &tar[..], Some(&r), &ImportOptions::default()).unwrap();
    let image = store.resolve("t:1").unwrap();
    let snaps = Snapshots::new(&store).unwrap();
    let dirs = snaps.ensure_image(&image).unwrap();
    assert_eq!(dirs.len(), 1);
    let fs_dir = &dirs[0];
    assert_eq!(fs_dir.parent().unwrap().parent().unwrap(), snaps.dir());
    assert_eq!(fs_dir.parent().unwrap().file_name().unwrap().len(), 12);
    assert_eq!(fs::read_to_string(fs_dir.join("a/x")).unwrap(), "1");
    let wh = fs::symlink_metadata(fs_dir.join("a/gone")).unwrap();
    assert!(wh.file_type().is_char_device() && wh.rdev() == 0);
    assert!(!fs_dir.join("a/.wh.gone").exists());
    if rustix::process::geteuid().is_root() {
        assert!(kiln_layer::overlay::is_opaque(&fs_dir.join("b")));
    }
    // Reused: the same inode the second time.
    let ino = fs::metadata(fs_dir.join("a/x")).unwrap().ino();
    let again = snaps.ensure_image(&image).unwrap();
    assert_eq!(again, dirs);
    assert_eq!(fs::metadata(again[0].join("a/x")).unwrap().ino(), ino);
    // No leftovers of the unpack.
    let names: Vec<_> = fs::read_dir(snaps.dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(names.iter().all(|n| !n.starts_with("tmp-")), "{names:?}");
}

#[test]
fn a_wrong_diff_id_is_refused_and_leaves_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    let tar = tar_of(&[("f", "x")]);
    let r = Reference::parse("t:1").unwrap();
    kiln_oci::import_rootfs(&store, &tar[..], Some(&r), &ImportOptions::default()).unwrap();
    let image = store.resolve("t:1").unwrap();
    let wrong = kiln_layer::Digest::of(b"not this layer");
    let snaps = Snapshots::new(&store).unwrap();
    let err = snaps.ensure(&image.manifest.layers[0], &wrong).unwrap_err();
    assert!(
        err.to_string()
            .contains("but the image says its diff_id is"),
        "{err}"
    );
    assert_eq!(fs::read_dir(snaps.dir()).unwrap().count(), 0);
}

#[test]
fn a_stack_names_its_layers_by_diff_id_promised_or_unpacked() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    let snaps = Snapshots::new(&store).unwrap();
    let mut stack = Vec::new();
    let mut diff_ids = Vec::new();
    for (i, content) in ["one", "two"].into_iter().enumerate() {
        let tar = tar_of(&[("f", content)]);
        let diff_id = kiln_layer::Digest::of(&tar);
        let mut txn = store.txn().unwrap();
        let (digest, size) = txn.put_bytes(&tar, None, "layer").unwrap();
        txn.commit(|_| Ok(())).unwrap();
        let desc = kiln_oci::model::Descriptor::new(kiln_oci::media::OCI_LAYER, digest, size);
        // The first is unpacked, the second only promised.
        let tree = if i == 0 {
            snaps.ensure(&desc, &diff_id).unwrap()
        } else {
            snaps.promise(&desc, &diff_id).unwrap()
        };
        stack.insert(0, tree);
        diff_ids.insert(0, diff_id);
    }
    assert!(!stack[0].exists(), "promised, not unpacked");
    assert_eq!(snaps.stack_diff_ids(&stack), Some(diff_ids));
    assert_eq!(
        snaps.stack_diff_ids(&[tmp.path().join("elsewhere/fs")]),
        None
    );
}
