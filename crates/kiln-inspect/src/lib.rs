//! Why an image is big, and how two images differ: the layers' changes path by path, the
//! bytes they waste (files a later layer overwrites or deletes, package-manager caches left
//! in the final filesystem) with the layer responsible, dive's efficiency numbers and CI
//! rules under dive's names, and a diff of two images' final filesystems.
//!
//! It reads layers as streams of tar headers ([`walk`]): content is skipped (with seeks on
//! the uncompressed blobs kiln stores) except when a diff hashes it; no layer is ever held in
//! memory. Paths are interned into one compact [`tree::PathTree`]. [`Analyzer`] and
//! [`Differ`] take layers from anywhere (tests give them tars built in memory);
//! [`analyze_image`] and [`diff_images`] feed them from the store.
//!
//! dive's numbers are dive's, computed as its `filetree.Efficiency` and `image.Analyze` do:
//! per layer, each path that is a leaf of that layer's own tree contributes its size (a
//! whiteout: the size of the directory it deletes, 0 for a file); a path that is a leaf of
//! two or more layers is an inefficiency of its summed sizes; the efficiency is the sum of
//! each path's smallest size over the sum of all sizes; a layer's size is the sum of its
//! entries' tar sizes, and the "user" bytes are all layers' but the first. kiln's own waste
//! ([`Waste`]) is finer: it counts everything under a deleted directory, tells a rewrite of
//! the same size with a new mode or owner apart, and finds caches.
//!
//! It deliberately does not know Dockerfiles: a layer's history text is what it reports,
//! and matching it to a file and line is the caller's business. It never prints.

#![forbid(unsafe_code)]

mod analysis;
pub mod caches;
pub mod ci;
mod diff;
mod error;
mod image;
mod merge;
pub mod tree;
pub mod walk;

pub use analysis::{
    Analysis, Analyzer, Change, ChangeKind, DiveMetrics, FinalFile, Finding, Inefficiency,
    LayerInfo, LayerReport, Tally, Waste, WasteReason,
};
pub use caches::CacheKind;
pub use diff::{Aspects, DiffEntry, Differ, ImageDiff, Side};
pub use error::InspectError;
pub use image::{analyze_image, diff_images, layer_infos};
pub use tree::{NodeId, PathTree};
pub use walk::{Kind, LayerEntry, Meta, Op, Walk};

#[cfg(test)]
mod tests;
