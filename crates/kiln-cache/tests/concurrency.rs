//! Several kiln processes (and threads) writing and reading one `cache.db` at once.

// Tests and benchmarks read their own settings from the environment.
#![allow(clippy::disallowed_methods)]

mod common;

use std::process::Command;

use kiln_cache::Cache;

const WRITERS: usize = 4;
const PER_WRITER: usize = 40;

/// The body of one child process: writes its records, reading everyone's as it goes.
fn child_writer(root: &str, id: usize) {
    let store = kiln_oci::Store::open(std::path::Path::new(root)).unwrap();
    let cache = Cache::open(&store).unwrap();
    for i in 0..PER_WRITER {
        let name = format!("p{id}-{i}");
        let layer = common::layer(&store, &name, 64);
        cache
            .put(&common::key(&name), &common::output(Some(layer), &name))
            .unwrap();
        // Read what the others wrote so far: readers and writers interleave.
        for other in 0..WRITERS {
            let _ = cache.get(&common::key(&format!("p{other}-{i}"))).unwrap();
        }
    }
}

/// Spawns `WRITERS` copies of this test binary running this same test; each
/// copy sees `KILN_CACHE_TEST_ROOT` and acts as a child writer instead.
#[test]
fn processes_share_the_index() {
    if let Ok(root) = std::env::var("KILN_CACHE_TEST_ROOT") {
        let id = std::env::var("KILN_CACHE_TEST_ID").unwrap();
        return child_writer(&root, id.parse().unwrap());
    }
    let (_dir, store) = common::store();
    // The children also race to create the database and its schema.
    let exe = std::env::current_exe().unwrap();
    let mut running: Vec<_> = (0..WRITERS)
        .map(|id| {
            Command::new(&exe)
                .args(["--exact", "processes_share_the_index", "--test-threads=1"])
                .env("KILN_CACHE_TEST_ROOT", store.root())
                .env("KILN_CACHE_TEST_ID", id.to_string())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in running.drain(..) {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "child failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("1 passed"),
            "the child ran no test"
        );
    }
    let cache = Cache::open(&store).unwrap();
    let records = cache.records().unwrap();
    assert_eq!(records.len(), WRITERS * PER_WRITER);
    for id in 0..WRITERS {
        for i in 0..PER_WRITER {
            let name = format!("p{id}-{i}");
            let r = cache
                .get(&common::key(&name))
                .unwrap()
                .expect("record written");
            assert_eq!(r.output, common::output(r.output.layer.clone(), &name));
        }
    }
}

#[test]
fn threads_share_one_handle_and_own_handles() {
    let (_dir, store) = common::store();
    let shared = Cache::open(&store).unwrap();
    std::thread::scope(|s| {
        for t in 0..6 {
            let shared = &shared;
            let store = &store;
            s.spawn(move || {
                // Half the threads use the shared handle, half their own connection.
                let own;
                let cache = if t % 2 == 0 {
                    shared
                } else {
                    own = common::reopen(store);
                    &own
                };
                for i in 0..30 {
                    let name = format!("t{t}-{i}");
                    cache
                        .put(&common::key(&name), &common::output(None, &name))
                        .unwrap();
                    assert!(cache.get(&common::key(&name)).unwrap().is_some());
                }
            });
        }
    });
    assert_eq!(shared.records().unwrap().len(), 180);
}
