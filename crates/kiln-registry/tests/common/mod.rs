//! A fake registry on loopback for the tests of this directory: the distribution API's pull
//! and push (HEAD, GET, monolithic and chunked uploads, cross-repository mounts, manifests),
//! optionally behind a bearer-token flow with a token server of its own that checks Basic
//! credentials and grants tokens per scope; and a plain HTTP file server (for foreign
//! layers' URLs). Every request is logged, so tests can say what went over the wire.
#![allow(dead_code, unreachable_pub)]

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use std::fmt::Write as _;

use base64::Engine as _;
use sha2::Digest as _;

pub fn sha256(b: &[u8]) -> String {
    format!("sha256:{:x}", sha2::Sha256::digest(b))
}

/// A parsed request.
pub struct Req {
    pub method: String,
    /// The request target as sent (path and raw query).
    pub target: String,
    /// The path without the query.
    pub path: String,
    /// Query pairs, percent-decoded.
    pub query: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Req {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn q(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Reads one request; `None` for a TLS hello (answered as Go's server does) or a closed
/// connection.
fn read_req(s: &mut TcpStream) -> Option<Req> {
    let mut first = [0u8; 1];
    if s.peek(&mut first).ok()? == 1 && first[0] == 0x16 {
        let _ = s.write_all(b"HTTP/1.0 400 Bad Request\r\n\r\n");
        return None;
    }
    let mut r = BufReader::new(s.try_clone().ok()?);
    let mut line = String::new();
    r.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let target = parts.next()?.to_owned();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        r.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((n, v)) = h.split_once(':') {
            headers.push((n.trim().to_owned(), v.trim().to_owned()));
        }
    }
    let len: usize = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).ok()?;
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let query = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect();
    Some(Req {
        method,
        target: target.clone(),
        path: path.to_owned(),
        query,
        headers,
        body,
    })
}

pub fn respond(s: &mut TcpStream, status: &str, headers: &[(&str, String)], body: &[u8]) {
    let mut head = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (n, v) in headers {
        let _ = write!(head, "{n}: {v}\r\n");
    }
    head.push_str("\r\n");
    let _ = s.write_all(head.as_bytes());
    let _ = s.write_all(body);
}

/// Serves `handle` on a fresh loopback port, one connection at a time; the address.
pub fn serve(handle: impl Fn(Req, &mut TcpStream) + Send + 'static) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            if let Some(req) = read_req(&mut s) {
                handle(req, &mut s);
            }
        }
    });
    addr
}

/// Bearer auth of a [`Fake`]: the token server's address and what it did.
#[derive(Default)]
pub struct Tokens {
    /// `user:password` the token server accepts.
    pub basic: String,
    /// Granted token -> its scopes.
    pub granted: BTreeMap<String, BTreeSet<String>>,
    /// The scopes of each token request (sorted, space-joined).
    pub requests: Vec<String>,
    /// Repositories whose every request is refused (401) whatever the token.
    pub locked: BTreeSet<String>,
}

/// What the fake registry holds and saw.
#[derive(Default)]
pub struct State {
    /// Digest -> bytes.
    pub blobs: BTreeMap<String, Vec<u8>>,
    /// (repository, digest) the registry links.
    pub linked: BTreeSet<(String, String)>,
    /// (repository, tag or digest) -> (media type, bytes).
    pub manifests: BTreeMap<(String, String), (String, Vec<u8>)>,
    /// Upload id -> (repository, bytes so far).
    pub uploads: BTreeMap<String, (String, Vec<u8>)>,
    /// `METHOD path?query [content-range]` of every registry request.
    pub log: Vec<String>,
    pub tokens: Option<Tokens>,
    /// The token server's realm URL.
    pub realm: String,
}

impl State {
    /// Adds `bytes` as a blob of `repo`; its digest.
    pub fn put_blob(&mut self, repo: &str, bytes: &[u8]) -> String {
        let d = sha256(bytes);
        self.blobs.insert(d.clone(), bytes.to_vec());
        self.linked.insert((repo.to_owned(), d.clone()));
        d
    }
}

pub type Shared = Arc<Mutex<State>>;

/// The repository and the rest of a `/v2/<name>/<kind>/...` path.
fn split(path: &str) -> Option<(String, &str)> {
    let p = path.strip_prefix("/v2/")?;
    for kind in ["/manifests/", "/blobs/"] {
        if let Some(i) = p.find(kind) {
            return Some((p[..i].to_owned(), &p[i + 1..]));
        }
    }
    None
}

/// Whether the token of `req` grants `scope`.
fn granted(st: &State, req: &Req, scope: &str) -> bool {
    let Some(t) = &st.tokens else { return true };
    let Some(tok) = req
        .header("authorization")
        .and_then(|a| a.strip_prefix("Bearer "))
    else {
        return false;
    };
    t.granted.get(tok).is_some_and(|s| {
        s.iter().any(|g| {
            let (gr, ga) = g.rsplit_once(':').unwrap_or((g, ""));
            let (wr, wa) = scope.rsplit_once(':').unwrap_or((scope, ""));
            gr == wr && ga.split(',').any(|a| a == wa)
        })
    })
}

/// Starts a fake registry (with a token server when `tokens`); its address and state.
pub fn fake(tokens: Option<Tokens>) -> (String, Shared) {
    let state: Shared = Arc::new(Mutex::new(State {
        tokens,
        ..State::default()
    }));
    let st = Arc::clone(&state);
    let token_addr = serve(move |req, s| token_server(&st, &req, s));
    state.lock().unwrap().realm = format!("http://{token_addr}/token");
    let st = Arc::clone(&state);
    let addr = serve(move |req, s| registry(&st, req, s));
    (addr, state)
}

fn token_server(st: &Shared, req: &Req, s: &mut TcpStream) {
    let mut st = st.lock().unwrap();
    let Some(t) = st.tokens.as_mut() else {
        return respond(s, "404 Not Found", &[], b"");
    };
    let basic = base64::engine::general_purpose::STANDARD.encode(&t.basic);
    if req.path != "/token" || req.header("authorization") != Some(&format!("Basic {basic}")) {
        return respond(
            s,
            "401 Unauthorized",
            &[],
            b"{\"details\":\"bad credentials\"}",
        );
    }
    let mut scopes: Vec<String> = req
        .query
        .iter()
        .filter(|(k, _)| k == "scope")
        .flat_map(|(_, v)| v.split(' ').map(str::to_owned).collect::<Vec<_>>())
        .collect();
    scopes.sort();
    t.requests.push(scopes.join(" "));
    let token = format!("SECRET-TOKEN-{}", t.granted.len());
    t.granted
        .insert(token.clone(), scopes.into_iter().collect());
    let body = format!(r#"{{"token":"{token}","expires_in":300}}"#);
    respond(
        s,
        "200 OK",
        &[("Content-Type", "application/json".into())],
        body.as_bytes(),
    );
}

fn registry(state: &Shared, req: Req, s: &mut TcpStream) {
    let mut st = state.lock().unwrap();
    let q: Vec<String> = req.query.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let range = req
        .header("content-range")
        .map(|r| format!(" content-range={r}"))
        .unwrap_or_default();
    st.log.push(format!(
        "{} {}?{}{range}",
        req.method,
        req.path,
        q.join("&")
    ));
    let challenge = |scope: &str, st: &State| {
        vec![(
            "WWW-Authenticate",
            format!(
                r#"Bearer realm="{}",service="fake-registry",scope="{scope}""#,
                st.realm
            ),
        )]
    };
    if req.path == "/v2/" {
        if st.tokens.is_some() && req.header("authorization").is_none() {
            return respond(s, "401 Unauthorized", &challenge("", &st), b"");
        }
        return respond(s, "200 OK", &[], b"{}");
    }
    let Some((repo, rest)) = split(&req.path) else {
        return respond(s, "404 Not Found", &[], b"");
    };
    let write = !matches!(req.method.as_str(), "GET" | "HEAD");
    let scope = format!("repository:{repo}:{}", if write { "push" } else { "pull" });
    let locked = st.tokens.as_ref().is_some_and(|t| t.locked.contains(&repo));
    if locked || !granted(&st, &req, &scope) {
        let actions = if write { "pull,push" } else { "pull" };
        let c = challenge(&format!("repository:{repo}:{actions}"), &st);
        return respond(
            s,
            "401 Unauthorized",
            &c,
            br#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#,
        );
    }
    let head = req.method == "HEAD";
    if let Some(reference) = rest.strip_prefix("manifests/") {
        let key = (repo.clone(), reference.to_owned());
        if req.method == "PUT" {
            let d = sha256(&req.body);
            let ct = req.header("content-type").unwrap_or_default().to_owned();
            st.manifests.insert(key, (ct.clone(), req.body.clone()));
            st.manifests.insert((repo, d.clone()), (ct, req.body));
            return respond(s, "201 Created", &[("Docker-Content-Digest", d)], b"");
        }
        let Some((ct, body)) = st.manifests.get(&key).cloned() else {
            return respond(
                s,
                "404 Not Found",
                &[],
                br#"{"errors":[{"code":"MANIFEST_UNKNOWN"}]}"#,
            );
        };
        let h = [
            ("Content-Type", ct),
            ("Docker-Content-Digest", sha256(&body)),
        ];
        return respond(s, "200 OK", &h, if head { b"" } else { &body });
    }
    if let Some(id) = rest.strip_prefix("blobs/uploads/") {
        if req.method == "POST" {
            if let (Some(d), Some(from)) = (req.q("mount"), req.q("from")) {
                let ok = granted(&st, &req, &format!("repository:{from}:pull"))
                    && st.linked.contains(&(from.to_owned(), d.to_owned()));
                if ok {
                    st.linked.insert((repo, d.to_owned()));
                    return respond(
                        s,
                        "201 Created",
                        &[("Docker-Content-Digest", d.to_owned())],
                        b"",
                    );
                }
            }
            let id = format!("u{}", st.uploads.len());
            st.uploads.insert(id.clone(), (repo.clone(), Vec::new()));
            let loc = format!("/v2/{repo}/blobs/uploads/{id}");
            return respond(s, "202 Accepted", &[("Location", loc)], b"");
        }
        let Some((_, data)) = st.uploads.get_mut(id) else {
            return respond(s, "404 Not Found", &[], b"");
        };
        data.extend_from_slice(&req.body);
        if req.method == "PATCH" {
            let loc = format!("/v2/{repo}/blobs/uploads/{id}");
            let n = data.len();
            return respond(
                s,
                "202 Accepted",
                &[
                    ("Location", loc),
                    ("Range", format!("0-{}", n.saturating_sub(1))),
                ],
                b"",
            );
        }
        let data = data.clone();
        let want = req.q("digest").unwrap_or_default().to_owned();
        if sha256(&data) != want {
            return respond(
                s,
                "400 Bad Request",
                &[],
                br#"{"errors":[{"code":"DIGEST_INVALID"}]}"#,
            );
        }
        st.put_blob(&repo, &data);
        return respond(s, "201 Created", &[("Docker-Content-Digest", want)], b"");
    }
    if let Some(d) = rest.strip_prefix("blobs/") {
        let Some(body) = st
            .blobs
            .get(d)
            .filter(|_| st.linked.contains(&(repo.clone(), d.to_owned())))
            .cloned()
        else {
            return respond(
                s,
                "404 Not Found",
                &[],
                br#"{"errors":[{"code":"BLOB_UNKNOWN"}]}"#,
            );
        };
        let h = [("Docker-Content-Digest", d.to_owned())];
        return respond(s, "200 OK", &h, if head { b"" } else { &body });
    }
    respond(s, "404 Not Found", &[], b"");
}

/// A logging forwarder in front of the HTTP server at `upstream`: each request (one per
/// connection) is logged as `METHOD target [content-range=...]` and sent on with
/// `Connection: close`; the answer is relayed as it comes. Its address and the log.
pub fn logging_proxy(upstream: &str) -> (String, Arc<Mutex<Vec<String>>>) {
    let log = Arc::new(Mutex::new(Vec::new()));
    let (up, seen) = (upstream.to_owned(), Arc::clone(&log));
    let addr = serve(move |req, s| {
        let range = req
            .header("content-range")
            .map(|r| format!(" content-range={r}"))
            .unwrap_or_default();
        seen.lock()
            .unwrap()
            .push(format!("{} {}{range}", req.method, req.target));
        let mut head = format!("{} {} HTTP/1.1\r\n", req.method, req.target);
        for (n, v) in &req.headers {
            if !n.eq_ignore_ascii_case("connection") {
                let _ = write!(head, "{n}: {v}\r\n");
            }
        }
        head.push_str("Connection: close\r\n\r\n");
        let mut u = TcpStream::connect(&up).unwrap();
        u.write_all(head.as_bytes()).unwrap();
        u.write_all(&req.body).unwrap();
        let mut answer = Vec::new();
        let _ = u.read_to_end(&mut answer);
        let _ = s.write_all(&answer);
    });
    (addr, log)
}

/// `n` bytes that do not compress (xorshift).
pub fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()[0]
        })
        .collect()
}

/// A tar of one file `name` of `size` bytes.
pub fn tar_of(name: &str, size: usize) -> Vec<u8> {
    let mut h = [0u8; 512];
    h[..name.len()].copy_from_slice(name.as_bytes());
    h[100..107].copy_from_slice(b"0000644");
    h[108..115].copy_from_slice(b"0000000");
    h[116..123].copy_from_slice(b"0000000");
    h[124..135].copy_from_slice(format!("{size:011o}").as_bytes());
    h[136..147].copy_from_slice(b"00000000000");
    h[156] = b'0';
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|b| u32::from(*b)).sum();
    h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
    let mut out = h.to_vec();
    out.extend((0..size).map(|i| u8::try_from(i * 7 % 251).unwrap()));
    out.resize(out.len().div_ceil(512) * 512 + 1024, 0);
    out
}

/// gzip of `b`.
pub fn gzip(b: &[u8]) -> Vec<u8> {
    let mut w = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    w.write_all(b).unwrap();
    w.finish().unwrap()
}

/// A layer of an image: its (compressed or not) bytes, media type, `diff_id` and extra
/// descriptor fields (`urls`).
pub struct Layer {
    pub bytes: Vec<u8>,
    pub media_type: String,
    pub diff_id: String,
    pub extra: String,
}

impl Layer {
    /// A gzip layer of one file.
    pub fn gz(name: &str, size: usize) -> Self {
        let tar = tar_of(name, size);
        Self {
            bytes: gzip(&tar),
            media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
            diff_id: sha256(&tar),
            extra: String::new(),
        }
    }
}

impl Layer {
    /// A gzip layer of one file of `size` bytes that do not compress.
    pub fn gz_noise(name: &str, size: usize, seed: u64) -> Self {
        let mut tar = tar_of(name, size);
        tar[512..512 + size].copy_from_slice(&noise(size, seed));
        Self {
            bytes: gzip(&tar),
            media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
            diff_id: sha256(&tar),
            extra: String::new(),
        }
    }
}

/// Puts an image of `layers` into `repo:tag` (layer blobs only when `with_blob` says so);
/// the manifest's digest.
pub fn put_image(
    st: &mut State,
    repo: &str,
    tag: &str,
    layers: &[Layer],
    with_blob: impl Fn(usize) -> bool,
) -> String {
    let diff_ids: Vec<String> = layers
        .iter()
        .map(|l| format!("\"{}\"", l.diff_id))
        .collect();
    let config = format!(
        r#"{{"architecture":"{}","os":"linux","rootfs":{{"type":"layers","diff_ids":[{}]}}}}"#,
        kiln_oci::image::host_arch(),
        diff_ids.join(",")
    );
    let c = st.put_blob(repo, config.as_bytes());
    let mut descs = Vec::new();
    for (i, l) in layers.iter().enumerate() {
        let d = if with_blob(i) {
            st.put_blob(repo, &l.bytes)
        } else {
            sha256(&l.bytes)
        };
        descs.push(format!(
            r#"{{"mediaType":"{}","digest":"{d}","size":{}{}}}"#,
            l.media_type,
            l.bytes.len(),
            l.extra
        ));
    }
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{c}","size":{}}},"layers":[{}]}}"#,
        config.len(),
        descs.join(",")
    );
    let ct = "application/vnd.oci.image.manifest.v1+json".to_owned();
    let m = sha256(manifest.as_bytes());
    st.manifests.insert(
        (repo.into(), tag.into()),
        (ct.clone(), manifest.clone().into_bytes()),
    );
    st.manifests
        .insert((repo.into(), m.clone()), (ct, manifest.into_bytes()));
    m
}
