//! Media types kiln reads and writes, and what each one means.

use kiln_layer::Compression;

/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// OCI image config.
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// OCI layer, uncompressed.
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
/// OCI layer, gzip.
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// OCI layer, zstd.
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
/// Docker image manifest, v2 schema 2.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list.
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker image config.
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
/// Docker layer (always gzip in registries; uncompressed in some local exports).
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
/// Docker layer, uncompressed (written by some tools for local images).
pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar";
/// Docker foreign (non-distributable) layer.
pub const DOCKER_LAYER_FOREIGN: &str = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
/// OCI non-distributable layer, gzip (deprecated, still read).
pub const OCI_LAYER_NONDIST_GZIP: &str =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";

/// Which family of media types an image is written with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MediaTypes {
    /// OCI media types, the default.
    #[default]
    Oci,
    /// Docker v2 schema 2 media types, for tools that want them.
    Docker,
}

impl MediaTypes {
    /// The manifest media type of this family.
    pub fn manifest(self) -> &'static str {
        match self {
            Self::Oci => OCI_MANIFEST,
            Self::Docker => DOCKER_MANIFEST,
        }
    }

    /// The config media type of this family.
    pub fn config(self) -> &'static str {
        match self {
            Self::Oci => OCI_CONFIG,
            Self::Docker => DOCKER_CONFIG,
        }
    }

    /// The layer media type of this family for `compression`. Docker has no zstd layer type;
    /// the OCI one is used there too, as BuildKit does.
    pub fn layer(self, compression: Compression) -> &'static str {
        match (self, compression) {
            (Self::Oci, Compression::None) => OCI_LAYER,
            (Self::Oci, Compression::Gzip { .. }) => OCI_LAYER_GZIP,
            (_, Compression::Zstd { .. }) => OCI_LAYER_ZSTD,
            (Self::Docker, Compression::None) => DOCKER_LAYER,
            (Self::Docker, Compression::Gzip { .. }) => DOCKER_LAYER_GZIP,
        }
    }
}

/// Whether `media_type` is a single-image manifest (OCI or Docker).
pub fn is_manifest(media_type: &str) -> bool {
    media_type == OCI_MANIFEST || media_type == DOCKER_MANIFEST
}

/// Whether `media_type` is an index or a manifest list.
pub fn is_index(media_type: &str) -> bool {
    media_type == OCI_INDEX || media_type == DOCKER_MANIFEST_LIST
}

/// Whether `media_type` is an image config.
pub fn is_config(media_type: &str) -> bool {
    media_type == OCI_CONFIG || media_type == DOCKER_CONFIG
}

/// The compression a layer media type declares, or `None` when it is not a layer type kiln
/// knows.
pub fn layer_compression(media_type: &str) -> Option<Compression> {
    match media_type {
        OCI_LAYER | DOCKER_LAYER => Some(Compression::None),
        OCI_LAYER_GZIP | DOCKER_LAYER_GZIP | DOCKER_LAYER_FOREIGN | OCI_LAYER_NONDIST_GZIP => {
            Some(Compression::default())
        }
        OCI_LAYER_ZSTD => Some(Compression::Zstd { level: 3 }),
        _ => None,
    }
}
