//! HTTP(S) downloads for kiln (`ADD <url>` today, the registry client next): GET with
//! redirects and timeouts on a maintained client (ureq, over rustls with ring), trusting the
//! system's CA bundle, through the proxies the caller names (`HTTP_PROXY`, `HTTPS_PROXY`,
//! `ALL_PROXY` and `NO_PROXY`, as Docker reads them).
//!
//! The crate deliberately knows nothing of Dockerfiles, layers or images, and reads no
//! environment variable itself: the binary reads the proxy and CA settings and hands them
//! over ([`Proxies::from_vars`] takes a lookup function for that).

#![forbid(unsafe_code)]

use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Why a download failed.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// Not an `http://` or `https://` URL.
    #[error("unsupported url: {0}")]
    Unsupported(String),
    /// The server answered with a status other than 2xx (after redirects).
    #[error("bad status `{status}`")]
    Status {
        /// The status code.
        status: u16,
    },
    /// The CA bundle could not be read or holds no certificate.
    #[error("cannot read the CA certificates in `{path}`")]
    Roots {
        /// The bundle.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A proxy setting is not a URL.
    #[error("invalid proxy `{proxy}`")]
    Proxy {
        /// The setting.
        proxy: String,
        /// Why.
        #[source]
        source: Box<ureq::Error>,
    },
    /// Connecting, TLS, the request or the response failed.
    #[error("transfer failed")]
    Transfer(#[source] Box<ureq::Error>),
    /// Writing the body out failed.
    #[error("cannot write the download")]
    Write(#[source] io::Error),
}

/// Proxies, as Docker and BuildKit read them from the environment: `HTTP_PROXY` for
/// `http://`, `HTTPS_PROXY` for `https://`, `ALL_PROXY` for both when the other is not set,
/// lowercase names too (they win, as in Go's `httpproxy`), and `NO_PROXY`: hosts reached
/// directly.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Proxies {
    /// The proxy for `http://` URLs.
    pub http: Option<String>,
    /// The proxy for `https://` URLs.
    pub https: Option<String>,
    /// `NO_PROXY` entries: `*`, a host or IP, a domain (`example.com` or `.example.com`:
    /// itself and every name below it), each optionally with `:port`.
    pub no_proxy: Vec<String>,
}

impl Proxies {
    /// The settings from variables looked up with `var` (the binary passes the process
    /// environment).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Self {
        let get = |name: &str| {
            var(&name.to_ascii_lowercase())
                .or_else(|| var(name))
                .filter(|v| !v.is_empty())
        };
        let all = get("ALL_PROXY");
        Self {
            http: get("HTTP_PROXY").or_else(|| all.clone()),
            https: get("HTTPS_PROXY").or(all),
            no_proxy: get("NO_PROXY")
                .map(|v| {
                    v.split(',')
                        .map(str::trim)
                        .filter(|e| !e.is_empty())
                        .map(str::to_ascii_lowercase)
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    /// Whether `host` (`port`) is reached without a proxy.
    pub fn bypasses(&self, host: &str, port: u16) -> bool {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let host = host.to_ascii_lowercase();
        self.no_proxy.iter().any(|entry| {
            if entry == "*" {
                return true;
            }
            let (name, entry_port) = match entry.rsplit_once(':') {
                Some((n, p)) if !n.contains(':') || n.ends_with(']') => (n, p.parse::<u16>().ok()),
                _ => (entry.as_str(), None),
            };
            if entry_port.is_some_and(|p| p != port) {
                return false;
            }
            let name = name.trim_start_matches('[').trim_end_matches(']');
            let domain = name.trim_start_matches("*.").trim_start_matches('.');
            host == domain || host.ends_with(&format!(".{domain}"))
        })
    }
}

/// How a [`Client`] connects.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Connect and per-read timeout; the default is 30 s.
    pub timeout: Duration,
    /// The PEM bundle of CA certificates for `https://`; the default is the system's,
    /// `/etc/ssl/certs/ca-certificates.crt` (the binary passes `SSL_CERT_FILE` when set).
    pub ca_file: PathBuf,
    /// The proxies; the default is none.
    pub proxies: Proxies,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(30),
            ca_file: PathBuf::from("/etc/ssl/certs/ca-certificates.crt"),
            proxies: Proxies::default(),
        }
    }
}

/// What a download said about itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Response {
    /// The `Last-Modified` header, as sent.
    pub last_modified: Option<String>,
}

/// An HTTP(S) client: one agent per route (direct, through the `http://` proxy, through the
/// `https://` proxy), each keeping its connections. The agents, and the CA bundle they trust,
/// are made on the first download: a build that downloads nothing reads no certificate.
pub struct Client {
    opts: ClientOptions,
    agents: std::sync::OnceLock<Agents>,
}

/// The agents of a [`Client`], and why the CA bundle could not be read, if it could not.
struct Agents {
    direct: ureq::Agent,
    http_proxy: Option<ureq::Agent>,
    https_proxy: Option<ureq::Agent>,
    roots_failed: Option<String>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("proxies", &self.opts.proxies)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client with `opts`; a proxy setting that is not a URL is an error now, not at the
    /// first download.
    pub fn new(opts: &ClientOptions) -> Result<Self, HttpError> {
        for p in [&opts.proxies.http, &opts.proxies.https]
            .into_iter()
            .flatten()
        {
            proxy(p)?;
        }
        Ok(Self {
            opts: opts.clone(),
            agents: std::sync::OnceLock::new(),
        })
    }

    fn agents(&self) -> &Agents {
        self.agents.get_or_init(|| {
            let roots = read_roots(&self.opts.ca_file);
            let agent = |p: Option<&str>| {
                let tls = ureq::tls::TlsConfig::builder()
                    .provider(ureq::tls::TlsProvider::Rustls)
                    .root_certs(ureq::tls::RootCerts::new_with_certs(
                        roots.as_deref().unwrap_or_default(),
                    ))
                    .unversioned_rustls_crypto_provider(Arc::new(
                        rustls::crypto::ring::default_provider(),
                    ))
                    .build();
                ureq::Agent::config_builder()
                    .tls_config(tls)
                    // Checked in `new`.
                    .proxy(p.and_then(|p| proxy(p).ok()))
                    .max_redirects(10)
                    .user_agent("kiln")
                    .accept_encoding("identity")
                    .timeout_connect(Some(self.opts.timeout))
                    .timeout_per_read(Some(self.opts.timeout))
                    .build()
                    .new_agent()
            };
            let proxies = &self.opts.proxies;
            Agents {
                direct: agent(None),
                http_proxy: proxies.http.as_deref().map(|p| agent(Some(p))),
                https_proxy: proxies.https.as_deref().map(|p| agent(Some(p))),
                roots_failed: roots.err().map(|e| {
                    std::error::Error::source(&e).map_or_else(|| e.to_string(), ToString::to_string)
                }),
            }
        })
    }

    /// Downloads `url` into `out`.
    pub fn get(&self, url: &str, out: &mut dyn Write) -> Result<Response, HttpError> {
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
        let agents = self.agents();
        if https && let Some(why) = &agents.roots_failed {
            return Err(HttpError::Roots {
                path: self.opts.ca_file.clone(),
                source: io::Error::other(why.clone()),
            });
        }
        let proxied = if https {
            agents.https_proxy.as_ref()
        } else {
            agents.http_proxy.as_ref()
        };
        let agent = match proxied {
            Some(a) if !self.opts.proxies.bypasses(host, port) => a,
            _ => &agents.direct,
        };
        let mut response = agent.get(url).call().map_err(|e| match e {
            ureq::Error::StatusCode(status) => HttpError::Status { status },
            e => HttpError::Transfer(Box::new(e)),
        })?;
        let last_modified = response
            .headers()
            .get("last-modified")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let mut body = response.body_mut().as_reader();
        io::copy(&mut body, out).map_err(|e| {
            // A failed read of the body is the transfer's; ureq reports it as an io error.
            if e.kind() == io::ErrorKind::Other || e.kind() == io::ErrorKind::UnexpectedEof {
                HttpError::Transfer(Box::new(ureq::Error::Io(e)))
            } else {
                HttpError::Write(e)
            }
        })?;
        Ok(Response { last_modified })
    }
}

/// A proxy setting as ureq takes it.
fn proxy(p: &str) -> Result<ureq::Proxy, HttpError> {
    ureq::Proxy::new(p).map_err(|source| HttpError::Proxy {
        proxy: p.to_owned(),
        source: Box::new(source),
    })
}

/// The certificates of a PEM bundle.
fn read_roots(path: &std::path::Path) -> Result<Vec<ureq::tls::Certificate<'static>>, HttpError> {
    let roots_err = |source| HttpError::Roots {
        path: path.to_owned(),
        source,
    };
    let pem = std::fs::read(path).map_err(roots_err)?;
    let certs: Vec<_> = ureq::tls::parse_pem(&pem)
        .filter_map(|item| match item {
            Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
            _ => None,
        })
        .collect();
    if certs.is_empty() {
        return Err(roots_err(io::Error::other("no certificate in the bundle")));
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Proxies {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Proxies::from_vars(|k| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()))
    }

    #[test]
    fn proxies_are_read_as_docker_reads_them() {
        let p = vars(&[
            ("HTTP_PROXY", "http://upper:1"),
            ("http_proxy", "http://lower:1"),
            ("ALL_PROXY", "http://all:3"),
            ("NO_PROXY", "localhost, .internal.example,10.1.2.3,reg:5000"),
        ]);
        assert_eq!(p.http.as_deref(), Some("http://lower:1"), "lowercase wins");
        assert_eq!(
            p.https.as_deref(),
            Some("http://all:3"),
            "ALL_PROXY fills in"
        );
        assert!(p.bypasses("localhost", 80));
        assert!(p.bypasses("a.internal.example", 443));
        assert!(p.bypasses("internal.example", 443));
        assert!(!p.bypasses("example", 443));
        assert!(p.bypasses("10.1.2.3", 80));
        assert!(p.bypasses("reg", 5000));
        assert!(
            !p.bypasses("reg", 443),
            "a port entry only matches its port"
        );
        assert!(vars(&[("no_proxy", "*")]).bypasses("anything", 1));
        assert_eq!(vars(&[("HTTPS_PROXY", "")]).https, None, "empty is unset");
    }
}
