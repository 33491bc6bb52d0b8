//! Pulling an image into the store.
//!
//! The manifest is resolved (an index or manifest list to the platform asked for); the
//! config and the layers the store lacks are downloaded, `jobs` layers at once, each in one
//! pass: its bytes are written to `tmp/download-<hex>/data` and hashed as they arrive and, when
//! asked, decompressed and unpacked into its snapshot on the way (so a build FROM the image
//! unpacks nothing, and no blob is read back from disk). A layer's snapshot is published
//! only once its blob matched its digest and size and its uncompressed bytes their
//! `diff_id`. A download cut short is kept, so the next pull resumes it with a `Range`
//! request (reading back what it holds into the unpacker first). Every layer is staged in
//! one store transaction for the whole image, which also stores the manifest (and the index)
//! and points the tag at the platform's manifest: `index.json` is written once per pull.
//! Mirrors are tried in order, then the registry.

use std::fs;
use std::path::Path;
use std::sync::Mutex;

use kiln_layer::Digest;
use kiln_oci::model::Platform;
use kiln_oci::store::Txn;
use kiln_oci::{
    Descriptor, Image, ImageConfig, Index, Manifest, Reference, Snapshots, Store, media,
};
use rustix::fs::FlockOperation;

use crate::error::RegistryError;
use crate::progress::{BlobOutcome, Progress};
use crate::repository::Repository;
use crate::stream::{BlobStream, Source, foreign_urls};
use crate::{Registries, sources};

/// What to pull.
#[derive(Debug, Clone)]
pub struct PullOptions {
    /// The platform of the image an index resolves to; the host's by default.
    pub platform: Platform,
    /// Unpack the layers into snapshots as they arrive (as `kiln load` does), when the
    /// platform is the host's; the default is yes.
    pub unpack: bool,
}

impl Default for PullOptions {
    fn default() -> Self {
        Self {
            platform: Platform {
                architecture: kiln_oci::image::host_arch().to_owned(),
                os: "linux".to_owned(),
                variant: None,
                extra: std::collections::BTreeMap::new(),
            },
            unpack: true,
        }
    }
}

/// What a pull did.
#[derive(Debug, Clone)]
pub struct Pulled {
    /// The reference as tagged in the store (normalized).
    pub reference: Reference,
    /// The digest of what the reference names in the registry: the index's for
    /// multi-platform images (what `docker pull` prints, and what `name@digest` pins).
    pub digest: Digest,
    /// The platform's manifest, as the store's `index.json` has it.
    pub manifest: Descriptor,
    /// The image id (its config's digest).
    pub image_id: Digest,
    /// The host that served it (a mirror, or the registry).
    pub registry: String,
    /// Blobs downloaded.
    pub fetched: usize,
    /// Bytes downloaded.
    pub fetched_bytes: u64,
    /// Blobs the store already had.
    pub present: usize,
}

/// `os/arch[/variant]`.
pub fn platform_string(p: &Platform) -> String {
    match &p.variant {
        Some(v) if !v.is_empty() => format!("{}/{}/{v}", p.os, p.architecture),
        _ => format!("{}/{}", p.os, p.architecture),
    }
}

/// Whether an index entry's platform is the one asked for (an unset variant takes any;
/// `arm64` takes `v8` as no variant).
fn platform_matches(have: &Platform, want: &Platform) -> bool {
    let norm = |p: &Platform| -> Option<String> {
        p.variant
            .clone()
            .filter(|v| !(v.is_empty() || p.architecture == "arm64" && v == "v8"))
    };
    have.os == want.os
        && have.architecture == want.architecture
        && (norm(want).is_none() || norm(have) == norm(want))
}

/// The manifest of `index` for `platform`.
fn pick(index: &Index, platform: &Platform) -> Option<Descriptor> {
    index
        .manifests
        .iter()
        .filter(|d| media::is_manifest(&d.media_type))
        .find(|d| {
            d.platform
                .as_ref()
                .is_some_and(|p| platform_matches(p, platform))
        })
        .cloned()
}

/// The image `reference` names in the store for `platform`, when it is there: a tag, or a
/// digest (of its manifest, or of an index kiln pulled it through). `--pull=missing` uses
/// such an image without asking the registry.
pub fn local_image(
    store: &Store,
    reference: &Reference,
    platform: &Platform,
) -> Result<Option<Image>, RegistryError> {
    let images = store.images()?;
    let find = |digest: &Digest| images.iter().find(|e| &e.descriptor.digest == digest);
    if let Some(d) = &reference.digest {
        if let Some(e) = find(d) {
            return Ok(Some(Image::read(store, &e.descriptor, e.tags.clone())?));
        }
        if store.has_blob(d)
            && let Ok(index) = serde_json::from_slice::<Index>(&store.read_blob(d, "index")?)
            && let Some(m) = pick(&index, platform)
            && let Some(e) = find(&m.digest)
        {
            return Ok(Some(Image::read(store, &e.descriptor, e.tags.clone())?));
        }
        return Ok(None);
    }
    for e in &images {
        if e.tags.contains(reference) {
            return Ok(Some(Image::read(store, &e.descriptor, e.tags.clone())?));
        }
    }
    Ok(None)
}

impl Registries {
    /// The digest of what `reference` names (an index or a manifest), with one HEAD to the
    /// first endpoint that answers (mirrors, then the registry): what `--pull=always`
    /// compares with what the store has.
    pub fn resolve_digest(&self, reference: &Reference) -> Result<Digest, RegistryError> {
        let object = reference.digest.as_ref().map_or_else(
            || reference.tag.clone().unwrap_or_default(),
            ToString::to_string,
        );
        let mut last = None;
        for repo in self.pull_repositories(reference) {
            match repo.head_manifest(&object) {
                Ok(Some((d, _, _))) => return Ok(d),
                Ok(None) => {
                    last = Some(RegistryError::Status {
                        action: "resolve",
                        registry: repo.registry().to_owned(),
                        repository: repo.name().to_owned(),
                        object: object.clone(),
                        status: 404,
                        message: None,
                    });
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.expect("there is always the registry itself"))
    }

    /// Pulls `reference` into `store` (see the module docs) and tags it there; returns what
    /// it did. Mirrors are tried in order, then the registry; the error of the registry
    /// itself is the one returned.
    pub fn pull(
        &self,
        store: &Store,
        reference: &Reference,
        opts: &PullOptions,
        progress: &dyn Progress,
    ) -> Result<Pulled, RegistryError> {
        let repos = self.pull_repositories(reference);
        let count = repos.len();
        let mut last = None;
        for (i, repo) in repos.into_iter().enumerate() {
            match self.pull_from(&repo, store, reference, opts, progress) {
                Ok(p) => return Ok(p),
                // The store's failures are not the mirror's.
                Err(
                    e @ (RegistryError::Store(_)
                    | RegistryError::Snapshot(_)
                    | RegistryError::Io(_)),
                ) => {
                    return Err(e);
                }
                Err(e) if i + 1 < count => last = Some(e),
                Err(e) => {
                    let _ = last;
                    return Err(e);
                }
            }
        }
        unreachable!("the registry itself is always tried")
    }

    fn pull_from(
        &self,
        repo: &Repository,
        store: &Store,
        reference: &Reference,
        opts: &PullOptions,
        progress: &dyn Progress,
    ) -> Result<Pulled, RegistryError> {
        let object = reference.digest.as_ref().map_or_else(
            || reference.tag.clone().unwrap_or_default(),
            ToString::to_string,
        );
        let json_err = |what: String| {
            let registry = repo.registry().to_owned();
            let repository = repo.name().to_owned();
            move |source| RegistryError::Json {
                registry,
                repository,
                what,
                source,
            }
        };
        let top = repo.get_manifest(&object)?;
        let (index_bytes, manifest_desc, manifest_bytes) = if media::is_index(&top.media_type) {
            let index: Index = serde_json::from_slice(&top.bytes)
                .map_err(json_err(format!("index `{}`", top.digest)))?;
            let d = pick(&index, &opts.platform).ok_or_else(|| RegistryError::NoPlatform {
                reference: reference.to_string(),
                platform: platform_string(&opts.platform),
                available: index
                    .manifests
                    .iter()
                    .filter_map(|m| m.platform.as_ref().map(platform_string))
                    .collect::<Vec<_>>()
                    .join(", "),
            })?;
            let bytes = if store.has_blob(&d.digest) {
                store.read_blob(&d.digest, "manifest")?
            } else {
                let m = repo.get_manifest(&d.digest.to_string())?;
                if m.bytes.len() as u64 != d.size {
                    return Err(RegistryError::DigestMismatch {
                        registry: repo.registry().to_owned(),
                        repository: repo.name().to_owned(),
                        digest: d.digest.clone(),
                        size: d.size,
                        actual: m.digest,
                        actual_size: m.bytes.len() as u64,
                    });
                }
                m.bytes
            };
            let mut bare = Descriptor::new(d.media_type.clone(), d.digest.clone(), d.size);
            bare.platform = None;
            (Some(top.bytes), bare, bytes)
        } else if media::is_manifest(&top.media_type) {
            let d = Descriptor::new(
                top.media_type.clone(),
                top.digest.clone(),
                top.bytes.len() as u64,
            );
            (None, d, top.bytes)
        } else {
            return Err(RegistryError::UnsupportedManifest {
                reference: reference.to_string(),
                media_type: top.media_type,
            });
        };
        let manifest: Manifest = serde_json::from_slice(&manifest_bytes)
            .map_err(json_err(format!("manifest `{}`", manifest_desc.digest)))?;
        if !media::is_config(&manifest.config.media_type) {
            return Err(RegistryError::UnsupportedManifest {
                reference: reference.to_string(),
                media_type: manifest.config.media_type.clone(),
            });
        }
        for l in &manifest.layers {
            if media::layer_compression(&l.media_type).is_none() {
                return Err(RegistryError::UnsupportedManifest {
                    reference: format!("{reference} (layer `{}`)", l.digest),
                    media_type: l.media_type.clone(),
                });
            }
        }
        let mut fetched = 0;
        let mut fetched_bytes = 0;
        let mut present = 0;
        let config_bytes = if store.has_blob(&manifest.config.digest) {
            present += 1;
            store.read_blob(&manifest.config.digest, "config")?
        } else {
            progress.blob_started(&manifest.config);
            let b = repo.fetch_blob_bytes(&manifest.config)?;
            progress.blob_finished(&manifest.config, BlobOutcome::Fetched);
            fetched += 1;
            fetched_bytes += b.len() as u64;
            b
        };
        let config = ImageConfig::from_slice(&config_bytes)
            .map_err(json_err(format!("config `{}`", manifest.config.digest)))?;
        let unpack = opts.unpack
            && opts.platform.os == "linux"
            && opts.platform.architecture == kiln_oci::image::host_arch()
            && config.rootfs.diff_ids.len() == manifest.layers.len();
        // One transaction for the whole image: the layers are staged in it as they arrive.
        let txn = Mutex::new(store.txn()?);
        let layers = self.fetch_layers(repo, store, &txn, &manifest, &config, unpack, progress)?;
        fetched += layers.0;
        fetched_bytes += layers.1;
        present += layers.2;

        let mut txn = txn
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(b) = &index_bytes {
            txn.put_bytes(b, Some(&top.digest), "index")?;
        }
        txn.put_bytes(&manifest_bytes, Some(&manifest_desc.digest), "manifest")?;
        txn.put_bytes(&config_bytes, Some(&manifest.config.digest), "config")?;
        let tagged = if reference.tag.is_some() {
            let mut r = reference.clone();
            r.digest = None;
            Some(r)
        } else {
            None
        };
        txn.commit(|index| {
            match &tagged {
                Some(r) => kiln_oci::store::set_tag(index, r, &manifest_desc),
                None => kiln_oci::store::add_untagged(index, &manifest_desc),
            }
            Ok(())
        })?;
        let mut blobs: Vec<&Digest> = manifest.layers.iter().map(|l| &l.digest).collect();
        blobs.push(&manifest.config.digest);
        sources::record(store, blobs, &reference.repository());
        Ok(Pulled {
            reference: tagged.unwrap_or_else(|| reference.clone()),
            digest: top.digest,
            manifest: manifest_desc,
            image_id: manifest.config.digest.clone(),
            registry: repo.registry().to_owned(),
            fetched,
            fetched_bytes,
            present,
        })
    }

    /// Downloads the layers the store lacks, `jobs` at a time, each unpacked as it arrives
    /// when `unpack` and staged in `txn`; returns (blobs fetched, bytes fetched, blobs
    /// present).
    #[allow(clippy::too_many_arguments)]
    fn fetch_layers(
        &self,
        repo: &Repository,
        store: &Store,
        txn: &Mutex<Txn<'_>>,
        manifest: &Manifest,
        config: &ImageConfig,
        unpack: bool,
        progress: &dyn Progress,
    ) -> Result<(usize, u64, usize), RegistryError> {
        let snapshots = if unpack {
            Some(Snapshots::new(store)?)
        } else {
            None
        };
        let diff_ids: Vec<Option<Digest>> = config
            .rootfs
            .diff_ids
            .iter()
            .map(|d| d.parse().ok())
            .collect();
        let work: Mutex<Vec<(usize, &Descriptor)>> =
            Mutex::new(manifest.layers.iter().enumerate().rev().collect());
        let totals = Mutex::new((0usize, 0u64, 0usize));
        let failure: Mutex<Option<RegistryError>> = Mutex::new(None);
        let threads = self.shared.jobs.min(manifest.layers.len()).max(1);
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(|| {
                    loop {
                        if lock(&failure).is_some() {
                            return;
                        }
                        let Some((i, layer)) = lock(&work).pop() else {
                            return;
                        };
                        let snap = snapshots
                            .as_ref()
                            .zip(diff_ids.get(i).and_then(Option::as_ref));
                        match fetch_layer(repo, store, txn, layer, snap, progress) {
                            Ok(got) => {
                                let mut t = lock(&totals);
                                if got {
                                    t.0 += 1;
                                    t.1 += layer.size;
                                } else {
                                    t.2 += 1;
                                }
                            }
                            Err(e) => {
                                lock(&failure).get_or_insert(e);
                                return;
                            }
                        }
                    }
                });
            }
        });
        if let Some(e) = failure
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
        {
            return Err(e);
        }
        Ok(totals
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner))
    }
}

/// `m` locked, whether or not a thread panicked with it.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Makes `txn` (or the store) have `layer`, and its snapshot exist when `snap` names the
/// snapshots and its `diff_id`; whether it was downloaded. A download is written, hashed and
/// unpacked in one pass, synced, and staged in `txn`.
fn fetch_layer(
    repo: &Repository,
    store: &Store,
    txn: &Mutex<Txn<'_>>,
    layer: &Descriptor,
    snap: Option<(&Snapshots, &Digest)>,
    progress: &dyn Progress,
) -> Result<bool, RegistryError> {
    let present = |progress: &dyn Progress| -> Result<bool, RegistryError> {
        if let Some((snaps, diff_id)) = snap {
            snaps.ensure(layer, diff_id)?;
        }
        progress.blob_finished(layer, BlobOutcome::Present);
        Ok(false)
    };
    if store.has_blob(&layer.digest) {
        return present(progress);
    }
    let dir = store.layout().download(&layer.digest);
    // Another process downloading the same blob: wait for it, then use its result when it
    // has committed it (else download it again).
    let held = lock_download(&dir)?;
    // The store, or this pull's transaction (a layer the manifest lists twice).
    if lock(txn).has_blob(&layer.digest) {
        // The directory the wait made again (or a download cut short before) is not needed:
        // removed while locked, as below.
        let _ = fs::remove_dir_all(&dir);
        drop(held);
        return present(progress);
    }
    progress.blob_started(layer);
    let data = dir.join("data");
    let file = download(repo, layer, &data, snap, progress)?;
    file.sync_all().map_err(kiln_io::io_err("fsync", &data))?;
    drop(file);
    lock(txn).adopt_written(
        &data,
        &layer.digest,
        layer.size,
        &format!("layer `{}`", layer.digest),
    )?;
    // Removed while locked: a process waiting for the lock sees that its lock file is gone
    // and starts afresh.
    let _ = fs::remove_dir_all(&dir);
    drop(held);
    progress.blob_finished(layer, BlobOutcome::Fetched);
    Ok(true)
}

/// Creates the download directory `dir` and locks its `.lock`, waiting for another process
/// that holds it; a lock file removed while this one waited is made again and locked anew.
fn lock_download(dir: &Path) -> Result<fs::File, RegistryError> {
    use std::os::unix::fs::MetadataExt as _;
    let lock_path = dir.join(".lock");
    loop {
        fs::create_dir_all(dir).map_err(kiln_io::io_err("create", dir))?;
        let held = fs::File::create(&lock_path).map_err(kiln_io::io_err("create", &lock_path))?;
        rustix::fs::flock(&held, FlockOperation::LockExclusive)
            .map_err(|e| kiln_io::io_err("lock", &lock_path)(e.into()))?;
        let mine = held
            .metadata()
            .map_err(kiln_io::io_err("stat", &lock_path))?
            .ino();
        if fs::metadata(&lock_path).is_ok_and(|m| m.ino() == mine) {
            return Ok(held);
        }
    }
}

/// Downloads `layer` into `data` (unpacking it as it comes when `snap` says so): a foreign
/// (non-distributable) layer from the URLs its descriptor lists first, as Docker does, then
/// from the registry. Returns the written file.
fn download(
    repo: &Repository,
    layer: &Descriptor,
    data: &Path,
    snap: Option<(&Snapshots, &Digest)>,
    progress: &dyn Progress,
) -> Result<fs::File, RegistryError> {
    for url in foreign_urls(layer) {
        match stream(repo, Source::Url(url), layer, data, snap, progress) {
            Ok(f) => return Ok(f),
            // The store's failures are not the URL's.
            Err(e @ (RegistryError::Io(_) | RegistryError::Snapshot(_))) => return Err(e),
            Err(_) => {
                let _ = fs::remove_file(data);
            }
        }
    }
    stream(repo, Source::Registry, layer, data, snap, progress)
}

/// One download of `layer` from `source` into `data`, unpacked on the way when `snap` says
/// so.
fn stream(
    repo: &Repository,
    source: Source<'_>,
    layer: &Descriptor,
    data: &Path,
    snap: Option<(&Snapshots, &Digest)>,
    progress: &dyn Progress,
) -> Result<fs::File, RegistryError> {
    let mut s = BlobStream::open(repo, source, layer, data, progress)?;
    if let Some((snaps, diff_id)) = snap
        && let Err(e) = snaps.ensure_from_stream(layer, diff_id, data, &mut s)
    {
        // The stream's own failure (a digest mismatch, a lost registry) says more.
        return Err(s.take_error().unwrap_or_else(|| e.into()));
    }
    s.finish()
}
