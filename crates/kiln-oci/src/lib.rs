//! Images at rest: the image model, canonical JSON, kiln's content store, and the archive
//! formats images travel in.
//!
//! The model ([`model`], [`config`]) reads OCI and Docker v2 schema 2 documents, including the
//! Docker config extensions BuildKit writes, and writes them canonically ([`canonical`]) so the
//! same image always has the same digest. The [`store::Store`] is an OCI image layout that
//! skopeo and umoci read directly; every change is a transaction that leaves it consistent.
//! [`archive`] loads and saves `docker save` tarballs and OCI archives; [`import`] turns a
//! rootfs tarball into an image. The crate deliberately knows nothing of Dockerfiles, build
//! steps, RUN or registries; it moves and checks bytes that others produce, using `kiln-layer`
//! for tar streams.

#![forbid(unsafe_code)]

pub mod archive;
pub mod canonical;
pub mod config;
pub mod error;
pub mod image;
pub mod import;
pub mod media;
pub mod model;
pub mod reference;
pub mod snapshot;
pub mod store;

pub use archive::{ArchiveError, LoadOptions, Loaded, SaveFormat, load, save};
pub use config::{ContainerConfig, Healthcheck, History, ImageConfig};
pub use error::StoreError;
pub use image::Image;
pub use import::{ImportOptions, import_rootfs};
pub use media::MediaTypes;
pub use model::{Descriptor, Index, Manifest};
pub use reference::{Reference, ReferenceError};
pub use snapshot::{SnapshotError, Snapshots};
pub use store::{CacheMountDir, FsckReport, Layout, Problem, SnapshotDir, Store};
