//! Descriptors, manifests and indexes (OCI image spec, read leniently for Docker's v2 schema 2).
//!
//! Maps are `BTreeMap`s and unknown fields are kept in `extra`, so reading and rewriting a
//! document keeps what kiln does not model; write them with [`crate::canonical::to_vec`].

use std::collections::BTreeMap;

use kiln_layer::Digest;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The annotation naming a tag in an OCI layout's `index.json`.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// A reference to a blob: what it is, its digest and its size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// The blob's media type.
    pub media_type: String,
    /// The blob's digest.
    #[serde(serialize_with = "ser_digest", deserialize_with = "de_digest")]
    pub digest: Digest,
    /// The blob's length in bytes.
    pub size: u64,
    /// Free-form annotations (tags in `index.json` live here).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// The platform of the image, in indexes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    /// Fields kiln does not model (`urls`, `artifactType`, ...).
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

impl Descriptor {
    /// A descriptor with no annotations and no platform.
    pub fn new(media_type: impl Into<String>, digest: Digest, size: u64) -> Self {
        Self {
            media_type: media_type.into(),
            digest,
            size,
            annotations: BTreeMap::new(),
            platform: None,
            extra: BTreeMap::new(),
        }
    }

    /// The tag this descriptor carries in an index (`org.opencontainers.image.ref.name`).
    pub fn ref_name(&self) -> Option<&str> {
        self.annotations.get(REF_NAME).map(String::as_str)
    }
}

/// An image platform.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    /// CPU architecture (`amd64`, `arm64`, ...).
    pub architecture: String,
    /// Operating system (`linux`).
    pub os: String,
    /// CPU variant (`v8`), when meaningful.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// Fields kiln does not model (`os.version`, `os.features`).
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// An image manifest: one config and its layers, bottom first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// Always 2.
    pub schema_version: u32,
    /// The manifest's own media type (OCI makes it optional; kiln always writes it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// The image config.
    pub config: Descriptor,
    /// The layers, bottom first.
    pub layers: Vec<Descriptor>,
    /// Free-form annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Fields kiln does not model (`subject`, `artifactType`).
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// An image index (OCI) or manifest list (Docker); also the shape of a layout's `index.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    /// Always 2.
    pub schema_version: u32,
    /// The index's media type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// The manifests it lists.
    pub manifests: Vec<Descriptor>,
    /// Free-form annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Fields kiln does not model.
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

impl Default for Index {
    fn default() -> Self {
        Self {
            schema_version: 2,
            media_type: Some(crate::media::OCI_INDEX.to_owned()),
            manifests: Vec::new(),
            annotations: BTreeMap::new(),
            extra: BTreeMap::new(),
        }
    }
}

#[allow(clippy::trivially_copy_pass_by_ref)]
fn ser_digest<S: Serializer>(d: &Digest, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(d)
}

fn de_digest<'de, D: Deserializer<'de>>(d: D) -> Result<Digest, D::Error> {
    let s = String::deserialize(d)?;
    s.parse().map_err(serde::de::Error::custom)
}

/// Serde helpers for digests in kiln's own types.
pub mod digest_serde {
    use super::{Deserializer, Digest, Serializer};

    /// Serializes a digest as `sha256:<hex>`.
    pub fn serialize<S: Serializer>(d: &Digest, s: S) -> Result<S::Ok, S::Error> {
        super::ser_digest(d, s)
    }

    /// Parses `sha256:<hex>`.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Digest, D::Error> {
        super::de_digest(d)
    }
}
