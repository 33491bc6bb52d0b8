//! The docker-archive format (`docker save` / `docker load`).
//!
//! `manifest.json` is a list of `{"Config": "<file>", "RepoTags": [...], "Layers": [<file>...]}`;
//! configs are the image config blobs (their digest is the image id) and layers are tars,
//! usually uncompressed, whose digests must equal the config's `rootfs.diff_ids`. Layers are
//! stored as they come (an uncompressed layer's blob digest is its `diff_id`), so saving them
//! back gives the same files and the same image id. A layer two images share is written once by
//! `docker save`; where the second image names it under another id, its `<id>/layer.tar` is a
//! symlink to the first (`../<other-id>/layer.tar`), which is followed inside the archive only.

use std::collections::{BTreeSet, HashMap};
use std::io::{self, Read, Write};
use std::path::Path;

use kiln_layer::{Compression, Digest, HashingReader};
use serde::{Deserialize, Serialize};

use super::{ArchiveError, ArchiveTar, LoadOptions, Loaded, SaveSet, Source};
use crate::config::ImageConfig;
use crate::media;
use crate::model::Descriptor;
use crate::reference::Reference;
use crate::store::{Store, Txn};

/// One entry of `manifest.json`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Entry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

pub(super) fn load(
    txn: &mut Txn<'_>,
    src: &Source,
    opts: &LoadOptions,
) -> Result<Vec<(Loaded, Descriptor)>, ArchiveError> {
    let bytes = src.read("manifest.json", "manifest.json")?;
    let entries: Vec<Entry> = serde_json::from_slice(&bytes)
        .map_err(|e| src.invalid("manifest.json", format!("not valid JSON: {e}")))?;
    // Every layer name is resolved before any layer is staged: staging moves a file out of the
    // unpacked archive, and `docker save` names a layer that two images share twice, the second
    // time through a link (`<id>/layer.tar -> ../<other-id>/layer.tar`).
    let real_layers = entries
        .iter()
        .map(|entry| {
            entry
                .layers
                .iter()
                .map(|rel| src.resolve(rel, &format!("layer `{rel}`")))
                .collect::<Result<Vec<_>, _>>()
        })
        .collect::<Result<Vec<_>, _>>()?;
    // Each layer file is hashed and staged once: its resolved path -> (diff_id, descriptor).
    let mut staged: HashMap<String, (Digest, Descriptor)> = HashMap::new();
    let mut out = Vec::new();
    for (entry, real_layers) in entries.into_iter().zip(real_layers) {
        let object = format!("config `{}`", entry.config);
        let config_bytes = src.read(&entry.config, &object)?;
        let config = ImageConfig::from_slice(&config_bytes)
            .map_err(|e| src.invalid(&object, format!("not valid JSON: {e}")))?;
        let stem = Path::new(&entry.config)
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("");
        let named = Digest::from_hex(stem).ok();
        let (config_digest, config_size) = txn
            .put_bytes(&config_bytes, named.as_ref(), &object)
            .map_err(src.store_err(&object))?;
        if config.rootfs.diff_ids.len() != entry.layers.len() {
            return Err(src.invalid(
                &object,
                format!(
                    "it lists {} diff_ids but manifest.json lists {} layers",
                    config.rootfs.diff_ids.len(),
                    entry.layers.len()
                ),
            ));
        }
        let mut layers = Vec::new();
        for ((rel, real), diff_id) in entry
            .layers
            .iter()
            .zip(&real_layers)
            .zip(&config.rootfs.diff_ids)
        {
            let object = format!("layer `{rel}`");
            let diff_id: Digest = diff_id
                .parse()
                .map_err(|e| src.invalid(&object, format!("its diff_id is invalid: {e}")))?;
            let (actual_diff_id, layer) = if let Some(done) = staged.get(real) {
                done.clone()
            } else {
                let done = stage_layer(txn, src, real, &object, opts)?;
                staged.insert(real.clone(), done.clone());
                done
            };
            if actual_diff_id != diff_id {
                return Err(src.invalid(
                    &object,
                    format!(
                        "its content has diff_id `{actual_diff_id}`, the config says `{diff_id}`"
                    ),
                ));
            }
            layers.push(layer);
        }
        let config = Descriptor::new(
            opts.media_types.config(),
            config_digest.clone(),
            config_size,
        );
        let descriptor = txn
            .put_manifest(opts.media_types, config, layers)
            .map_err(src.store_err("manifest"))?;
        let tags = entry
            .repo_tags
            .unwrap_or_default()
            .iter()
            .map(|t| Reference::parse(t).map_err(|e| src.invalid("manifest.json", e.to_string())))
            .collect::<Result<Vec<_>, _>>()?;
        out.push((
            Loaded {
                digest: descriptor.digest.clone(),
                id: config_digest,
                tags,
            },
            descriptor,
        ));
    }
    Ok(out)
}

/// Stages the layer file `real` (a resolved path) as it is: its `diff_id` and descriptor.
/// An uncompressed layer (what `docker save` writes) is read once: the digest its staging
/// computes is its `diff_id`. A compressed one is read a second time, decompressed.
fn stage_layer(
    txn: &mut Txn<'_>,
    src: &Source,
    real: &str,
    object: &str,
    opts: &LoadOptions,
) -> Result<(Digest, Descriptor), ArchiveError> {
    let mut head = [0_u8; 4];
    let n = io::Read::read(&mut src.open(real, object)?, &mut head)
        .map_err(|e| src.invalid(object, format!("cannot read: {e}")))?;
    if kiln_layer::compress::detect(&head[..n]) == Compression::None {
        let (digest, size) = src.stage(txn, real, None, object)?;
        let layer = Descriptor::new(opts.media_types.layer(Compression::None), digest, size);
        return Ok((layer.digest.clone(), layer));
    }
    let (diff_id, compression) = diff_id_of(src, real, object)?;
    let size = src
        .open(real, object)?
        .metadata()
        .map_err(|e| src.invalid(object, e.to_string()))?
        .len();
    // An uncompressed layer's blob is its diff_id.
    let expected = (compression == Compression::None).then_some((&diff_id, size));
    let (digest, size) = src.stage(txn, real, expected, object)?;
    let layer = Descriptor::new(opts.media_types.layer(compression), digest, size);
    Ok((diff_id, layer))
}

/// The `diff_id` (digest of the decompressed content) and compression of a layer file.
fn diff_id_of(
    src: &Source,
    rel: &str,
    object: &str,
) -> Result<(Digest, Compression), ArchiveError> {
    let file = src.open(rel, object)?;
    let (reader, compression) = kiln_layer::decompress(file)
        .map_err(|e| src.invalid(object, format!("cannot read: {e}")))?;
    let (d, _) = kiln_layer::digest_reader(reader)
        .map_err(|e| src.invalid(object, format!("cannot decompress: {e}")))?;
    Ok((d, compression))
}

/// Writes `images` as a `docker save` tarball: `<config-hex>.json`, `<diff_id-hex>/layer.tar`
/// (uncompressed) and `manifest.json`.
pub fn write_docker_archive<W: Write>(
    store: &Store,
    images: &SaveSet<'_>,
    out: W,
    file: &Path,
) -> Result<W, ArchiveError> {
    let werr = |source| ArchiveError::Write {
        file: file.to_owned(),
        source,
    };
    let mut tar = ArchiveTar::new(out).map_err(werr)?;
    let mut written = BTreeSet::new();
    let mut manifest = Vec::new();
    let mut files: Vec<(String, Digest, Option<Compression>)> = Vec::new();
    for (image, tags) in images {
        let config_name = format!("{}.json", image.id().hex());
        if written.insert(config_name.clone()) {
            files.push((config_name.clone(), image.id().clone(), None));
        }
        let (n_layers, n_diff_ids) = (
            image.manifest.layers.len(),
            image.config.rootfs.diff_ids.len(),
        );
        if n_layers != n_diff_ids {
            return Err(invalid(
                file,
                image,
                format!("{n_layers} layers but {n_diff_ids} diff_ids in its config"),
            ));
        }
        let mut layers = Vec::new();
        for (l, diff_id) in image
            .manifest
            .layers
            .iter()
            .zip(&image.config.rootfs.diff_ids)
        {
            let diff_id: Digest = diff_id
                .parse()
                .map_err(|e| invalid(file, image, format!("diff_id: {e}")))?;
            let name = format!("{}/layer.tar", diff_id.hex());
            if written.insert(name.clone()) {
                let compression =
                    media::layer_compression(&l.media_type).unwrap_or(Compression::None);
                files.push((name.clone(), l.digest.clone(), Some(compression)));
            }
            layers.push(name);
        }
        let repo_tags: Vec<String> = tags
            .iter()
            .filter(|t| t.tag.is_some())
            .map(Reference::familiar)
            .collect();
        manifest.push(Entry {
            config: config_name,
            repo_tags: Some(repo_tags),
            layers,
        });
    }
    files.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, digest, compression) in files {
        let what = format!("blob `{digest}` (`{name}`)");
        let serr = |source| ArchiveError::Store {
            file: file.to_owned(),
            object: what.clone(),
            source: Box::new(source),
        };
        match compression {
            None | Some(Compression::None) => {
                let blob = store.open_blob(&digest, &what).map_err(serr)?;
                let size = blob.metadata().map_err(werr)?.len();
                let mut r = HashingReader::new(io::BufReader::with_capacity(1 << 20, blob));
                tar.add(&name, size, &mut r).map_err(werr)?;
                let (_, actual, _) = r.finish();
                if actual != digest {
                    return Err(ArchiveError::Invalid {
                        file: file.to_owned(),
                        object: what,
                        reason: format!("the stored blob hashes to `{actual}`; run `kiln fsck`"),
                    });
                }
            }
            Some(_) => {
                // Two passes: the tar header needs the uncompressed size first.
                let open = || -> Result<Box<dyn Read>, ArchiveError> {
                    let blob =
                        store
                            .open_blob(&digest, &what)
                            .map_err(|source| ArchiveError::Store {
                                file: file.to_owned(),
                                object: what.clone(),
                                source: Box::new(source),
                            })?;
                    kiln_layer::decompress(blob).map(|(r, _)| r).map_err(werr)
                };
                let size = io::copy(&mut open()?, &mut io::sink()).map_err(werr)?;
                tar.add(&name, size, &mut open()?).map_err(werr)?;
            }
        }
    }
    let mbytes = serde_json::to_vec(&manifest).map_err(|e| werr(io::Error::other(e)))?;
    tar.add_bytes("manifest.json", &mbytes).map_err(werr)?;
    tar.finish().map_err(werr)
}

fn invalid(file: &Path, image: &crate::image::Image, reason: String) -> ArchiveError {
    ArchiveError::Invalid {
        file: file.to_owned(),
        object: format!("image `{}`", image.id()),
        reason,
    }
}
