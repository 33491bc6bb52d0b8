//! `index.json`: the lock, reading and writing it, tags, and finding images by name or id.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File, OpenOptions};

use kiln_layer::Digest;
use rustix::fs::FlockOperation;

use super::{Store, sync_dir};
use crate::error::{StoreError, io_err};
use crate::image::Image;
use crate::media;
use crate::model::{Descriptor, Index, REF_NAME};
use crate::reference::Reference;

/// The store lock (`ROOT/lock`, flock exclusive), released on drop.
#[derive(Debug)]
pub struct LockGuard {
    _file: File,
}

/// One image of the store as `kiln images` lists it.
#[derive(Debug, Clone)]
pub struct ImageEntry {
    /// The manifest (or index) descriptor from `index.json`.
    pub descriptor: Descriptor,
    /// The normalized references that point at it, sorted.
    pub tags: Vec<Reference>,
}

impl Store {
    /// Takes the store lock, waiting for other holders (in this or other processes).
    pub fn lock(&self) -> Result<LockGuard, StoreError> {
        let path = self.layout.lock();
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io_err("open", &path))?;
        rustix::fs::flock(&file, FlockOperation::LockExclusive)
            .map_err(|e| io_err("lock", &path)(e.into()))?;
        Ok(LockGuard { _file: file })
    }

    /// Reads `index.json` (a consistent snapshot: it only ever changes by rename).
    pub fn index(&self) -> Result<Index, StoreError> {
        let path = self.layout.index();
        let bytes = fs::read(&path).map_err(io_err("read", &path))?;
        serde_json::from_slice(&bytes).map_err(|source| StoreError::Json {
            what: format!("`{}`", path.display()),
            source,
        })
    }

    /// Writes `index.json` canonically; the caller holds the lock.
    pub(crate) fn write_index_locked(&self, index: &Index) -> Result<(), StoreError> {
        let bytes = crate::canonical::to_vec(index).map_err(|source| StoreError::Json {
            what: "the new `index.json`".to_owned(),
            source,
        })?;
        self.write_atomic(&self.layout.index(), &bytes)
    }

    /// Every image in the index, tagged or not, grouped by descriptor, in index order.
    pub fn images(&self) -> Result<Vec<ImageEntry>, StoreError> {
        let index = self.index()?;
        let mut out: Vec<ImageEntry> = Vec::new();
        for d in index.manifests {
            let tag = d.ref_name().and_then(|r| Reference::parse(r).ok());
            if let Some(e) = out.iter_mut().find(|e| e.descriptor.digest == d.digest) {
                e.tags.extend(tag);
                e.tags.sort();
                continue;
            }
            let mut bare = d.clone();
            bare.annotations.remove(REF_NAME);
            out.push(ImageEntry {
                descriptor: bare,
                tags: tag.into_iter().collect(),
            });
        }
        Ok(out)
    }

    /// Finds an image by reference (`busybox`, `local/x:1`), by manifest digest, or by image id
    /// (config digest) or a prefix of at least 4 hex digits of either.
    pub fn resolve(&self, name: &str) -> Result<Image, StoreError> {
        let images = self.images()?;
        let hexish = name.strip_prefix("sha256:").unwrap_or(name);
        let looks_like_id = hexish.len() >= 4
            && hexish
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !name.contains(['/', ':']) || name.starts_with("sha256:") {
            if looks_like_id {
                let mut found: Vec<Image> = Vec::new();
                for e in &images {
                    let img = Image::read(self, &e.descriptor, e.tags.clone())?;
                    if (img.id().hex().starts_with(hexish)
                        || img.digest().hex().starts_with(hexish))
                        && !found.iter().any(|f| f.digest() == img.digest())
                    {
                        found.push(img);
                    }
                }
                match found.len() {
                    1 => return Ok(found.remove(0)),
                    0 => {}
                    _ => {
                        return Err(StoreError::Ambiguous {
                            name: name.to_owned(),
                        });
                    }
                }
            }
            if name.starts_with("sha256:") {
                return Err(StoreError::NoSuchImage {
                    name: name.to_owned(),
                });
            }
        }
        let reference = Reference::parse(name)?;
        for e in images {
            let matches = match &reference.digest {
                Some(d) => &e.descriptor.digest == d,
                None => e.tags.contains(&reference),
            };
            if matches {
                return Image::read(self, &e.descriptor, e.tags);
            }
        }
        Err(StoreError::NoSuchImage {
            name: name.to_owned(),
        })
    }

    /// Points `reference` at `descriptor` (a manifest already in the store), replacing what
    /// it pointed at before.
    pub fn tag(&self, reference: &Reference, descriptor: &Descriptor) -> Result<(), StoreError> {
        let txn = self.txn()?;
        txn.commit(|index| {
            set_tag(index, reference, descriptor);
            Ok(())
        })
    }

    /// Removes the tags `references` point at, or, for an image named by id, every tag of it.
    /// Blobs no longer reachable from any `index.json` entry and reachable from the removed
    /// image are deleted; other blobs (for example a build cache's layers) are left alone.
    /// Returns the references removed and the blobs deleted.
    pub fn remove(
        &self,
        image: &Image,
        only: Option<&Reference>,
    ) -> Result<(Vec<Reference>, Vec<Digest>), StoreError> {
        let _lock = self.lock()?;
        let mut index = self.index()?;
        let mut removed = Vec::new();
        index.manifests.retain(|d| {
            if d.digest != *image.digest() {
                return true;
            }
            let r = d.ref_name().and_then(|r| Reference::parse(r).ok());
            let drop = match (only, &r) {
                (Some(o), Some(r)) => o == r,
                (Some(_), None) => false,
                (None, _) => true,
            };
            if drop {
                removed.extend(r);
            }
            !drop
        });
        let still_there = index.manifests.iter().any(|d| d.digest == *image.digest());
        let mut deleted = Vec::new();
        if !still_there {
            let mut keep = BTreeSet::new();
            for d in &index.manifests {
                // A damaged image elsewhere must not stop this removal; it only keeps less.
                if let Ok(set) = self.reachable(d) {
                    keep.extend(set);
                }
            }
            for digest in self.reachable(&image.descriptor)? {
                if !keep.contains(&digest) && self.has_blob(&digest) {
                    self.remove_blob(&digest)?;
                    deleted.push(digest);
                }
            }
            sync_dir(&self.layout.blobs())?;
        }
        self.write_index_locked(&index)?;
        Ok((removed, deleted))
    }

    /// Every blob reachable from `d`: itself, and for manifests their config and layers, for
    /// indexes their manifests, recursively.
    pub fn reachable(&self, d: &Descriptor) -> Result<BTreeSet<Digest>, StoreError> {
        let mut out = BTreeSet::new();
        let mut todo = vec![d.clone()];
        while let Some(d) = todo.pop() {
            if !out.insert(d.digest.clone()) {
                continue;
            }
            if media::is_manifest(&d.media_type) {
                let m = Image::read_manifest(self, &d)?;
                out.insert(m.config.digest.clone());
                out.extend(m.layers.into_iter().map(|l| l.digest));
            } else if media::is_index(&d.media_type) {
                let bytes = self.read_blob(&d.digest, &format!("index `{}`", d.digest))?;
                let i: Index =
                    serde_json::from_slice(&bytes).map_err(|source| StoreError::Json {
                        what: format!("index `{}`", d.digest),
                        source,
                    })?;
                todo.extend(i.manifests);
            }
        }
        Ok(out)
    }
}

/// Sets `reference` to `descriptor` in `index`, removing the tag from wherever it was.
pub fn set_tag(index: &mut Index, reference: &Reference, descriptor: &Descriptor) {
    let name = reference.to_string();
    let previous: Vec<Descriptor> = index
        .manifests
        .iter()
        .filter(|d| d.ref_name() == Some(name.as_str()))
        .cloned()
        .collect();
    index
        .manifests
        .retain(|d| d.ref_name() != Some(name.as_str()));
    // An image that loses its last tag stays, untagged (`<none>`), as Docker keeps it.
    for p in previous {
        if p.digest != descriptor.digest {
            add_untagged(index, &p);
        }
    }
    index
        .manifests
        .retain(|d| !(d.digest == descriptor.digest && d.ref_name().is_none()));
    let mut d = descriptor.clone();
    d.annotations = BTreeMap::from([(REF_NAME.to_owned(), name)]);
    index.manifests.push(d);
}

/// Adds an untagged entry for `descriptor` unless the image is already in the index.
pub fn add_untagged(index: &mut Index, descriptor: &Descriptor) {
    if !index
        .manifests
        .iter()
        .any(|d| d.digest == descriptor.digest)
    {
        let mut d = descriptor.clone();
        d.annotations.clear();
        index.manifests.push(d);
    }
}
