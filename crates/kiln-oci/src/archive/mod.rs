//! Moving images in and out of the store: `docker save` tarballs, OCI archives and layouts.
//!
//! Loading is one [`Txn`]: an archive is unpacked into the transaction's scratch space with
//! the contained applier of `kiln-layer` (so a hostile archive cannot write or read outside
//! it), every blob is verified against the digest and size its parent names, and only then
//! are blobs published and tags set. Any failure leaves the store unchanged.

mod docker;
mod oci;

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use kiln_layer::{ApplyOptions, Compression, Entry, EntryKind, LayerWriter};
use rustix::fs::{Mode, OFlags, ResolveFlags};

use crate::error::StoreError;
use crate::image::Image;
use crate::media::MediaTypes;
use crate::reference::Reference;
use crate::store::{Store, Txn};

pub use docker::write_docker_archive;
pub use oci::write_oci_archive;

/// Errors of loading and saving archives. Each names the archive and the object in it.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// The archive cannot be read at all.
    #[error("cannot read `{file}`")]
    Read {
        /// The archive.
        file: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The archive's tar stream is corrupt or truncated.
    #[error("`{file}` is not a complete tar archive")]
    Unpack {
        /// The archive.
        file: PathBuf,
        /// The cause.
        #[source]
        source: kiln_layer::ApplyError,
    },
    /// The archive has neither `manifest.json` nor `index.json` at its top.
    #[error(
        "`{file}` is neither a docker-archive (no `manifest.json`) nor an OCI layout (no `index.json`)"
    )]
    UnknownFormat {
        /// The archive.
        file: PathBuf,
    },
    /// An object in the archive is missing or wrong.
    #[error("`{file}`: {object}: {reason}")]
    Invalid {
        /// The archive.
        file: PathBuf,
        /// The object (`manifest.json`, `layer abc/layer.tar`, `blob sha256:...`).
        object: String,
        /// What is wrong.
        reason: String,
    },
    /// The store refused an object of the archive.
    #[error("`{file}`: {object}")]
    Store {
        /// The archive.
        file: PathBuf,
        /// The object being stored.
        object: String,
        /// The cause.
        #[source]
        source: Box<StoreError>,
    },
    /// The output cannot be written.
    #[error("cannot write `{file}`")]
    Write {
        /// The output.
        file: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
}

/// What a load brought into the store.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The manifest digest (kiln's image digest).
    pub digest: kiln_layer::Digest,
    /// The image id (config digest).
    pub id: kiln_layer::Digest,
    /// The tags set.
    pub tags: Vec<Reference>,
}

/// Options of [`load`].
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Media types of manifests kiln writes for docker-archives (OCI layouts keep theirs).
    pub media_types: MediaTypes,
}

/// The two tarball formats of `kiln save`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SaveFormat {
    /// `docker save`'s format: `manifest.json`, configs, uncompressed `layer.tar`s.
    #[default]
    Docker,
    /// An OCI image layout in a tar (blobs as stored), with a `manifest.json` beside it so
    /// that `docker load` accepts it too.
    Oci,
}

/// Loads a `docker save` tarball, an OCI archive (plain, gzip or zstd), or an OCI layout or
/// docker-archive directory into `store`, keeping tags.
pub fn load(store: &Store, input: &Path, opts: &LoadOptions) -> Result<Vec<Loaded>, ArchiveError> {
    let mut txn = store.txn().map_err(|source| ArchiveError::Store {
        file: input.to_owned(),
        object: "the store".into(),
        source: Box::new(source),
    })?;
    let (dir, owned) = if input.is_dir() {
        (input.to_owned(), false)
    } else {
        let file = File::open(input).map_err(|source| ArchiveError::Read {
            file: input.to_owned(),
            source,
        })?;
        let dir = txn.scratch_dir().join("unpacked");
        std::fs::create_dir(&dir).map_err(|source| ArchiveError::Read {
            file: input.to_owned(),
            source,
        })?;
        let opts = ApplyOptions {
            whiteouts: false,
            same_owner: false,
            xattrs: false,
            devices: false,
            link_from: None,
        };
        kiln_layer::apply(io::BufReader::with_capacity(1 << 20, file), &dir, &opts).map_err(
            |source| ArchiveError::Unpack {
                file: input.to_owned(),
                source,
            },
        )?;
        (dir, true)
    };
    let src = Source {
        file: input.to_owned(),
        dir,
        owned,
    };
    // An OCI layout wins when both are present (kiln's own OCI archives, Docker 25+): it keeps
    // the manifests' digests, where a docker-archive only has configs and layers.
    let loaded = if src.dir.join("index.json").is_file() {
        oci::load(&mut txn, &src)?
    } else if src.dir.join("manifest.json").is_file() {
        docker::load(&mut txn, &src, opts)?
    } else {
        return Err(ArchiveError::UnknownFormat {
            file: input.to_owned(),
        });
    };
    let (tags, untagged): (Vec<_>, Vec<_>) = loaded
        .iter()
        .map(|(l, d)| (l.tags.clone(), d.clone()))
        .unzip();
    txn.commit(|index| {
        for (tags, d) in tags.iter().zip(&untagged) {
            if tags.is_empty() {
                crate::store::add_untagged(index, d);
            }
            for t in tags {
                crate::store::set_tag(index, t, d);
            }
        }
        Ok(())
    })
    .map_err(|source| ArchiveError::Store {
        file: input.to_owned(),
        object: "index.json".into(),
        source: Box::new(source),
    })?;
    Ok(loaded.into_iter().map(|(l, _)| l).collect())
}

/// An unpacked archive or a directory given directly.
pub(crate) struct Source {
    /// The archive as the user named it, for errors.
    pub file: PathBuf,
    /// Where its content is.
    pub dir: PathBuf,
    /// Whether `dir` is kiln's scratch copy (files may be moved out of it).
    pub owned: bool,
}

impl Source {
    pub(crate) fn invalid(
        &self,
        object: impl Into<String>,
        reason: impl Into<String>,
    ) -> ArchiveError {
        ArchiveError::Invalid {
            file: self.file.clone(),
            object: object.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn store_err(
        &self,
        object: impl Into<String>,
    ) -> impl FnOnce(StoreError) -> ArchiveError + '_ {
        let object = object.into();
        move |source| ArchiveError::Store {
            file: self.file.clone(),
            object,
            source: Box::new(source),
        }
    }

    /// Opens `rel` inside the archive, following symlinks inside it only.
    ///
    /// `docker save` writes a layer that two images share once and makes the second
    /// `<id>/layer.tar` a link to the first (`../<other-id>/layer.tar`), so links are followed;
    /// but every step is resolved beneath the archive's top: a link that climbs above it (`..`)
    /// or is absolute is refused, as is a loop, rather than read from the host.
    pub(crate) fn open(&self, rel: &str, object: &str) -> Result<File, ArchiveError> {
        let root = kiln_layer::safe_fs::open_root(&self.dir)
            .map_err(|e| self.invalid(object, format!("cannot open the archive's top: {e}")))?;
        let fd = rustix::fs::openat2(
            &root,
            rel.trim_start_matches('/'),
            OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS,
        )
        .map_err(|e| self.open_error(rel, object, e))?;
        Ok(File::from(fd))
    }

    fn open_error(&self, rel: &str, object: &str, e: rustix::io::Errno) -> ArchiveError {
        const HINT: &str = "hint: the archive is damaged or was not written by `docker save`, \
                            `kiln save` or an OCI tool; make it again";
        let reason = match e {
            rustix::io::Errno::NOENT => {
                format!("`{rel}` is missing (or a link on the way points at nothing)\n{HINT}")
            }
            rustix::io::Errno::XDEV => format!(
                "`{rel}` leads outside the archive: it or a link on the way climbs above the \
                 top (`..`), or a link is absolute\n{HINT}"
            ),
            rustix::io::Errno::LOOP => {
                format!("`{rel}` is a symlink loop, or has too many links on the way\n{HINT}")
            }
            e => format!("cannot open `{rel}`: {}", io::Error::from(e)),
        };
        self.invalid(object, reason)
    }

    /// The path of the file `rel` names, relative to the archive's top and with no link on the
    /// way ([`Self::open`] follows them): two names of one file resolve to the same path, and a
    /// file once [`Self::stage`]d may be gone from the archive, so a loader resolves every name
    /// it will use before it stages any.
    pub(crate) fn resolve(&self, rel: &str, object: &str) -> Result<String, ArchiveError> {
        let path = self.real_path(&self.open(rel, object)?, rel, object)?;
        let top = std::fs::canonicalize(&self.dir)
            .map_err(|e| self.invalid(object, format!("cannot resolve the archive's top: {e}")))?;
        path.strip_prefix(&top)
            .ok()
            .and_then(|p| p.to_str())
            .map(str::to_owned)
            .ok_or_else(|| self.invalid(object, format!("`{rel}` resolves outside the archive")))
    }

    /// The absolute path of `file`, opened as `rel`, with every link resolved.
    fn real_path(&self, file: &File, rel: &str, object: &str) -> Result<PathBuf, ArchiveError> {
        std::fs::read_link(format!(
            "/proc/self/fd/{}",
            std::os::fd::AsRawFd::as_raw_fd(file)
        ))
        .map_err(|e| self.invalid(object, format!("cannot resolve `{rel}`: {e}")))
    }

    /// Reads a small file inside the archive.
    pub(crate) fn read(&self, rel: &str, object: &str) -> Result<Vec<u8>, ArchiveError> {
        let mut bytes = Vec::new();
        self.open(rel, object)?
            .read_to_end(&mut bytes)
            .map_err(|e| self.invalid(object, format!("cannot read `{rel}`: {e}")))?;
        Ok(bytes)
    }

    /// Stages the file `rel` as a blob, checking it against `expected` (digest, size).
    ///
    /// From an archive kiln unpacked ([`Self::owned`]) the file is moved, not copied: other
    /// names of it (links) then point at nothing, and [`Self::resolve`] must have run first.
    pub(crate) fn stage(
        &self,
        txn: &mut Txn<'_>,
        rel: &str,
        expected: Option<(&kiln_layer::Digest, u64)>,
        object: &str,
    ) -> Result<(kiln_layer::Digest, u64), ArchiveError> {
        if let Some((d, _)) = expected
            && txn.has_blob(d)
        {
            return Ok((d.clone(), expected.map_or(0, |e| e.1)));
        }
        let file = self.open(rel, object)?;
        if self.owned {
            // The real path of what was opened (contained), so links are resolved safely.
            let resolved = self.real_path(&file, rel, object)?;
            drop(file);
            return txn
                .adopt_file(&resolved, expected, object)
                .map_err(self.store_err(object));
        }
        let mut w = txn.blob_writer().map_err(self.store_err(object))?;
        io::copy(&mut io::BufReader::with_capacity(1 << 20, file), &mut w)
            .map_err(|e| self.invalid(object, format!("cannot read `{rel}`: {e}")))?;
        w.commit(expected, object).map_err(self.store_err(object))
    }
}

/// Writes a tar of plain files (mode 0644, owner 0:0, mtime 0) for archives kiln saves.
pub(crate) struct ArchiveTar<W: Write> {
    tar: LayerWriter<W>,
    dirs: std::collections::BTreeSet<String>,
}

impl<W: Write> ArchiveTar<W> {
    pub(crate) fn new(out: W) -> io::Result<Self> {
        let tar = LayerWriter::new(out, Compression::None).map_err(io::Error::other)?;
        Ok(Self {
            tar,
            dirs: std::collections::BTreeSet::new(),
        })
    }

    pub(crate) fn add(&mut self, name: &str, size: u64, data: &mut dyn Read) -> io::Result<()> {
        let mut parent = String::new();
        for comp in name
            .split('/')
            .collect::<Vec<_>>()
            .split_last()
            .map_or(&[][..], |(_, p)| p)
        {
            if !parent.is_empty() {
                parent.push('/');
            }
            parent.push_str(comp);
            if self.dirs.insert(parent.clone()) {
                self.tar
                    .append(&Entry::new(parent.clone(), EntryKind::Dir), None)
                    .map_err(io::Error::other)?;
            }
        }
        let mut e = Entry::new(name, EntryKind::File);
        e.size = size;
        self.tar.append(&e, Some(data)).map_err(io::Error::other)
    }

    pub(crate) fn add_bytes(&mut self, name: &str, bytes: &[u8]) -> io::Result<()> {
        self.add(name, bytes.len() as u64, &mut &bytes[..])
    }

    pub(crate) fn finish(self) -> io::Result<W> {
        self.tar.finish().map(|(w, _)| w).map_err(io::Error::other)
    }
}

/// The images to save, with the references to record for each.
pub type SaveSet<'a> = [(&'a Image, Vec<Reference>)];

/// Saves `images` to `out` in `format`.
pub fn save<W: Write>(
    store: &Store,
    images: &SaveSet<'_>,
    format: SaveFormat,
    out: W,
    file: &Path,
) -> Result<W, ArchiveError> {
    match format {
        SaveFormat::Docker => write_docker_archive(store, images, out, file),
        SaveFormat::Oci => write_oci_archive(store, images, out, file),
    }
}
