//! Two pulls of the same image into one store at once (as two kiln processes would: each
//! with its own `Registries`, the download locks are file locks): both succeed, whichever
//! downloads a layer first, and the store is left whole, with no download behind.

mod common;

use common::{Layer, fake, put_image};
use kiln_oci::{Reference, Store};
use kiln_registry::{NoProgress, PullOptions, Registries, RegistryOptions};

#[test]
fn two_pulls_of_one_image_at_once_both_succeed_and_leave_the_store_whole() {
    let (addr, state) = fake(None);
    let layers: Vec<Layer> = (0..6)
        .map(|i| Layer::gz_noise(&format!("f{i}"), 200_000, i + 1))
        .collect();
    put_image(&mut state.lock().unwrap(), "x/img", "1", &layers, |_| true);
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let r = Reference::parse(&format!("{addr}/x/img:1")).unwrap();
    let pulls: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..2)
            .map(|_| {
                s.spawn(|| {
                    let reg = Registries::new(RegistryOptions {
                        certs_d: None,
                        ..RegistryOptions::default()
                    })
                    .unwrap();
                    reg.pull(&store, &r, &PullOptions::default(), &NoProgress)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for p in &pulls {
        assert!(p.is_ok(), "{p:?}");
    }
    let report = store.fsck(false).unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert!(report.resumable.is_empty(), "{:?}", report.resumable);
    for l in &layers {
        assert!(store.has_blob(&common::sha256(&l.bytes).parse().unwrap()));
        assert!(
            kiln_oci::Snapshots::new(&store)
                .unwrap()
                .existing(&l.diff_id.parse().unwrap())
                .is_some()
        );
    }
    assert_eq!(store.images().unwrap().len(), 1);
}

/// The same, many times over: the race in which one pull waits for the other's download lock
/// and then finds the blob committed used to leave that download's directory behind (about one
/// run in three).
#[test]
fn racing_pulls_never_leave_a_download_directory_behind() {
    for _ in 0..15 {
        two_pulls_of_one_image_at_once_both_succeed_and_leave_the_store_whole();
    }
}
