//! Point 5 and 7: ADD of local archives (every compression, detected by content) and of URLs
//! through a loopback HTTP server; the Merkle hash.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;

use common::*;
use kiln_fileop::{CopyOp, FileOpError, OctalMode, OpKind, ReadingHasher, Source, SourceRoot};

fn tar_bytes(entries: &[(&str, &str)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o640);
        h.set_uid(7);
        h.set_gid(8);
        h.set_mtime(99);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, name, data.as_bytes()).unwrap();
    }
    b.into_inner().unwrap()
}

fn header() -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h
}

fn compress(kind: &str, data: &[u8]) -> Vec<u8> {
    match kind {
        "plain" => data.to_vec(),
        "gzip" => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(data).unwrap();
            e.finish().unwrap()
        }
        "bzip2" => {
            let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::default());
            e.write_all(data).unwrap();
            e.finish().unwrap()
        }
        "xz" => {
            let mut e = xz2::write::XzEncoder::new(Vec::new(), 6);
            e.write_all(data).unwrap();
            e.finish().unwrap()
        }
        "zstd" => zstd::encode_all(data, 3).unwrap(),
        _ => unreachable!(),
    }
}

fn add(sources: &[&str], dest: &str) -> CopyOp {
    let mut op = copy(sources, dest);
    op.kind = OpKind::Add {
        unpack: None,
        checksum: None,
    };
    op
}

#[test]
fn local_archives_of_every_compression_are_extracted_by_content() {
    let ctx = tempfile::tempdir().unwrap();
    let tar = tar_bytes(&[("top/a.txt", "A"), ("b.txt", "B")]);
    for kind in ["plain", "gzip", "bzip2", "xz", "zstd"] {
        // A misleading name: detection is by content only.
        std::fs::write(ctx.path().join(format!("{kind}.bin")), compress(kind, &tar)).unwrap();
        let m = run(&add(&[&format!("{kind}.bin")], "/x"), ctx.path(), None).unwrap();
        assert_eq!(
            paths(&m),
            ["x", "x/b.txt", "x/top", "x/top/a.txt"],
            "{kind}"
        );
        let a = &m["x/top/a.txt"];
        assert_eq!(
            (a.data.as_str(), a.mode, a.uid, a.gid, a.mtime),
            ("A", 0o640, 7, 8, 99)
        );
        assert_eq!(
            (m["x/top"].mode, m["x/top"].uid),
            (0o755, 0),
            "implied parents: 0755 root"
        );
    }
    // Not an archive (an empty file named .tar.gz): copied as is.
    std::fs::write(ctx.path().join("empty.tar.gz"), "").unwrap();
    let m = run(&add(&["empty.tar.gz"], "/e/"), ctx.path(), None).unwrap();
    assert_eq!(m["e/empty.tar.gz"].kind, 'f');
    // COPY and --unpack=false never extract.
    let m = run(&copy(&["gzip.bin"], "/c"), ctx.path(), None).unwrap();
    assert_eq!(m["c"].kind, 'f');
    let mut op = add(&["gzip.bin"], "/c");
    op.kind = OpKind::Add {
        unpack: Some(false),
        checksum: None,
    };
    assert_eq!(run(&op, ctx.path(), None).unwrap()["c"].kind, 'f');
}

#[test]
fn archive_owners_follow_chown_and_names_stay_in_the_destination() {
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(ctx.path().join("a.tar"), tar_bytes(&[("f", "x")])).unwrap();
    let mut op = add(&["a.tar"], "/d/");
    op.chown = Some(kiln_fileop::ChownSpec::parse("5:6"));
    op.chmod = Some(Arc::new(OctalMode(0o600)));
    let m = run(&op, ctx.path(), None).unwrap();
    assert_eq!((m["d/f"].uid, m["d/f"].gid, m["d/f"].mode), (5, 6, 0o640));
    assert_eq!((m["d"].uid, m["d"].mode), (5, 0o755));

    let mut evil = tar::Builder::new(Vec::new());
    let mut h = header();
    h.set_size(1);
    h.set_entry_type(tar::EntryType::Regular);
    h.as_gnu_mut().unwrap().name[..7].copy_from_slice(b"../../x");
    h.set_cksum();
    evil.append(&h, &b"x"[..]).unwrap();
    std::fs::write(ctx.path().join("evil.tar"), evil.into_inner().unwrap()).unwrap();
    let m = run(&add(&["evil.tar"], "/d/"), ctx.path(), None).unwrap();
    assert!(
        m.contains_key("d/x"),
        "`..` stops at the destination, as in BuildKit's chroot: {:?}",
        paths(&m)
    );

    // A relative symlink pointing above the destination is kept as written, at the top of
    // the archive as below it: it is text until followed, and kiln follows it inside the root
    // (BuildKit's `testSymlinkDestination`).
    for name in ["up", "a/up"] {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = header();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        h.set_mode(0o777);
        b.append_link(&mut h, name, "../../etc").unwrap();
        std::fs::write(ctx.path().join("up.tar"), b.into_inner().unwrap()).unwrap();
        let m = run(&add(&["up.tar"], "/d/"), ctx.path(), None).unwrap();
        assert!(
            m.contains_key(&format!("d/{name}")),
            "{name}: {:?}",
            paths(&m)
        );
    }

    // A symlink planted by the archive cannot carry later entries out of the destination.
    let mut b = tar::Builder::new(Vec::new());
    let mut h = header();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    h.set_mode(0o777);
    b.append_link(&mut h, "esc", "/").unwrap();
    let mut h = header();
    h.set_size(1);
    h.set_entry_type(tar::EntryType::Regular);
    b.append_data(&mut h, "esc/etc-file", &b"y"[..]).unwrap();
    std::fs::write(ctx.path().join("link.tar"), b.into_inner().unwrap()).unwrap();
    let m = run(&add(&["link.tar"], "/d/"), ctx.path(), None).unwrap();
    assert!(
        m.contains_key("d/etc-file"),
        "resolved as in a chroot: {:?}",
        paths(&m)
    );
}

/// Serves `body` once per connection on loopback, with `Last-Modified`.
fn serve(body: &'static [u8], count: usize) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(count) {
            let mut s = stream.unwrap();
            let mut req = Vec::new();
            let mut buf = [0u8; 512];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = s.read(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                req.extend_from_slice(&buf[..n]);
            }
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nLast-Modified: Sun, 06 Nov 1994 08:49:37 GMT\r\nConnection: close\r\n\r\n",
                body.len()
            );
            s.write_all(head.as_bytes()).unwrap();
            s.write_all(body).unwrap();
        }
    });
    format!("http://{addr}")
}

fn url_op(url: &str, dest: &str, checksum: Option<String>) -> CopyOp {
    CopyOp {
        sources: vec![Source::Url(url.to_owned())],
        dest: dest.to_owned(),
        kind: OpKind::Add {
            unpack: None,
            checksum,
        },
        ..CopyOp::default()
    }
}

#[test]
fn urls_download_to_0600_with_last_modified_and_checked_digest() {
    let base = serve(b"payload", 4);
    let fetcher = kiln_http::Client::new(&kiln_http::ClientOptions::default()).unwrap();
    let (m, _) = run_with(
        &url_op(&format!("{base}/dir/file.tgz"), "/dl/", None),
        None,
        None,
        Some(&fetcher),
    )
    .unwrap();
    let f = &m["dl/file.tgz"];
    assert_eq!(
        (f.mode, f.uid, f.mtime, f.data.as_str()),
        (0o600, 0, 784_111_777, "payload")
    );
    let (m, _) = run_with(
        &url_op(&format!("{base}/x"), "/named", None),
        None,
        None,
        Some(&fetcher),
    )
    .unwrap();
    assert_eq!(paths(&m), ["named"]);

    let good = format!("{}", kiln_layer::Digest::of(b"payload"));
    assert!(
        run_with(
            &url_op(&format!("{base}/x"), "/y", Some(good)),
            None,
            None,
            Some(&fetcher)
        )
        .is_ok()
    );
    let bad = format!("sha256:{}", "0".repeat(64));
    let err = run_with(
        &url_op(&format!("{base}/x"), "/y", Some(bad)),
        None,
        None,
        Some(&fetcher),
    )
    .unwrap_err();
    assert!(matches!(err, FileOpError::ChecksumMismatch { .. }), "{err}");
    assert!(
        err.to_string()
            .starts_with("digest mismatch for `http://127.0.0.1:")
    );
    let err = run_with(
        &url_op("http://x/y", "/y", Some("md5:1".into())),
        None,
        None,
        Some(&fetcher),
    )
    .unwrap_err();
    assert!(matches!(err, FileOpError::BadChecksum { .. }));
    let err = run_with(&url_op("http://x/y", "/y", None), None, None, None).unwrap_err();
    assert!(matches!(err, FileOpError::NoFetcher { .. }));
}

#[test]
fn url_archives_are_not_extracted_unless_unpack_is_true() {
    let tgz: &'static [u8] =
        Box::leak(compress("gzip", &tar_bytes(&[("in", "side")])).into_boxed_slice());
    let base = serve(tgz, 2);
    let fetcher = kiln_http::Client::new(&kiln_http::ClientOptions::default()).unwrap();
    let url = format!("{base}/a.tar.gz");
    let (m, _) = run_with(&url_op(&url, "/d/", None), None, None, Some(&fetcher)).unwrap();
    assert_eq!(paths(&m), ["d", "d/a.tar.gz"]);
    let mut op = url_op(&url, "/d/", None);
    op.kind = OpKind::Add {
        unpack: Some(true),
        checksum: None,
    };
    let (m, _) = run_with(&op, None, None, Some(&fetcher)).unwrap();
    assert_eq!(paths(&m), ["d", "d/in"]);
}

#[test]
fn merkle_hash_covers_exactly_the_selection_and_not_mtimes() {
    let ctx = tempfile::tempdir().unwrap();
    write(ctx.path(), "src/a", "a", 0o644);
    write(ctx.path(), "src/b", "b", 0o644);
    write(ctx.path(), "other", "o", 0o644);
    let hash = |op: &CopyOp| {
        let root = SourceRoot::context(ctx.path(), &kiln_context::IgnoreRules::empty()).unwrap();
        let planned = kiln_fileop::plan(
            op,
            kiln_fileop::Inputs {
                source: Some(&root),
                target: &kiln_fileop::EmptyView,
                fetcher: None,
                scratch_dir: None,
            },
        )
        .unwrap();
        let before = planned.merkle(&ReadingHasher).unwrap();
        let (_, out) = run_with(op, Some(&root), None, None).unwrap();
        assert_eq!(before, out.merkle, "the write pass computes the same hash");
        before
    };
    let op = copy(&["src"], "/d/");
    let h1 = hash(&op);
    assert_eq!(
        h1.leaves
            .iter()
            .map(|(p, _)| p.as_str())
            .collect::<Vec<_>>(),
        ["/src/a", "/src/b", "/src"]
    );
    write(ctx.path(), "other", "changed", 0o644);
    set_mtime(&ctx.path().join("src/a"), 5);
    assert_eq!(
        hash(&op).root,
        h1.root,
        "unselected files and mtimes do not count"
    );
    write(ctx.path(), "src/a", "A", 0o644);
    let h2 = hash(&op);
    assert_ne!(h2.root, h1.root);
    assert_ne!(h2.leaves[0], h1.leaves[0]);
    assert_eq!(
        h2.leaves[1], h1.leaves[1],
        "a miss can name the changed file"
    );
    let mut chowned = op.clone();
    chowned.chown = Some(kiln_fileop::ChownSpec::parse("1:1"));
    assert_ne!(hash(&chowned).root, h2.root, "owners count");
    let mut excluded = op.clone();
    excluded.exclude = vec!["a".into()];
    assert_eq!(hash(&excluded).leaves.len(), 2, "--exclude removes leaves");
}

/// A loopback HTTPS server (Python's `ssl` over `http.server`) with a certificate for
/// 127.0.0.1 signed by a throw-away CA; returns the base URL, the CA file and the child.
fn https_server(
    dir: &std::path::Path,
    body: &str,
) -> Option<(String, std::path::PathBuf, std::process::Child)> {
    kiln_test_support::require(false, &["openssl", "python3"])?;
    let ca = kiln_test_support::TestCa::make(dir);
    std::fs::create_dir_all(dir.join("www/dir")).unwrap();
    std::fs::write(dir.join("www/dir/file.txt"), body).unwrap();
    let script = r#"
import http.server, ssl, sys, functools
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[1], sys.argv[2])
handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory="www")
srv = http.server.HTTPServer(("127.0.0.1", 0), handler)
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
print(srv.server_address[1], flush=True)
srv.serve_forever()
"#;
    let mut child = std::process::Command::new("python3")
        .args(["-c", script])
        .arg(&ca.server_cert)
        .arg(&ca.server_key)
        .current_dir(dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut port = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut port,
    )
    .unwrap();
    Some((format!("https://127.0.0.1:{}", port.trim()), ca.ca, child))
}

#[test]
fn https_urls_download_with_the_trusted_ca_and_refuse_others() {
    let tmp = tempfile::tempdir().unwrap();
    let Some((base, ca, mut child)) = https_server(tmp.path(), "over tls\n") else {
        return;
    };
    let client = |ca_file| {
        kiln_http::Client::new(&kiln_http::ClientOptions {
            ca_file,
            ..kiln_http::ClientOptions::default()
        })
        .unwrap()
    };
    let fetcher = client(ca);
    let digest = format!("{}", kiln_layer::Digest::of(b"over tls\n"));
    let result = run_with(
        &url_op(&format!("{base}/dir/file.txt"), "/dl/", Some(digest)),
        None,
        None,
        Some(&fetcher),
    );
    let untrusted = client(tmp.path().join("srv.pem"));
    let refused = run_with(
        &url_op(&format!("{base}/dir/file.txt"), "/dl/", None),
        None,
        None,
        Some(&untrusted),
    );
    let _ = child.kill();
    let _ = child.wait();
    let (m, _) = result.unwrap();
    assert_eq!(m["dl/file.txt"].data, "over tls\n");
    assert_eq!(m["dl/file.txt"].mode, 0o600);
    assert!(
        refused.is_err(),
        "a server the CA file does not vouch for is refused"
    );
}
