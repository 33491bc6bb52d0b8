//! The content store: an OCI image layout with kiln's own state beside it.
//!
//! Where things live under the root is [`Layout`]'s alone to say; what the OCI part holds:
//! - `index.json` has one entry per tag (`org.opencontainers.image.ref.name` holds the
//!   normalized reference, e.g. docker.io/library/busybox:latest), plus untagged entries for
//!   images loaded without a name;
//! - a blob is in `blobs/sha256/` only once complete, fsynced and verified against its name;
//! - `lock` (flock(2)) is held exclusively while index.json changes and while blobs are
//!   published or removed;
//! - `tmp/txn-*/` is a transaction's staged blobs, each directory with a `.lock` held by its
//!   live owner (what `fsck --repair` may remove is exactly what is unlocked);
//!   `tmp/index-*.json` is index.json being replaced (only under `lock`);
//! - `layer-sizes/sha256/<hex>` is the size Docker shows for that layer blob (its unpacked
//!   content), in decimal, written the first time a command asks (`Store::layer_size`).
//!
//! Every change is a [`Txn`]: blobs are written and verified in the transaction's staging
//! directory, then, under `lock`, renamed into `blobs/` and `index.json` is replaced by atomic
//! rename. A failed or dropped transaction leaves the store exactly as it was.

mod fsck;
mod index;
mod layer_size;
mod layout;
mod txn;
mod variant;

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use kiln_layer::{Digest, HashingReader};

pub use fsck::{FsckReport, Problem, Resumable, STALE_DOWNLOAD};
pub use index::{ImageEntry, LockGuard, add_untagged, set_tag};
pub use layer_size::content_size;
pub use layout::{CacheMountDir, Layout, SnapshotDir};
pub use txn::{BlobWriter, Txn};
pub use variant::ExportCompression;

use crate::error::{StoreError, io_err};

const LAYOUT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

/// A store rooted at a directory.
#[derive(Debug, Clone)]
pub struct Store {
    layout: Layout,
}

impl Store {
    /// Opens the store at `root`, creating an empty layout when the directory is missing or
    /// empty. An existing `oci-layout` of another version is refused.
    pub fn open(root: &Path) -> Result<Self, StoreError> {
        let paths = Layout::new(root);
        for dir in [paths.blobs(), paths.tmp()] {
            fs::create_dir_all(&dir).map_err(io_err("create", &dir))?;
        }
        let store = Self { layout: paths };
        let layout = store.layout.oci_layout();
        match fs::read(&layout) {
            Ok(bytes) => {
                let v: serde_json::Value =
                    serde_json::from_slice(&bytes).map_err(|source| StoreError::Json {
                        what: format!("`{}`", layout.display()),
                        source,
                    })?;
                if v.get("imageLayoutVersion").and_then(|v| v.as_str()) != Some("1.0.0") {
                    return Err(StoreError::NotLayout {
                        path: root.to_owned(),
                        reason: "`oci-layout` does not say imageLayoutVersion 1.0.0".to_owned(),
                    });
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let _lock = store.lock()?;
                store.write_atomic(&layout, LAYOUT)?;
            }
            Err(e) => return Err(io_err("read", &layout)(e)),
        }
        if !store.layout.index().exists() {
            let _lock = store.lock()?;
            if !store.layout.index().exists() {
                store.write_index_locked(&crate::model::Index::default())?;
            }
        }
        Ok(store)
    }

    /// The store's root directory.
    pub fn root(&self) -> &Path {
        self.layout.root()
    }

    /// Where everything lives under the root.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Where the blob `digest` lives (whether or not it is there).
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.layout.blob(digest)
    }

    /// Whether the blob is in the store.
    pub fn has_blob(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    /// Opens a blob for reading. `what` describes it for the error when it is missing.
    pub fn open_blob(&self, digest: &Digest, what: &str) -> Result<File, StoreError> {
        let path = self.blob_path(digest);
        File::open(&path).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                StoreError::MissingBlob {
                    digest: digest.clone(),
                    what: what.to_owned(),
                }
            } else {
                io_err("open", path)(e)
            }
        })
    }

    /// Reads a whole blob and checks it against its digest (for small JSON blobs).
    pub fn read_blob(&self, digest: &Digest, what: &str) -> Result<Vec<u8>, StoreError> {
        let mut r = HashingReader::new(self.open_blob(digest, what)?);
        let mut bytes = Vec::new();
        r.read_to_end(&mut bytes)
            .map_err(io_err("read", self.blob_path(digest)))?;
        let (_, actual, actual_size) = r.finish();
        if &actual != digest {
            return Err(StoreError::DigestMismatch {
                what: format!("{what} in the store"),
                expected: digest.clone(),
                expected_size: actual_size,
                actual,
                actual_size,
            });
        }
        Ok(bytes)
    }

    /// Starts a transaction.
    pub fn txn(&self) -> Result<Txn<'_>, StoreError> {
        Txn::new(self)
    }

    /// Writes `bytes` to `path` by way of a temporary file in `tmp/`, fsync and rename.
    pub(crate) fn write_atomic(&self, path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
        let tmp = self.layout.tmp().join(format!(
            "{}-{}.json",
            path.file_stem().and_then(|s| s.to_str()).unwrap_or("file"),
            unique()
        ));
        let result = (|| {
            let mut f = File::create(&tmp).map_err(io_err("create", &tmp))?;
            io::Write::write_all(&mut f, bytes).map_err(io_err("write", &tmp))?;
            f.sync_all().map_err(io_err("fsync", &tmp))?;
            fs::rename(&tmp, path).map_err(io_err("rename into place", path))?;
            sync_dir(path.parent().unwrap_or(self.layout.root()))
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }
}

/// A name unique to this process and moment, for temporary files.
pub(crate) fn unique() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "{}-{}-{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// fsyncs a directory so renames into it are durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("fsync", dir))
}
