//! kiln's one HTTP(S) transport, for `ADD <url>` and the registry client: requests of any
//! method with headers, bodies streamed from a source of known length (re-opened on each
//! retry), streamed responses, `Range` requests; per-host TLS (extra CA roots, a client
//! certificate, no verification for `insecure` hosts); the proxies the caller names
//! (`HTTP_PROXY`, `HTTPS_PROXY`, `ALL_PROXY`, `NO_PROXY`, as Docker reads them); retries with
//! exponential backoff on connection errors, 5xx and 429 (honouring `Retry-After`), bounded.
//! It runs on a maintained client (ureq, over rustls with ring) and trusts the system's CA
//! bundle.
//!
//! The crate deliberately knows nothing of Dockerfiles, layers, images or registries (auth,
//! tokens and what a status means are its callers'), and reads no environment variable
//! itself: the binary reads the proxy and CA settings and hands them over
//! ([`Proxies::from_vars`] takes a lookup function for that). Header values never appear in
//! its errors or `Debug` output, so credentials a caller sends stay out of logs.

#![forbid(unsafe_code)]

mod proxies;
mod request;
mod retry;
mod tls;

use std::collections::HashMap;
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use proxies::Proxies;
pub use request::{FileRange, Method, Request, RequestBody, Response};
pub use retry::RetryPolicy;
pub use tls::{ClientCertFiles, HostTls};

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// Not an `http://` or `https://` URL.
    #[error("unsupported url: {0}")]
    Unsupported(String),
    /// The server answered with a status other than 2xx (after redirects and retries).
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
    /// A host's TLS material (extra CA, client certificate or key) cannot be used.
    #[error("cannot use the TLS file `{path}` for `{host}`")]
    Tls {
        /// The host it is for.
        host: String,
        /// The file.
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
    /// The response body was cut short (the connection failed while reading it).
    #[error("the response was cut short")]
    CutShort(#[source] io::Error),
    /// Reading the request body from its source failed.
    #[error("cannot read the request body")]
    Body(#[source] io::Error),
    /// Writing the body out failed.
    #[error("cannot write the download")]
    Write(#[source] io::Error),
}

impl HttpError {
    /// Whether this is a failure of the connection (refused, reset, timed out, cut short):
    /// worth trying again later, unlike a bad certificate or URL.
    pub fn is_connection(&self) -> bool {
        match self {
            Self::Transfer(e) => retry::is_transient(e),
            Self::CutShort(_) => true,
            _ => false,
        }
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
    /// Retries of failed requests; see [`RetryPolicy`].
    pub retry: RetryPolicy,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(30),
            ca_file: PathBuf::from("/etc/ssl/certs/ca-certificates.crt"),
            proxies: Proxies::default(),
            retry: RetryPolicy::default(),
        }
    }
}

/// What a download said about itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Downloaded {
    /// The `Last-Modified` header, as sent.
    pub last_modified: Option<String>,
}

/// Which proxy route a request takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Route {
    Direct,
    HttpProxy,
    HttpsProxy,
}

/// An HTTP(S) client: one agent per route (direct, through the `http://` proxy, through the
/// `https://` proxy) and TLS profile (the default, or a host's [`HostTls`]), each keeping
/// its connections. The agents, and the CA bundle they trust, are made on first use: a
/// build that downloads nothing reads no certificate. Cheap to share between threads.
pub struct Client {
    opts: ClientOptions,
    roots: std::sync::OnceLock<Result<Vec<ureq::tls::Certificate<'static>>, String>>,
    hosts: Mutex<HashMap<String, Arc<HostTls>>>,
    agents: Mutex<HashMap<(Option<String>, Route), ureq::Agent>>,
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
            roots: std::sync::OnceLock::new(),
            hosts: Mutex::new(HashMap::new()),
            agents: Mutex::new(HashMap::new()),
        })
    }

    /// The options this client was made with.
    pub fn options(&self) -> &ClientOptions {
        &self.opts
    }

    /// Sets how `host` (`name` or `name:port`, as in the URL) is reached over TLS, replacing
    /// what was set before; requests to other hosts are not affected. A host without one
    /// trusts the system's roots only.
    pub fn set_host_tls(&self, host: &str, tls: HostTls) {
        let host = host.to_ascii_lowercase();
        let mut hosts = self
            .hosts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        hosts.insert(host.clone(), Arc::new(tls));
        self.agents
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .retain(|(h, _), _| h.as_deref() != Some(host.as_str()));
    }

    /// The TLS settings of `host`, when [`Client::set_host_tls`] gave it some.
    pub fn host_tls(&self, host: &str) -> Option<Arc<HostTls>> {
        self.hosts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&host.to_ascii_lowercase())
            .cloned()
    }

    fn system_roots(&self) -> Result<&[ureq::tls::Certificate<'static>], HttpError> {
        let roots = self.roots.get_or_init(|| {
            tls::read_roots(&self.opts.ca_file).map_err(|e| {
                std::error::Error::source(&e).map_or_else(|| e.to_string(), ToString::to_string)
            })
        });
        roots.as_deref().map_err(|why| HttpError::Roots {
            path: self.opts.ca_file.clone(),
            source: io::Error::other(why.clone()),
        })
    }

    /// The agent for `url`'s host and route.
    fn agent(&self, url: &request::Target) -> Result<ureq::Agent, HttpError> {
        let settings = &self.opts.proxies;
        let proxied = if url.https {
            settings.https.as_deref().map(|p| (Route::HttpsProxy, p))
        } else {
            settings.http.as_deref().map(|p| (Route::HttpProxy, p))
        };
        let (route, proxy_url) = match proxied {
            Some((r, p)) if !settings.bypasses(&url.host, url.port) => (r, Some(p)),
            _ => (Route::Direct, None),
        };
        let host_tls = if url.https {
            self.host_tls(&url.authority)
                .or_else(|| self.host_tls(&url.host))
        } else {
            None
        };
        let key = (
            host_tls
                .as_ref()
                .map(|_| url.authority.to_ascii_lowercase()),
            route,
        );
        let mut agents = self
            .agents
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(a) = agents.get(&key) {
            return Ok(a.clone());
        }
        let mut builder = ureq::tls::TlsConfig::builder()
            .provider(ureq::tls::TlsProvider::Rustls)
            .unversioned_rustls_crypto_provider(Arc::new(rustls::crypto::ring::default_provider()));
        // Plain-HTTP agents never look at the roots; an https one needs them (or `insecure`).
        if url.https {
            let mut roots = match (self.system_roots(), &host_tls) {
                (Ok(r), _) => r.to_vec(),
                // A host with its own CA can still be reached when the system has none.
                (Err(_), Some(t)) if !t.ca_files.is_empty() || t.insecure => Vec::new(),
                (Err(e), _) => return Err(e),
            };
            if let Some(t) = &host_tls {
                roots.extend(t.read_cas(&url.authority)?);
                builder = builder
                    .client_cert(t.read_client_cert(&url.authority)?)
                    .disable_verification(t.insecure);
            }
            builder = builder.root_certs(ureq::tls::RootCerts::new_with_certs(&roots));
        }
        let agent = ureq::Agent::config_builder()
            .tls_config(builder.build())
            // Checked in `new`.
            .proxy(proxy_url.and_then(|p| proxy(p).ok()))
            .max_redirects(10)
            .http_status_as_error(false)
            .user_agent("kiln")
            .accept_encoding("identity")
            .timeout_connect(Some(self.opts.timeout))
            .timeout_per_read(Some(self.opts.timeout))
            .timeout_per_write(Some(self.opts.timeout))
            .max_idle_connections_per_host(16)
            .build()
            .new_agent();
        agents.insert(key, agent.clone());
        Ok(agent)
    }

    /// Sends `req`, retrying as the [`RetryPolicy`] says, and returns the response of the
    /// last attempt whatever its status: what a status means is the caller's to say. A
    /// request body is opened anew for each attempt.
    pub fn send(&self, req: &Request<'_>) -> Result<Response, HttpError> {
        let target = request::Target::parse(req.url)?;
        let policy = &self.opts.retry;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let last = attempt >= policy.attempts.max(1);
            let agent = self.agent(&target)?;
            match request::send_once(&agent, req) {
                Ok(resp) => {
                    let status = resp.status();
                    if last || !(status == 429 || (500..600).contains(&status)) {
                        return Ok(resp);
                    }
                    let wait = policy.delay(attempt, resp.header("retry-after"));
                    drop(resp);
                    (policy.sleep)(wait);
                }
                Err(e) => {
                    let retry = match &e {
                        HttpError::Transfer(t) => {
                            retry::is_transient(t)
                                && (req.method.is_idempotent() || retry::nothing_sent(t))
                        }
                        _ => false,
                    };
                    if last || !retry {
                        return Err(e);
                    }
                    (policy.sleep)(policy.delay(attempt, None));
                }
            }
        }
    }

    /// Downloads `url` into `out` (a GET that must answer 2xx), as `ADD <url>` does.
    pub fn get(&self, url: &str, out: &mut dyn Write) -> Result<Downloaded, HttpError> {
        let resp = self.send(&Request::new(Method::Get, url))?;
        if !(200..300).contains(&resp.status()) {
            return Err(HttpError::Status {
                status: resp.status(),
            });
        }
        let last_modified = resp.header("last-modified").map(str::to_owned);
        let mut body = resp.into_reader();
        io::copy(&mut body, out).map_err(|e| {
            // A failed read of the body is the transfer's; ureq reports it as an io error.
            if e.kind() == io::ErrorKind::Other || e.kind() == io::ErrorKind::UnexpectedEof {
                HttpError::Transfer(Box::new(ureq::Error::Io(e)))
            } else {
                HttpError::Write(e)
            }
        })?;
        Ok(Downloaded { last_modified })
    }
}

/// A proxy setting as ureq takes it.
fn proxy(p: &str) -> Result<ureq::Proxy, HttpError> {
    ureq::Proxy::new(p).map_err(|source| HttpError::Proxy {
        proxy: p.to_owned(),
        source: Box::new(source),
    })
}
