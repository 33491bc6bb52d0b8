//! Where an exported cache lives: the [`CacheRemote`] trait, and its implementations that need
//! no network: [`LocalLayout`] (an OCI image layout directory, `type=local`) and
//! [`MemoryRemote`] (in memory, counting every call: tests and tools).
//!
//! A remote is a content-addressed blob store with tagged manifests, the shape of both an OCI
//! layout and the OCI distribution API, so the registry client plugs in as one more
//! implementation. The cache never trusts a remote: every blob it fetches is checked against
//! its digest and size before it enters the store ([`crate::transfer`]).

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use kiln_layer::Digest;
use kiln_oci::model::{Descriptor, Index, REF_NAME};

/// What a remote's failure carries: the implementation's own error (the registry client's
/// names registry, repository and status), boxed.
pub type RemoteError = Box<dyn std::error::Error + Send + Sync>;

/// Where an exported cache lives (see the module docs). Implementations are shared by the
/// threads of an export and of a build's lazy import.
pub trait CacheRemote: Send + Sync {
    /// The remote, for messages and for telling two remotes apart (`local cache DIR`,
    /// `registry HOST/REPO`): two remotes with the same name hold the same blobs.
    fn name(&self) -> String;
    /// Whether the remote has the blob `digest`.
    fn has_blob(&self, digest: &Digest) -> Result<bool, RemoteError>;
    /// Writes the blob `blob` to the file `dest` (created or truncated). The caller checks the
    /// bytes against `blob`'s digest and size, so an implementation need not (but may, to
    /// retry); a missing blob is an error.
    fn fetch_blob(&self, blob: &Descriptor, dest: &Path) -> Result<(), RemoteError>;
    /// Uploads the blob `blob` whose bytes are the file `src`.
    fn push_blob(&self, blob: &Descriptor, src: &Path) -> Result<(), RemoteError>;
    /// The manifest tagged `tag`, with its media type; `None` when there is none.
    fn get_manifest(&self, tag: &str) -> Result<Option<(Vec<u8>, String)>, RemoteError>;
    /// Stores `bytes` as the manifest tagged `tag` (replacing what the tag named); returns
    /// its digest. The blobs it names are uploaded first.
    fn put_manifest(
        &self,
        tag: &str,
        bytes: &[u8],
        media_type: &str,
    ) -> Result<Digest, RemoteError>;
}

/// A shared remote is a remote (several stores of a test, or a build's import and export).
impl<T: CacheRemote + ?Sized> CacheRemote for std::sync::Arc<T> {
    fn name(&self) -> String {
        (**self).name()
    }
    fn has_blob(&self, digest: &Digest) -> Result<bool, RemoteError> {
        (**self).has_blob(digest)
    }
    fn fetch_blob(&self, blob: &Descriptor, dest: &Path) -> Result<(), RemoteError> {
        (**self).fetch_blob(blob, dest)
    }
    fn push_blob(&self, blob: &Descriptor, src: &Path) -> Result<(), RemoteError> {
        (**self).push_blob(blob, src)
    }
    fn get_manifest(&self, tag: &str) -> Result<Option<(Vec<u8>, String)>, RemoteError> {
        (**self).get_manifest(tag)
    }
    fn put_manifest(
        &self,
        tag: &str,
        bytes: &[u8],
        media_type: &str,
    ) -> Result<Digest, RemoteError> {
        (**self).put_manifest(tag, bytes, media_type)
    }
}

/// An OCI image layout directory as a remote (`--cache-to type=local,dest=DIR`): blobs under
/// `blobs/sha256/`, tags in `index.json` (`org.opencontainers.image.ref.name`), created on the
/// first write. Writes go to a temporary file beside their target and are renamed into place,
/// so a reader never sees half a blob.
#[derive(Debug, Clone)]
pub struct LocalLayout {
    dir: PathBuf,
}

impl LocalLayout {
    /// The layout at `dir` (nothing is read or created yet).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The layout's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn blob(&self, digest: &Digest) -> PathBuf {
        kiln_oci::Layout::new(&self.dir).blob(digest)
    }

    /// Writes `bytes` to `path` through a temporary file beside it.
    fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
        let tmp = temp_beside(path);
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    }

    /// Creates `oci-layout`, `index.json` and `blobs/sha256/` when missing.
    fn create(&self) -> io::Result<()> {
        let layout = kiln_oci::Layout::new(&self.dir);
        fs::create_dir_all(layout.blobs().join("sha256"))?;
        if !layout.oci_layout().exists() {
            Self::write_atomic(&layout.oci_layout(), br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        }
        if !layout.index().exists() {
            let empty = kiln_oci::canonical::to_vec(&Index::default()).map_err(io::Error::other)?;
            Self::write_atomic(&layout.index(), &empty)?;
        }
        Ok(())
    }

    fn index(&self) -> Result<Option<Index>, RemoteError> {
        let path = kiln_oci::Layout::new(&self.dir).index();
        match fs::read(&path) {
            Ok(bytes) => {
                Ok(Some(serde_json::from_slice(&bytes).map_err(|e| {
                    format!("`{}` is not valid JSON: {e}", path.display())
                })?))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("cannot read `{}`: {e}", path.display()).into()),
        }
    }
}

/// A temporary name beside `path`, unique to this process and call.
fn temp_beside(path: &Path) -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.partial-{}-{n}", std::process::id()))
}

impl CacheRemote for LocalLayout {
    fn name(&self) -> String {
        format!("local cache {}", self.dir.display())
    }

    fn has_blob(&self, digest: &Digest) -> Result<bool, RemoteError> {
        Ok(self.blob(digest).is_file())
    }

    fn fetch_blob(&self, blob: &Descriptor, dest: &Path) -> Result<(), RemoteError> {
        let src = self.blob(&blob.digest);
        fs::copy(&src, dest).map_err(|e| {
            format!(
                "cannot copy blob `{}` from `{}`: {e}",
                blob.digest,
                src.display()
            )
        })?;
        Ok(())
    }

    fn push_blob(&self, blob: &Descriptor, src: &Path) -> Result<(), RemoteError> {
        let dest = self.blob(&blob.digest);
        let err = |e: io::Error| format!("cannot write blob `{}`: {e}", dest.display());
        self.create().map_err(err)?;
        let tmp = temp_beside(&dest);
        fs::copy(src, &tmp).map_err(err)?;
        fs::rename(&tmp, &dest).map_err(err)?;
        Ok(())
    }

    fn get_manifest(&self, tag: &str) -> Result<Option<(Vec<u8>, String)>, RemoteError> {
        let Some(index) = self.index()? else {
            return Ok(None);
        };
        let Some(d) = index.manifests.iter().find(|d| d.ref_name() == Some(tag)) else {
            return Ok(None);
        };
        let path = self.blob(&d.digest);
        let bytes =
            fs::read(&path).map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
        Ok(Some((bytes, d.media_type.clone())))
    }

    fn put_manifest(
        &self,
        tag: &str,
        bytes: &[u8],
        media_type: &str,
    ) -> Result<Digest, RemoteError> {
        let digest = Digest::of(bytes);
        let path = self.blob(&digest);
        let err = |e: io::Error| format!("cannot write `{}`: {e}", path.display());
        self.create().map_err(err)?;
        Self::write_atomic(&path, bytes).map_err(err)?;
        let mut d = Descriptor::new(media_type, digest.clone(), bytes.len() as u64);
        // The index entry carries the manifest's `artifactType`, as OCI 1.1 asks.
        if let Ok(serde_json::Value::Object(m)) = serde_json::from_slice(bytes)
            && let Some(t) = m.get("artifactType")
        {
            d.extra.insert("artifactType".to_owned(), t.clone());
        }
        d.annotations.insert(REF_NAME.to_owned(), tag.to_owned());
        let mut index = self.index()?.unwrap_or_default();
        index.manifests.retain(|m| m.ref_name() != Some(tag));
        index.manifests.push(d);
        let index_path = kiln_oci::Layout::new(&self.dir).index();
        let bytes = kiln_oci::canonical::to_vec(&index).map_err(|e| e.to_string())?;
        Self::write_atomic(&index_path, &bytes)
            .map_err(|e| format!("cannot write `{}`: {e}", index_path.display()))?;
        Ok(digest)
    }
}

/// How often each call of a [`MemoryRemote`] was made.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RemoteCalls {
    /// `has_blob` calls.
    pub has_blob: usize,
    /// The blobs fetched, in order.
    pub fetched: Vec<Digest>,
    /// The blobs pushed, in order.
    pub pushed: Vec<Digest>,
    /// `get_manifest` calls.
    pub get_manifest: usize,
    /// `put_manifest` calls.
    pub put_manifest: usize,
}

/// A remote in memory that counts its calls: the registry's stand-in in tests (several stores
/// sharing one `MemoryRemote` are several machines sharing one registry), and a way for tools
/// to look at an export without writing it.
#[derive(Debug, Default)]
pub struct MemoryRemote {
    name: String,
    blobs: Mutex<HashMap<Digest, Vec<u8>>>,
    manifests: Mutex<BTreeMap<String, (Vec<u8>, String)>>,
    calls: Mutex<RemoteCalls>,
}

impl MemoryRemote {
    /// An empty remote called `name`.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            ..Self::default()
        }
    }

    /// The calls made so far.
    pub fn calls(&self) -> RemoteCalls {
        lock(&self.calls).clone()
    }

    /// Forgets the calls made so far.
    pub fn reset_calls(&self) {
        *lock(&self.calls) = RemoteCalls::default();
    }

    /// The digests of the blobs it holds.
    pub fn blobs(&self) -> Vec<Digest> {
        let mut v: Vec<Digest> = lock(&self.blobs).keys().cloned().collect();
        v.sort();
        v
    }

    /// Replaces the bytes of blob `digest` (to test that corrupt blobs are refused).
    pub fn corrupt(&self, digest: &Digest, bytes: Vec<u8>) {
        lock(&self.blobs).insert(digest.clone(), bytes);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl CacheRemote for MemoryRemote {
    fn name(&self) -> String {
        format!("memory remote {}", self.name)
    }

    fn has_blob(&self, digest: &Digest) -> Result<bool, RemoteError> {
        lock(&self.calls).has_blob += 1;
        Ok(lock(&self.blobs).contains_key(digest))
    }

    fn fetch_blob(&self, blob: &Descriptor, dest: &Path) -> Result<(), RemoteError> {
        lock(&self.calls).fetched.push(blob.digest.clone());
        let bytes = lock(&self.blobs)
            .get(&blob.digest)
            .cloned()
            .ok_or_else(|| format!("blob `{}` is not in {}", blob.digest, self.name()))?;
        fs::write(dest, bytes)?;
        Ok(())
    }

    fn push_blob(&self, blob: &Descriptor, src: &Path) -> Result<(), RemoteError> {
        lock(&self.calls).pushed.push(blob.digest.clone());
        let bytes = fs::read(src)?;
        lock(&self.blobs).insert(blob.digest.clone(), bytes);
        Ok(())
    }

    fn get_manifest(&self, tag: &str) -> Result<Option<(Vec<u8>, String)>, RemoteError> {
        lock(&self.calls).get_manifest += 1;
        Ok(lock(&self.manifests).get(tag).cloned())
    }

    fn put_manifest(
        &self,
        tag: &str,
        bytes: &[u8],
        media_type: &str,
    ) -> Result<Digest, RemoteError> {
        lock(&self.calls).put_manifest += 1;
        let digest = Digest::of(bytes);
        lock(&self.blobs).insert(digest.clone(), bytes.to_vec());
        lock(&self.manifests).insert(tag.to_owned(), (bytes.to_vec(), media_type.to_owned()));
        Ok(digest)
    }
}
