//! The errors of talking to registries. Each names the registry and repository, and the
//! manifest reference or blob digest at stake; none holds a credential or token.

use std::path::PathBuf;

use kiln_layer::Digest;

use crate::config::ConfigError;

/// What went wrong with a registry.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The registry answered a request with an error status.
    #[error("{action} `{object}` in `{registry}/{repository}`: {}", status_text(*.status, .message.as_deref()))]
    Status {
        /// What kiln was doing: `pull manifest`, `push blob` ...
        action: &'static str,
        /// The registry host (as named in the reference, or the mirror).
        registry: String,
        /// The repository path.
        repository: String,
        /// The tag, digest or blob at stake.
        object: String,
        /// The HTTP status.
        status: u16,
        /// The registry's own error code and message, when it sent one.
        message: Option<String>,
    },
    /// Bytes from the registry do not have the digest or size their descriptor gives.
    #[error(
        "`{registry}/{repository}` sent `{digest}` ({size} bytes) as `{actual}` ({actual_size} bytes): refused, nothing stored"
    )]
    DigestMismatch {
        /// The registry host.
        registry: String,
        /// The repository path.
        repository: String,
        /// The digest asked for.
        digest: Digest,
        /// The size asked for.
        size: u64,
        /// The digest of what came.
        actual: Digest,
        /// The size of what came.
        actual_size: u64,
    },
    /// The registry could not be reached, or the connection failed.
    #[error("cannot {action} `{registry}`")]
    Transport {
        /// What kiln was doing.
        action: &'static str,
        /// The registry host.
        registry: String,
        /// The cause.
        #[source]
        source: kiln_http::HttpError,
    },
    /// The registry's answer is not what the distribution API says.
    #[error("`{registry}/{repository}`: {reason}")]
    Protocol {
        /// The registry host.
        registry: String,
        /// The repository path.
        repository: String,
        /// What is wrong.
        reason: String,
    },
    /// A manifest or index is not JSON kiln can read.
    #[error("`{registry}/{repository}`: cannot read {what}")]
    Json {
        /// The registry host.
        registry: String,
        /// The repository path.
        repository: String,
        /// The document.
        what: String,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// A manifest kiln does not pull (Docker schema 1, an unknown artifact).
    #[error("`{reference}` is a `{media_type}`, which kiln cannot pull")]
    UnsupportedManifest {
        /// The reference.
        reference: String,
        /// Its media type.
        media_type: String,
    },
    /// An index has no manifest for the platform asked for.
    #[error("`{reference}` has no image for `{platform}` (it has: {available})")]
    NoPlatform {
        /// The reference.
        reference: String,
        /// The platform asked for.
        platform: String,
        /// The platforms it has, comma-separated.
        available: String,
    },
    /// Every endpoint (mirrors, then the registry) failed; the last error is the cause.
    #[error("no mirror of `{registry}` and not the registry itself could serve `{reference}`")]
    AllEndpointsFailed {
        /// The registry.
        registry: String,
        /// The reference.
        reference: String,
        /// The last failure.
        #[source]
        source: Box<RegistryError>,
    },
    /// Credentials could not be read or stored.
    #[error("credentials for `{registry}`: {reason}")]
    Credentials {
        /// The registry.
        registry: String,
        /// What failed (never the credentials themselves).
        reason: String,
        /// The cause, when there is one.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// The kiln config file is wrong.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The image cannot be pushed as it is.
    #[error("cannot push `{image}`: {reason}")]
    Unpushable {
        /// The image.
        image: String,
        /// Why.
        reason: String,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] kiln_oci::StoreError),
    /// Unpacking a pulled layer into a snapshot failed.
    #[error(transparent)]
    Snapshot(#[from] kiln_oci::SnapshotError),
    /// A file of the download or upload failed.
    #[error(transparent)]
    Io(#[from] kiln_io::IoError),
    /// A file that should be there is not (a TLS file, a credential helper).
    #[error("`{path}`: {reason}")]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

fn status_text(status: u16, message: Option<&str>) -> String {
    let what = match status {
        401 => "unauthorized (401)",
        403 => "denied (403)",
        404 => "not found (404)",
        429 => "too many requests (429)",
        s if s >= 500 => "the registry failed",
        _ => "unexpected status",
    };
    let mut s = if status >= 500 || !matches!(status, 401 | 403 | 404 | 429) {
        format!("{what} ({status})")
    } else {
        what.to_owned()
    };
    if let Some(m) = message {
        s.push_str(": ");
        s.push_str(m);
    }
    s
}

impl RegistryError {
    /// The HTTP status, for errors that are one.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Status { status, .. } => Some(*status),
            Self::AllEndpointsFailed { source, .. } => source.status(),
            _ => None,
        }
    }

    /// What the user can do about it, when there is something to say.
    pub fn hint(&self) -> Option<String> {
        match self {
            Self::Status {
                status, registry, ..
            } => match status {
                401 => Some(format!(
                    "log in with `kiln login {registry}` (or check the credentials in Docker's config.json)"
                )),
                403 => Some(format!(
                    "the account used for `{registry}` may not do this: check its permissions on the repository"
                )),
                404 => Some(
                    "check the repository name and tag; a private repository may also answer 404 without login"
                        .to_owned(),
                ),
                429 => Some(
                    "the registry limits requests: wait, log in (anonymous pulls have lower limits) or use a mirror"
                        .to_owned(),
                ),
                _ => None,
            },
            Self::DigestMismatch { .. } => Some(
                "the registry or something between it and kiln changed the bytes; nothing was stored, try again"
                    .to_owned(),
            ),
            Self::Transport {
                registry, source, ..
            } => Some(if matches!(source, kiln_http::HttpError::Transfer(_)) && !source.is_connection() {
                format!(
                    "if `{registry}` uses a private CA, put it in `/etc/docker/certs.d/{registry}/ca.crt` or `ca = [...]` under `[registry.\"{registry}\"]` in kiln's config"
                )
            } else {
                format!("check that `{registry}` is up and reachable (and the proxy settings)")
            }),
            Self::AllEndpointsFailed { source, .. } => source.hint(),
            Self::NoPlatform { .. } => Some("pick one of them with `--platform`".to_owned()),
            _ => None,
        }
    }
}
