//! An image read from the store: its manifest, its config, its tags.

use kiln_layer::Digest;

use crate::config::ImageConfig;
use crate::error::StoreError;
use crate::media;
use crate::model::{Descriptor, Index, Manifest};
use crate::reference::Reference;
use crate::store::Store;

/// An image of the store, fully read and checked against its digests.
#[derive(Debug, Clone)]
pub struct Image {
    /// The `index.json` entry (annotations removed): a manifest, or an index for
    /// multi-platform images.
    pub descriptor: Descriptor,
    /// The manifest for this machine's platform (the entry itself for single-platform images).
    pub manifest_descriptor: Descriptor,
    /// The manifest.
    pub manifest: Manifest,
    /// The config blob's bytes, exactly as stored.
    pub config_bytes: Vec<u8>,
    /// The parsed config.
    pub config: ImageConfig,
    /// The references that name this image.
    pub tags: Vec<Reference>,
}

impl Image {
    /// Reads the image `descriptor` points at.
    pub fn read(
        store: &Store,
        descriptor: &Descriptor,
        tags: Vec<Reference>,
    ) -> Result<Self, StoreError> {
        let manifest_descriptor = if media::is_index(&descriptor.media_type) {
            let what = format!("index `{}`", descriptor.digest);
            let bytes = store.read_blob(&descriptor.digest, &what)?;
            let index: Index =
                serde_json::from_slice(&bytes).map_err(|source| StoreError::Json {
                    what: what.clone(),
                    source,
                })?;
            pick_platform(&index).ok_or_else(|| StoreError::NoSuchImage {
                name: format!(
                    "{} (no linux/{} manifest in it)",
                    descriptor.digest,
                    host_arch()
                ),
            })?
        } else {
            descriptor.clone()
        };
        let manifest = Self::read_manifest(store, &manifest_descriptor)?;
        if !media::is_config(&manifest.config.media_type) {
            return Err(StoreError::UnknownMediaType {
                what: format!("config of manifest `{}`", manifest_descriptor.digest),
                media_type: manifest.config.media_type.clone(),
            });
        }
        let what = format!("config `{}`", manifest.config.digest);
        let config_bytes = store.read_blob(&manifest.config.digest, &what)?;
        let config = ImageConfig::from_slice(&config_bytes)
            .map_err(|source| StoreError::Json { what, source })?;
        let mut bare = descriptor.clone();
        bare.annotations.clear();
        Ok(Self {
            descriptor: bare,
            manifest_descriptor,
            manifest,
            config_bytes,
            config,
            tags,
        })
    }

    /// Reads and checks a manifest blob.
    pub fn read_manifest(store: &Store, d: &Descriptor) -> Result<Manifest, StoreError> {
        if !media::is_manifest(&d.media_type) {
            return Err(StoreError::UnknownMediaType {
                what: format!("manifest `{}`", d.digest),
                media_type: d.media_type.clone(),
            });
        }
        let what = format!("manifest `{}`", d.digest);
        let bytes = store.read_blob(&d.digest, &what)?;
        let m: Manifest = serde_json::from_slice(&bytes).map_err(|source| StoreError::Json {
            what: what.clone(),
            source,
        })?;
        for l in &m.layers {
            if media::layer_compression(&l.media_type).is_none() {
                return Err(StoreError::UnknownMediaType {
                    what: format!("layer `{}` of {what}", l.digest),
                    media_type: l.media_type.clone(),
                });
            }
        }
        Ok(m)
    }

    /// The image id: the config's digest, as Docker shows it.
    pub fn id(&self) -> &Digest {
        &self.manifest.config.digest
    }

    /// The digest of the `index.json` entry (manifest or index): kiln's `Digest`.
    pub fn digest(&self) -> &Digest {
        &self.descriptor.digest
    }

    /// The size Docker shows for the image: its layers' content sizes
    /// ([`Store::layer_size`]), summed. Not the blobs' (compressed) sizes.
    pub fn content_size(&self, store: &Store) -> Result<u64, StoreError> {
        self.manifest
            .layers
            .iter()
            .map(|l| store.layer_size(&l.digest))
            .sum()
    }
}

/// This machine's architecture in OCI terms.
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

pub(crate) fn pick_platform(index: &Index) -> Option<Descriptor> {
    let manifests = index
        .manifests
        .iter()
        .filter(|d| media::is_manifest(&d.media_type));
    let mut first = None;
    for d in manifests {
        first.get_or_insert_with(|| d.clone());
        if let Some(p) = &d.platform
            && p.os == "linux"
            && p.architecture == host_arch()
        {
            return Some(d.clone());
        }
    }
    first
}
