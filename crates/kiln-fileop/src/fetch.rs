//! ADD of `http(s)://` URLs: the [`Fetcher`] trait, implemented by kiln's HTTP(S) client
//! ([`kiln_http::Client`]: proxies, the system's CA roots), and the BuildKit rules for the
//! downloaded file (name, mode `0600`, `Last-Modified`, `--checksum`).

use std::fs::File;
use std::io::{self, Write};

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
    /// The HTTP(S) client failed.
    #[error(transparent)]
    Http(#[from] kiln_http::HttpError),
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

/// Downloads through kiln's HTTP(S) client ([`kiln_http::Client`]: redirects, timeouts, the
/// system's CA roots and the proxies the caller configured).
impl Fetcher for kiln_http::Client {
    fn fetch(&self, url: &str, out: &mut dyn Write) -> Result<FetchMeta, FetchError> {
        let response = self.get(url, out)?;
        Ok(FetchMeta {
            last_modified: response.last_modified.as_deref().and_then(parse_http_date),
        })
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
