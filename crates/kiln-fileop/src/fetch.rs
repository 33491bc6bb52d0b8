//! ADD of `http(s)://` URLs: the [`Fetcher`] trait, a small HTTP/1.1 fetcher (TLS through
//! rustls with the ring provider), and the BuildKit rules for the downloaded file (name, mode
//! `0600`, `Last-Modified`, `--checksum`).
//!
//! `https://` trusts the certificates in the file `SSL_CERT_FILE` names when it is set (as
//! OpenSSL and Go do), else the system bundle `/etc/ssl/certs/ca-certificates.crt`.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use sha2::{Digest as _, Sha256};

use crate::error::FileOpError;
use crate::gopath;
use crate::op::OpKind;
use crate::plan::{Data, Node, Planner, file_stat};

/// What a download says about itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FetchMeta {
    /// `Last-Modified`, in seconds since the epoch, when the server sent one.
    pub last_modified: Option<i64>,
}

/// Why a download failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The URL cannot be handled by this fetcher.
    #[error("unsupported url: {0}")]
    Unsupported(String),
    /// The server answered with a status other than 2xx.
    #[error("bad status `{status}`")]
    Status {
        /// The status line's code.
        status: u16,
    },
    /// The connection or the response failed.
    #[error("transfer failed")]
    Io(#[from] io::Error),
}

/// Downloads a URL into `out`. kiln-build supplies one with TLS; tests use a loopback server
/// or a fake.
pub trait Fetcher {
    /// Writes the body of `url` to `out`.
    fn fetch(&self, url: &str, out: &mut dyn Write) -> Result<FetchMeta, FetchError>;
}

/// An `http://` and `https://` fetcher on `std::net` and rustls: GET, `Content-Length` or
/// chunked or read-to-close bodies, up to 10 redirects.
#[derive(Debug, Clone)]
pub struct HttpFetcher {
    /// Connect and read timeout; the default is 30 s.
    pub timeout: Duration,
    /// The PEM bundle of CA certificates for `https://`; the default, `None`, is the file
    /// `SSL_CERT_FILE` names, else `/etc/ssl/certs/ca-certificates.crt`.
    pub ca_file: Option<std::path::PathBuf>,
}

impl Default for HttpFetcher {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(30),
            ca_file: None,
        }
    }
}

impl Fetcher for HttpFetcher {
    fn fetch(&self, url: &str, out: &mut dyn Write) -> Result<FetchMeta, FetchError> {
        let mut url = url.to_owned();
        for _ in 0..10 {
            let (tls, rest) = if let Some(r) = url.strip_prefix("https://") {
                (true, r)
            } else if let Some(r) = url.strip_prefix("http://") {
                (false, r)
            } else {
                return Err(FetchError::Unsupported(url.clone()));
            };
            let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            let path = if path.is_empty() { "/" } else { path };
            let addr = if host.contains(':') {
                host.to_owned()
            } else {
                format!("{host}:{}", if tls { 443 } else { 80 })
            };
            let tcp = TcpStream::connect(&addr)?;
            tcp.set_read_timeout(Some(self.timeout))?;
            tcp.set_write_timeout(Some(self.timeout))?;
            let mut stream = if tls {
                let name = host.rsplit_once(':').map_or(host, |(h, _)| h);
                Conn::Tls(Box::new(tls_stream(name, tcp, self.ca_file.as_deref())?))
            } else {
                Conn::Plain(tcp)
            };
            let request = format!(
                "GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: kiln\r\nAccept-Encoding: identity\r\nConnection: close\r\n\r\n"
            );
            stream.write_all(request.as_bytes())?;
            stream.flush()?;
            let mut r = BufReader::new(stream);
            let mut line = String::new();
            r.read_line(&mut line)?;
            let status: u16 = line
                .split_whitespace()
                .nth(1)
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| io::Error::other("malformed status line"))?;
            let mut headers = Vec::new();
            loop {
                line.clear();
                r.read_line(&mut line)?;
                let l = line.trim_end();
                if l.is_empty() {
                    break;
                }
                if let Some((k, v)) = l.split_once(':') {
                    headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
                }
            }
            let header = |name: &str| headers.iter().find(|(k, _)| k == name).map(|(_, v)| v);
            if (300..400).contains(&status)
                && let Some(loc) = header("location")
            {
                url = if loc.starts_with("http") {
                    loc.clone()
                } else {
                    format!("{}://{host}{loc}", if tls { "https" } else { "http" })
                };
                continue;
            }
            if !(200..300).contains(&status) {
                return Err(FetchError::Status { status });
            }
            let meta = FetchMeta {
                last_modified: header("last-modified").and_then(|v| parse_http_date(v)),
            };
            if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
                copy_chunked(&mut r, out)?;
            } else if let Some(len) = header("content-length").and_then(|v| v.parse().ok()) {
                let n = io::copy(&mut (&mut r).take(len), out)?;
                if n != len {
                    return Err(io::Error::from(io::ErrorKind::UnexpectedEof).into());
                }
            } else {
                io::copy(&mut r, out)?;
            }
            return Ok(meta);
        }
        Err(io::Error::other("too many redirects").into())
    }
}

/// A connection: plain TCP or TLS over it.
enum Conn {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Self::Plain(s) => s.read(buf),
            // Many servers close a `Connection: close` response without TLS's close_notify;
            // the body's own framing (or the end of a read-to-close body) decides.
            Self::Tls(s) => match s.read(buf) {
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(0),
                other => other,
            },
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Self::Plain(s) => s.write(buf),
            Self::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Self::Plain(s) => s.flush(),
            Self::Tls(s) => s.flush(),
        }
    }
}

/// A TLS client stream to `host` over `tcp`, trusting `ca_file`, else `SSL_CERT_FILE`, else
/// the system bundle.
fn tls_stream(
    host: &str,
    tcp: TcpStream,
    ca_file: Option<&std::path::Path>,
) -> io::Result<rustls::StreamOwned<rustls::ClientConnection, TcpStream>> {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, ServerName};
    let bundle = ca_file.map_or_else(
        // OpenSSL's own variable, honoured as every TLS client here does; it goes with the
        // hand-written HTTP client, which the seams issue replaces with a maintained one.
        #[allow(clippy::disallowed_methods)]
        || {
            std::env::var_os("SSL_CERT_FILE").map_or_else(
                || "/etc/ssl/certs/ca-certificates.crt".into(),
                std::path::PathBuf::from,
            )
        },
        std::path::Path::to_path_buf,
    );
    let mut roots = rustls::RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(&bundle).map_err(|e| {
        io::Error::other(format!(
            "cannot read CA certificates from `{}`: {e}",
            bundle.display()
        ))
    })?;
    for cert in certs.flatten() {
        // Certificates the verifier cannot use are skipped, as system bundles have some.
        let _ = roots.add(cert);
    }
    if roots.is_empty() {
        return Err(io::Error::other(format!(
            "no usable CA certificate in `{}` (set SSL_CERT_FILE to a PEM bundle)",
            bundle.display()
        )));
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(io::Error::other)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = ServerName::try_from(host.to_owned())
        .map_err(|e| io::Error::other(format!("invalid TLS server name `{host}`: {e}")))?;
    let conn = rustls::ClientConnection::new(std::sync::Arc::new(config), name)
        .map_err(io::Error::other)?;
    Ok(rustls::StreamOwned::new(conn, tcp))
}

fn copy_chunked(r: &mut impl BufRead, out: &mut dyn Write) -> io::Result<()> {
    let mut line = String::new();
    loop {
        line.clear();
        r.read_line(&mut line)?;
        let size_text = line.trim().split(';').next().unwrap_or("");
        let size = u64::from_str_radix(size_text, 16)
            .map_err(|_| io::Error::other("malformed chunk size"))?;
        if size == 0 {
            return Ok(());
        }
        let n = io::copy(&mut r.take(size), out)?;
        if n != size {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        line.clear();
        r.read_line(&mut line)?;
    }
}

/// Parses an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), the form HTTP/1.1 servers send.
pub(crate) fn parse_http_date(s: &str) -> Option<i64> {
    let parts: Vec<&str> = s.split_whitespace().collect();
    let [_, day, month, year, time, "GMT"] = parts.as_slice() else {
        return None;
    };
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|m| m == month)?;
    let month = i64::try_from(month).ok()? + 1;
    let (day, year): (i64, i64) = (day.parse().ok()?, year.parse().ok()?);
    let hms: Vec<i64> = time
        .split(':')
        .map(|x| x.parse().ok())
        .collect::<Option<_>>()?;
    let [h, m, sec] = hms.as_slice() else {
        return None;
    };
    // RFC 9110's ranges; a server's nonsense is no date (and no overflow below).
    let in_range = (1..=31).contains(&day)
        && (0..=9999).contains(&year)
        && (0..24).contains(h)
        && (0..60).contains(m)
        && (0..=60).contains(sec);
    if !in_range {
        return None;
    }
    // Days from civil (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + m * 60 + sec)
}

/// The file name BuildKit gives a download: the URL path's last element, or `__unnamed__`.
pub(crate) fn url_file_name(url: &str) -> String {
    let after_scheme = url.split_once("://").map_or(url, |(_, r)| r);
    let path = after_scheme.find('/').map_or("", |i| &after_scheme[i..]);
    let path = path.split(['?', '#']).next().unwrap_or("");
    let base = gopath::base(path);
    if base == "." || base == "/" {
        "__unnamed__".to_owned()
    } else {
        base
    }
}

/// A writer that hashes what it writes to a file.
struct HashingFile {
    file: File,
    sha: Sha256,
    len: u64,
}

impl Write for HashingFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.sha.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl Planner<'_> {
    /// ADD of a URL: download to scratch, check `--checksum`, then copy it as a lone file of
    /// mode `0600` (or extract it under `--unpack=true`).
    pub(crate) fn url_source(&mut self, url: &str) -> Result<(), FileOpError> {
        let (unpack, checksum) = match &self.op.kind {
            OpKind::Add { unpack, checksum } => (*unpack == Some(true), checksum.clone()),
            OpKind::Copy => (false, None),
        };
        let expected = checksum
            .map(|c| {
                c.parse::<kiln_layer::Digest>()
                    .map_err(|_| FileOpError::BadChecksum { value: c.clone() })
            })
            .transpose()?;
        let fetcher = self.inputs.fetcher.ok_or_else(|| FileOpError::NoFetcher {
            url: url.to_owned(),
        })?;
        let dir = self.scratch_dir()?;
        let path = dir.join(format!("download-{}", self.leaves.len()));
        let file = File::create(&path).map_err(|source| FileOpError::Scratch {
            path: path.clone(),
            source,
        })?;
        let mut out = HashingFile {
            file,
            sha: Sha256::new(),
            len: 0,
        };
        let meta = fetcher
            .fetch(url, &mut out)
            .map_err(|source| FileOpError::Fetch {
                url: url.to_owned(),
                source,
            })?;
        let actual = kiln_layer::Digest::from_sha256(&out.sha.finalize().into());
        if let Some(expected) = expected
            && expected != actual
        {
            return Err(FileOpError::ChecksumMismatch {
                url: url.to_owned(),
                expected: expected.to_string(),
                actual: actual.to_string(),
            });
        }
        let name = url_file_name(url);
        if unpack && self.try_unpack_file(&path, url)? {
            return Ok(());
        }
        let mtime = meta.last_modified.unwrap_or(self.op.created_mtime);
        let node = Node::Single {
            stat: file_stat(0o600, out.len, mtime),
            data: Data::Scratch(path),
            leaf_path: url.to_owned(),
        };
        self.copy_one(node, &name, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_dates_parse() {
        assert_eq!(
            parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(784_111_777)
        );
        assert_eq!(parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(parse_http_date("yesterday"), None);
        assert_eq!(
            parse_http_date("Sun, 06 Nov 99999999999999999 08:49:37 GMT"),
            None
        );
        assert_eq!(
            parse_http_date("Sun, 06 Nov 1994 9223372036854775807:49:37 GMT"),
            None
        );
    }

    #[test]
    fn download_names_follow_buildkit() {
        assert_eq!(url_file_name("http://h/a/b.tar.gz"), "b.tar.gz");
        assert_eq!(url_file_name("http://h/a/b/?x=1"), "b");
        assert_eq!(url_file_name("http://h"), "__unnamed__");
        assert_eq!(url_file_name("http://h/"), "__unnamed__");
    }
}
