//! Foreign (non-distributable) layers, as Docker handles them: a manifest whose layer is a
//! `foreign` one with `urls` is pulled from the URL (served by a small HTTP server of the
//! test; the registry does not have the blob), verified and unpacked; a push of the image
//! leaves that layer out of the upload (no HEAD, no upload) and keeps its descriptor, `urls`
//! and all, in the pushed manifest.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::{Layer, fake, put_image, respond, serve};
use kiln_oci::{Reference, Snapshots, Store};
use kiln_registry::{NoProgress, PullOptions, PushOptions, Registries, RegistryOptions};

#[test]
fn a_foreign_layer_comes_from_its_url_and_is_not_pushed() {
    let mut foreign = Layer::gz("windows-base", 30_000);
    let base = Layer::gz("app", 20_000);
    // The layer's URL: a plain file server that counts its requests.
    let served = Arc::new(AtomicUsize::new(0));
    let (bytes, count) = (foreign.bytes.clone(), Arc::clone(&served));
    let files = serve(move |req, s| {
        count.fetch_add(1, Ordering::SeqCst);
        if req.path == "/layers/base.tar.gz" {
            respond(s, "200 OK", &[], &bytes);
        } else {
            respond(s, "404 Not Found", &[], b"");
        }
    });
    foreign.media_type = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip".into();
    foreign.extra =
        format!(r#","urls":["http://{files}/missing","http://{files}/layers/base.tar.gz"]"#);
    let foreign_digest = common::sha256(&foreign.bytes);
    let foreign_diff_id = foreign.diff_id.clone();

    let (addr, state) = fake(None);
    put_image(
        &mut state.lock().unwrap(),
        "x/win",
        "1",
        &[foreign, base],
        |i| i == 1,
    );
    let mut opts = RegistryOptions {
        certs_d: None,
        ..RegistryOptions::default()
    };
    opts.http.retry.sleep = |_| {};
    let reg = Registries::new(opts).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let r = Reference::parse(&format!("{addr}/x/win:1")).unwrap();
    let pulled = reg
        .pull(&store, &r, &PullOptions::default(), &NoProgress)
        .unwrap();
    assert_eq!(pulled.fetched, 3);
    assert!(store.has_blob(&foreign_digest.parse().unwrap()));
    // The first URL failed (404), the second served it; the registry was never asked.
    assert_eq!(served.load(Ordering::SeqCst), 2);
    let log = state.lock().unwrap().log.clone();
    assert!(!log.iter().any(|l| l.contains(&foreign_digest)), "{log:#?}");
    let tree = Snapshots::new(&store)
        .unwrap()
        .existing(&foreign_diff_id.parse().unwrap())
        .expect("the foreign layer is unpacked too");
    assert_eq!(
        std::fs::metadata(tree.join("windows-base")).unwrap().len(),
        30_000
    );

    // The push: the foreign layer is neither checked nor uploaded, and stays in the manifest
    // with its URLs.
    let image = store.resolve(&r.to_string()).unwrap();
    let dst = Reference::parse(&format!("{addr}/x/copy:1")).unwrap();
    let before = state.lock().unwrap().log.len();
    reg.push(&store, &image, &dst, &PushOptions::default(), &NoProgress)
        .unwrap();
    let st = state.lock().unwrap();
    let pushed = &st.log[before..];
    assert!(
        !pushed.iter().any(|l| l.contains(&foreign_digest)),
        "{pushed:#?}"
    );
    assert!(
        !st.linked
            .contains(&("x/copy".to_owned(), foreign_digest.clone())),
        "the foreign blob was uploaded"
    );
    let (_, manifest) = &st.manifests[&("x/copy".to_owned(), "1".to_owned())];
    let m: serde_json::Value = serde_json::from_slice(manifest).unwrap();
    let layer = &m["layers"][0];
    assert_eq!(layer["digest"], foreign_digest.as_str());
    assert_eq!(
        layer["mediaType"],
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
    );
    assert_eq!(
        layer["urls"][1],
        format!("http://{files}/layers/base.tar.gz")
    );
}
