//! A registry download cut short (`tmp/download-<hex>/data`) is resumable, not a problem:
//! `fsck` lists it apart and exits clean; `--repair` keeps it while it is fresh and removes
//! it once it is older than a day. Other leftovers in `tmp/` are still problems.

use std::time::{Duration, SystemTime};

use kiln_layer::Digest;
use kiln_oci::Store;

#[test]
fn a_cut_download_is_resumable_and_only_a_stale_one_is_repaired_away() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let fresh = Digest::of(b"fresh");
    let stale = Digest::of(b"stale");
    for (d, age) in [(&fresh, 0), (&stale, 48)] {
        let dl = store.layout().download(d);
        std::fs::create_dir_all(&dl).unwrap();
        std::fs::write(dl.join(".lock"), b"").unwrap();
        let f = std::fs::File::create(dl.join("data")).unwrap();
        std::io::Write::write_all(&mut &f, &[7u8; 1000]).unwrap();
        f.set_modified(SystemTime::now() - Duration::from_hours(age))
            .unwrap();
    }
    // A half-written transaction is still a leftover.
    std::fs::create_dir_all(store.layout().tmp().join("txn-1-2-3")).unwrap();

    let report = store.fsck(false).unwrap();
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    assert!(report.problems[0].to_string().contains("txn-1-2-3"));
    let mut found: Vec<_> = report
        .resumable
        .iter()
        .map(|r| (r.digest.clone(), r.bytes, r.stale))
        .collect();
    found.sort();
    let mut want = vec![(fresh.clone(), 1000, false), (stale.clone(), 1000, true)];
    want.sort();
    assert_eq!(found, want);
    let text = report
        .resumable
        .iter()
        .find(|r| r.digest == fresh)
        .unwrap()
        .to_string();
    assert!(text.contains("the next pull resumes it"), "{text}");

    let report = store.fsck(true).unwrap();
    assert!(store.layout().download(&fresh).join("data").exists());
    assert!(!store.layout().download(&stale).exists());
    assert!(
        report
            .removed
            .iter()
            .any(|r| r.contains(&format!("download-{}", stale.hex())))
    );
    let report = store.fsck(false).unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert_eq!(report.resumable.len(), 1);
}

#[test]
fn prune_removes_cut_downloads_by_age_but_never_one_being_written() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let make = |seed: &[u8], hours: u64| {
        let d = Digest::of(seed);
        let dl = store.layout().download(&d);
        std::fs::create_dir_all(&dl).unwrap();
        std::fs::write(dl.join(".lock"), b"").unwrap();
        let f = std::fs::File::create(dl.join("data")).unwrap();
        std::io::Write::write_all(&mut &f, &[7u8; 100]).unwrap();
        f.set_modified(SystemTime::now() - Duration::from_hours(hours))
            .unwrap();
        d
    };
    let (young, old, busy) = (make(b"young", 0), make(b"old", 5), make(b"busy", 5));
    // A pull is writing `busy`: it holds the lock.
    let held = std::fs::File::open(store.layout().download(&busy).join(".lock")).unwrap();
    rustix::fs::flock(&held, rustix::fs::FlockOperation::LockExclusive).unwrap();

    let removed = store
        .remove_downloads(Some(Duration::from_hours(1)))
        .unwrap();
    let names: Vec<_> = removed.iter().map(|r| r.digest.clone()).collect();
    assert_eq!(names, vec![old.clone()]);
    assert!(!store.layout().download(&old).exists());
    assert!(store.layout().download(&young).exists());

    // Every one not being written.
    let removed = store.remove_downloads(None).unwrap();
    assert_eq!(removed.len(), 1);
    assert_eq!(removed[0].digest, young);
    assert!(store.layout().download(&busy).join("data").exists());
    drop(held);
    assert_eq!(store.remove_downloads(None).unwrap().len(), 1);
}
