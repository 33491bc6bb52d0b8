//! Chunked uploads against Debian's `docker-registry` (the CNCF distribution registry): with
//! a small `chunk_size`, a layer larger than it goes up as `PATCH`es with contiguous
//! `Content-Range`s and a closing `PUT ?digest=`; a logging forwarder in front of the
//! registry shows the requests, and a pull straight from the registry gets every blob back
//! with its digest.

mod common;

use common::{Layer, fake, logging_proxy, put_image, sha256};
use kiln_oci::{Reference, Store};
use kiln_registry::{NoProgress, PullOptions, PushOptions, Registries, RegistryOptions};
use kiln_test_support::{Registry, RegistrySetup};

const CHUNK: u64 = 64 << 10;

fn registries(chunk_size: u64) -> Registries {
    Registries::new(RegistryOptions {
        certs_d: None,
        chunk_size,
        ..RegistryOptions::default()
    })
    .unwrap()
}

#[test]
fn a_large_layer_goes_up_in_patches_then_a_put_with_its_digest() {
    let work = tempfile::tempdir().unwrap();
    let Some(real) = Registry::start(&work.path().join("reg"), &RegistrySetup::default()) else {
        return;
    };
    // The image, pulled from a fake registry into a store: one incompressible gzip layer of
    // about 300 KB, so several chunks.
    let layer = Layer::gz_noise("big", 300_000, 7);
    let layer_digest = sha256(&layer.bytes);
    let size = layer.bytes.len() as u64;
    assert!(size > 4 * CHUNK);
    let (fake_addr, state) = fake(None);
    put_image(&mut state.lock().unwrap(), "x/big", "1", &[layer], |_| true);
    let store = Store::open(&work.path().join("store")).unwrap();
    let src = Reference::parse(&format!("{fake_addr}/x/big:1")).unwrap();
    registries(CHUNK)
        .pull(&store, &src, &PullOptions::default(), &NoProgress)
        .unwrap();
    let image = store.resolve(&src.to_string()).unwrap();

    let (proxy, log) = logging_proxy(&real.addr);
    let dst = Reference::parse(&format!("{proxy}/chunked/img:1")).unwrap();
    let pushed = registries(CHUNK)
        .push(&store, &image, &dst, &PushOptions::default(), &NoProgress)
        .unwrap();
    assert_eq!(pushed.uploaded, 2, "{pushed:?}");
    let log = log.lock().unwrap().clone();
    // The layer's upload: the PATCHes cover it from 0 to its end, in order, then the PUT.
    let upload = |l: &&String| l.contains("/v2/chunked/img/blobs/uploads/");
    let mut next = 0u64;
    let mut patches = 0;
    for l in log
        .iter()
        .filter(upload)
        .filter(|l| l.starts_with("PATCH "))
    {
        let range = l
            .split("content-range=")
            .nth(1)
            .expect("PATCH with Content-Range");
        let (from, to) = range.split_once('-').unwrap();
        let (from, to): (u64, u64) = (from.parse().unwrap(), to.parse().unwrap());
        assert_eq!(from, next, "{log:#?}");
        assert!(to - from < CHUNK);
        next = to + 1;
        patches += 1;
    }
    assert_eq!(next, size, "{log:#?}");
    assert_eq!(patches, size.div_ceil(CHUNK));
    let hex = layer_digest.trim_start_matches("sha256:");
    let put = log
        .iter()
        .position(|l| l.starts_with("PUT ") && upload(&l) && l.contains(hex))
        .expect("a PUT ?digest= closes the upload");
    assert!(log[put].contains("digest=sha256%3A") || log[put].contains("digest=sha256:"));
    let last_patch = log.iter().rposition(|l| l.starts_with("PATCH ")).unwrap();
    assert!(last_patch < put, "{log:#?}");

    // Pulled back straight from the registry: every blob matches its digest.
    let back = Store::open(&work.path().join("back")).unwrap();
    let r = Reference::parse(&format!("{}/chunked/img:1", real.addr)).unwrap();
    let pulled = registries(CHUNK)
        .pull(&back, &r, &PullOptions::default(), &NoProgress)
        .unwrap();
    assert_eq!(pulled.digest, pushed.digest);
    assert!(back.has_blob(&layer_digest.parse().unwrap()));
}
