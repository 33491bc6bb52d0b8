//! The applier: round trips, whiteouts, and hostile layers that must not touch the host.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::Path;

use kiln_layer::{
    ApplyError, ApplyOptions, Compression, Entry, EntryKind, LayerWriter, PackOptions, apply,
    pack_dir,
};

/// A layer from entries; file entries carry their content.
fn layer(entries: &[(Entry, &[u8])]) -> Vec<u8> {
    let mut w = LayerWriter::new(Vec::new(), Compression::default()).unwrap();
    for (e, data) in entries {
        let mut e = e.clone();
        if e.kind == EntryKind::File {
            e.size = data.len() as u64;
            w.append(&e, Some(&mut &data[..])).unwrap();
        } else {
            w.append(&e, None).unwrap();
        }
    }
    w.finish().unwrap().0
}

fn file(path: &str) -> Entry {
    Entry::new(path, EntryKind::File)
}
fn dir(path: &str) -> Entry {
    Entry::new(path, EntryKind::Dir)
}
fn symlink_entry(path: &str, target: &str) -> Entry {
    Entry::new(path, EntryKind::Symlink(target.into()))
}
fn hardlink(path: &str, target: &str) -> Entry {
    Entry::new(path, EntryKind::Hardlink(target.into()))
}

/// A host directory holding one file, with a snapshot to prove it unchanged.
struct Host {
    dir: tempfile::TempDir,
}

impl Host {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("secret"), b"host data").unwrap();
        Self { dir }
    }
    fn path(&self) -> &Path {
        self.dir.path()
    }
    fn assert_untouched(&self) {
        let names: Vec<_> = fs::read_dir(self.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec!["secret"], "host directory gained entries");
        let secret = self.path().join("secret");
        assert_eq!(fs::read(&secret).unwrap(), b"host data");
        assert_eq!(
            fs::metadata(&secret).unwrap().nlink(),
            1,
            "host file was hard-linked"
        );
        assert_eq!(fs::metadata(&secret).unwrap().mode() & 0o777, 0o644);
    }
}

#[test]
fn pack_then_apply_round_trips_a_tree() {
    let src = tempfile::tempdir().unwrap();
    fs::create_dir_all(src.path().join("a/b")).unwrap();
    fs::write(src.path().join("a/b/f"), b"hello").unwrap();
    fs::set_permissions(src.path().join("a/b/f"), fs::Permissions::from_mode(0o751)).unwrap();
    fs::hard_link(src.path().join("a/b/f"), src.path().join("a/g")).unwrap();
    symlink("b/f", src.path().join("a/l")).unwrap();
    fs::set_permissions(src.path().join("a/b"), fs::Permissions::from_mode(0o555)).unwrap();
    let (bytes, _) = pack_dir(src.path(), Vec::new(), &PackOptions::default()).unwrap();

    let dst = tempfile::tempdir().unwrap();
    let stats = apply(&bytes[..], dst.path(), &ApplyOptions::default()).unwrap();
    assert_eq!(stats.entries, 5);
    assert_eq!(fs::read(dst.path().join("a/b/f")).unwrap(), b"hello");
    let f = fs::metadata(dst.path().join("a/b/f")).unwrap();
    assert_eq!(f.mode() & 0o7777, 0o751);
    assert_eq!(f.nlink(), 2);
    assert_eq!(fs::metadata(dst.path().join("a/g")).unwrap().ino(), f.ino());
    assert_eq!(
        fs::read_link(dst.path().join("a/l")).unwrap(),
        Path::new("b/f")
    );
    assert_eq!(
        fs::metadata(dst.path().join("a/b")).unwrap().mode() & 0o7777,
        0o555
    );
    assert_eq!(
        fs::metadata(dst.path().join("a/b/f")).unwrap().mtime(),
        fs::metadata(src.path().join("a/b/f")).unwrap().mtime()
    );
    // Repacking the applied tree gives the same layer.
    let (again, _) = pack_dir(dst.path(), Vec::new(), &PackOptions::default()).unwrap();
    assert_eq!(again, bytes);
    fs::set_permissions(src.path().join("a/b"), fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(dst.path().join("a/b"), fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn whiteouts_remove_lower_files_but_not_their_own_layer() {
    let dst = tempfile::tempdir().unwrap();
    let lower = layer(&[
        (dir("d"), b""),
        (file("d/gone"), b"1"),
        (file("d/kept"), b"2"),
        (dir("o"), b""),
        (file("o/old"), b"3"),
        (dir("o/sub"), b""),
    ]);
    apply(&lower[..], dst.path(), &ApplyOptions::default()).unwrap();
    let upper = layer(&[
        (file("d/.wh.gone"), b""),
        (file("d/.wh.missing"), b""),
        (file("o/-new"), b"4"),
        (file("o/.wh..wh..opq"), b""),
        (file("o/new"), b"5"),
    ]);
    apply(&upper[..], dst.path(), &ApplyOptions::default()).unwrap();
    assert!(!dst.path().join("d/gone").exists());
    assert!(dst.path().join("d/kept").exists());
    let mut o: Vec<_> = fs::read_dir(dst.path().join("o"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    o.sort();
    assert_eq!(o, vec!["-new", "new"]);
}

fn refused(bytes: &[u8], target: &Path) -> ApplyError {
    apply(bytes, target, &ApplyOptions::default()).unwrap_err()
}

#[test]
fn dotdot_names_and_link_targets_are_refused() {
    let host = Host::new();
    // The target's parent is the test's own: `../x` would land where nothing else writes.
    let outer = tempfile::tempdir().unwrap();
    let dst = tempfile::tempdir_in(outer.path()).unwrap();
    let err = refused(&layer(&[(file("../../x"), b"evil")]), dst.path());
    assert_eq!(
        err.to_string(),
        "layer entry `../../x` is refused: its name contains `..`"
    );
    let err = refused(&layer(&[(hardlink("x", "../secret"), b"")]), dst.path());
    assert!(
        err.to_string().contains("its link target contains `..`"),
        "{err}"
    );
    let err = refused(&layer(&[(file(".wh.."), b"")]), dst.path());
    assert!(matches!(err, ApplyError::Entry { .. }), "{err}");
    assert!(
        std::error::Error::source(&err)
            .unwrap()
            .to_string()
            .contains("names no file")
    );
    host.assert_untouched();
    assert!(!dst.path().parent().unwrap().join("x").exists());
}

#[test]
fn absolute_names_are_contained() {
    let host = Host::new();
    let dst = tempfile::tempdir().unwrap();
    let abs = host.path().join("secret");
    let bytes = layer(&[(file(abs.to_str().unwrap()), b"overwritten?")]);
    apply(&bytes[..], dst.path(), &ApplyOptions::default()).unwrap();
    host.assert_untouched();
    let inside = dst.path().join(abs.strip_prefix("/").unwrap());
    assert_eq!(fs::read(inside).unwrap(), b"overwritten?");
}

#[test]
fn writes_through_symlinks_stay_inside() {
    let host = Host::new();
    let dst = tempfile::tempdir().unwrap();
    let hp = host.path().to_str().unwrap();
    // A symlink to the host directory, absolute and relative, then files "through" it.
    let depth = dst.path().components().count();
    let relative = format!("{}{}", "../".repeat(depth + 2), hp.trim_start_matches('/'));
    // While the links' contained targets do not exist, writing through them is refused.
    let err = refused(
        &layer(&[
            (symlink_entry("abs", hp), b""),
            (file("abs/secret"), b"pwned"),
        ]),
        dst.path(),
    );
    let cause = std::error::Error::source(&err).unwrap().to_string();
    assert!(
        cause.contains("is a symlink to a directory that does not exist inside the target"),
        "{cause}"
    );
    host.assert_untouched();
    // Once they exist inside the target, writes land there.
    let bytes = layer(&[
        (dir(hp.trim_start_matches('/')), b""),
        (symlink_entry("abs", hp), b""),
        (file("abs/secret"), b"pwned"),
        (file("abs/new"), b"pwned"),
        (symlink_entry("rel", &relative), b""),
        (file("rel/secret"), b"pwned"),
        (symlink_entry("direct", &format!("{hp}/secret")), b""),
    ]);
    apply(&bytes[..], dst.path(), &ApplyOptions::default()).unwrap();
    host.assert_untouched();
    // The writes landed inside the target, under the contained meaning of the links.
    assert_eq!(
        fs::read(dst.path().join(hp.trim_start_matches('/')).join("secret")).unwrap(),
        b"pwned"
    );
    // A later layer replacing the final symlink replaces the link, not its target.
    let bytes = layer(&[(file("direct"), b"replaced")]);
    apply(&bytes[..], dst.path(), &ApplyOptions::default()).unwrap();
    assert_eq!(fs::read(dst.path().join("direct")).unwrap(), b"replaced");
    host.assert_untouched();
}

#[test]
fn hardlinks_to_outside_and_whiteouts_through_links_cannot_reach_the_host() {
    let host = Host::new();
    let dst = tempfile::tempdir().unwrap();
    let hp = host.path().to_str().unwrap();
    let secret = format!("{hp}/secret");
    // An absolute hard link target is contained: there is no such file inside, so it fails.
    let err = refused(&layer(&[(hardlink("x", &secret), b"")]), dst.path());
    assert!(matches!(err, ApplyError::Entry { .. }), "{err}");
    // Through a symlinked directory: also contained.
    let err = refused(
        &layer(&[
            (symlink_entry("h", hp), b""),
            (hardlink("y", "h/secret"), b""),
        ]),
        dst.path(),
    );
    assert!(matches!(err, ApplyError::Entry { .. }), "{err}");
    // A whiteout through a symlink to the host removes nothing there, and an opaque marker
    // under it does not clear the host directory.
    let bytes = layer(&[
        (symlink_entry("w", hp), b""),
        (file("w/.wh.secret"), b""),
        (file("w/.wh..wh..opq"), b""),
    ]);
    apply(&bytes[..], dst.path(), &ApplyOptions::default()).unwrap();
    host.assert_untouched();
}

#[test]
fn truncated_and_corrupt_layers_are_errors() {
    let bytes = layer(&[(file("a"), &vec![9u8; 100_000]), (file("b"), b"x")]);
    let dst = tempfile::tempdir().unwrap();
    let err = refused(&bytes[..bytes.len() / 2], dst.path());
    assert!(
        matches!(err, ApplyError::Read { .. } | ApplyError::Truncated { .. }),
        "{err}"
    );
    let mut raw = LayerWriter::new(Vec::new(), Compression::None).unwrap();
    let mut a = file("a");
    a.size = 100_000;
    raw.append(&a, Some(&mut &vec![1u8; 100_000][..])).unwrap();
    let (raw, _) = raw.finish().unwrap();
    let err = refused(&raw[..50_000], dst.path());
    assert_eq!(
        err.to_string(),
        "layer entry `a` is truncated: expected 100000 bytes, got 49488"
    );
}

#[test]
fn ownership_devices_and_xattrs_as_root() {
    if !rustix::process::geteuid().is_root() {
        kiln_test_support::missing("root is needed to apply ownership and device nodes");
        return;
    }
    let dst = tempfile::tempdir().unwrap();
    let mut f = file("owned");
    f.uid = 1234;
    f.gid = 5678;
    f.xattrs.insert("user.kiln".into(), b"v".to_vec());
    f.xattrs.insert(
        "security.capability".into(),
        vec![1, 0, 0, 2, 0, 32, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    );
    let bytes = layer(&[
        (f, b"x"),
        (
            Entry::new("null", EntryKind::CharDevice { major: 1, minor: 3 }),
            b"",
        ),
        (Entry::new("fifo", EntryKind::Fifo), b""),
    ]);
    let stats = apply(&bytes[..], dst.path(), &ApplyOptions::default()).unwrap();
    let m = fs::metadata(dst.path().join("owned")).unwrap();
    assert_eq!((m.uid(), m.gid()), (1234, 5678));
    let m = fs::symlink_metadata(dst.path().join("null")).unwrap();
    assert_eq!(m.rdev(), rustix::fs::makedev(1, 3));
    assert!(std::os::unix::fs::FileTypeExt::is_fifo(
        &fs::symlink_metadata(dst.path().join("fifo"))
            .unwrap()
            .file_type()
    ));
    let mut buf = [0u8; 16];
    let n = rustix::fs::getxattr(dst.path().join("owned"), "user.kiln", &mut buf[..]);
    // user.* xattrs need filesystem support (tmpfs before 6.6 has none): counted, not fatal.
    match n {
        Ok(n) => assert_eq!(&buf[..n], b"v"),
        Err(_) => assert!(stats.skipped_xattrs >= 1),
    }
}

/// `LinkFrom::Share` with `verify`: a file is linked only when its content is the entry's;
/// one that differs after the first chunk is written whole, from the equal part of the
/// shared file and the rest of the entry; the shared files never change.
#[test]
fn shared_files_are_linked_only_when_their_content_is_the_entrys() {
    use kiln_layer::LinkFrom;
    use std::collections::HashMap;
    let big: Vec<u8> = (0..600_000_u32).map(|i| (i % 251) as u8).collect();
    let mut near = big.clone();
    near[300_000] ^= 0xff;
    let meta = |e: Entry| {
        let mut e = e;
        e.mode = 0o644;
        e.mtime = 1_700_000_000;
        e
    };
    let tar = layer(&[
        (meta(file("same")), &big[..]),
        (meta(file("differs")), &big[..]),
        (meta(file("old-time")), &big[..]),
    ]);
    let shared = tempfile::tempdir().unwrap();
    let put = |name: &str, data: &[u8], mtime: i64| {
        let p = shared.path().join(name);
        fs::write(&p, data).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).unwrap();
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(mtime.unsigned_abs());
        fs::File::options()
            .write(true)
            .open(&p)
            .unwrap()
            .set_modified(t)
            .unwrap();
        p
    };
    let files: HashMap<Vec<u8>, std::path::PathBuf> = [
        ("same", put("same", &big, 1_700_000_000)),
        ("differs", put("differs", &near, 1_700_000_000)),
        ("old-time", put("old-time", &big, 1_600_000_000)),
    ]
    .into_iter()
    .map(|(k, v)| (k.as_bytes().to_vec(), v))
    .collect();
    let target = tempfile::tempdir().unwrap();
    let opts = ApplyOptions {
        link_from: Some(LinkFrom::Share {
            files: files.clone(),
            verify: true,
        }),
        ..ApplyOptions::default()
    };
    let stats = apply(&tar[..], target.path(), &opts).unwrap();
    assert_eq!((stats.linked, stats.created), (1, 2));
    let ino = |p: &Path| fs::metadata(p).unwrap().ino();
    assert_eq!(
        ino(&target.path().join("same")),
        ino(&files[&b"same".to_vec()])
    );
    for name in ["same", "differs", "old-time"] {
        assert_eq!(fs::read(target.path().join(name)).unwrap(), big, "{name}");
    }
    assert_eq!(
        fs::read(&files[&b"differs".to_vec()]).unwrap(),
        near,
        "untouched"
    );
    assert_eq!(
        fs::metadata(target.path().join("differs")).unwrap().mtime(),
        1_700_000_000
    );
}
