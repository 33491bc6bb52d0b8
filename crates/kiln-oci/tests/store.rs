//! The store: import, tags, concurrency, fsck, load/save round trips and bad input.

use std::fs;
use std::path::{Path, PathBuf};

use kiln_layer::{Compression, Entry, EntryKind, LayerWriter};
use kiln_oci::{
    ArchiveError, ImportOptions, LoadOptions, Reference, SaveFormat, Store, import_rootfs, load,
    save,
};

fn rootfs(marker: &str) -> Vec<u8> {
    let mut w = LayerWriter::new(Vec::new(), Compression::None).unwrap();
    w.append(&Entry::new("etc", EntryKind::Dir), None).unwrap();
    let mut e = Entry::new("etc/marker", EntryKind::File);
    e.size = marker.len() as u64;
    w.append(&e, Some(&mut marker.as_bytes())).unwrap();
    w.finish().unwrap().0
}

fn import(store: &Store, name: &str, marker: &str) -> kiln_oci::Descriptor {
    let opts = ImportOptions {
        created: Some(0),
        ..ImportOptions::default()
    };
    import_rootfs(
        store,
        &rootfs(marker)[..],
        Some(&Reference::parse(name).unwrap()),
        &opts,
    )
    .unwrap()
}

/// Every file under `dir` with its content, to prove a store unchanged.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_owned()];
    while let Some(d) = todo.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else if p.file_name().unwrap() != "lock" {
                out.push((p.clone(), fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn import_is_deterministic_and_resolvable_by_name_and_id() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let da = import(&Store::open(a.path()).unwrap(), "busybox", "x");
    let db = import(&Store::open(b.path()).unwrap(), "busybox", "x");
    assert_eq!(da.digest, db.digest);
    let store = Store::open(a.path()).unwrap();
    let img = store.resolve("busybox").unwrap();
    assert_eq!(img.tags[0].to_string(), "docker.io/library/busybox:latest");
    assert_eq!(
        store.resolve(&img.id().hex()[..12]).unwrap().digest(),
        &da.digest
    );
    assert_eq!(
        store.resolve(&da.digest.to_string()).unwrap().digest(),
        &da.digest
    );
    let index = fs::read_to_string(a.path().join("index.json")).unwrap();
    assert!(
        index.contains(r#""org.opencontainers.image.ref.name":"docker.io/library/busybox:latest""#),
        "{index}"
    );
    assert!(store.fsck(false).unwrap().problems.is_empty());
}

#[test]
fn concurrent_tags_from_threads_and_processes_are_never_lost() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_owned();
    Store::open(&root).unwrap();
    let threads: Vec<_> = (0..8)
        .map(|i| {
            let root = root.clone();
            std::thread::spawn(move || {
                let store = Store::open(&root).unwrap();
                for j in 0..5 {
                    import(&store, &format!("local/t{i}:{j}"), &format!("{i}-{j}"));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let store = Store::open(&root).unwrap();
    let tags: usize = store.images().unwrap().iter().map(|e| e.tags.len()).sum();
    assert_eq!(tags, 40);
    assert!(store.fsck(false).unwrap().problems.is_empty());
}

#[test]
fn rmi_removes_only_unshared_blobs_and_tag_moves_keep_images() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let a = import(&store, "a", "same");
    let img = store.resolve("a").unwrap();
    store
        .tag(&Reference::parse("b").unwrap(), &img.descriptor)
        .unwrap();
    let (removed, deleted) = store
        .remove(&img, Some(&Reference::parse("a").unwrap()))
        .unwrap();
    assert_eq!(removed.len(), 1);
    assert!(deleted.is_empty(), "b still uses the blobs");
    assert!(store.has_blob(&a.digest));
    let img = store.resolve("b").unwrap();
    let (_, deleted) = store.remove(&img, None).unwrap();
    assert_eq!(deleted.len(), 3, "manifest, config, layer");
    assert!(store.images().unwrap().is_empty());
}

#[test]
fn fsck_finds_corruption_and_leftovers_and_repair_removes_them() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    import(&store, "a", "1");
    let img = store.resolve("a").unwrap();
    let layer = &img.manifest.layers[0].digest;
    fs::write(store.blob_path(layer), b"garbage").unwrap();
    fs::create_dir(dir.path().join("tmp/txn-dead")).unwrap();
    fs::write(dir.path().join("tmp/txn-dead/partial-1"), b"half").unwrap();
    let report = store.fsck(false).unwrap();
    let text: Vec<String> = report.problems.iter().map(ToString::to_string).collect();
    assert!(
        text.iter()
            .any(|p| p.contains(&format!("blob `{layer}` is corrupt"))),
        "{text:?}"
    );
    assert!(text.iter().any(|p| p.contains("left over")), "{text:?}");
    let repaired = store.fsck(true).unwrap();
    assert!(!repaired.removed.is_empty());
    let after = store.fsck(false).unwrap();
    assert!(after.problems.is_empty(), "{:?}", after.problems);
    assert!(
        store.resolve("a").is_err(),
        "the broken image's entry is gone"
    );
}

#[test]
fn docker_and_oci_archives_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("s1")).unwrap();
    import(&store, "local/busybox:1", "x");
    let img = store.resolve("local/busybox:1").unwrap();
    for format in [SaveFormat::Docker, SaveFormat::Oci] {
        let file = dir.path().join(format!("{format:?}.tar"));
        let out = fs::File::create(&file).unwrap();
        save(&store, &[(&img, img.tags.clone())], format, out, &file).unwrap();
        let other = Store::open(&dir.path().join(format!("s-{format:?}"))).unwrap();
        let loaded = load(&other, &file, &LoadOptions::default()).unwrap();
        assert_eq!(loaded[0].id, *img.id());
        assert_eq!(loaded[0].tags[0].to_string(), "docker.io/local/busybox:1");
        let back = other.resolve("local/busybox:1").unwrap();
        assert_eq!(back.config.rootfs.diff_ids, img.config.rootfs.diff_ids);
        if format == SaveFormat::Oci {
            assert_eq!(
                back.digest(),
                img.digest(),
                "an OCI archive keeps the manifest"
            );
        }
        assert!(other.fsck(false).unwrap().problems.is_empty());
    }
}

/// A docker-archive in a directory, made by hand, to break in different ways.
fn docker_dir(root: &Path) -> PathBuf {
    let dir = root.join("archive");
    fs::create_dir_all(dir.join("l1")).unwrap();
    let layer = rootfs("x");
    let diff_id = kiln_layer::Digest::of(&layer);
    fs::write(dir.join("l1/layer.tar"), &layer).unwrap();
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":["{diff_id}"]}}}}"#
    );
    let id = kiln_layer::Digest::of(config.as_bytes());
    fs::write(dir.join(format!("{}.json", id.hex())), &config).unwrap();
    fs::write(
        dir.join("manifest.json"),
        format!(
            r#"[{{"Config":"{}.json","RepoTags":["bad:1"],"Layers":["l1/layer.tar"]}}]"#,
            id.hex()
        ),
    )
    .unwrap();
    dir
}

fn tar_dir(dir: &Path, out: &Path) {
    let st = std::process::Command::new("tar")
        .arg("-cf")
        .arg(out)
        .arg("-C")
        .arg(dir)
        .arg(".")
        .status()
        .unwrap();
    assert!(st.success());
}

#[test]
fn bad_input_gives_one_clear_error_and_leaves_the_store_unchanged() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(&tmp.path().join("store")).unwrap();
    import(&store, "keep", "k");
    let before = snapshot(store.root());
    let check = |file: &Path, expect: &[&str]| {
        let err = load(&store, file, &LoadOptions::default()).unwrap_err();
        let mut text = err.to_string();
        let mut src = std::error::Error::source(&err);
        while let Some(s) = src {
            text.push_str(": ");
            text.push_str(&s.to_string());
            src = s.source();
        }
        for e in expect {
            assert!(text.contains(e), "`{text}` lacks `{e}`");
        }
        assert_eq!(
            snapshot(store.root()),
            before,
            "store changed after: {text}"
        );
        text
    };

    // Truncated tarball.
    let dir = docker_dir(tmp.path());
    let good = tmp.path().join("good.tar");
    tar_dir(&dir, &good);
    let bytes = fs::read(&good).unwrap();
    let truncated = tmp.path().join("truncated.tar");
    fs::write(&truncated, &bytes[..bytes.len() / 2 + 100]).unwrap();
    check(&truncated, &["truncated.tar", "not a complete tar archive"]);

    // Wrong layer digest.
    fs::write(dir.join("l1/layer.tar"), rootfs("tampered")).unwrap();
    let text = check(&dir, &["archive", "layer `l1/layer.tar`", "diff_id"]);
    assert!(!text.contains('\n'));

    // Missing blob.
    fs::remove_file(dir.join("l1/layer.tar")).unwrap();
    check(&dir, &["layer `l1/layer.tar`", "is missing"]);

    // Corrupt JSON.
    let dir = docker_dir(&tmp.path().join("j"));
    fs::write(dir.join("manifest.json"), b"[{not json").unwrap();
    check(&dir, &["manifest.json", "not valid JSON"]);

    // Unknown media type, in an OCI layout.
    let src = Store::open(&tmp.path().join("layout")).unwrap();
    import(&src, "x", "y");
    let img = src.resolve("x").unwrap();
    let mut m = img.manifest.clone();
    m.layers[0].media_type = "application/x-unknown".into();
    let mbytes = kiln_oci::canonical::to_vec(&m).unwrap();
    let md = kiln_layer::Digest::of(&mbytes);
    fs::write(src.blob_path(&md), &mbytes).unwrap();
    let mut index = src.index().unwrap();
    index.manifests[0].digest = md.clone();
    index.manifests[0].size = mbytes.len() as u64;
    fs::write(
        src.root().join("index.json"),
        kiln_oci::canonical::to_vec(&index).unwrap(),
    )
    .unwrap();
    check(
        src.root(),
        &[
            "layout",
            &format!("manifest `{md}`"),
            "unsupported media type `application/x-unknown`",
        ],
    );

    // Neither format.
    let empty = tmp.path().join("empty");
    fs::create_dir(&empty).unwrap();
    let err = load(&store, &empty, &LoadOptions::default()).unwrap_err();
    assert!(matches!(err, ArchiveError::UnknownFormat { .. }));
    assert_eq!(snapshot(store.root()), before);
}

#[test]
fn a_commit_that_fails_its_check_publishes_no_blob() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    import(&store, "keep", "k");
    let before = snapshot(store.root());
    let mut txn = store.txn().unwrap();
    let (staged, len) = txn.put_bytes(b"staged", None, "a blob").unwrap();
    let missing = kiln_layer::Digest::of(b"in no store");
    let err = txn
        .commit(|index| {
            index.manifests.push(kiln_oci::Descriptor::new(
                kiln_oci::media::OCI_MANIFEST,
                missing.clone(),
                1,
            ));
            Ok(())
        })
        .unwrap_err();
    assert!(
        matches!(&err, kiln_oci::StoreError::Vanished { digest } if *digest == missing),
        "{err}"
    );
    assert!(
        !store.has_blob(&staged),
        "{len} staged bytes were published"
    );
    assert_eq!(snapshot(store.root()), before);
}

#[test]
fn saving_an_image_whose_config_and_manifest_disagree_fails() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("s")).unwrap();
    import(&store, "local/busybox:1", "x");
    let mut img = store.resolve("local/busybox:1").unwrap();
    img.config.rootfs.diff_ids.clear();
    let file = dir.path().join("out.tar");
    let out = fs::File::create(&file).unwrap();
    let err = save(
        &store,
        &[(&img, img.tags.clone())],
        SaveFormat::Docker,
        out,
        &file,
    )
    .unwrap_err();
    assert!(err.to_string().contains("image `sha256:"), "{err}");
    let text = format!("{err}: {err:?}");
    assert!(text.contains("1 layers but 0 diff_ids"), "{text}");
}
