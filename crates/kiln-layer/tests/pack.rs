//! The layer writer: determinism, header rules, and what other tar readers make of it.

use std::fs;
use std::io::Read;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;
use std::process::Command;

use kiln_layer::{Compression, Entry, EntryKind, LayerWriter, PackOptions, decompress, pack_dir};

fn sample_tree(root: &Path) {
    fs::create_dir_all(root.join("etc/deep")).unwrap();
    fs::write(root.join("etc/passwd"), "root:x:0:0::/root:/bin/sh\n").unwrap();
    fs::write(root.join("etc/deep/b"), vec![7u8; 70_000]).unwrap();
    fs::set_permissions(root.join("etc/deep/b"), fs::Permissions::from_mode(0o4755)).unwrap();
    fs::create_dir(root.join("bin")).unwrap();
    fs::write(root.join("bin/busybox"), b"#!binary").unwrap();
    fs::hard_link(root.join("bin/busybox"), root.join("bin/sh")).unwrap();
    symlink("busybox", root.join("bin/ls")).unwrap();
    let long = "x".repeat(150);
    fs::write(root.join(&long), b"long name").unwrap();
    symlink("t".repeat(120), root.join("longlink")).unwrap();
}

fn pack(root: &Path, opts: &PackOptions) -> (Vec<u8>, kiln_layer::LayerDigests) {
    pack_dir(root, Vec::new(), opts).unwrap()
}

fn untar(bytes: &[u8]) -> Vec<u8> {
    let (mut r, _) = decompress(bytes).unwrap();
    let mut out = Vec::new();
    r.read_to_end(&mut out).unwrap();
    out
}

#[test]
fn same_tree_same_digests_and_digests_match_bytes() {
    let dir = tempfile::tempdir().unwrap();
    sample_tree(dir.path());
    for compression in [
        Compression::default(),
        Compression::None,
        Compression::Zstd { level: 3 },
    ] {
        let opts = PackOptions {
            compression,
            source_date_epoch: None,
        };
        let (a, da) = pack(dir.path(), &opts);
        let (b, db) = pack(dir.path(), &opts);
        assert_eq!(a, b);
        assert_eq!(da, db);
        assert_eq!(da.digest, kiln_layer::Digest::of(&a));
        assert_eq!(da.size, a.len() as u64);
        let raw = untar(&a);
        assert_eq!(da.diff_id, kiln_layer::Digest::of(&raw));
        assert_eq!(da.uncompressed_size, raw.len() as u64);
    }
}

#[test]
fn entries_are_sorted_normalized_and_readable_by_tar_crate() {
    let dir = tempfile::tempdir().unwrap();
    sample_tree(dir.path());
    let opts = PackOptions {
        compression: Compression::None,
        source_date_epoch: Some(1000),
    };
    let (bytes, _) = pack(dir.path(), &opts);
    let mut ar = tar::Archive::new(&bytes[..]);
    let mut names = Vec::new();
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let h = e.header().clone();
        assert!(h.mtime().unwrap() <= 1000, "mtime clamped");
        assert_eq!(h.username_bytes(), Some(&b""[..]));
        assert_eq!(h.groupname_bytes(), Some(&b""[..]));
        let name = String::from_utf8(e.path_bytes().into_owned()).unwrap();
        match name.as_str() {
            "bin/sh" => {
                assert_eq!(h.entry_type(), tar::EntryType::Link);
                assert_eq!(&*e.link_name_bytes().unwrap(), b"bin/busybox");
            }
            "bin/ls" => assert_eq!(h.entry_type(), tar::EntryType::Symlink),
            "longlink" => assert_eq!(e.link_name_bytes().unwrap().len(), 120),
            "etc/deep/b" => {
                assert_eq!(h.mode().unwrap(), 0o4755);
                let mut data = Vec::new();
                e.read_to_end(&mut data).unwrap();
                assert_eq!(data.len(), 70_000);
            }
            _ => {}
        }
        names.push(name);
    }
    let long = "x".repeat(150);
    assert_eq!(
        names,
        vec![
            "bin/",
            "bin/busybox",
            "bin/ls",
            "bin/sh",
            "etc/",
            "etc/deep/",
            "etc/deep/b",
            "etc/passwd",
            "longlink",
            &long
        ]
    );
}

#[test]
fn xattrs_devices_fifos_and_large_ids_use_pax_and_ustar_fields() {
    let mut w = LayerWriter::new(Vec::new(), Compression::None).unwrap();
    let mut cap = Entry::new("bin/ping", EntryKind::File);
    cap.size = 2;
    cap.xattrs
        .insert("security.capability".into(), vec![1, 0, 0, 2]);
    cap.uid = 5_000_000;
    w.append(&cap, Some(&mut &b"hi"[..])).unwrap();
    w.append(
        &Entry::new("dev/null", EntryKind::CharDevice { major: 1, minor: 3 }),
        None,
    )
    .unwrap();
    w.append(
        &Entry::new("dev/sda", EntryKind::BlockDevice { major: 8, minor: 0 }),
        None,
    )
    .unwrap();
    w.append(&Entry::new("run/fifo", EntryKind::Fifo), None)
        .unwrap();
    let (bytes, _) = w.finish().unwrap();
    let mut ar = tar::Archive::new(&bytes[..]);
    let mut it = ar.entries().unwrap();
    let mut e = it.next().unwrap().unwrap();
    let pax: Vec<(String, Vec<u8>)> = e
        .pax_extensions()
        .unwrap()
        .unwrap()
        .map(|x| {
            let x = x.unwrap();
            (x.key().unwrap().to_owned(), x.value_bytes().to_vec())
        })
        .collect();
    assert_eq!(
        pax,
        vec![
            (
                "SCHILY.xattr.security.capability".to_owned(),
                vec![1, 0, 0, 2]
            ),
            ("uid".to_owned(), b"5000000".to_vec())
        ]
    );
    let null = it.next().unwrap().unwrap();
    assert_eq!(null.header().entry_type(), tar::EntryType::Char);
    assert_eq!(null.header().device_major().unwrap(), Some(1));
    assert_eq!(null.header().device_minor().unwrap(), Some(3));
    assert_eq!(
        it.next().unwrap().unwrap().header().entry_type(),
        tar::EntryType::Block
    );
    assert_eq!(
        it.next().unwrap().unwrap().header().entry_type(),
        tar::EntryType::Fifo
    );
}

#[test]
fn a_file_that_changes_size_is_an_error_naming_it() {
    let mut w = LayerWriter::new(Vec::new(), Compression::None).unwrap();
    let mut e = Entry::new("a", EntryKind::File);
    e.size = 10;
    let err = w.append(&e, Some(&mut &b"short"[..])).unwrap_err();
    assert_eq!(
        err.to_string(),
        "`a` changed while it was packed: expected 10 bytes"
    );
}

#[test]
fn gnu_tar_lists_the_layer() {
    let dir = tempfile::tempdir().unwrap();
    sample_tree(dir.path());
    let (bytes, _) = pack(dir.path(), &PackOptions::default());
    let file = dir.path().join("../layer-gnu-test.tar.gz");
    fs::write(&file, &bytes).unwrap();
    let out = Command::new("tar").arg("-tzf").arg(&file).output().unwrap();
    fs::remove_file(&file).unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listing = String::from_utf8(out.stdout).unwrap();
    assert!(listing.contains(&"x".repeat(150)));
    assert!(listing.contains("bin/sh"));
}
