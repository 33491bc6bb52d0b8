//! The differ: the same change, made through a real overlay mount (upper dir) and in a full
//! copy of the tree (the fallback snapshotter), gives the same layer, byte for byte.
//!
//! The overlay half needs root (mount); it says so loudly elsewhere and fails under `CI=true`.

use std::fmt::Write as _;
use std::fs;
use std::io::Read;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use kiln_layer::overlay::{copy_merged, unpack_lower};
use kiln_layer::{Compression, DiffOptions, LayerWriter, NewTree, diff};

fn set_mtime(path: &Path, secs: i64) {
    let ts = rustix::fs::Timespec {
        tv_sec: secs,
        tv_nsec: 0,
    };
    rustix::fs::utimensat(
        rustix::fs::CWD,
        path,
        &rustix::fs::Timestamps {
            last_access: ts,
            last_modification: ts,
        },
        rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
    )
    .unwrap();
}

/// Sets every mtime under `dir` (and `dir`) to `secs`, deepest first.
fn age(dir: &Path, secs: i64) {
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if fs::symlink_metadata(&p).unwrap().is_dir() {
            age(&p, secs);
        } else {
            set_mtime(&p, secs);
        }
    }
    set_mtime(dir, secs);
}

fn write(root: &Path, rel: &str, content: &str) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, content).unwrap();
}

/// Two lower dirs in overlay format, made by unpacking layers (so whiteouts are converted the
/// way snapshots convert them). Returns them topmost first.
fn lowers(tmp: &Path) -> Vec<PathBuf> {
    let src1 = tmp.join("src1");
    for (rel, c) in [
        ("bin/sh", "shell"),
        ("d/a", "a"),
        ("d/b", "b"),
        ("e/x", "x"),
        ("e/y", "y"),
        ("etc/passwd", "root:x:0:0::/root:/bin/sh\n"),
        ("f", "chmod me"),
        ("f2", "becomes a dir"),
        ("g", "chown me"),
        ("h", "change me"),
        ("gone", "delete me"),
        ("gonedir/sub/file", "delete me too"),
        ("keep/k", "unchanged"),
        ("old", "hidden by the upper layer"),
    ] {
        write(&src1, rel, c);
    }
    age(&src1, 100);
    let src2 = tmp.join("src2");
    write(&src2, "l2file", "from layer 2");
    write(&src2, ".wh.old", "");
    age(&src2, 100);
    let mut out = Vec::new();
    for (i, src) in [src2, src1].iter().enumerate() {
        let buf = pack_raw(src);
        let dir = tmp.join(format!("lower{i}"));
        fs::create_dir(&dir).unwrap();
        unpack_lower(&buf[..], &dir, None).unwrap();
        out.push(dir);
    }
    out
}

/// Packs a directory as it is (`.wh.` files included) into an uncompressed tar.
fn pack_raw(src: &Path) -> Vec<u8> {
    kiln_layer::pack_dir(
        src,
        Vec::new(),
        &kiln_layer::PackOptions {
            compression: Compression::None,
            source_date_epoch: None,
        },
    )
    .unwrap()
    .0
}

/// The change under test, made in `root` (a merged overlay mount or a full copy).
fn change(root: &Path) {
    for n in ["a", "b"] {
        fs::remove_file(root.join("d").join(n)).unwrap();
    }
    fs::remove_dir_all(root.join("e")).unwrap();
    fs::create_dir(root.join("e")).unwrap();
    write(root, "e/z", "new z");
    fs::write(root.join("etc/passwd"), "root:x:0:0::/root:/bin/ash\n").unwrap();
    set_mtime(&root.join("etc/passwd"), 100); // content-only change, same size: mtime kept
    fs::write(root.join("etc/passwd"), "root:x:0:0::/root:/bin/zsh\n").unwrap();
    fs::set_permissions(root.join("f"), fs::Permissions::from_mode(0o600)).unwrap();
    fs::remove_file(root.join("f2")).unwrap();
    write(root, "f2/c", "child");
    std::os::unix::fs::chown(root.join("g"), Some(1000), Some(1000)).unwrap();
    fs::write(root.join("h"), "changed!").unwrap();
    fs::remove_file(root.join("gone")).unwrap();
    fs::remove_dir_all(root.join("gonedir")).unwrap();
    write(root, "n/1", "linked");
    fs::hard_link(root.join("n/1"), root.join("n/2")).unwrap();
    symlink("1", root.join("n/s")).unwrap();
    write(root, "n/x", "with xattr");
    rustix::fs::setxattr(
        root.join("n/x"),
        "user.kiln",
        b"v",
        rustix::fs::XattrFlags::empty(),
    )
    .unwrap();
    // Read-only access and an identical rewrite of metadata change nothing.
    let _ = fs::read(root.join("keep/k")).unwrap();
}

fn list(layer: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    let mut ar = tar::Archive::new(layer);
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let h = e.header().clone();
        let path = String::from_utf8_lossy(&e.path_bytes()).into_owned();
        let mut desc = format!(
            "{path} {:?} {:o} {}:{}",
            h.entry_type(),
            h.mode().unwrap(),
            h.uid().unwrap(),
            h.gid().unwrap()
        );
        if let Some(l) = e.link_name_bytes() {
            write!(desc, " -> {}", String::from_utf8_lossy(&l)).unwrap();
        }
        if let Some(exts) = e.pax_extensions().unwrap() {
            for x in exts {
                let x = x.unwrap();
                if x.key().unwrap().starts_with("SCHILY.xattr.") {
                    write!(desc, " {}", x.key().unwrap()).unwrap();
                }
            }
        }
        let mut content = String::new();
        e.read_to_string(&mut content).unwrap();
        if !content.is_empty() {
            write!(desc, " {content:?}").unwrap();
        }
        out.push(desc);
    }
    out
}

/// l2file, old, keep, bin: unchanged (and old stays hidden), so absent.
const EXPECTED: [&str; 19] = [
    "d/ Directory 755 0:0",
    "d/.wh..wh..opq Regular 0 0:0",
    "e/ Directory 755 0:0",
    "e/.wh..wh..opq Regular 0 0:0",
    "e/z Regular 644 0:0 \"new z\"",
    "etc/ Directory 755 0:0",
    "etc/passwd Regular 644 0:0 \"root:x:0:0::/root:/bin/zsh\\n\"",
    "f Regular 600 0:0 \"chmod me\"",
    "f2/ Directory 755 0:0",
    "f2/c Regular 644 0:0 \"child\"",
    "g Regular 644 1000:1000 \"chown me\"",
    ".wh.gone Regular 0 0:0",
    ".wh.gonedir Regular 0 0:0",
    "h Regular 644 0:0 \"changed!\"",
    "n/ Directory 755 0:0",
    "n/1 Regular 644 0:0 \"linked\"",
    "n/2 Link 644 0:0 -> n/1",
    "n/s Symlink 777 0:0 -> 1",
    "n/x Regular 644 0:0 SCHILY.xattr.user.kiln \"with xattr\"",
];

fn expected() -> Vec<String> {
    EXPECTED.iter().map(ToString::to_string).collect()
}

fn opts() -> DiffOptions {
    DiffOptions {
        compression: Compression::None,
        // Both trees were changed at different moments: clamp so the bytes can be compared.
        source_date_epoch: Some(1000),
        settled_before: None,
    }
}

fn naive_layer(tmp: &Path, lower: &[PathBuf]) -> Vec<u8> {
    let tree = tmp.join("tree");
    fs::create_dir(&tree).unwrap();
    copy_merged(lower, &tree).unwrap();
    assert!(!tree.join("old").exists(), "whiteouts hide lower entries");
    assert!(tree.join("l2file").exists());
    change(&tree);
    let (out, _, stats) = diff(NewTree::Full(&tree), lower, Vec::new(), &opts()).unwrap();
    assert_eq!(stats.deletions, 4);
    out
}

#[test]
fn fallback_diff_lists_every_kind_of_change() {
    let tmp = tempfile::tempdir().unwrap();
    if !rustix::process::geteuid().is_root() {
        kiln_test_support::missing("root is needed to unpack layers with their owners");
        return;
    }
    let lower = lowers(tmp.path());
    let layer = naive_layer(tmp.path(), &lower);
    assert_eq!(list(&layer), expected());
}

#[test]
fn overlay_and_fallback_give_the_same_layer() {
    let tmp = tempfile::tempdir().unwrap();
    if !rustix::process::geteuid().is_root() {
        kiln_test_support::missing("root is needed to mount overlayfs");
        return;
    }
    let lower = lowers(tmp.path());
    let naive = naive_layer(tmp.path(), &lower);

    let (upper, work, merged) = (
        tmp.path().join("upper"),
        tmp.path().join("work"),
        tmp.path().join("merged"),
    );
    for d in [&upper, &work, &merged] {
        fs::create_dir(d).unwrap();
    }
    // This test thread gets a private mount namespace, so the overlay never shows on the host
    // and goes away with the thread.
    let upper_c = upper.clone();
    let lower_c = lower.clone();
    std::thread::spawn(move || {
        // SAFETY: unsharing the mount namespace affects only this thread's view of mounts
        // (with its own fs struct); no other thread shares paths resolved through it.
        unsafe { rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::NEWNS) }.unwrap();
        rustix::mount::mount_change(
            "/",
            rustix::mount::MountPropagationFlags::PRIVATE
                | rustix::mount::MountPropagationFlags::REC,
        )
        .unwrap();
        let data = format!(
            "lowerdir={},upperdir={},workdir={}",
            lower_c
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(":"),
            upper_c.display(),
            work.display()
        );
        let data = std::ffi::CString::new(data).unwrap();
        rustix::mount::mount(
            "overlay",
            &merged,
            "overlay",
            rustix::mount::MountFlags::empty(),
            Some(data.as_c_str()),
        )
        .unwrap();
        assert!(!merged.join("old").exists());
        change(&merged);
        rustix::mount::unmount(&merged, rustix::mount::UnmountFlags::empty()).unwrap();
    })
    .join()
    .unwrap();
    // Overlay's own marks are there: a 0/0 whiteout and an opaque directory.
    let wh = fs::symlink_metadata(upper.join("gone")).unwrap();
    assert!(std::os::unix::fs::FileTypeExt::is_char_device(
        &wh.file_type()
    ));
    assert!(kiln_layer::overlay::is_opaque(&upper.join("e")));

    let (overlay, digests, _) = diff(NewTree::Upper(&upper), &lower, Vec::new(), &opts()).unwrap();
    assert_eq!(list(&overlay), expected());
    assert!(overlay == naive, "overlay and fallback layers differ");
    assert_eq!(digests.diff_id, kiln_layer::Digest::of(&naive));
}

#[test]
fn no_change_is_an_empty_layer() {
    let tmp = tempfile::tempdir().unwrap();
    let lower = tmp.path().join("l");
    write(&lower, "a/b", "x");
    let upper = tmp.path().join("u");
    fs::create_dir(&upper).unwrap();
    let (out, _, stats) = diff(
        NewTree::Upper(&upper),
        std::slice::from_ref(&lower),
        Vec::new(),
        &opts(),
    )
    .unwrap();
    assert_eq!(stats.entries, 0);
    let (empty, _) = LayerWriter::new(Vec::new(), Compression::None)
        .unwrap()
        .finish()
        .unwrap();
    assert_eq!(out, empty);
    // The same with a full copy.
    let tree = tmp.path().join("t");
    fs::create_dir(&tree).unwrap();
    copy_merged(std::slice::from_ref(&lower), &tree).unwrap();
    let (out2, _, _) = diff(
        NewTree::Full(&tree),
        std::slice::from_ref(&lower),
        Vec::new(),
        &opts(),
    )
    .unwrap();
    assert_eq!(out2, empty);
}

#[test]
fn a_step_over_scratch_is_the_whole_tree() {
    let tmp = tempfile::tempdir().unwrap();
    let upper = tmp.path().join("u");
    write(&upper, "x/y", "1");
    write(&upper, "z", "2");
    let (out, _, stats) = diff(NewTree::Upper(&upper), &[], Vec::new(), &opts()).unwrap();
    assert_eq!(stats.entries, 3);
    let names: Vec<String> = list(&out)
        .iter()
        .map(|l| l.split(' ').next().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["x/", "x/y", "z"]);
}

/// Sets `path`'s mtime to 2020-01-01 00:00:00 UTC, as `touch -d` would.
fn pin_mtime(path: &Path) {
    // 2020-01-01 00:00:00 UTC is 438,288 hours after the epoch.
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_hours(438_288);
    fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(t)
        .unwrap();
}

/// Issue 10, item 1: a file rewritten at the same size and mtime (`cp -p`, `touch -r`,
/// `useradd`'s backups) is a change, in an upper dir and in a full tree alike.
#[test]
fn a_rewrite_at_the_same_size_and_mtime_is_a_change() {
    let tmp = tempfile::tempdir().unwrap();
    let lower = tmp.path().join("l");
    write(&lower, "f", "AAAA\n");
    write(&lower, "same", "kept\n");
    pin_mtime(&lower.join("f"));
    pin_mtime(&lower.join("same"));
    let names = |out: &[u8]| -> Vec<String> {
        list(out)
            .iter()
            .map(|l| l.split(' ').next().unwrap().to_owned())
            .collect()
    };
    // Upper dir: both copied up, only one rewritten.
    let upper = tmp.path().join("u");
    fs::create_dir(&upper).unwrap();
    for (name, body) in [("f", "BBBB\n"), ("same", "kept\n")] {
        fs::write(upper.join(name), body).unwrap();
        pin_mtime(&upper.join(name));
        let perm = fs::metadata(lower.join(name)).unwrap().permissions();
        fs::set_permissions(upper.join(name), perm).unwrap();
    }
    let lowers = std::slice::from_ref(&lower);
    let (out, _, _) = diff(NewTree::Upper(&upper), lowers, Vec::new(), &opts()).unwrap();
    assert_eq!(names(&out), ["f"]);
    // Full tree: copied, then settled, then rewritten.
    let tree = tmp.path().join("t");
    fs::create_dir(&tree).unwrap();
    copy_merged(lowers, &tree).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    let mark = kiln_layer::diff::settle_mark(tmp.path()).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    fs::write(tree.join("f"), "BBBB\n").unwrap();
    pin_mtime(&tree.join("f"));
    let settled = DiffOptions {
        settled_before: Some(mark),
        ..opts()
    };
    let (out, _, _) = diff(NewTree::Full(&tree), lowers, Vec::new(), &settled).unwrap();
    assert_eq!(names(&out), ["f"]);
    // Without the mark, every file is compared by content: the same answer.
    let (out, _, _) = diff(NewTree::Full(&tree), lowers, Vec::new(), &opts()).unwrap();
    assert_eq!(names(&out), ["f"]);
}
