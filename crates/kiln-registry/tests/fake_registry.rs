//! Pulls from a tiny fake registry on loopback that misbehaves on purpose: a blob whose
//! bytes do not match its digest is refused and nothing is stored (not even the snapshot it
//! was unpacked into as it came); a blob whose connection is cut mid-way is resumed with
//! `Range`, also while it is being unpacked, and so is a download an earlier pull left; a
//! 429 with `Retry-After` is waited out.

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use kiln_oci::{Reference, Store};
use kiln_registry::{NoProgress, PullOptions, Registries, RegistryError, RegistryOptions};

/// Path -> (content type, body).
type Routes = BTreeMap<String, (String, Vec<u8>)>;

/// What the fake serves and how it misbehaves.
#[derive(Default)]
struct Behaviour {
    /// Path -> body.
    routes: Routes,
    /// Cut the first full GET of this path after this many bytes.
    cut: Option<(String, usize)>,
    /// Answer the first request 429 with `Retry-After: 0`.
    busy_once: bool,
    /// Request lines (with their Range) seen.
    seen: Vec<String>,
}

fn serve(b: Behaviour) -> (String, Arc<Mutex<Behaviour>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let state = Arc::new(Mutex::new(b));
    let st = Arc::clone(&state);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            // A TLS hello (kiln tries https first on loopback): answer as Go's server does.
            let mut first = [0u8; 1];
            if s.peek(&mut first).is_ok_and(|n| n == 1) && first[0] == 0x16 {
                let _ = s.write_all(b"HTTP/1.0 400 Bad Request\r\n\r\n");
                continue;
            }
            let mut req = Vec::new();
            let mut buf = [0u8; 1];
            while !req.ends_with(b"\r\n\r\n") {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => req.push(buf[0]),
                }
            }
            let head = String::from_utf8_lossy(&req).into_owned();
            let line = head.lines().next().unwrap_or_default().to_owned();
            let range = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("range: bytes=")
                        .map(str::to_owned)
                })
                .and_then(|r| r.trim_end_matches('-').parse::<usize>().ok());
            let mut st = st.lock().unwrap();
            st.seen.push(format!("{line} range={range:?}"));
            if st.busy_once {
                st.busy_once = false;
                let _ = s.write_all(b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 0\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                continue;
            }
            let mut parts = line.split(' ');
            let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            let Some((ctype, body)) = st.routes.get(path).cloned() else {
                let _ = s.write_all(
                    b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
                continue;
            };
            let (status, body) = match range {
                Some(from) if from <= body.len() => ("206 Partial Content", body[from..].to_vec()),
                _ => ("200 OK", body),
            };
            let _ = write!(
                s,
                "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nDocker-Content-Digest: {}\r\nConnection: close\r\n\r\n",
                body.len(),
                common::sha256(&st.routes[path].1)
            );
            if method == "HEAD" {
                continue;
            }
            let cut = match &st.cut {
                Some((p, n)) if p == path && range.is_none() => Some(*n),
                _ => None,
            };
            if let Some(n) = cut {
                st.cut = None;
                let _ = s.write_all(&body[..n]);
                // Dropping the stream cuts the connection mid-body.
                continue;
            }
            let _ = s.write_all(&body);
        }
    });
    (addr, state)
}

/// An image of one layer of `layer_bytes` (served as `served`), as fake routes.
fn image(name: &str, layer_bytes: &[u8], served: &[u8]) -> (Routes, String, String) {
    let layer = common::sha256(layer_bytes);
    let config = format!(
        r#"{{"architecture":"{}","os":"linux","rootfs":{{"type":"layers","diff_ids":["{layer}"]}}}}"#,
        kiln_oci::image::host_arch()
    );
    let c = common::sha256(config.as_bytes());
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{c}","size":{}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{layer}","size":{}}}]}}"#,
        config.len(),
        layer_bytes.len()
    );
    let mut routes = BTreeMap::new();
    let oct = "application/octet-stream".to_owned();
    routes.insert(
        format!("/v2/{name}/manifests/1"),
        (
            "application/vnd.oci.image.manifest.v1+json".to_owned(),
            manifest.clone().into_bytes(),
        ),
    );
    routes.insert(
        format!("/v2/{name}/blobs/{c}"),
        (oct.clone(), config.into_bytes()),
    );
    routes.insert(format!("/v2/{name}/blobs/{layer}"), (oct, served.to_vec()));
    routes.insert(
        "/v2/".to_owned(),
        ("application/json".to_owned(), b"{}".to_vec()),
    );
    (routes, layer, common::sha256(manifest.as_bytes()))
}

fn registries() -> Registries {
    let mut opts = RegistryOptions {
        certs_d: None,
        ..RegistryOptions::default()
    };
    opts.http.retry.sleep = |_| {};
    Registries::new(opts).unwrap()
}

#[test]
fn a_blob_that_does_not_match_its_digest_is_refused_and_not_stored() {
    let good = common::tar_of("file", 100_000);
    let mut bad = good.clone();
    bad[600] ^= 0xff;
    let (routes, layer, _) = image("x/bad", &good, &bad);
    let (addr, _) = serve(Behaviour {
        routes,
        ..Behaviour::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let r = Reference::parse(&format!("{addr}/x/bad:1")).unwrap();
    let e = registries()
        .pull(&store, &r, &PullOptions::default(), &NoProgress)
        .unwrap_err();
    let RegistryError::DigestMismatch {
        registry,
        repository,
        digest,
        ..
    } = &e
    else {
        panic!("{e:?}");
    };
    assert_eq!(registry, &addr);
    assert_eq!(repository, "x/bad");
    assert_eq!(digest.to_string(), layer);
    let msg = e.to_string();
    assert!(
        msg.contains(&layer) && msg.contains(&addr) && msg.contains("x/bad"),
        "{msg}"
    );
    assert!(!store.has_blob(&layer.parse().unwrap()));
    assert!(store.images().unwrap().is_empty());
    let downloads: Vec<_> = std::fs::read_dir(store.layout().tmp())
        .unwrap()
        .filter_map(|e| e.ok()?.path().join("data").exists().then_some(()))
        .collect();
    assert!(
        downloads.is_empty(),
        "the bad bytes are not kept for a resume"
    );
    // The layer was unpacked as it came, but its snapshot was not published.
    let diff_id: kiln_layer::Digest = common::sha256(&good).parse().unwrap();
    let snaps = kiln_oci::Snapshots::new(&store).unwrap();
    assert!(snaps.existing(&diff_id).is_none());
    let left: Vec<_> = std::fs::read_dir(snaps.dir()).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn a_download_left_by_an_earlier_pull_and_one_cut_short_resume_while_unpacking() {
    let layer_bytes = common::tar_of("file", 300_000);
    let (routes, layer, _) = image("x/resume", &layer_bytes, &layer_bytes);
    let path = format!("/v2/x/resume/blobs/{layer}");
    let (addr, state) = serve(Behaviour {
        routes,
        cut: Some((path.clone(), 120_000)),
        ..Behaviour::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    // What an earlier, interrupted pull left: the first 50 000 bytes. It is read back into
    // the unpacker, and the rest asked for with Range.
    let digest: kiln_layer::Digest = layer.parse().unwrap();
    let partial = store.layout().download(&digest);
    std::fs::create_dir_all(&partial).unwrap();
    std::fs::write(partial.join("data"), &layer_bytes[..50_000]).unwrap();
    let r = Reference::parse(&format!("{addr}/x/resume:1")).unwrap();
    registries()
        .pull(&store, &r, &PullOptions::default(), &NoProgress)
        .unwrap();
    assert!(store.has_blob(&digest));
    assert!(
        !partial.exists(),
        "the download dir goes once the blob is stored"
    );
    let seen = state.lock().unwrap().seen.clone();
    let gets: Vec<_> = seen
        .iter()
        .filter(|l| l.starts_with(&format!("GET {path} ")))
        .collect();
    // No full GET was cut: the first asked from 50 000 on (the cut only hits full GETs).
    assert!(gets[0].ends_with("range=Some(50000)"), "{seen:#?}");
    let diff_id: kiln_layer::Digest = common::sha256(&layer_bytes).parse().unwrap();
    let tree = kiln_oci::Snapshots::new(&store)
        .unwrap()
        .existing(&diff_id)
        .expect("unpacked while downloading");
    let file = std::fs::read(tree.join("file")).unwrap();
    assert_eq!(file.len(), 300_000);
    assert_eq!(&file[..], &layer_bytes[512..512 + 300_000]);

    // A fresh store, the connection cut at 120 000 bytes mid-unpack: resumed, unpacked.
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    registries()
        .pull(&store, &r, &PullOptions::default(), &NoProgress)
        .unwrap();
    let seen = state.lock().unwrap().seen.clone();
    assert!(
        seen.iter()
            .any(|l| l.starts_with(&format!("GET {path} ")) && l.ends_with("range=Some(120000)")),
        "{seen:#?}"
    );
    let tree = kiln_oci::Snapshots::new(&store)
        .unwrap()
        .existing(&diff_id)
        .expect("unpacked while downloading");
    assert_eq!(std::fs::read(tree.join("file")).unwrap(), file);
}

#[test]
fn a_download_cut_short_resumes_with_a_range_request() {
    let layer_bytes = common::tar_of("file", 300_000);
    let (routes, layer, manifest) = image("x/cut", &layer_bytes, &layer_bytes);
    let path = format!("/v2/x/cut/blobs/{layer}");
    let (addr, state) = serve(Behaviour {
        routes,
        cut: Some((path.clone(), 120_000)),
        busy_once: true,
        ..Behaviour::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let r = Reference::parse(&format!("{addr}/x/cut:1")).unwrap();
    let opts = PullOptions {
        unpack: false,
        ..PullOptions::default()
    };
    let pulled = registries().pull(&store, &r, &opts, &NoProgress).unwrap();
    assert_eq!(pulled.digest.to_string(), manifest);
    assert!(store.has_blob(&layer.parse().unwrap()));
    let seen = state.lock().unwrap().seen.clone();
    assert!(
        seen.iter()
            .any(|l| l.starts_with(&format!("GET {path} ")) && l.ends_with("range=Some(120000)")),
        "{seen:#?}"
    );
    assert_eq!(
        seen.iter().filter(|l| l.contains("manifests/1")).count(),
        2,
        "the 429 was retried: {seen:#?}"
    );
    // Everything present: one manifest request and nothing else.
    let before = state.lock().unwrap().seen.len();
    registries().pull(&store, &r, &opts, &NoProgress).unwrap();
    let after = state.lock().unwrap().seen[before..].to_vec();
    assert_eq!(after.len(), 1, "{after:#?}");
}
