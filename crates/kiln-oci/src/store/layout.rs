//! Where everything lives under a store's root: the one place that knows the paths. Every
//! crate asks [`Layout`] (through [`Store::layout`](super::Store::layout)) instead of joining
//! names onto the root by hand.
//!
//! ```text
//! ROOT/
//!   oci-layout, index.json     the OCI image layout (skopeo and umoci read the store as is)
//!   lock                       held while index.json or blobs/ change
//!   blobs/sha256/<hex>         blobs
//!   layer-sizes/sha256/<hex>   a layer's uncompressed content size, once measured
//!   snapshots/<id>/            a layer unpacked: diff_id, fs/, selections/<hex>
//!   cache.db                   the step cache's index (kiln-cache)
//!   cache-mounts/<key>/        a RUN --mount=type=cache: id, lock, data/
//!   steps/<pid>-<nanos>/       a `kiln run` step's directories
//!   failed-steps/<name>/       a failed RUN's filesystem and spec (`kiln build --keep-failed`)
//!   registry-sources/<hex>     repositories (`host/path`) the blob was pulled from or
//!                              pushed to, one a line: the source of a cross-repository mount
//!   tmp/                       transactions (txn-*), atomic writes, scratch of one command;
//!                              download-<hex>/ a registry blob being downloaded (`.lock`
//!                              held by its live owner, `data` kept for a resumed pull)
//! ```

use std::path::{Path, PathBuf};

use kiln_layer::Digest;

/// The paths of a store rooted at one directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    /// The layout of a store at `root` (nothing is read or made).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The store's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `oci-layout`, the image layout's version marker.
    pub fn oci_layout(&self) -> PathBuf {
        self.root.join("oci-layout")
    }

    /// `index.json`, the images and their tags.
    pub fn index(&self) -> PathBuf {
        self.root.join("index.json")
    }

    /// The store lock's file.
    pub fn lock(&self) -> PathBuf {
        self.root.join("lock")
    }

    /// The directory of sha256 blobs.
    pub fn blobs(&self) -> PathBuf {
        self.root.join("blobs/sha256")
    }

    /// Where the blob `digest` lives (whether or not it is there).
    pub fn blob(&self, digest: &Digest) -> PathBuf {
        self.blobs().join(digest.hex())
    }

    /// Where the content size of the layer blob `digest` is recorded.
    pub fn layer_size(&self, digest: &Digest) -> PathBuf {
        self.root.join("layer-sizes/sha256").join(digest.hex())
    }

    /// Where the repositories a blob came from or went to are recorded (kiln-registry).
    pub fn registry_sources(&self, digest: &Digest) -> PathBuf {
        self.root.join("registry-sources").join(digest.hex())
    }

    /// The directory of a registry blob's download in progress: `.lock` (held by the process
    /// downloading it) and `data` (what came so far, kept when the download is cut short so
    /// that the next pull resumes it with a `Range` request).
    pub fn download(&self, digest: &Digest) -> PathBuf {
        self.tmp().join(format!("download-{}", digest.hex()))
    }

    /// The directory of snapshots.
    pub fn snapshots(&self) -> PathBuf {
        self.root.join("snapshots")
    }

    /// The short id naming the snapshot of a layer with this `diff_id`.
    pub fn snapshot_id(diff_id: &Digest) -> &str {
        &diff_id.hex()[..12]
    }

    /// The snapshot directory of the layer whose uncompressed digest is `diff_id` (whether
    /// or not it is there).
    pub fn snapshot(&self, diff_id: &Digest) -> SnapshotDir {
        SnapshotDir(self.snapshots().join(Self::snapshot_id(diff_id)))
    }

    /// The step cache's SQLite index.
    pub fn cache_db(&self) -> PathBuf {
        self.root.join("cache.db")
    }

    /// The directory of RUN cache mounts.
    pub fn cache_mounts(&self) -> PathBuf {
        self.root.join("cache-mounts")
    }

    /// The cache mount whose directory is named `key`.
    pub fn cache_mount(&self, key: &str) -> CacheMountDir {
        CacheMountDir(self.cache_mounts().join(key))
    }

    /// The directory of `kiln run` steps.
    pub fn steps(&self) -> PathBuf {
        self.root.join("steps")
    }

    /// The directory of failed steps' filesystems kept for a look inside.
    pub fn failed_steps(&self) -> PathBuf {
        self.root.join("failed-steps")
    }

    /// A new name in `failed-steps/`: `<what>-<unique>`.
    pub fn failed_step(&self, what: &str) -> PathBuf {
        self.failed_steps()
            .join(format!("{what}-{}", super::unique()))
    }

    /// What a rootless kiln found when it probed overlayfs in its user namespace on this
    /// store's filesystem: `overlay` or `naive` (probed once per store).
    pub fn overlay_probe(&self) -> PathBuf {
        self.root.join("overlay-probe")
    }

    /// The directory of temporary files and transactions.
    pub fn tmp(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// A name in `tmp/` unique to this process and moment: `<what>-<unique>`.
    pub fn tmp_unique(&self, what: &str) -> PathBuf {
        self.tmp().join(format!("{what}-{}", super::unique()))
    }
}

/// One snapshot's directory: `diff_id` (the marker, written last: the snapshot is complete
/// when it names the layer), `fs/` (the layer unpacked), `shares` (the snapshots whose files
/// it hard-links, when any) and `selections/` (memos).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotDir(PathBuf);

impl SnapshotDir {
    /// The promise of this snapshot, beside it (`snapshots/<id>.pending`): the layer to
    /// unpack it from (its descriptor and `diff_id`, JSON) when a stack first needs it. A cache
    /// hit records one instead of unpacking; `snapshot::shares::separate`, through which
    /// every stack is used, keeps it.
    pub fn pending(&self) -> PathBuf {
        self.0.with_extension("pending")
    }

    /// A snapshot directory at `dir` (a temporary one being filled, say).
    pub fn at(dir: impl Into<PathBuf>) -> Self {
        Self(dir.into())
    }

    /// The snapshot's own directory.
    pub fn dir(&self) -> &Path {
        &self.0
    }

    /// The marker naming the layer's diff id.
    pub fn marker(&self) -> PathBuf {
        self.0.join("diff_id")
    }

    /// The layer, unpacked: what a lower dir shows.
    pub fn tree(&self) -> PathBuf {
        self.0.join("fs")
    }

    /// The ids of the snapshots whose inodes this one's tree shares (hard links to their
    /// files), one per line; absent when it shares none.
    pub fn shares(&self) -> PathBuf {
        self.0.join("shares")
    }

    /// Memos of what the stack topped by this snapshot shows.
    pub fn selections(&self) -> PathBuf {
        self.0.join("selections")
    }

    /// Whether this is the complete snapshot of `diff_id`: `Ok(None)` when there is no
    /// marker, `Ok(Some(false))` when it names another layer.
    pub fn holds(&self, diff_id: &Digest) -> std::io::Result<Option<bool>> {
        match std::fs::read_to_string(self.marker()) {
            Ok(found) => Ok(Some(found.trim() == diff_id.to_string())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// One RUN cache mount's directory: `id` (the user's id, for `kiln du`), `lock` and `data/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheMountDir(PathBuf);

impl CacheMountDir {
    /// The mount's own directory.
    pub fn dir(&self) -> &Path {
        &self.0
    }

    /// The file naming the mount's id.
    pub fn id(&self) -> PathBuf {
        self.0.join("id")
    }

    /// The lock file of `sharing=locked`.
    pub fn lock(&self) -> PathBuf {
        self.0.join("lock")
    }

    /// What the RUN sees.
    pub fn data(&self) -> PathBuf {
        self.0.join("data")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_under_the_root() {
        let l = Layout::new("/s");
        let d = Digest::of(b"x");
        assert_eq!(
            l.blob(&d),
            PathBuf::from(format!("/s/blobs/sha256/{}", d.hex()))
        );
        assert_eq!(
            l.layer_size(&d),
            PathBuf::from(format!("/s/layer-sizes/sha256/{}", d.hex()))
        );
        assert_eq!(
            l.snapshot(&d).tree(),
            PathBuf::from(format!("/s/snapshots/{}/fs", &d.hex()[..12]))
        );
        assert_eq!(
            l.cache_mount("k").data(),
            PathBuf::from("/s/cache-mounts/k/data")
        );
        assert!(l.tmp_unique("export").starts_with("/s/tmp"));
        assert_ne!(l.tmp_unique("export"), l.tmp_unique("export"));
    }
}
