//! `--cache-from` and `--cache-to`: the remotes opened, imported lazily before the build and
//! exported after it.
//!
//! The registry plugs in at one point, a [`RegistryFactory`]: given a reference, it returns
//! the [`CacheRemote`] of its repository and the tag to use (`super::registry::RegistryRemote`).

use kiln_build::{CacheExport, CacheImport, CacheLocation, CacheMode};
use kiln_cache::{Cache, CacheRemote, ExportOptions, LazyImport, LocalLayout};

/// Makes the remote of a registry reference, and the tag its cache manifest has.
pub(crate) type RegistryFactory<'a> =
    &'a dyn Fn(&str) -> anyhow::Result<(Box<dyn CacheRemote>, String)>;

/// Finds (pulling when needed) an image named as a cache source.
pub(crate) type ImageSource<'a> = &'a dyn Fn(&str) -> anyhow::Result<kiln_oci::Image>;

/// Imports the inline cache `image` carries (its layers are in the store).
fn inline(cache: &Cache, image: &kiln_oci::Image, name: &str, quiet: bool) -> anyhow::Result<()> {
    let report = cache
        .import_inline(image, name)
        .map_err(|e| anyhow::anyhow!("cannot import the inline cache of `{name}`: {e}"))?;
    if let Some(note) = &report.note {
        eprintln!("note: {note}");
    }
    if !quiet && report.added + report.already_present > 0 {
        eprintln!(
            "imported {} cache records from the image {name}",
            report.added
        );
    }
    Ok(())
}

/// The remote `location` names, and its tag, registries made by `registry`.
fn open(
    location: &CacheLocation,
    registry: RegistryFactory<'_>,
) -> anyhow::Result<(Box<dyn CacheRemote>, String)> {
    match location {
        CacheLocation::Local { dir, tag } => Ok((Box::new(LocalLayout::new(dir)), tag.clone())),
        CacheLocation::Registry(reference) => registry(reference),
    }
}

/// Opens every `--cache-from`, in order: remote exports for a lazy import (their records
/// read, no layer fetched), inline caches of images in the store imported at once (their
/// layers are there). A layout directory with no export yet is a note, not an error (a
/// branch's first build).
pub(crate) fn import(
    cache: &Cache,
    specs: &[CacheImport],
    registry: RegistryFactory<'_>,
    image: ImageSource<'_>,
    quiet: bool,
) -> anyhow::Result<LazyImport> {
    let mut lazy = LazyImport::new();
    for spec in specs {
        match spec {
            CacheImport::Image(name) => {
                match image(name) {
                    Ok(found) => inline(cache, &found, name, quiet)?,
                    // BuildKit goes on without a cache it cannot read.
                    Err(e) => eprintln!("warning: cannot use `{name}` as a cache source: {e:#}"),
                }
            }
            CacheImport::Remote(location) => {
                if let CacheLocation::Local { dir, .. } = location
                    && !kiln_oci::Layout::new(dir).index().exists()
                {
                    eprintln!("note: no cache at `{}` yet", dir.display());
                    continue;
                }
                let (remote, tag) = open(location, registry)?;
                let name = remote.name();
                match cache.open_remote(remote, &tag) {
                    Ok(source) => {
                        if !quiet {
                            eprintln!(
                                "cache {name}: {} records, layers fetched as steps hit",
                                source.records()
                            );
                        }
                        lazy.add(source);
                    }
                    // A branch's first build: nothing exported under that tag yet.
                    Err(kiln_cache::CacheError::NoExport { .. })
                        if matches!(location, CacheLocation::Registry(_)) =>
                    {
                        eprintln!("note: no cache at {name} yet");
                    }
                    // A registry reference may name an image that carries its cache inline
                    // (`--cache-to type=inline`, BuildKit's `BUILDKIT_INLINE_CACHE=1`), as
                    // BuildKit's registry importer reads it.
                    Err(e) => match location {
                        CacheLocation::Registry(reference) => match image(reference) {
                            Ok(found) => inline(cache, &found, reference, quiet)?,
                            Err(pull) => eprintln!(
                                "warning: cannot use the cache {name}: {e}; nor as an image: {pull:#}"
                            ),
                        },
                        CacheLocation::Local { .. } => {
                            anyhow::bail!("cannot import the cache {name}: {e}")
                        }
                    },
                }
            }
        }
    }
    let restored = lazy
        .restore_mounts(cache)
        .map_err(|e| anyhow::anyhow!("cannot restore the cache mounts: {e}"))?;
    if !quiet && restored > 0 {
        eprintln!("restored {restored} cache mounts");
    }
    Ok(lazy)
}

/// Exports the build's cache to each `--cache-to` but the inline ones (already in the image).
pub(crate) fn export(
    cache: &Cache,
    outcome: &kiln_build::BuildOutcome,
    exports: &[CacheExport],
    imported: &LazyImport,
    registry: RegistryFactory<'_>,
    quiet: bool,
) -> anyhow::Result<()> {
    for e in exports {
        let Some(location) = &e.location else {
            continue;
        };
        let result = (|| {
            let (remote, tag) = open(location, registry)?;
            let keys = match e.mode {
                CacheMode::Min => &outcome.target_cache_keys,
                CacheMode::Max => &outcome.cache_keys,
            };
            let opts = ExportOptions {
                tag,
                compression: e.compression,
                mounts: e.mounts,
            };
            let report = cache
                .export_to(&*remote, Some(keys), &opts, Some(imported))
                .map_err(|err| {
                    anyhow::anyhow!("cannot export the cache to {}: {err}", remote.name())
                })?;
            if !quiet {
                eprintln!(
                    "exported {} cache records to {} ({} blobs uploaded, {} already there)",
                    report.records,
                    remote.name(),
                    report.uploaded,
                    report.already_there
                );
            }
            anyhow::Ok(())
        })();
        match result {
            Err(err) if e.ignore_error => eprintln!("warning: {err:#}"),
            r => r?,
        }
    }
    let r = imported.report();
    if !quiet && r.layers_fetched > 0 {
        eprintln!(
            "fetched {} cache layers ({}) for steps that hit",
            r.layers_fetched,
            crate::cmd::images::human_size(r.bytes_fetched)
        );
    }
    Ok(())
}
