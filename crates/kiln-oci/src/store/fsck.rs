//! Checking a store: every blob re-hashed, every reference and size checked, leftovers found.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{self, File};
use std::path::PathBuf;

use kiln_layer::Digest;
use rustix::fs::FlockOperation;

use super::{Store, sync_dir};
use crate::error::{StoreError, io_err};
use crate::media;
use crate::model::{Descriptor, Index, Manifest};

/// One thing wrong with a store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// A blob's content does not hash to its name.
    CorruptBlob {
        /// The name (expected digest).
        digest: Digest,
        /// What the content hashes to.
        actual: Digest,
    },
    /// A file in `blobs/sha256` whose name is not a digest.
    StrayFile {
        /// The file.
        path: PathBuf,
    },
    /// A referenced blob is absent.
    MissingBlob {
        /// The blob.
        digest: Digest,
        /// Who refers to it.
        referenced_by: String,
    },
    /// A blob's size differs from its descriptor's.
    SizeMismatch {
        /// The blob.
        digest: Digest,
        /// Size in the descriptor.
        expected: u64,
        /// Size on disk.
        actual: u64,
        /// Who refers to it.
        referenced_by: String,
    },
    /// A manifest, index or config that does not parse, or has an unknown media type.
    BadDocument {
        /// The blob.
        digest: Digest,
        /// What is wrong.
        reason: String,
    },
    /// A half-written transaction or index in `tmp/`, with no live owner.
    Leftover {
        /// The path.
        path: PathBuf,
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::CorruptBlob { digest, actual } => write!(
                f,
                "blob `{digest}` is corrupt: its content hashes to `{actual}`"
            ),
            Self::StrayFile { path } => write!(
                f,
                "`{}` is not a blob (its name is not a sha256 digest)",
                path.display()
            ),
            Self::MissingBlob {
                digest,
                referenced_by,
            } => write!(
                f,
                "blob `{digest}` is missing (referenced by {referenced_by})"
            ),
            Self::SizeMismatch {
                digest,
                expected,
                actual,
                referenced_by,
            } => {
                write!(
                    f,
                    "blob `{digest}` has {actual} bytes, {referenced_by} says {expected}"
                )
            }
            Self::BadDocument { digest, reason } => write!(f, "blob `{digest}`: {reason}"),
            Self::Leftover { path } => write!(
                f,
                "`{}` is left over from an interrupted write",
                path.display()
            ),
        }
    }
}

/// What [`Store::fsck`] found and did.
#[derive(Debug, Clone, Default)]
pub struct FsckReport {
    /// Blobs re-hashed.
    pub blobs_checked: u64,
    /// `index.json` entries checked.
    pub images_checked: u64,
    /// Problems found (before repair).
    pub problems: Vec<Problem>,
    /// What `repair` removed: leftovers, corrupt and stray blobs, index entries whose images
    /// are broken, resumable downloads older than [`STALE_DOWNLOAD`].
    pub removed: Vec<String>,
    /// Registry downloads cut short (`tmp/download-<hex>/`) that the next pull of their blob
    /// resumes: not problems. `repair` keeps those younger than [`STALE_DOWNLOAD`].
    pub resumable: Vec<Resumable>,
}

/// How long a cut-short registry download is kept for a resume: `fsck --repair` removes
/// older ones (as containerd expires its stale ingests).
pub const STALE_DOWNLOAD: std::time::Duration = std::time::Duration::from_hours(24);

/// A registry download cut short, which the next pull of its blob resumes with `Range`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resumable {
    /// The blob being downloaded.
    pub digest: Digest,
    /// The bytes it has so far.
    pub bytes: u64,
    /// Its directory (`tmp/download-<hex>`).
    pub path: PathBuf,
    /// Untouched for longer than [`STALE_DOWNLOAD`].
    pub stale: bool,
    /// How long it has been untouched, when the clock says.
    pub age: Option<std::time::Duration>,
}

impl fmt::Display for Resumable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "download of `{}` cut short at {} bytes: the next pull resumes it{}",
            self.digest,
            self.bytes,
            if self.stale {
                " (older than a day: `--repair` removes it)"
            } else {
                ""
            }
        )
    }
}

/// The resumable download at `path` (`tmp/download-<hex>` with its `data`), when it is one.
fn resumable(path: &std::path::Path) -> Option<Resumable> {
    let hex = path.file_name()?.to_str()?.strip_prefix("download-")?;
    let digest = Digest::from_hex(hex).ok()?;
    let data = fs::metadata(path.join("data")).ok()?;
    let age = data.modified().ok().and_then(|m| m.elapsed().ok());
    Some(Resumable {
        digest,
        bytes: data.len(),
        path: path.to_owned(),
        stale: age.is_some_and(|age| age > STALE_DOWNLOAD),
        age,
    })
}

impl Store {
    /// Removes the registry downloads cut short (`tmp/download-<hex>/`) that no pull is
    /// writing, those untouched for longer than `older_than` (every one when `None`), as `kiln
    /// prune` does; returns them. Each is removed while its lock is held, so a pull that waits
    /// for it starts over instead of resuming into a removed directory.
    pub fn remove_downloads(
        &self,
        older_than: Option<std::time::Duration>,
    ) -> Result<Vec<Resumable>, StoreError> {
        let _lock = self.lock()?;
        let tmp = self.layout.tmp();
        let mut removed = Vec::new();
        for entry in fs::read_dir(&tmp).map_err(io_err("read", &tmp))? {
            let path = entry.map_err(io_err("read", &tmp))?.path();
            let Some(r) = resumable(&path) else { continue };
            if older_than.is_some_and(|limit| r.age.is_none_or(|age| age <= limit)) {
                continue;
            }
            // A pull holds the lock while it writes: leave that one alone.
            let lock = File::open(path.join(".lock")).ok();
            if lock.as_ref().is_some_and(|f| {
                rustix::fs::flock(f, FlockOperation::NonBlockingLockExclusive).is_err()
            }) {
                continue;
            }
            fs::remove_dir_all(&path).map_err(io_err("remove", &path))?;
            drop(lock);
            removed.push(r);
        }
        Ok(removed)
    }

    /// Checks the whole store. With `repair`, removes leftovers in `tmp/`, corrupt or stray
    /// blobs, and the `index.json` entries of images that are then incomplete. A registry
    /// download cut short is not a problem but [`FsckReport::resumable`] (the next pull
    /// resumes it); `repair` removes it only when older than [`STALE_DOWNLOAD`]. Runs under the
    /// store lock, so no transaction publishes meanwhile; staging directories of live
    /// transactions (their `.lock` is held) are never touched.
    pub fn fsck(&self, repair: bool) -> Result<FsckReport, StoreError> {
        let _lock = self.lock()?;
        let mut report = FsckReport::default();
        let mut sizes: BTreeMap<Digest, u64> = BTreeMap::new();

        let tmp = self.layout.tmp();
        for entry in fs::read_dir(&tmp).map_err(io_err("read", &tmp))? {
            let path = entry.map_err(io_err("read", &tmp))?.path();
            if is_live_txn(&path) {
                continue;
            }
            if let Some(r) = resumable(&path) {
                if repair && r.stale {
                    fs::remove_dir_all(&path).map_err(io_err("remove", &path))?;
                    report.removed.push(path.display().to_string());
                }
                report.resumable.push(r);
                continue;
            }
            report
                .problems
                .push(Problem::Leftover { path: path.clone() });
            if repair {
                let r = if path.is_dir() {
                    fs::remove_dir_all(&path)
                } else {
                    fs::remove_file(&path)
                };
                r.map_err(io_err("remove", &path))?;
                report.removed.push(path.display().to_string());
            }
        }

        let blobs = self.layout.blobs();
        let mut bad = Vec::new();
        for entry in fs::read_dir(&blobs).map_err(io_err("read", &blobs))? {
            let path = entry.map_err(io_err("read", &blobs))?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            let Ok(digest) = Digest::from_hex(name) else {
                report
                    .problems
                    .push(Problem::StrayFile { path: path.clone() });
                bad.push(path);
                continue;
            };
            let f = File::open(&path).map_err(io_err("open", &path))?;
            let (actual, size) =
                kiln_layer::digest_reader(std::io::BufReader::with_capacity(1 << 20, f))
                    .map_err(io_err("read", &path))?;
            report.blobs_checked += 1;
            if actual == digest {
                sizes.insert(digest, size);
            } else {
                report
                    .problems
                    .push(Problem::CorruptBlob { digest, actual });
                bad.push(path);
            }
        }

        let mut index = self.index()?;
        let mut broken = Vec::new();
        for d in &index.manifests {
            report.images_checked += 1;
            let who = d.ref_name().map_or_else(
                || format!("untagged image `{}`", d.digest),
                |r| format!("`{r}`"),
            );
            let before = report.problems.len();
            let mut is_broken = false;
            self.check_tree(d, &who, &sizes, &mut report.problems, &mut is_broken);
            if is_broken || report.problems.len() > before {
                broken.push(d.digest.clone());
            }
        }

        if repair {
            for path in bad {
                fs::remove_file(&path).map_err(io_err("remove", &path))?;
                report.removed.push(path.display().to_string());
            }
            sync_dir(&blobs)?;
            if !broken.is_empty() {
                let before = index.manifests.len();
                index.manifests.retain(|d| !broken.contains(&d.digest));
                for d in &broken {
                    report.removed.push(format!("index.json entry for `{d}`"));
                }
                if index.manifests.len() != before {
                    self.write_index_locked(&index)?;
                }
            }
        }
        Ok(report)
    }

    fn check_tree(
        &self,
        d: &Descriptor,
        who: &str,
        sizes: &BTreeMap<Digest, u64>,
        problems: &mut Vec<Problem>,
        broken: &mut bool,
    ) {
        let Some(&actual) = sizes.get(&d.digest) else {
            // A corrupt blob is reported once, as corrupt; the image is broken either way.
            *broken = true;
            if !problems
                .iter()
                .any(|p| matches!(p, Problem::CorruptBlob { digest, .. } if digest == &d.digest))
            {
                problems.push(Problem::MissingBlob {
                    digest: d.digest.clone(),
                    referenced_by: who.to_owned(),
                });
            }
            return;
        };
        if actual != d.size {
            problems.push(Problem::SizeMismatch {
                digest: d.digest.clone(),
                expected: d.size,
                actual,
                referenced_by: who.to_owned(),
            });
            return;
        }
        let parse = |what: &str| -> Result<Vec<u8>, Problem> {
            fs::read(self.blob_path(&d.digest)).map_err(|e| Problem::BadDocument {
                digest: d.digest.clone(),
                reason: format!("cannot read {what}: {e}"),
            })
        };
        if media::is_manifest(&d.media_type) {
            let m: Result<Manifest, Problem> = parse("manifest").and_then(|b| {
                serde_json::from_slice(&b).map_err(|e| Problem::BadDocument {
                    digest: d.digest.clone(),
                    reason: format!("manifest is not valid JSON: {e}"),
                })
            });
            match m {
                Ok(m) => {
                    let who = format!("manifest `{}` of {who}", d.digest);
                    if media::is_config(&m.config.media_type) {
                        self.check_tree(&m.config, &who, sizes, problems, broken);
                        if let Ok(bytes) = fs::read(self.blob_path(&m.config.digest))
                            && let Err(e) = crate::config::ImageConfig::from_slice(&bytes)
                        {
                            problems.push(Problem::BadDocument {
                                digest: m.config.digest.clone(),
                                reason: format!("config is not valid JSON: {e}"),
                            });
                        }
                    } else {
                        problems.push(Problem::BadDocument {
                            digest: d.digest.clone(),
                            reason: format!("unknown config media type `{}`", m.config.media_type),
                        });
                    }
                    for l in &m.layers {
                        if media::layer_compression(&l.media_type).is_none() {
                            problems.push(Problem::BadDocument {
                                digest: d.digest.clone(),
                                reason: format!(
                                    "layer `{}` has unknown media type `{}`",
                                    l.digest, l.media_type
                                ),
                            });
                        }
                        self.check_tree(l, &who, sizes, problems, broken);
                    }
                }
                Err(p) => problems.push(p),
            }
        } else if media::is_index(&d.media_type) {
            let i: Result<Index, Problem> = parse("index").and_then(|b| {
                serde_json::from_slice(&b).map_err(|e| Problem::BadDocument {
                    digest: d.digest.clone(),
                    reason: format!("index is not valid JSON: {e}"),
                })
            });
            match i {
                Ok(i) => {
                    let who = format!("index `{}` of {who}", d.digest);
                    for m in &i.manifests {
                        self.check_tree(m, &who, sizes, problems, broken);
                    }
                }
                Err(p) => problems.push(p),
            }
        }
    }
}

/// Whether `path` is a transaction directory whose owner still holds its `.lock`.
fn is_live_txn(path: &std::path::Path) -> bool {
    let Ok(f) = File::open(path.join(".lock")) else {
        return false;
    };
    match rustix::fs::flock(&f, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => false,
        Err(_) => true,
    }
}
