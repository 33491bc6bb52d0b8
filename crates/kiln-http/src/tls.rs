//! TLS settings of one host, and reading PEM files.

use std::io;
use std::path::{Path, PathBuf};

use crate::HttpError;

/// A client certificate and its key, as PEM files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCertFiles {
    /// The certificate (chain), PEM.
    pub cert: PathBuf,
    /// The private key (PKCS#1, PKCS#8 or SEC1), PEM.
    pub key: PathBuf,
}

/// How one host is reached over TLS, beyond the system's roots.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostTls {
    /// PEM bundles of CA certificates trusted for this host besides the system's.
    pub ca_files: Vec<PathBuf>,
    /// The client certificate to present, when the host asks for one.
    pub client_cert: Option<ClientCertFiles>,
    /// Skip verifying the host's certificate (`insecure = true`): the connection is
    /// encrypted but not authenticated.
    pub insecure: bool,
}

impl HostTls {
    /// The certificates of every `ca_files` bundle.
    pub(crate) fn read_cas(
        &self,
        host: &str,
    ) -> Result<Vec<ureq::tls::Certificate<'static>>, HttpError> {
        let mut out = Vec::new();
        for path in &self.ca_files {
            out.extend(read_roots(path).map_err(|e| tls_err(host, path, e))?);
        }
        Ok(out)
    }

    /// The client certificate, read.
    pub(crate) fn read_client_cert(
        &self,
        host: &str,
    ) -> Result<Option<ureq::tls::ClientCert>, HttpError> {
        let Some(files) = &self.client_cert else {
            return Ok(None);
        };
        let chain = read_roots(&files.cert).map_err(|e| tls_err(host, &files.cert, e))?;
        let pem = std::fs::read(&files.key).map_err(|e| HttpError::Tls {
            host: host.to_owned(),
            path: files.key.clone(),
            source: e,
        })?;
        let key = ureq::tls::parse_pem(&pem)
            .find_map(|item| match item {
                Ok(ureq::tls::PemItem::PrivateKey(k)) => Some(k),
                _ => None,
            })
            .ok_or_else(|| HttpError::Tls {
                host: host.to_owned(),
                path: files.key.clone(),
                source: io::Error::other("no private key in the file"),
            })?;
        Ok(Some(ureq::tls::ClientCert::new_with_certs(&chain, key)))
    }
}

fn tls_err(host: &str, path: &Path, e: HttpError) -> HttpError {
    let source = match e {
        HttpError::Roots { source, .. } => source,
        other => io::Error::other(other.to_string()),
    };
    HttpError::Tls {
        host: host.to_owned(),
        path: path.to_owned(),
        source,
    }
}

/// The certificates of a PEM bundle.
pub(crate) fn read_roots(path: &Path) -> Result<Vec<ureq::tls::Certificate<'static>>, HttpError> {
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
