//! The inline cache: a built image's own step records in its config (`--cache-to
//! type=inline`), read back from that image (`--cache-from IMAGE`).
//!
//! The config gets a top-level field [`INLINE_FIELD`] (`kiln.cache.v1`), beside BuildKit's
//! own `moby.buildkit.cache.v0`:
//!
//! ```json
//! "kiln.cache.v1": {"version": 1, "records": [{"key": "sha256:...", "layer": 2},
//!                                             {"key": "sha256:..."}]}
//! ```
//! `layer` is the index of the step's layer in the image (`rootfs.diff_ids` and the manifest's
//! `layers`); absent for a step that made none. No blob besides the image's is needed. An
//! image with BuildKit's field only is read without error: its records are keyed the way
//! BuildKit keys them, not the way kiln does, so it yields no records, and a note says so.

use kiln_layer::Digest;
use kiln_oci::Image;
use serde::{Deserialize, Serialize};

use crate::error::CacheError;
use crate::index::{Cache, LayerRef, StepOutput, now_ms};
use crate::key::CacheKey;

/// The image config field of kiln's inline cache.
pub const INLINE_FIELD: &str = "kiln.cache.v1";
/// The image config field of BuildKit's inline cache (`BUILDKIT_INLINE_CACHE=1`).
pub const BUILDKIT_INLINE_FIELD: &str = "moby.buildkit.cache.v0";
const INLINE_VERSION: u32 = 1;

#[derive(Debug, Serialize, Deserialize)]
struct InlineDoc {
    version: u32,
    records: Vec<InlineRecord>,
}

#[derive(Debug, Serialize, Deserialize)]
struct InlineRecord {
    key: CacheKey,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    layer: Option<usize>,
}

/// The value of [`INLINE_FIELD`] for steps `records`: each step's key and the index of its
/// layer in the image, if it made one.
pub fn to_value(records: &[(CacheKey, Option<usize>)]) -> serde_json::Value {
    let doc = InlineDoc {
        version: INLINE_VERSION,
        records: records
            .iter()
            .map(|(key, layer)| InlineRecord {
                key: key.clone(),
                layer: *layer,
            })
            .collect(),
    };
    serde_json::to_value(doc).expect("an inline cache serializes")
}

/// What [`Cache::import_inline`] read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InlineReport {
    /// Records added to the index.
    pub added: usize,
    /// Records the index already had.
    pub already_present: usize,
    /// Something worth telling the user (an image with BuildKit's inline cache, or none).
    pub note: Option<String>,
}

impl Cache {
    /// Adds the inline cache records of `image` (named `name` in messages), an image in the
    /// store, to the index. An image without kiln's inline cache adds none and says why.
    pub fn import_inline(&self, image: &Image, name: &str) -> Result<InlineReport, CacheError> {
        let mut report = InlineReport {
            added: 0,
            already_present: 0,
            note: None,
        };
        let bad = |reason: String| CacheError::NotExport {
            path: format!("image `{name}`").into(),
            reason,
        };
        let Some(value) = image.config.extra.get(INLINE_FIELD) else {
            report.note = Some(if image.config.extra.contains_key(BUILDKIT_INLINE_FIELD) {
                format!(
                    "image `{name}` carries BuildKit's inline cache (`{BUILDKIT_INLINE_FIELD}`), whose keys are not kiln's: no cache records from it"
                )
            } else {
                format!(
                    "image `{name}` has no inline cache (build it with `--cache-to type=inline`)"
                )
            });
            return Ok(report);
        };
        let doc: InlineDoc = serde_json::from_value(value.clone())
            .map_err(|e| bad(format!("its `{INLINE_FIELD}` is not valid: {e}")))?;
        if doc.version != INLINE_VERSION {
            return Err(bad(format!(
                "its `{INLINE_FIELD}` has version {}, not the {INLINE_VERSION} this kiln reads",
                doc.version
            )));
        }
        let diff_ids = &image.config.rootfs.diff_ids;
        let now = now_ms();
        for r in doc.records {
            let layer = match r.layer {
                None => None,
                Some(i) => {
                    let (Some(d), Some(diff_id)) = (image.manifest.layers.get(i), diff_ids.get(i))
                    else {
                        return Err(bad(format!(
                            "record `{}` names layer {i}, and the image has {}",
                            r.key,
                            image.manifest.layers.len()
                        )));
                    };
                    let diff_id = diff_id
                        .strip_prefix("sha256:")
                        .and_then(|h| Digest::from_hex(h).ok())
                        .ok_or_else(|| bad(format!("diff id `{diff_id}` is not a digest")))?;
                    let mut descriptor = d.clone();
                    descriptor.annotations.clear();
                    Some(LayerRef {
                        descriptor,
                        diff_id,
                    })
                }
            };
            if self.peek(&r.key)?.is_some() {
                report.already_present += 1;
                continue;
            }
            let output = StepOutput {
                layer,
                config: Vec::new(),
            };
            self.insert(&r.key, &output, now, now, false)?;
            report.added += 1;
        }
        Ok(report)
    }
}
