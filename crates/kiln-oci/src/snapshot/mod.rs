//! Snapshots: each layer of the store unpacked once, as an overlayfs lower dir, and reused by
//! every later step and build.
//!
//! On-disk layout, beside the OCI layout in the store root:
//! ```text
//! snapshots/<id>/fs         the layer unpacked in overlay's format (whiteouts are 0/0
//!                           character devices, opaque dirs carry trusted.overlay.opaque=y)
//! snapshots/<id>/diff_id    the layer's uncompressed digest (`sha256:<hex>`), checked on use
//! snapshots/<id>/shares     the ids of the snapshots whose files `fs/` hard-links, when any
//!                           (see [`shares`])
//! snapshots/<id>/selections/<key>
//!                           a digest a caller computed from the stack with this snapshot on
//!                           top and a selector, and asked to keep ([`Snapshots::selection`]):
//!                           snapshots never change, so neither does it
//! snapshots/tmp-*/          an unpack in progress; renamed to `<id>` when complete
//! ```
//! `<id>` is the first 12 hex digits of the `diff_id`: short on purpose, because overlay's
//! mount options (every lower dir, `:`-separated) must fit in one page even for images of
//! 100+ layers, and the sandbox mounts them relative to `snapshots/`. A snapshot is visible
//! under its id only once complete and verified against its `diff_id`; two processes unpacking
//! the same layer race harmlessly (the loser's copy is removed).

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use kiln_layer::LinkFrom;
use kiln_layer::apply::ApplyStats;
use kiln_layer::{Digest, HashingReader};

use crate::error::StoreError;
use crate::image::Image;
use crate::model::Descriptor;
use crate::store::{Layout, SnapshotDir, Store};

pub mod shares;

/// Errors of preparing snapshots.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// The store could not provide the layer.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A filesystem operation on the snapshot directory failed.
    #[error(transparent)]
    Io(#[from] kiln_io::IoError),
    /// The layer could not be unpacked.
    #[error("cannot unpack layer `{digest}` into a snapshot")]
    Unpack {
        /// The layer blob.
        digest: Digest,
        /// The cause.
        #[source]
        source: kiln_layer::overlay::OverlayError,
    },
    /// The uncompressed layer does not have the `diff_id` the image config gives it.
    #[error(
        "layer `{digest}` unpacks to `{actual}`, but the image says its diff_id is `{expected}`"
    )]
    DiffIdMismatch {
        /// The layer blob.
        digest: Digest,
        /// The config's `diff_id`.
        expected: Digest,
        /// The digest of the uncompressed stream.
        actual: Digest,
    },
    /// The image config's `rootfs.diff_ids` does not match its manifest's layers.
    #[error("image `{image}` has {layers} layers but {diff_ids} diff_ids")]
    Mismatched {
        /// The image id.
        image: Digest,
        /// Layers in the manifest.
        layers: usize,
        /// Entries in `rootfs.diff_ids`.
        diff_ids: usize,
    },
    /// An existing snapshot dir belongs to another `diff_id` (a 48-bit prefix collision).
    #[error("snapshot `{path}` holds `{found}`, not `{wanted}`")]
    Collision {
        /// The snapshot dir.
        path: PathBuf,
        /// What it holds.
        found: String,
        /// The `diff_id` asked for.
        wanted: Digest,
    },
}

fn io_err<'a>(
    action: &'static str,
    path: &'a Path,
) -> impl FnOnce(io::Error) -> SnapshotError + 'a {
    let err = kiln_io::io_err(action, path);
    move |source| SnapshotError::Io(err(source))
}

/// The snapshot directory of a store.
#[derive(Debug, Clone)]
pub struct Snapshots {
    store: Store,
    dir: PathBuf,
}

impl Snapshots {
    /// The snapshots of `store` (the directory is created when missing).
    pub fn new(store: &Store) -> Result<Self, SnapshotError> {
        let dir = store.layout().snapshots();
        fs::create_dir_all(&dir).map_err(io_err("create", &dir))?;
        Ok(Self {
            store: store.clone(),
            dir,
        })
    }

    /// `snapshots/` itself: the directory the sandbox makes lower dirs relative to.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The unpacked tree of `layer` (whose uncompressed digest is `diff_id`), unpacking it
    /// first when no snapshot has it yet.
    pub fn ensure(&self, layer: &Descriptor, diff_id: &Digest) -> Result<PathBuf, SnapshotError> {
        let tree = self.publish(diff_id, |tmp| self.unpack(layer, diff_id, tmp))?;
        let _ = fs::remove_file(self.store.layout().snapshot(diff_id).pending());
        Ok(tree)
    }

    /// The tree `layer`'s snapshot has or will have, without unpacking it: when it is not
    /// there yet, a promise (`SnapshotDir::pending`) that [`keep_promises`] keeps when a stack
    /// that holds it is first used. A step that hits the cache and whose layer no later step
    /// reads (the last steps of the final stage, most of the time) is never unpacked.
    pub fn promise(&self, layer: &Descriptor, diff_id: &Digest) -> Result<PathBuf, SnapshotError> {
        let home = self.store.layout().snapshot(diff_id);
        if let Some(tree) = existing(&home, diff_id)? {
            return Ok(tree);
        }
        let pending = home.pending();
        let body = serde_json::to_vec(&Promise {
            layer: layer.clone(),
            diff_id: diff_id.to_string(),
        })
        .map_err(|e| io_err("write", &pending)(io::Error::other(e)))?;
        let tmp = self.dir.join(format!(
            "tmp-{}-{}.pending",
            std::process::id(),
            TMP_SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        fs::write(&tmp, body).map_err(io_err("write", &tmp))?;
        fs::rename(&tmp, &pending).map_err(io_err("rename into place", &pending))?;
        Ok(home.tree())
    }

    /// The snapshot of `layer` (whose uncompressed digest is `diff_id`) unpacked from
    /// `stream`, its bytes (compressed or plain) as they arrive: a registry download that
    /// writes and hashes the blob while this unpacks it, so the blob is read once. The
    /// uncompressed bytes are checked against `diff_id`, and `stream` is read to its end
    /// before the snapshot is published, so a stream that fails at its end (its own digest
    /// check) keeps the snapshot from being published. When the snapshot exists already,
    /// `stream` is not read at all. `path` names the stream in errors.
    pub fn ensure_from_stream(
        &self,
        layer: &Descriptor,
        diff_id: &Digest,
        path: &Path,
        mut stream: impl io::Read,
    ) -> Result<PathBuf, SnapshotError> {
        self.publish(diff_id, |tmp| {
            Self::unpack_reader(&mut stream, path, &layer.digest, diff_id, true, tmp, None)?;
            io::copy(&mut stream, &mut io::sink()).map_err(io_err("read", path))?;
            Ok(())
        })
    }

    /// The tree of the complete snapshot of `diff_id`, when there is one (nothing is
    /// unpacked).
    pub fn existing(&self, diff_id: &Digest) -> Option<PathBuf> {
        existing(&self.store.layout().snapshot(diff_id), diff_id)
            .ok()
            .flatten()
    }

    /// The snapshot of a layer that is not in the store yet (a build's new layer, still in its
    /// transaction): unpacked from the compressed or plain layer file at `file`, its regular
    /// files hard-linked from `link_from` where they are there, so a file is created once:
    /// a RUN's from the tree it was diffed from ([`LinkFrom::Adopt`]), a `COPY --from`'s
    /// from the snapshots it copies ([`LinkFrom::Share`], whose families `shares` names: see
    /// [`shares`]). Returns the snapshot's tree and, when this call made it, what the unpack
    /// did.
    pub fn ensure_from_file(
        &self,
        file: &Path,
        diff_id: &Digest,
        link_from: Option<LinkFrom>,
        shares: &BTreeSet<String>,
    ) -> Result<(PathBuf, Option<ApplyStats>), SnapshotError> {
        let mut stats = None;
        let tree = self.publish(diff_id, |tmp| {
            let f = fs::File::open(file).map_err(io_err("open", file))?;
            // The writer computed `diff_id` from these very bytes a moment ago: not again.
            let done =
                Self::unpack_reader(f, file, &Digest::of(b""), diff_id, false, tmp, link_from)?;
            if done.linked > 0 {
                shares::record(tmp, shares)?;
            }
            stats = Some(done);
            Ok(())
        })?;
        Ok((tree, stats))
    }

    /// Make the snapshot of `diff_id` exist: use it when complete, else let `fill` populate a
    /// fresh temporary directory (with `fs/` and the `diff_id` marker) and rename it into place.
    fn publish(
        &self,
        diff_id: &Digest,
        fill: impl FnOnce(&Path) -> Result<(), SnapshotError>,
    ) -> Result<PathBuf, SnapshotError> {
        let home = self.store.layout().snapshot(diff_id);
        if let Some(path) = existing(&home, diff_id)? {
            return Ok(path);
        }
        let tmp = self.dir.join(format!(
            "tmp-{}-{}-{}",
            std::process::id(),
            Layout::snapshot_id(diff_id),
            TMP_SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&tmp);
        fs::create_dir_all(&tmp).map_err(io_err("create", &tmp))?;
        if let Err(e) = fill(&tmp) {
            let _ = fs::remove_dir_all(&tmp);
            return Err(e);
        }
        match fs::rename(&tmp, home.dir()) {
            Ok(()) => {}
            // Another process or thread finished first: use theirs.
            Err(e) if home.dir().is_dir() => {
                let _ = fs::remove_dir_all(&tmp);
                if existing(&home, diff_id)?.is_none() {
                    return Err(io_err("rename into place", home.dir())(e));
                }
            }
            Err(e) => {
                let _ = fs::remove_dir_all(&tmp);
                return Err(io_err("rename into place", home.dir())(e));
            }
        }
        Ok(home.tree())
    }

    /// Something a caller derives from what the stack `lowers` (snapshot `fs` dirs of this
    /// store, topmost first) shows at `selector` (a Merkle hash of a path, say): made by
    /// `compute` (the value and its encoding) the first time, kept beside the top snapshot as
    /// `selections/<key>`, and read back with `decode` afterwards. `<key>` is the SHA-256 of
    /// the stack's paths and the selector, each as its length (u64, little endian) and its
    /// bytes; the selector must say how the value is derived, with a version.
    ///
    /// Snapshots never change, so a kept value stays true until its snapshot goes (and the
    /// memo with it). A stack outside this store, or empty, is computed every time; a memo
    /// that cannot be read, decoded or written only costs the computation.
    pub fn selection<T, E>(
        &self,
        lowers: &[PathBuf],
        selector: &str,
        decode: impl FnOnce(&[u8]) -> Option<T>,
        compute: impl FnOnce() -> Result<(T, Vec<u8>), E>,
    ) -> Result<T, E> {
        let Some(memo) = self.selection_path(lowers, selector) else {
            return compute().map(|(v, _)| v);
        };
        let dir = memo.parent().unwrap_or(&self.dir).to_owned();
        if let Some(v) = fs::read(&memo).ok().and_then(|b| decode(&b)) {
            return Ok(v);
        }
        let (value, bytes) = compute()?;
        let tmp = dir.join(format!(
            "tmp-{}-{}",
            std::process::id(),
            TMP_SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let written = fs::create_dir_all(&dir)
            .and_then(|()| fs::write(&tmp, &bytes))
            .and_then(|()| fs::rename(&tmp, &memo));
        if written.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        Ok(value)
    }

    /// Where [`Self::selection`] keeps what it computed for `lowers` and `selector` (whether
    /// or not it is there); `None` for a stack it does not keep (outside this store, or
    /// empty).
    pub fn selection_path(&self, lowers: &[PathBuf], selector: &str) -> Option<PathBuf> {
        let home = lowers
            .first()
            .filter(|_| lowers.iter().all(|l| l.starts_with(&self.dir)))
            .and_then(|top| top.parent())?;
        let mut key = Vec::new();
        for part in lowers
            .iter()
            .map(|l| l.as_os_str().as_encoded_bytes())
            .chain([selector.as_bytes()])
        {
            key.extend_from_slice(&(part.len() as u64).to_le_bytes());
            key.extend_from_slice(part);
        }
        Some(
            SnapshotDir::at(home)
                .selections()
                .join(Digest::of(&key).hex()),
        )
    }

    /// The `diff_id`s of the stack `lowers` (snapshot trees of this store, topmost first),
    /// from each snapshot's marker or, for one only promised yet, its promise: nothing is
    /// unpacked. `None` when one is not a snapshot of this store.
    pub fn stack_diff_ids(&self, lowers: &[PathBuf]) -> Option<Vec<Digest>> {
        lowers
            .iter()
            .map(|tree| {
                let dir = tree.parent().filter(|d| d.parent() == Some(&*self.dir))?;
                let home = SnapshotDir::at(dir);
                let text = if let Ok(t) = fs::read_to_string(home.marker()) {
                    t
                } else {
                    let body = fs::read(home.pending()).ok()?;
                    serde_json::from_slice::<Promise>(&body).ok()?.diff_id
                };
                text.trim().parse().ok()
            })
            .collect()
    }

    /// The snapshots of every layer of `image`, topmost first (overlay's `lowerdir` order), one
    /// per layer: a layer that repeats is there twice, so pass the list through
    /// [`kiln_layer::overlay::unique_stack`] before mounting it.
    pub fn ensure_image(&self, image: &Image) -> Result<Vec<PathBuf>, SnapshotError> {
        let todo = image_layers(image)?;
        let mut out = in_parallel(&todo, |(layer, diff_id)| self.ensure(layer, diff_id))?;
        out.reverse();
        Ok(out)
    }

    /// As [`Self::ensure_image`], but a layer not unpacked yet is only promised
    /// ([`Self::promise`]): a build's base image is unpacked when a step first uses it, and
    /// not at all when every step hits the cache.
    pub fn promise_image(&self, image: &Image) -> Result<Vec<PathBuf>, SnapshotError> {
        let mut out = image_layers(image)?
            .into_iter()
            .map(|(layer, diff_id)| self.promise(layer, &diff_id))
            .collect::<Result<Vec<_>, _>>()?;
        out.reverse();
        Ok(out)
    }

    fn unpack(
        &self,
        layer: &Descriptor,
        diff_id: &Digest,
        tmp: &Path,
    ) -> Result<(), SnapshotError> {
        let blob = self
            .store
            .open_blob(&layer.digest, &format!("layer `{}`", layer.digest))?;
        Self::unpack_reader(
            blob,
            &self.store.blob_path(&layer.digest),
            &layer.digest,
            diff_id,
            true,
            tmp,
            None,
        )
        .map(drop)
    }

    /// Unpack a layer stream (plain or compressed) into `tmp/fs`, check its `diff_id` (when
    /// `verify`: not for a layer this process just wrote and hashed) and write the marker.
    /// `path` and `digest` name the layer in errors.
    fn unpack_reader(
        reader: impl io::Read,
        path: &Path,
        digest: &Digest,
        diff_id: &Digest,
        verify: bool,
        tmp: &Path,
        link_from: Option<LinkFrom>,
    ) -> Result<ApplyStats, SnapshotError> {
        let fs_dir = SnapshotDir::at(tmp).tree();
        fs::create_dir_all(&fs_dir).map_err(io_err("create", &fs_dir))?;
        let (plain, _) = kiln_layer::decompress(io::BufReader::with_capacity(1 << 20, reader))
            .map_err(io_err("read", path))?;
        let unpack_err = |source| SnapshotError::Unpack {
            digest: digest.clone(),
            source,
        };
        let stats = if verify {
            let mut hashing = HashingReader::new(plain);
            let stats = kiln_layer::overlay::unpack_lower(&mut hashing, &fs_dir, link_from)
                .map_err(unpack_err)?;
            // The tar reader stops at the end-of-archive marker; the diff_id covers every byte.
            io::copy(&mut hashing, &mut io::sink()).map_err(io_err("read", path))?;
            let (_, actual, _) = hashing.finish();
            if &actual != diff_id {
                return Err(SnapshotError::DiffIdMismatch {
                    digest: digest.clone(),
                    expected: diff_id.clone(),
                    actual,
                });
            }
            stats
        } else {
            kiln_layer::overlay::unpack_lower(plain, &fs_dir, link_from).map_err(unpack_err)?
        };
        let marker = SnapshotDir::at(tmp).marker();
        fs::write(&marker, diff_id.to_string()).map_err(io_err("write", &marker))?;
        Ok(stats)
    }
}

/// Distinguishes temporary directories of threads of one process.
static TMP_SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// The tree of a complete snapshot at `home`, `None` when there is none.
/// What a promised snapshot is unpacked from (see [`Snapshots::promise`]).
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Promise {
    layer: Descriptor,
    diff_id: String,
}

/// Unpacks every snapshot of `lowers` (snapshot trees, `snapshots/<id>/fs`) that is only
/// promised yet ([`Snapshots::promise`]). Called where a stack is first used
/// ([`shares::separate`]).
pub fn keep_promises(lowers: &[PathBuf]) -> Result<(), SnapshotError> {
    let mut todo = Vec::new();
    let mut root = None;
    for tree in lowers {
        let Some(dir) = tree.parent() else { continue };
        let home = SnapshotDir::at(dir);
        let pending = home.pending();
        let Ok(body) = fs::read(&pending) else {
            continue;
        };
        let promise: Promise = serde_json::from_slice(&body)
            .map_err(|e| io_err("read", &pending)(io::Error::other(e)))?;
        let diff_id: Digest = promise
            .diff_id
            .parse()
            .map_err(|_| io_err("read", &pending)(io::ErrorKind::InvalidData.into()))?;
        if existing(&home, &diff_id)?.is_some() {
            let _ = fs::remove_file(&pending);
            continue;
        }
        root = Some(
            dir.parent()
                .and_then(Path::parent)
                .ok_or_else(|| io_err("find the store of", dir)(io::ErrorKind::NotFound.into()))?,
        );
        todo.push((promise.layer, diff_id));
    }
    let Some(root) = root else { return Ok(()) };
    // A stack's snapshots are one store's: it is opened once, and its promises kept at once.
    let store = Store::open(root)
        .map_err(|e| io_err("open the store of", root)(io::Error::other(e.to_string())))?;
    let snapshots = Snapshots::new(&store)?;
    in_parallel(&todo, |(layer, diff_id)| snapshots.ensure(layer, diff_id)).map(drop)
}

/// The layers of `image` with their `diff_id`s, bottom first.
fn image_layers(image: &Image) -> Result<Vec<(&Descriptor, Digest)>, SnapshotError> {
    let layers = &image.manifest.layers;
    let diff_ids = &image.config.rootfs.diff_ids;
    if layers.len() != diff_ids.len() {
        return Err(SnapshotError::Mismatched {
            image: image.id().clone(),
            layers: layers.len(),
            diff_ids: diff_ids.len(),
        });
    }
    layers
        .iter()
        .zip(diff_ids)
        .map(|(layer, diff_id)| {
            let diff_id = Digest::from_hex(diff_id.strip_prefix("sha256:").unwrap_or(diff_id))
                .map_err(|e| {
                    SnapshotError::Io(kiln_io::IoError {
                        action: "parse the diff_id of",
                        path: PathBuf::from(layer.digest.to_string()),
                        source: io::Error::other(e),
                    })
                })?;
            Ok((layer, diff_id))
        })
        .collect()
}

/// `f` of every item, in order: layers unpack independently, so as many at once as there are
/// cores, each worker taking the next item not yet taken.
fn in_parallel<T: Sync, R: Send>(
    items: &[T],
    f: impl Fn(&T) -> Result<R, SnapshotError> + Sync,
) -> Result<Vec<R>, SnapshotError> {
    let workers = std::thread::available_parallelism()
        .map_or(1, std::num::NonZero::get)
        .min(items.len());
    if workers <= 1 {
        return items.iter().map(f).collect();
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut done: Vec<(usize, Result<R, SnapshotError>)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                s.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(item) = items.get(i) else {
                            return mine;
                        };
                        mine.push((i, f(item)));
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, r)| r).collect()
}

fn existing(home: &SnapshotDir, diff_id: &Digest) -> Result<Option<PathBuf>, SnapshotError> {
    match home.holds(diff_id) {
        Ok(Some(true)) => Ok(Some(home.tree())),
        Ok(Some(false)) => Err(SnapshotError::Collision {
            path: home.dir().to_owned(),
            found: fs::read_to_string(home.marker())
                .unwrap_or_default()
                .trim()
                .to_owned(),
            wanted: diff_id.clone(),
        }),
        Ok(None) => Ok(None),
        Err(e) => Err(io_err("read", &home.marker())(e)),
    }
}
