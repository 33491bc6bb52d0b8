//! One repository on one endpoint: the distribution API's blob and manifest operations,
//! with auth, scheme fallback and error mapping. Pull, push and the cache exporter are
//! built on these.

use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use kiln_http::{FileRange, Method, Request, RequestBody, Response};
use kiln_layer::Digest;
use kiln_oci::Descriptor;

use crate::Shared;
use crate::error::RegistryError;
use crate::hosts::{Endpoint, Schemes};
use crate::progress::{BlobOutcome, Progress};
use crate::stream::{BlobStream, Source};

/// Every manifest media type kiln reads, for `Accept`.
const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";

/// The largest manifest kiln reads (the distribution spec's limit is 4 MiB).
const MANIFEST_LIMIT: u64 = 4 << 20;

/// A repository of a registry (or of one of its mirrors), with the scopes its token asks
/// for. Cheap to clone; safe to use from several threads.
#[derive(Clone)]
pub struct Repository {
    pub(crate) shared: Arc<Shared>,
    pub(crate) endpoint: Endpoint,
    pub(crate) name: String,
    pub(crate) scopes: Vec<String>,
}

impl std::fmt::Debug for Repository {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Repository")
            .field("registry", &self.endpoint.authority)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// A manifest as the registry sent it.
#[derive(Debug, Clone)]
pub struct FetchedManifest {
    /// Its bytes, exactly (its digest is theirs).
    pub bytes: Vec<u8>,
    /// Its media type (`Content-Type`, else the document's `mediaType`).
    pub media_type: String,
    /// Its digest.
    pub digest: Digest,
}

impl Repository {
    /// The host contacted (`registry-1.docker.io`, `127.0.0.1:5000`).
    pub fn registry(&self) -> &str {
        &self.endpoint.authority
    }

    /// The repository path (`library/busybox`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether this repository is on a mirror of the registry the reference names.
    pub fn is_mirror(&self) -> bool {
        self.endpoint.mirror
    }

    /// Also asks for pull access to `repository` (a path on the same registry) in tokens:
    /// the source of a cross-repository mount.
    #[must_use]
    pub fn with_pull_scope(mut self, repository: &str) -> Self {
        let s = format!("repository:{repository}:pull");
        if !self.scopes.contains(&s) {
            self.scopes.push(s);
        }
        self
    }

    fn url(&self, scheme: &str, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            return path.to_owned();
        }
        if path.starts_with('/') {
            return format!("{scheme}://{}{path}", self.endpoint.authority);
        }
        format!(
            "{scheme}://{}/v2/{}{}/{path}",
            self.endpoint.authority, self.endpoint.prefix, self.name
        )
    }

    /// Sends a request to `path` (relative to `/v2/<name>/`, absolute from the host, or a
    /// whole URL as a `Location` gives it): authenticated when the registry asks, over
    /// HTTPS or, for loopback registries that do not speak it, plain HTTP.
    pub(crate) fn call(
        &self,
        action: &'static str,
        method: Method,
        path: &str,
        headers: &[(&str, String)],
        body: Option<&dyn RequestBody>,
    ) -> Result<Response, RegistryError> {
        let shared = &self.shared;
        let authority = &self.endpoint.authority;
        let transport = |source| RegistryError::Transport {
            action,
            registry: authority.clone(),
            source,
        };
        let send = |scheme: &str, auth: Option<&crate::Secret>| {
            let url = self.url(scheme, path);
            let mut req = Request::new(method, &url);
            for (n, v) in headers {
                req = req.header(n, v.clone());
            }
            if let Some(a) = auth {
                req = req.header("authorization", a.expose());
            }
            if let Some(b) = body {
                req = req.body(b);
            }
            shared.client.send(&req)
        };
        let known = shared.scheme(authority);
        let scheme = match (known, self.endpoint.schemes) {
            (Some(s), _) => s,
            (None, Schemes::Http) => "http",
            (None, _) => "https",
        };
        let auth = shared
            .auth
            .header(&shared.client, &self.endpoint.name, &self.scopes)?;
        let (scheme, mut response) = match send(scheme, auth.as_ref()) {
            Ok(r) => (scheme, r),
            // TLS refused by a plain-HTTP server; a host that does not answer at all would
            // not answer plain HTTP either.
            Err(e)
                if known.is_none()
                    && self.endpoint.schemes == Schemes::HttpsThenHttp
                    && !e.is_connection() =>
            {
                match send("http", auth.as_ref()) {
                    // A TLS server's answer to plain HTTP: its certificate was the problem.
                    Ok(r) if r.status() == 400 => return Err(transport(e)),
                    Ok(r) => ("http", r),
                    // The TLS error says more than plain HTTP's.
                    Err(_) => return Err(transport(e)),
                }
            }
            Err(e) => return Err(transport(e)),
        };
        if known.is_none() {
            shared.set_scheme(authority, scheme);
        }
        if response.status() == 401 && shared.auth.learn(&self.endpoint.name, &response) {
            let auth = shared
                .auth
                .header(&shared.client, &self.endpoint.name, &self.scopes)?;
            if auth.is_some() {
                response = send(scheme, auth.as_ref()).map_err(transport)?;
            }
        }
        Ok(response)
    }

    /// The error of a response with `status` other than what was expected; the registry's
    /// error code and message (never a header) go into it.
    pub(crate) fn status_error(
        &self,
        action: &'static str,
        object: &str,
        response: Response,
    ) -> RegistryError {
        let status = response.status();
        let message = response
            .read_to_vec(64 << 10)
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|v| {
                let e = v.get("errors")?.get(0)?;
                let code = e.get("code").and_then(|c| c.as_str()).unwrap_or_default();
                let msg = e
                    .get("message")
                    .and_then(|c| c.as_str())
                    .unwrap_or_default();
                Some(match (code.is_empty(), msg.is_empty()) {
                    (false, false) => format!("{code}: {msg}"),
                    (false, true) => code.to_owned(),
                    _ => msg.to_owned(),
                })
            })
            .map(|m| m.chars().take(300).collect());
        RegistryError::Status {
            action,
            registry: self.endpoint.authority.clone(),
            repository: self.name.clone(),
            object: object.to_owned(),
            status,
            message,
        }
    }

    /// Whether the registry has the blob `digest` in this repository (one HEAD).
    pub fn has_blob(&self, digest: &Digest) -> Result<bool, RegistryError> {
        let r = self.call(
            "check blob",
            Method::Head,
            &format!("blobs/{digest}"),
            &[],
            None,
        )?;
        match r.status() {
            200..=299 => Ok(true),
            404 => Ok(false),
            _ => Err(self.status_error("check blob", &digest.to_string(), r)),
        }
    }

    /// The manifest `reference` (a tag or a digest) names, with its media type and digest.
    /// A manifest asked for by digest is checked against it.
    pub fn get_manifest(&self, reference: &str) -> Result<FetchedManifest, RegistryError> {
        let r = self.call(
            "pull manifest",
            Method::Get,
            &format!("manifests/{reference}"),
            &[("accept", ACCEPT.to_owned())],
            None,
        )?;
        if r.status() != 200 {
            return Err(self.status_error("pull manifest", reference, r));
        }
        let header_type = r
            .header("content-type")
            .map(|t| t.split(';').next().unwrap_or(t).trim().to_owned());
        let bytes = r
            .read_to_vec(MANIFEST_LIMIT)
            .map_err(|source| RegistryError::Transport {
                action: "pull a manifest from",
                registry: self.endpoint.authority.clone(),
                source,
            })?;
        let digest = Digest::of(&bytes);
        if let Ok(expected) = reference.parse::<Digest>()
            && expected != digest
        {
            return Err(RegistryError::DigestMismatch {
                registry: self.endpoint.authority.clone(),
                repository: self.name.clone(),
                size: bytes.len() as u64,
                digest: expected,
                actual: digest,
                actual_size: bytes.len() as u64,
            });
        }
        let doc_type = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| v.get("mediaType")?.as_str().map(str::to_owned));
        // The document's own type wins over a generic Content-Type (`application/json`).
        let media_type = match (doc_type, header_type) {
            (Some(d), _) => d,
            (None, Some(h)) => h,
            (None, None) => String::new(),
        };
        Ok(FetchedManifest {
            bytes,
            media_type,
            digest,
        })
    }

    /// The digest (and media type and size) of the manifest `reference` names, with one
    /// HEAD; `None` when the registry does not have it.
    pub fn head_manifest(
        &self,
        reference: &str,
    ) -> Result<Option<(Digest, String, u64)>, RegistryError> {
        let r = self.call(
            "check manifest",
            Method::Head,
            &format!("manifests/{reference}"),
            &[("accept", ACCEPT.to_owned())],
            None,
        )?;
        match r.status() {
            200 => {}
            404 => return Ok(None),
            _ => return Err(self.status_error("check manifest", reference, r)),
        }
        let digest = r
            .header("docker-content-digest")
            .and_then(|d| d.trim().parse::<Digest>().ok());
        let media_type = r
            .header("content-type")
            .map(|t| t.split(';').next().unwrap_or(t).trim().to_owned())
            .unwrap_or_default();
        let size = r
            .header("content-length")
            .and_then(|l| l.trim().parse().ok())
            .unwrap_or(0);
        if let Some(d) = digest {
            Ok(Some((d, media_type, size)))
        } else {
            // A registry that gives no digest on HEAD: read the manifest.
            let m = self.get_manifest(reference)?;
            Ok(Some((m.digest, m.media_type, m.bytes.len() as u64)))
        }
    }

    /// Uploads a manifest under `reference` (a tag, or its digest); returns its digest.
    pub fn put_manifest(
        &self,
        reference: &str,
        bytes: &[u8],
        media_type: &str,
    ) -> Result<Digest, RegistryError> {
        let digest = Digest::of(bytes);
        let r = self.call(
            "push manifest",
            Method::Put,
            &format!("manifests/{reference}"),
            &[("content-type", media_type.to_owned())],
            Some(&bytes),
        )?;
        if !(200..300).contains(&r.status()) {
            return Err(self.status_error("push manifest", reference, r));
        }
        if let Some(d) = r.header("docker-content-digest")
            && let Ok(d) = d.trim().parse::<Digest>()
            && d != digest
        {
            return Err(RegistryError::DigestMismatch {
                registry: self.endpoint.authority.clone(),
                repository: self.name.clone(),
                digest,
                size: bytes.len() as u64,
                actual: d,
                actual_size: bytes.len() as u64,
            });
        }
        Ok(digest)
    }

    /// A small blob (a config), read whole and verified against `d`.
    pub fn fetch_blob_bytes(&self, d: &Descriptor) -> Result<Vec<u8>, RegistryError> {
        let object = d.digest.to_string();
        let r = self.call(
            "pull blob",
            Method::Get,
            &format!("blobs/{}", d.digest),
            &[],
            None,
        )?;
        if r.status() != 200 {
            return Err(self.status_error("pull blob", &object, r));
        }
        let mut bytes = Vec::new();
        r.into_reader()
            .take(d.size.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(|e| RegistryError::Transport {
                action: "pull a blob from",
                registry: self.endpoint.authority.clone(),
                source: kiln_http::HttpError::CutShort(e),
            })?;
        let actual = Digest::of(&bytes);
        if actual != d.digest || bytes.len() as u64 != d.size {
            return Err(self.mismatch(d, actual, bytes.len() as u64));
        }
        Ok(bytes)
    }

    pub(crate) fn mismatch(
        &self,
        d: &Descriptor,
        actual: Digest,
        actual_size: u64,
    ) -> RegistryError {
        RegistryError::DigestMismatch {
            registry: self.endpoint.authority.clone(),
            repository: self.name.clone(),
            digest: d.digest.clone(),
            size: d.size,
            actual,
            actual_size,
        }
    }

    /// Downloads the blob `d` into `dest`, verified against its digest and size. What `dest`
    /// already holds is kept and the rest asked for with `Range` (a download cut short, by
    /// this process or an earlier one, resumes); a connection lost mid-blob resumes too. On
    /// a mismatch `dest` is removed and nothing is kept.
    pub fn fetch_blob(
        &self,
        d: &Descriptor,
        dest: &Path,
        progress: &dyn Progress,
    ) -> Result<(), RegistryError> {
        BlobStream::open(self, Source::Registry, d, dest, progress)?
            .finish()
            .map(drop)
    }

    /// Uploads the blob `d` from the file `src` unless the registry has it: mounted from
    /// `mount_from` (a repository of the same registry) when given and the registry agrees,
    /// else in one PUT, or in chunks (`PATCH`es of `chunk_size`) for larger blobs.
    pub fn push_blob(
        &self,
        d: &Descriptor,
        src: &Path,
        mount_from: Option<&str>,
        progress: &dyn Progress,
    ) -> Result<BlobOutcome, RegistryError> {
        if self.has_blob(&d.digest)? {
            return Ok(BlobOutcome::Present);
        }
        let object = d.digest.to_string();
        let start = match mount_from.filter(|m| *m != self.name) {
            Some(from) => format!(
                "blobs/uploads/?mount={}&from={}",
                d.digest,
                crate::auth::encode(from)
            ),
            None => "blobs/uploads/".to_owned(),
        };
        let empty: &[u8] = &[];
        let r = self.call("push blob", Method::Post, &start, &[], Some(&empty))?;
        if r.status() == 201 && mount_from.is_some() {
            return Ok(BlobOutcome::Mounted);
        }
        if r.status() != 202 {
            return Err(self.status_error("push blob", &object, r));
        }
        let mut location = self.location(&r, &object)?;
        let chunk = self.shared.chunk_size.max(1);
        let mut sent = 0u64;
        if d.size > chunk {
            while sent < d.size {
                let len = chunk.min(d.size - sent);
                let body = FileRange {
                    path: src.to_owned(),
                    offset: sent,
                    len,
                };
                let r = self.call(
                    "push blob",
                    Method::Patch,
                    &location,
                    &[
                        ("content-type", "application/octet-stream".to_owned()),
                        ("content-range", format!("{sent}-{}", sent + len - 1)),
                    ],
                    Some(&body),
                )?;
                if r.status() != 202 {
                    return Err(self.status_error("push blob", &object, r));
                }
                location = self.location(&r, &object)?;
                sent += len;
                progress.blob_progress(d, sent);
            }
        }
        let sep = if location.contains('?') { '&' } else { '?' };
        let put = format!(
            "{location}{sep}digest={}",
            crate::auth::encode(&d.digest.to_string())
        );
        let rest = FileRange {
            path: src.to_owned(),
            offset: sent,
            len: d.size - sent,
        };
        let r = self.call(
            "push blob",
            Method::Put,
            &put,
            &[("content-type", "application/octet-stream".to_owned())],
            Some(&rest),
        )?;
        if r.status() != 201 {
            return Err(self.status_error("push blob", &object, r));
        }
        progress.blob_progress(d, d.size);
        Ok(BlobOutcome::Uploaded)
    }

    fn location(&self, r: &Response, object: &str) -> Result<String, RegistryError> {
        r.header("location")
            .map(str::to_owned)
            .ok_or_else(|| RegistryError::Protocol {
                registry: self.endpoint.authority.clone(),
                repository: self.name.clone(),
                reason: format!("the upload of `{object}` got no `Location`"),
            })
    }
}
