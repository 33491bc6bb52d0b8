//! `--cache-from` and `--cache-to`: the remotes opened, imported lazily before the build and
//! exported after it.
//!
//! The registry plugs in at one point, [`registry_remote`]: given a reference, it returns the
//! [`CacheRemote`] of its repository and the tag to use. Until the registry client is
//! connected it says so.

use kiln_build::{CacheExport, CacheImport, CacheLocation, CacheMode};
use kiln_cache::{Cache, CacheRemote, ExportOptions, LazyImport, LocalLayout};
use kiln_oci::Store;

/// Makes the remote of a registry reference, and the tag its cache manifest has.
pub(crate) type RegistryFactory = fn(&str) -> anyhow::Result<(Box<dyn CacheRemote>, String)>;

/// The registry's connection point: `type=registry,ref=R` caches go through the remote this
/// returns.
pub(crate) fn registry_remote(reference: &str) -> anyhow::Result<(Box<dyn CacheRemote>, String)> {
    anyhow::bail!(
        "cannot use the cache `{reference}`: registry cache needs the registry client\nhint: use `type=local,dest=DIR` / `type=local,src=DIR` meanwhile"
    )
}

/// The remote `location` names, and its tag, registries made by `registry`.
fn open(
    location: &CacheLocation,
    registry: RegistryFactory,
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
    store: &Store,
    specs: &[CacheImport],
    quiet: bool,
) -> anyhow::Result<LazyImport> {
    let mut lazy = LazyImport::new();
    for spec in specs {
        match spec {
            CacheImport::Image(name) => {
                let image = store.resolve(name).map_err(|e| {
                    anyhow::anyhow!("cannot import the inline cache of `{name}`: {e}")
                })?;
                let report = cache.import_inline(&image, name).map_err(|e| {
                    anyhow::anyhow!("cannot import the inline cache of `{name}`: {e}")
                })?;
                if let Some(note) = &report.note {
                    eprintln!("note: {note}");
                }
                if !quiet && report.added + report.already_present > 0 {
                    eprintln!(
                        "imported {} cache records from the image {name}",
                        report.added
                    );
                }
            }
            CacheImport::Remote(location) => {
                if let CacheLocation::Local { dir, .. } = location
                    && !kiln_oci::Layout::new(dir).index().exists()
                {
                    eprintln!("note: no cache at `{}` yet", dir.display());
                    continue;
                }
                let (remote, tag) = open(location, registry_remote)?;
                let name = remote.name();
                let source = cache
                    .open_remote(remote, &tag)
                    .map_err(|e| anyhow::anyhow!("cannot import the cache {name}: {e}"))?;
                if !quiet {
                    eprintln!(
                        "cache {name}: {} records, layers fetched as steps hit",
                        source.records()
                    );
                }
                lazy.add(source);
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
    quiet: bool,
) -> anyhow::Result<()> {
    for e in exports {
        let Some(location) = &e.location else {
            continue;
        };
        let result = (|| {
            let (remote, tag) = open(location, registry_remote)?;
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
