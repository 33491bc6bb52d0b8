//! Deterministic container image layers: writing, compressing, digesting and applying them.
//!
//! [`LayerWriter`] turns entries into a normalized tar stream (sorted by the caller or by
//! [`pack_dir`], fixed header rules, PAX where needed, mtimes clamped to `SOURCE_DATE_EPOCH`)
//! and computes the uncompressed digest (the `diff_id`), the compressed digest and the size in
//! the same streaming pass, compressing with parallel gzip, zstd or not at all. [`apply()`]
//! unpacks a layer into a directory, honouring OCI whiteouts, and never writes outside that
//! directory. [`diff()`] turns what a build step changed (an overlayfs upper dir, or a full copy
//! of its rootfs) into a layer, and [`overlay`] reads and writes overlayfs's lower-dir format.
//! The crate deliberately knows nothing of images, manifests, stores, Dockerfiles or how a
//! build step ran: it sees files and tar streams only.

#![forbid(unsafe_code)]

pub mod apply;
pub mod compress;
pub mod diff;
pub mod digest;
pub mod entry;
pub mod header;
pub mod overlay;
pub mod pack;
pub mod safe_fs;
pub mod writer;

pub use apply::{ApplyError, ApplyOptions, ApplyStats, LinkFrom, apply, read_full};
pub use compress::{Compression, decompress};
pub use diff::{DiffError, DiffOptions, DiffStats, NewTree, diff};
pub use digest::{Digest, DigestParseError, HashingReader, HashingWriter, digest_reader};
pub use entry::{Entry, EntryKind};
pub use pack::{PackOptions, pack_dir};
pub use writer::{LayerDigests, LayerWriter, PackError, compress_tar};
