//! Issue 12's "one write per file", without root: which files a step's snapshot creates and
//! which it links (from a RUN's own output, from another stage's snapshot), and that every
//! snapshot is still exactly its layer unpacked.

use super::*;

/// Every entry of a tree with what a snapshot must agree on: type and mode, owner, mtime to
/// the nanosecond, size, link count, contents or link target, and xattrs.
fn tree_state(root: &Path) -> Vec<String> {
    use std::os::unix::fs::MetadataExt as _;
    let mut out = Vec::new();
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let path = e.unwrap().path();
            let m = std::fs::symlink_metadata(&path).unwrap();
            let rel = path.strip_prefix(root).unwrap().display().to_string();
            let body = if m.is_dir() {
                stack.push(path.clone());
                String::new()
            } else if m.file_type().is_symlink() {
                std::fs::read_link(&path).unwrap().display().to_string()
            } else if m.is_file() {
                format!("{:?}", std::fs::read(&path).unwrap())
            } else {
                format!("rdev={}", m.rdev())
            };
            let xattrs = kiln_layer::entry::read_xattrs(&path).unwrap();
            out.push(format!(
                "{rel} mode={:o} {}:{} mtime={}.{} size={} nlink={} xattrs={xattrs:?} {body}",
                m.mode(),
                m.uid(),
                m.gid(),
                m.mtime(),
                m.mtime_nsec(),
                if m.is_dir() { 0 } else { m.len() },
                if m.is_dir() { 0 } else { m.nlink() },
            ));
        }
    }
    out.sort();
    out
}

/// Issue 12's "one write per file": a RUN's files become its snapshot's by hard link, not by
/// being created again from the layer, and the snapshot is exactly what unpacking its layer
/// gives; a COPY's files are created once, by the snapshot.
#[test]
fn a_runs_files_are_created_once_and_its_snapshot_is_its_layer() {
    use std::os::unix::fs::PermissionsExt as _;
    let fx = Fixture::new();
    fx.file("src/one.txt", "1\n");
    fx.file("src/two.txt", "2\n");
    let sandbox = FakeSandbox::new(|spec, root| {
        if spec.process.args.last().is_some_and(|a| a == "make") {
            let data = make_data(root);
            std::fs::set_permissions(data.join("f1"), std::fs::Permissions::from_mode(0o750))
                .unwrap();
            std::os::unix::fs::symlink("f2", data.join("to-f2")).unwrap();
        } else {
            // A later step changes a file of the first one and deletes another.
            std::fs::write(root.join("data/f3"), "changed\n").unwrap();
            std::fs::remove_file(root.join("data/f4")).unwrap();
        }
        FakeRun::exit(0)
    });
    let outcome = fx
        .build(
            "FROM scratch\nCOPY src/ /src/\nRUN make\nRUN change\n",
            &sandbox,
        )
        .unwrap();
    let (created, linked) = outcome.snapshot_files;
    // The COPY's two files are created by its snapshot; the first RUN's 100 regular files
    // (its hard link to one of them is a link entry) and the second RUN's changed file are
    // linked, never created.
    assert_eq!(
        created, 2,
        "only the COPY's files are created (linked: {linked})"
    );
    assert_eq!(linked, 100 + 1, "every RUN file is linked");
    for layer in &outcome.layers[1..] {
        let fresh = unpacked(&fx.store, layer);
        assert_eq!(
            tree_state(&layer.snapshot),
            tree_state(fresh.path()),
            "the linked snapshot is its layer, unpacked"
        );
    }
}

/// `layer`'s blob unpacked alone into a new directory, as a snapshot would be.
fn unpacked(store: &Store, layer: &crate::layers::Layer) -> tempfile::TempDir {
    let fresh = tempfile::tempdir().unwrap();
    let blob = std::fs::File::open(store.blob_path(&layer.descriptor.digest)).unwrap();
    let (plain, _) = kiln_layer::decompress(std::io::BufReader::new(blob)).unwrap();
    kiln_layer::overlay::unpack_lower(plain, fresh.path(), None).unwrap();
    fresh
}

/// `tree_state` without link counts: a snapshot that shares files with another has the same
/// files as its layer unpacked alone, but more links to them.
fn without_nlink(state: Vec<String>) -> Vec<String> {
    state
        .into_iter()
        .map(|line| {
            line.split(' ')
                .filter(|w| !w.starts_with("nlink="))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

/// Each layer's snapshot is exactly its layer unpacked (link counts aside).
fn assert_snapshots_are_their_layers(store: &Store, outcome: &BuildOutcome) {
    for layer in &outcome.layers {
        let fresh = unpacked(store, layer);
        assert_eq!(
            without_nlink(tree_state(&layer.snapshot)),
            without_nlink(tree_state(fresh.path())),
            "the snapshot is its layer, unpacked"
        );
    }
}

fn ino(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt as _;
    std::fs::symlink_metadata(path).unwrap().ino()
}

/// Issue 12's "one write per file" for `COPY --from`: files copied unchanged from another
/// stage are hard links to its snapshot's files, created never; but not where a stack would
/// show one inode under two names the layers made separately (a second copy in the same
/// stage, a copy onto the stage copied from), nor where the copy changes the file.
#[test]
fn copy_from_links_its_sources_files_unless_a_stack_would_show_them_twice() {
    use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
    let fx = Fixture::new();
    let sandbox = FakeSandbox::new(|spec, root| {
        if spec.process.args.last().is_some_and(|a| a == "make") {
            make_data(root);
        }
        FakeRun::exit(0)
    });
    let outcome = fx
        .build(
            "FROM scratch AS a\nRUN make\n\
             FROM scratch AS c\nCOPY --from=a /data /one\nCOPY --from=a /data /two\n\
             FROM scratch AS d\nCOPY --from=a --chmod=600 /data/f5 /f5\n\
             FROM a\nCOPY --from=a /data /again\nCOPY --from=c /one/f1 /c-f1\n\
             COPY --from=d /f5 /d-f5\nCOPY --from=c /one /from-c\n",
            &sandbox,
        )
        .unwrap();
    let (created, linked) = outcome.snapshot_files;
    // Linked: the RUN's 100 files (adopted), /one's 100 (shared with a), /d-f5 (with d).
    // Created: /two (c's stack already shows a's files through /one), /f5 (its mode
    // differs), /again (a is below it), /c-f1 and /from-c (c's /one shares a's files).
    assert_eq!((created, linked), (100 + 1 + 100 + 1 + 100, 100 + 100 + 1));
    let a = &outcome.layers[0].snapshot;
    assert_eq!(
        std::fs::symlink_metadata(a.join("data/f5")).unwrap().mode() & 0o7777,
        0o644,
        "a copy that changes a file leaves the source alone"
    );
    let top = |i: usize| &outcome.layers[i].snapshot;
    // The final stack: a, /again, /c-f1, /d-f5, /from-c.
    assert_ne!(ino(&a.join("data/f1")), ino(&top(1).join("again/f1")));
    assert_ne!(ino(&a.join("data/f1")), ino(&top(2).join("c-f1")));
    assert_ne!(ino(&a.join("data/f1")), ino(&top(4).join("from-c/f1")));
    // The hard link the RUN made is one inode in every copy, and nowhere else.
    assert_eq!(
        ino(&top(4).join("from-c/f0")),
        ino(&top(4).join("from-c/f0-link"))
    );
    assert_snapshots_are_their_layers(&fx.store, &outcome);
    let perms = std::fs::symlink_metadata(top(3).join("d-f5")).unwrap();
    assert_eq!(perms.permissions().mode() & 0o7777, 0o600);
}

/// A layer's snapshot serves every stack with that layer: one made by linking, met again on
/// top of the snapshot it links, gets its own copies before the stack is used, and is still
/// exactly its layer.
#[test]
fn a_shared_snapshot_on_top_of_its_source_gets_its_own_files() {
    use std::os::unix::fs::MetadataExt as _;
    let fx = Fixture::new();
    for i in 0..20 {
        fx.file(&format!("src/f{i}"), &format!("{i}\n"));
    }
    let quiet = FakeSandbox::new(|_, _| FakeRun::exit(0));
    let first = fx
        .build(
            "FROM scratch AS a\nCOPY src/ /data/\nFROM scratch\nCOPY --from=a /data /d\n",
            &quiet,
        )
        .unwrap();
    let shared = first.layers[0].snapshot.clone();
    let source = {
        let again = fx
            .build("FROM scratch\nCOPY src/ /data/\n", &quiet)
            .unwrap();
        again.layers[0].snapshot.clone()
    };
    assert_eq!(ino(&shared.join("d/f3")), ino(&source.join("data/f3")));
    let seen = std::sync::Arc::new(Mutex::new(Vec::new()));
    let saw = seen.clone();
    let look = FakeSandbox::new(move |_, root| {
        saw.lock()
            .unwrap()
            .push((ino(&root.join("d/f3")), ino(&root.join("data/f3"))));
        FakeRun::exit(0)
    });
    let second = fx
        .build(
            "FROM scratch AS a\nCOPY src/ /data/\nFROM a\nCOPY --from=a /data /d\nRUN look\n",
            &look,
        )
        .unwrap();
    assert_eq!(
        second.layers[1].snapshot, shared,
        "the same layer, the same snapshot"
    );
    assert_ne!(
        ino(&shared.join("d/f3")),
        ino(&source.join("data/f3")),
        "the snapshot has its own files now"
    );
    assert_eq!(
        std::fs::symlink_metadata(shared.join("d/f3"))
            .unwrap()
            .nlink(),
        1
    );
    assert!(!shared.parent().unwrap().join("shares").exists());
    let (one, other) = seen.lock().unwrap()[0];
    assert_ne!(one, other, "the RUN sees two files");
    assert_snapshots_are_their_layers(&fx.store, &second);
}

/// What the fake `make` writes: `data/f0`..`data/f99` (`file N`) and `data/f0-link`, a hard
/// link to `f0`; returns `data`.
fn make_data(root: &std::path::Path) -> std::path::PathBuf {
    let data = root.join("data");
    std::fs::create_dir_all(&data).unwrap();
    for i in 0..100 {
        std::fs::write(data.join(format!("f{i}")), format!("file {i}\n")).unwrap();
    }
    std::fs::hard_link(data.join("f0"), data.join("f0-link")).unwrap();
    data
}
