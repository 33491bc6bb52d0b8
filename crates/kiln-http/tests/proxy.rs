//! Downloads go through the proxy configured for their scheme, except to the hosts
//! `NO_PROXY` names, on loopback servers.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

/// Reads one request head from `s`; its first line.
fn request_line(s: &mut std::net::TcpStream) -> String {
    let mut req = Vec::new();
    let mut buf = [0u8; 1];
    while !req.ends_with(b"\r\n\r\n") {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(_) => req.push(buf[0]),
        }
    }
    String::from_utf8_lossy(&req)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// A loopback server answering every request with `body`, and a tunnelling proxy too (a
/// `CONNECT` is accepted and the request inside answered); returns its address and the
/// request lines it saw.
fn serve(body: &'static str) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut line = request_line(&mut s);
            if line.starts_with("CONNECT ") {
                log.lock().unwrap().push(line);
                let _ = s.write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n");
                line = request_line(&mut s);
            }
            log.lock().unwrap().push(line);
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nLast-Modified: Sun, 06 Nov 1994 08:49:37 GMT\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (addr, seen)
}

fn client(proxies: kiln_http::Proxies) -> kiln_http::Client {
    kiln_http::Client::new(&kiln_http::ClientOptions {
        proxies,
        ..kiln_http::ClientOptions::default()
    })
    .unwrap()
}

#[test]
fn http_urls_go_through_http_proxy_unless_no_proxy_names_the_host() {
    let (proxy, proxy_saw) = serve("from the proxy");
    let (origin, origin_saw) = serve("from the origin");
    let proxies = kiln_http::Proxies {
        http: Some(format!("http://{proxy}")),
        https: None,
        no_proxy: vec!["localhost".into()],
    };
    let c = client(proxies.clone());
    // Through the proxy (tunnelled), and the origin gets nothing.
    let mut out = Vec::new();
    let r = c.get("http://downloads.invalid/pkg.tgz", &mut out).unwrap();
    assert_eq!(out, b"from the proxy");
    assert_eq!(
        r.last_modified.as_deref(),
        Some("Sun, 06 Nov 1994 08:49:37 GMT")
    );
    assert_eq!(
        proxy_saw.lock().unwrap().as_slice(),
        [
            "CONNECT downloads.invalid:80 HTTP/1.1",
            "GET /pkg.tgz HTTP/1.1"
        ]
    );
    // NO_PROXY names the origin: straight there.
    let c = client(kiln_http::Proxies {
        no_proxy: vec!["127.0.0.1".into()],
        ..proxies
    });
    let mut out = Vec::new();
    c.get(&format!("http://{origin}/file"), &mut out).unwrap();
    assert_eq!(out, b"from the origin");
    assert_eq!(
        origin_saw.lock().unwrap().as_slice(),
        ["GET /file HTTP/1.1"]
    );
    assert_eq!(
        proxy_saw.lock().unwrap().len(),
        2,
        "the proxy saw nothing more"
    );
}

#[test]
fn statuses_and_schemes_are_errors_that_say_so() {
    let c = client(kiln_http::Proxies::default());
    let err = c.get("ftp://x/y", &mut Vec::new()).unwrap_err();
    assert_eq!(err.to_string(), "unsupported url: ftp://x/y");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        if let Ok((mut s, _)) = listener.accept() {
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf);
            let _ = s.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
        }
    });
    let err = c
        .get(&format!("http://{addr}/missing"), &mut Vec::new())
        .unwrap_err();
    assert!(
        matches!(err, kiln_http::HttpError::Status { status: 404 }),
        "{err}"
    );
}

/// The CA bundle is read at the first `https://` download, and a missing one says so there
/// (not as a handshake failure); `http://` needs none.
#[test]
fn a_missing_ca_bundle_is_named_by_https_downloads_only() {
    let c = kiln_http::Client::new(&kiln_http::ClientOptions {
        ca_file: "/nonexistent/ca.pem".into(),
        ..kiln_http::ClientOptions::default()
    })
    .unwrap();
    let err = c.get("https://127.0.0.1:1/x", &mut Vec::new()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot read the CA certificates in `/nonexistent/ca.pem`"
    );
    let (origin, _) = serve("plain");
    let mut out = Vec::new();
    c.get(&format!("http://{origin}/f"), &mut out).unwrap();
    assert_eq!(out, b"plain");
}
