//! One request and its response.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::PathBuf;

use crate::HttpError;

/// The methods kiln sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `GET`.
    Get,
    /// `HEAD`.
    Head,
    /// `PUT`.
    Put,
    /// `POST`.
    Post,
    /// `PATCH`.
    Patch,
    /// `DELETE`.
    Delete,
}

impl Method {
    /// The method's name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Head => "HEAD",
            Self::Put => "PUT",
            Self::Post => "POST",
            Self::Patch => "PATCH",
            Self::Delete => "DELETE",
        }
    }

    /// Whether sending it twice does what sending it once does (RFC 9110): a request cut
    /// short may then be sent again.
    pub fn is_idempotent(self) -> bool {
        !matches!(self, Self::Post | Self::Patch)
    }
}

/// A request body of known length that can be read again from its start, so that a retried
/// request sends it whole.
pub trait RequestBody: Sync {
    /// Its length in bytes (sent as `Content-Length`).
    fn len(&self) -> u64;
    /// Whether it is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// A reader of it, from its start.
    fn open(&self) -> io::Result<Box<dyn Read + Send + '_>>;
}

impl RequestBody for &[u8] {
    fn len(&self) -> u64 {
        <[u8]>::len(self) as u64
    }
    fn open(&self) -> io::Result<Box<dyn Read + Send + '_>> {
        Ok(Box::new(*self))
    }
}

impl RequestBody for Vec<u8> {
    fn len(&self) -> u64 {
        self.as_slice().len() as u64
    }
    fn open(&self) -> io::Result<Box<dyn Read + Send + '_>> {
        Ok(Box::new(self.as_slice()))
    }
}

/// `len` bytes of a file from `offset`: a blob, or a chunk of one.
#[derive(Debug, Clone)]
pub struct FileRange {
    /// The file.
    pub path: PathBuf,
    /// Where the body starts.
    pub offset: u64,
    /// How many bytes it has.
    pub len: u64,
}

impl RequestBody for FileRange {
    fn len(&self) -> u64 {
        self.len
    }
    fn open(&self) -> io::Result<Box<dyn Read + Send + '_>> {
        let mut f = File::open(&self.path)?;
        f.seek(SeekFrom::Start(self.offset))?;
        Ok(Box::new(io::BufReader::with_capacity(
            1 << 20,
            f.take(self.len),
        )))
    }
}

/// A request: method, URL, headers and an optional body.
///
/// Its `Debug` output names header names, not values: an `Authorization` header is a secret.
pub struct Request<'a> {
    /// The method.
    pub method: Method,
    /// The `http://` or `https://` URL.
    pub url: &'a str,
    /// Extra headers, in order (`Accept`, `Authorization`, `Range`, `Content-Type` ...).
    pub headers: Vec<(String, String)>,
    /// The body, when the request has one.
    pub body: Option<&'a dyn RequestBody>,
}

impl std::fmt::Debug for Request<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request")
            .field("method", &self.method)
            .field("url", &self.url)
            .field(
                "headers",
                &self.headers.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .field("body", &self.body.map(RequestBody::len))
            .finish()
    }
}

impl<'a> Request<'a> {
    /// A request without headers or body.
    pub fn new(method: Method, url: &'a str) -> Self {
        Self {
            method,
            url,
            headers: Vec::new(),
            body: None,
        }
    }

    /// Adds a header.
    #[must_use]
    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_owned(), value.into()));
        self
    }

    /// Sets the body.
    #[must_use]
    pub fn body(mut self, body: &'a dyn RequestBody) -> Self {
        self.body = Some(body);
        self
    }
}

/// A response: status, headers, and the body, read as a stream.
pub struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: ureq::Body,
}

impl std::fmt::Debug for Response {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Response")
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

impl Response {
    /// The status code.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The first value of the header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of the header `name` (case-insensitive), in order.
    pub fn headers_all<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'s str> + 's {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as a stream; a failed read is an `io::Error` of the connection.
    pub fn into_reader(self) -> impl Read + Send + 'static {
        self.body.into_reader()
    }

    /// The whole body, refused when longer than `limit` bytes.
    pub fn read_to_vec(mut self, limit: u64) -> Result<Vec<u8>, HttpError> {
        self.body
            .with_config()
            .limit(limit)
            .read_to_vec()
            .map_err(|e| HttpError::Transfer(Box::new(e)))
    }
}

/// The parts of a URL the client routes by.
pub(crate) struct Target {
    pub https: bool,
    /// `host` or `host:port`, as in the URL.
    pub authority: String,
    pub host: String,
    pub port: u16,
}

impl Target {
    pub(crate) fn parse(url: &str) -> Result<Self, HttpError> {
        let (https, rest) = if let Some(r) = url.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = url.strip_prefix("http://") {
            (false, r)
        } else {
            return Err(HttpError::Unsupported(url.to_owned()));
        };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !p.contains(']') => (h, p.parse().unwrap_or(0)),
            _ => (authority, if https { 443 } else { 80 }),
        };
        Ok(Self {
            https,
            authority: authority.to_owned(),
            host: host.to_owned(),
            port,
        })
    }
}

/// One attempt of `req` on `agent`.
pub(crate) fn send_once(agent: &ureq::Agent, req: &Request<'_>) -> Result<Response, HttpError> {
    let transfer = |e| HttpError::Transfer(Box::new(e));
    let mut builder = ureq::http::Request::builder()
        .method(req.method.as_str())
        .uri(req.url);
    for (n, v) in &req.headers {
        builder = builder.header(n.as_str(), v.as_str());
    }
    let response = if let Some(body) = req.body {
        builder = builder.header("content-length", body.len().to_string());
        let mut reader = body.open().map_err(HttpError::Body)?;
        let request = builder
            .body(ureq::SendBody::from_reader(&mut reader))
            .map_err(|e| transfer(ureq::Error::Http(e)))?;
        agent.run(request)
    } else {
        let request = builder
            .body(())
            .map_err(|e| transfer(ureq::Error::Http(e)))?;
        agent.run(request)
    }
    .map_err(transfer)?;
    let (parts, body) = response.into_parts();
    let headers = parts
        .headers
        .iter()
        .filter_map(|(n, v)| Some((n.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect();
    Ok(Response {
        status: parts.status.as_u16(),
        headers,
        body,
    })
}
