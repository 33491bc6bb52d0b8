//! kiln's registry client: the OCI distribution API over kiln's one HTTP transport
//! (`kiln-http`). It pulls images into kiln's store (verified blob by blob, resumable, in
//! parallel, through the mirrors the config names) and pushes images from it (skipping what
//! the registry has, mounting across repositories, uploading large blobs in chunks); it
//! reads kiln's config file (BuildKit's `buildkitd.toml` registry sections), Docker's
//! `certs.d` and `config.json` (with credential helpers), and speaks Basic and bearer-token
//! auth. [`Repository`] exposes the low-level blob and manifest operations for the
//! registry cache.
//!
//! It deliberately knows nothing of Dockerfiles, RUN, or how layers are made: images come
//! from and go to a `kiln_oci::Store`, and it reads no environment variable (the binary
//! passes the config, the Docker config directory, `certs.d` and the proxies). Credentials
//! and tokens are [`Secret`]s: they never reach an error, a `Debug` output, the store or a
//! cache key.

#![forbid(unsafe_code)]

mod auth;
pub mod config;
pub mod credentials;
mod error;
mod hosts;
mod progress;
mod pull;
mod push;
mod repository;
mod secret;
mod sources;
mod stream;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use kiln_oci::Reference;

pub use config::{Config, ConfigError, KeyPair, RegistryConfig};
pub use credentials::{Credential, DockerCredentials};
pub use error::RegistryError;
pub use progress::{BlobOutcome, NoProgress, Progress};
pub use pull::{PullOptions, Pulled, local_image, platform_string};
pub use push::{PushOptions, Pushed};
pub use repository::{FetchedManifest, Repository};
pub use secret::Secret;

/// How [`Registries`] reaches registries.
#[derive(Debug, Clone)]
pub struct RegistryOptions {
    /// kiln's config file, read ([`Config::read`]); empty by default.
    pub config: Config,
    /// Docker's config directory (`$DOCKER_CONFIG`, else `~/.docker`), for `config.json`;
    /// `None`: no credentials.
    pub docker_config_dir: Option<PathBuf>,
    /// Docker's per-registry TLS directory; `/etc/docker/certs.d` by default, `None` for none.
    pub certs_d: Option<PathBuf>,
    /// The transport's settings: proxies, the system CA bundle, timeouts, retries.
    pub http: kiln_http::ClientOptions,
    /// Blobs moved at once; the default is 6 (as skopeo; Docker moves 3).
    pub jobs: usize,
    /// Blobs larger than this are uploaded in chunks of this size; the default is 64 MiB.
    pub chunk_size: u64,
}

impl Default for RegistryOptions {
    fn default() -> Self {
        Self {
            config: Config::default(),
            docker_config_dir: None,
            certs_d: Some(PathBuf::from("/etc/docker/certs.d")),
            http: kiln_http::ClientOptions::default(),
            jobs: 6,
            chunk_size: 64 << 20,
        }
    }
}

/// What every [`Repository`] of one [`Registries`] shares.
pub(crate) struct Shared {
    pub(crate) client: kiln_http::Client,
    pub(crate) auth: auth::Auth,
    pub(crate) config: Config,
    pub(crate) certs_d: Option<PathBuf>,
    pub(crate) jobs: usize,
    pub(crate) chunk_size: u64,
    /// The scheme that worked, by host (loopback registries may be plain HTTP).
    schemes: Mutex<HashMap<String, &'static str>>,
    /// The hosts whose TLS settings the client has.
    tls_set: Mutex<HashSet<String>>,
}

impl Shared {
    pub(crate) fn scheme(&self, authority: &str) -> Option<&'static str> {
        self.schemes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(authority)
            .copied()
    }

    pub(crate) fn set_scheme(&self, authority: &str, scheme: &'static str) {
        self.schemes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(authority.to_owned(), scheme);
    }
}

/// kiln's registries: one HTTP client, the config, credentials, tokens and what was learnt
/// of each host, shared by every pull and push of a command. Cheap to clone.
#[derive(Clone)]
pub struct Registries {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Registries {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registries")
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

impl Registries {
    /// Registries reached with `opts`.
    pub fn new(opts: RegistryOptions) -> Result<Self, RegistryError> {
        let client =
            kiln_http::Client::new(&opts.http).map_err(|source| RegistryError::Transport {
                action: "configure the proxy for",
                registry: "every registry".to_owned(),
                source,
            })?;
        Ok(Self {
            shared: Arc::new(Shared {
                client,
                auth: auth::Auth::new(DockerCredentials::new(opts.docker_config_dir)),
                config: opts.config,
                certs_d: opts.certs_d,
                jobs: opts.jobs.max(1),
                chunk_size: opts.chunk_size.max(1),
                schemes: Mutex::new(HashMap::new()),
                tls_set: Mutex::new(HashSet::new()),
            }),
        })
    }

    /// The credential store these registries read (Docker's `config.json` and helpers).
    pub fn credentials(&self) -> &DockerCredentials {
        self.shared.auth.credentials()
    }

    fn repo(&self, endpoint: hosts::Endpoint, name: &str, push: bool) -> Repository {
        let first = self
            .shared
            .tls_set
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(endpoint.authority.clone());
        if first {
            let tls = hosts::host_tls(
                &self.shared.config,
                self.shared.certs_d.as_deref(),
                &endpoint,
            );
            if tls != kiln_http::HostTls::default() {
                self.shared.client.set_host_tls(&endpoint.authority, tls);
            }
        }
        let actions = if push { "pull,push" } else { "pull" };
        let path = format!("{}{name}", endpoint.prefix);
        Repository {
            shared: Arc::clone(&self.shared),
            scopes: vec![format!("repository:{path}:{actions}")],
            endpoint,
            name: name.to_owned(),
        }
    }

    /// The repository `reference` names, on the registry itself (not a mirror), with pull
    /// and push access: the one pushes and the registry cache use.
    pub fn repository(&self, reference: &Reference) -> Repository {
        let ep = hosts::registry_endpoint(&self.shared.config, &reference.domain);
        self.repo(ep, &reference.path, true)
    }

    /// The repositories a pull of `reference` tries, in order: on each mirror the config
    /// names for its registry, then on the registry itself; with pull access.
    pub fn pull_repositories(&self, reference: &Reference) -> Vec<Repository> {
        hosts::pull_endpoints(&self.shared.config, &reference.domain)
            .into_iter()
            .map(|ep| self.repo(ep, &reference.path, false))
            .collect()
    }

    /// Checks `credential` against `registry` (a request to its `/v2/` that must not be
    /// refused), then stores it as Docker does ([`DockerCredentials::store`]).
    pub fn login(&self, registry: &str, credential: &Credential) -> Result<(), RegistryError> {
        let ep = hosts::registry_endpoint(&self.shared.config, registry);
        self.shared
            .auth
            .set_credential(&ep.name, credential.clone());
        let mut repo = self.repo(ep, "", false);
        repo.scopes.clear();
        let r = repo.call("log in to", kiln_http::Method::Get, "/v2/", &[], None)?;
        if !(200..300).contains(&r.status()) {
            return Err(repo.status_error("log in to", "/v2/", r));
        }
        self.credentials()
            .store(&config::normalize_host(registry), credential)
    }

    /// Forgets the stored credentials of `registry`; whether there were any.
    pub fn logout(&self, registry: &str) -> Result<bool, RegistryError> {
        self.credentials().erase(&config::normalize_host(registry))
    }
}
