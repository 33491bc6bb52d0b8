//! A build's registry side: its images resolved through the store and the registries
//! (`--pull`), its result pushed (`--push`, `-o type=registry`, `-o type=image,push=true`), and
//! the registry cache's remote (`--cache-to/--cache-from type=registry`).

use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

use kiln_build::{ImageResolver, ResolveError};
use kiln_cache::{CacheRemote, RemoteError};
use kiln_layer::Digest;
use kiln_oci::model::{Descriptor, Platform};
use kiln_oci::{Image, Reference, Store};
use kiln_registry::{NoProgress, PullOptions, Registries, Repository};

use crate::Globals;

/// `--pull`: when a build asks a registry for its images.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum PullPolicy {
    /// Only images the store lacks (the default; offline rebuilds work).
    #[default]
    Missing,
    /// Every image: the registry's current digest is asked for, and what changed is pulled.
    Always,
    /// Never: the store only.
    Never,
}

/// The registries of a command, made when first needed (a build from local images reads no
/// config and asks no registry).
pub(crate) struct LazyRegistries<'g> {
    globals: &'g Globals,
    made: OnceLock<Result<Registries, String>>,
}

impl<'g> LazyRegistries<'g> {
    pub(crate) fn new(globals: &'g Globals) -> Self {
        Self {
            globals,
            made: OnceLock::new(),
        }
    }

    pub(crate) fn get(&self) -> anyhow::Result<&Registries> {
        self.made
            .get_or_init(|| {
                crate::cmd::pull::registries(self.globals).map_err(|e| format!("{e:#}"))
            })
            .as_ref()
            .map_err(|e| anyhow::anyhow!("{e}"))
    }
}

/// Resolves a build's images: from the store, and from their registries as `--pull` says.
/// Records what each name resolved to (its manifest digest) for the build's metadata.
pub(crate) struct RegistryResolver<'a> {
    pub(crate) store: &'a Store,
    pub(crate) registries: &'a LazyRegistries<'a>,
    pub(crate) policy: PullPolicy,
    pub(crate) platform: Platform,
    pub(crate) quiet: bool,
    /// Unpack pulled layers as they arrive (a build whose steps will run on them); otherwise
    /// their snapshots are made when first used.
    pub(crate) unpack: bool,
    pub(crate) resolved: Mutex<Vec<(String, Digest)>>,
}

/// A resolve failure as the build reports it.
#[derive(Debug)]
struct Failed(String);

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Failed {}

fn failed(message: String) -> ResolveError {
    Arc::new(Failed(message))
}

impl RegistryResolver<'_> {
    fn local(&self, reference: &Reference) -> Result<Option<Image>, ResolveError> {
        kiln_registry::local_image(self.store, reference, &self.platform)
            .map_err(|e| failed(format!("{:#}", crate::cmd::pull::hinted(e))))
    }

    fn pull(&self, name: &str, reference: &Reference) -> Result<Image, ResolveError> {
        let registries = self
            .registries
            .get()
            .map_err(|e| failed(format!("cannot pull `{name}`: {e:#}")))?;
        let opts = PullOptions {
            platform: self.platform.clone(),
            unpack: self.unpack,
        };
        let pulled = registries
            .pull(
                self.store,
                reference,
                &opts,
                &crate::cmd::pull::BlobLines {
                    verb: "pull",
                    quiet: self.quiet,
                },
            )
            .map_err(|e| {
                failed(format!(
                    "cannot pull `{name}`: {:#}",
                    crate::cmd::pull::hinted(e)
                ))
            })?;
        if !self.quiet {
            eprintln!(
                "pulled {} from {} ({}): {} blobs fetched, {} already present",
                reference.familiar(),
                pulled.registry,
                pulled.digest,
                pulled.fetched,
                pulled.present
            );
        }
        self.local(reference)?.ok_or_else(|| {
            failed(format!(
                "`{name}` was pulled but is not in the store for {}",
                kiln_registry::platform_string(&self.platform)
            ))
        })
    }
}

impl ImageResolver for RegistryResolver<'_> {
    fn resolve(&self, name: &str) -> Result<Image, ResolveError> {
        let reference = Reference::parse(name).map_err(|e| failed(e.to_string()))?;
        let image = match self.policy {
            PullPolicy::Never => self.local(&reference)?.ok_or_else(|| {
                failed(format!(
                    "no image `{name}` in the store, and `--pull=never`\nhint: `kiln pull {name}`, `kiln load`, or build without `--pull=never`"
                ))
            })?,
            PullPolicy::Missing => match self.local(&reference)? {
                Some(image) => image,
                None => self.pull(name, &reference)?,
            },
            // A pull asks for the manifest and fetches only the blobs the store lacks.
            PullPolicy::Always => self.pull(name, &reference)?,
        };
        self.resolved
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push((name.to_owned(), image.descriptor.digest.clone()));
        Ok(image)
    }
}

/// Pushes the built image (`manifest`) to `reference` and returns the pushed manifest's
/// digest (its layers compressed as `compression` says, so it may differ from the store's).
pub(crate) fn push(
    store: &Store,
    registries: &Registries,
    manifest: &Descriptor,
    reference: &Reference,
    compression: kiln_oci::store::ExportCompression,
    quiet: bool,
) -> anyhow::Result<Digest> {
    let image = store.resolve(&manifest.digest.to_string())?;
    let pushed = registries
        .push(
            store,
            &image,
            reference,
            &kiln_registry::PushOptions { compression },
            &crate::cmd::pull::BlobLines {
                verb: "push",
                quiet,
            },
        )
        .map_err(crate::cmd::pull::hinted)?;
    if !quiet {
        eprintln!(
            "pushed {}@{}: {} blobs uploaded, {} mounted, {} already there",
            reference.familiar(),
            pushed.digest,
            pushed.uploaded,
            pushed.mounted,
            pushed.present
        );
    }
    Ok(pushed.digest)
}

/// A registry repository as a cache remote (`type=registry,ref=R`): blobs and the cache
/// manifest under R's tag.
pub(crate) struct RegistryRemote {
    repository: Repository,
    name: String,
}

impl RegistryRemote {
    /// The remote of `reference`'s repository and the tag its cache manifest has (`latest`
    /// when the reference names none).
    pub(crate) fn open(
        registries: &Registries,
        reference: &str,
    ) -> anyhow::Result<(Box<dyn CacheRemote>, String)> {
        let parsed = Reference::parse(reference).map_err(|e| {
            anyhow::anyhow!(
                "invalid cache reference `{reference}`: {e}\nhint: write `ref=host/name:tag`"
            )
        })?;
        let tag = parsed.tag.clone().unwrap_or_else(|| "latest".to_owned());
        let remote = Self {
            repository: registries.repository(&parsed),
            name: format!("{}:{tag}", parsed.repository()),
        };
        Ok((Box::new(remote), tag))
    }
}

impl CacheRemote for RegistryRemote {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn has_blob(&self, digest: &Digest) -> Result<bool, RemoteError> {
        Ok(self.repository.has_blob(digest)?)
    }

    fn fetch_blob(&self, blob: &Descriptor, dest: &Path) -> Result<(), RemoteError> {
        Ok(self.repository.fetch_blob(blob, dest, &NoProgress)?)
    }

    fn push_blob(&self, blob: &Descriptor, src: &Path) -> Result<(), RemoteError> {
        self.repository.push_blob(blob, src, None, &NoProgress)?;
        Ok(())
    }

    fn get_manifest(&self, tag: &str) -> Result<Option<(Vec<u8>, String)>, RemoteError> {
        match self.repository.get_manifest(tag) {
            Ok(m) => Ok(Some((m.bytes, m.media_type))),
            Err(e) if e.status() == Some(404) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn put_manifest(
        &self,
        tag: &str,
        bytes: &[u8],
        media_type: &str,
    ) -> Result<Digest, RemoteError> {
        Ok(self.repository.put_manifest(tag, bytes, media_type)?)
    }
}
