//! Export and import: cache records with their layers, carried through a [`CacheRemote`]
//! (an OCI layout directory, a registry, memory), and the inline cache of an image's config.
//!
//! # Layout of an export (version 1)
//!
//! An export is one manifest under a tag (`latest` in a layout directory, BuildKit's default
//! tag for local cache; the reference's tag in a registry) and the blobs it lists. In a
//! layout directory ([`LocalLayout`]):
//!
//! ```text
//! DIR/oci-layout          {"imageLayoutVersion":"1.0.0"}
//! DIR/index.json          one entry per tag, `org.opencontainers.image.ref.name` = the tag,
//!                         with the manifest's `artifactType`
//! DIR/blobs/sha256/<hex>  the manifest, the records document, step configs, layers
//! ```
//! The manifest is an OCI 1.1 artifact manifest (an image manifest with `artifactType`):
//!
//! ```json
//! {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
//!  "artifactType": "application/vnd.kiln.cache.v1",
//!  "config": {"mediaType": "application/vnd.kiln.cache.records.v1+json", ...},
//!  "layers": [ every layer blob (an OCI layer media type: tar+gzip, tar+zstd or tar),
//!              every step config ("application/vnd.oci.image.config.v1+json") and every
//!              cache mount's tar (an OCI layer media type), each once, in record order ]}
//! ```
//! and the records document (its config blob) is canonical JSON:
//!
//! ```json
//! {"schemaVersion": 1, "keyVersion": 1,
//!  "records": [{"key": "sha256:...", "config": "sha256:...", "configSize": 123,
//!               "createdMs": 1700000000000,
//!               "layer": {"mediaType": "...", "digest": "sha256:...", "size": 456,
//!                         "diffId": "sha256:..."}}],   // "layer" absent: no layer
//!  "mounts": [{"key": "<hex>", "id": "go-build", "layer": {...}}],  // with mounts=true
//!  "selections": [{"step": "sha256:...", "key": "sha256:...", "root": "sha256:..."}]}
//! ```
//! sorted by key. `selections` are the [`crate::selection`] memos the exported records' keys
//! were made with (absent when there are none): with them a runner keys a `COPY --from`
//! without fetching the layers of the stage it copies from. Layers leave compressed (gzip unless the export says otherwise); the
//! records keep each layer's `diffId`, so a hit is the same layer whatever its compression.
//!
//! ## Why this shape: registries that refuse unknown manifests
//!
//! Some registries (Amazon ECR, older Harbor and Quay) refuse a manifest whose media type
//! they do not know, and BuildKit's default cache export, an image index listing blobs that
//! are not manifests, is refused there; BuildKit's `image-manifest=true` writes an image
//! manifest instead, with its own config media type, which they accept. kiln always writes
//! that accepted form: the manifest's media type is the plain OCI image manifest (no index,
//! no artifact manifest media type), every entry of `layers` has a standard OCI media type
//! (layer tar types, and the image config type for step configs), and the only kiln media
//! type is the config's, as in BuildKit's accepted form. `artifactType` is an optional OCI
//! 1.1 field that registries which do not know it keep or ignore. `image-manifest=true` and
//! `=false` are therefore both accepted and give the same export.
//!
//! # Export ([`Cache::export_to`])
//!
//! Blobs go first, several at once, then the records document and the manifest. A blob is
//! not uploaded when the build imported it from the same remote (the remote's manifest listed
//! it) or when the remote says it has it ([`CacheRemote::has_blob`]), so a runner that rebuilt
//! from the cache uploads nothing new. Which records go is the caller's choice (`mode=min`:
//! the target image's steps; `mode=max`: every step built).
//!
//! # Lazy import ([`Cache::open_remote`], [`LazyImport`])
//!
//! Import reads the manifest and the records document only. Its records answer lookups of
//! this build ([`LazyImport::materialize`]): a step whose key is there has its step config and
//! layer fetched at that moment, checked against their digests, stored and recorded as an
//! ordinary import would (so the next build finds them locally); steps that miss fetch
//! nothing; selection memos answer [`LazyImport::selection`]. A fetched compressed layer is stored uncompressed as well (its digest is its
//! `diffId`, as on the machine that built it), so the rebuilt image is the very image that
//! machine built; the compressed blob is kept as its remembered export variant, so exporting
//! again uploads nothing. [`Cache::import_from`] imports everything at once (`kiln cache
//! import`'s way, and the tests').
//!
//! # Cache mounts (`mounts=true`)
//!
//! Each `RUN --mount=type=cache` directory of the store (`cache-mounts/<key>/data`) leaves as a
//! tar layer listed under `mounts`; import restores one where the store has no such mount or
//! it is empty, never over a mount in use ([`LazyImport::restore_mounts`]). A mount seeded
//! `from=` a stage has a key that names that store's snapshots, so it only matches on a store
//! at the same path.
//!
//! # Inline cache ([`inline`])
//!
//! `--cache-to type=inline` puts the target's records in the image config itself, under the
//! top-level field `kiln.cache.v1`; its layers are the image's own. BuildKit's inline cache
//! (`moby.buildkit.cache.v0`) is recognised and yields no records (its keys are not kiln's).

mod export;
mod import;
pub mod inline;
mod lazy;
mod mounts;

use kiln_layer::Digest;
use kiln_oci::model::Descriptor;
use serde::{Deserialize, Serialize};

use crate::key::CacheKey;

pub use export::{ExportOptions, ExportReport};
pub use import::ImportReport;
pub use lazy::{LazyImport, LazyReport, RemoteSource};

#[cfg(doc)]
use crate::{Cache, CacheRemote, LocalLayout};

/// The `artifactType` of an exported cache's manifest.
pub const ARTIFACT_TYPE: &str = "application/vnd.kiln.cache.v1";
/// The media type of the records document (the manifest's config).
pub const RECORDS_MEDIA_TYPE: &str = "application/vnd.kiln.cache.records.v1+json";
/// The tag of the cache manifest in a layout directory's `index.json`.
pub const LOCAL_TAG: &str = "latest";
/// The version of the records document.
const RECORDS_VERSION: u32 = 1;

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RecordsDoc {
    schema_version: u32,
    key_version: u8,
    records: Vec<ExportedRecord>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    mounts: Vec<ExportedMount>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    selections: Vec<ExportedSelection>,
}

/// A selection memo of an exported record ([`crate::selection`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ExportedSelection {
    /// The record whose key it went into.
    step: CacheKey,
    #[serde(with = "kiln_oci::model::digest_serde")]
    key: Digest,
    #[serde(with = "kiln_oci::model::digest_serde")]
    root: Digest,
}

impl ExportedSelection {
    fn selection(&self) -> crate::Selection {
        crate::Selection {
            key: self.key.clone(),
            root: self.root.clone(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ExportedRecord {
    key: CacheKey,
    #[serde(with = "kiln_oci::model::digest_serde")]
    config: Digest,
    config_size: u64,
    created_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    layer: Option<ExportedLayer>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ExportedLayer {
    media_type: String,
    #[serde(with = "kiln_oci::model::digest_serde")]
    digest: Digest,
    size: u64,
    #[serde(with = "kiln_oci::model::digest_serde")]
    diff_id: Digest,
}

impl ExportedLayer {
    fn descriptor(&self) -> Descriptor {
        Descriptor::new(self.media_type.clone(), self.digest.clone(), self.size)
    }
}

/// A `RUN --mount=type=cache` directory in an export.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ExportedMount {
    /// Its directory's name under the store's `cache-mounts/`.
    key: String,
    /// The cache id the Dockerfile gave it.
    id: String,
    /// Its files as a tar layer.
    layer: ExportedLayer,
}
