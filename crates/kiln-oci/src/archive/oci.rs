//! OCI image layouts (directories or tars of one): reading them into the store and writing
//! images out as one.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Write};
use std::path::Path;

use kiln_layer::{Digest, HashingReader};

use super::{ArchiveError, ArchiveTar, Loaded, SaveSet, Source};
use crate::media;
use crate::model::{Descriptor, Index, Manifest, REF_NAME};
use crate::reference::Reference;
use crate::store::{Store, Txn};

/// The annotation containerd and Docker 25+ use for a full image name in a layout.
const CONTAINERD_NAME: &str = "io.containerd.image.name";

pub(super) fn load(
    txn: &mut Txn<'_>,
    src: &Source,
) -> Result<Vec<(Loaded, Descriptor)>, ArchiveError> {
    if let Ok(bytes) = src.read("oci-layout", "oci-layout") {
        let v: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|e| src.invalid("oci-layout", format!("not valid JSON: {e}")))?;
        if v.get("imageLayoutVersion").and_then(|v| v.as_str()) != Some("1.0.0") {
            return Err(src.invalid("oci-layout", "imageLayoutVersion is not `1.0.0`"));
        }
    }
    let bytes = src.read("index.json", "index.json")?;
    let index: Index = serde_json::from_slice(&bytes)
        .map_err(|e| src.invalid("index.json", format!("not valid JSON: {e}")))?;
    let mut out = Vec::new();
    for d in &index.manifests {
        copy_tree(txn, src, d, "index.json")?;
        let name = d
            .annotations
            .get(CONTAINERD_NAME)
            .or_else(|| d.annotations.get(REF_NAME));
        // A bare tag (`latest`, as `skopeo copy ... oci:DIR:latest` writes) names no
        // repository: such images load untagged rather than as `docker.io/library/latest`.
        let tag = name
            .filter(|n| n.contains(['/', ':', '@']))
            .map(|n| Reference::parse(n).map_err(|e| src.invalid("index.json", e.to_string())))
            .transpose()?;
        let id = config_digest(txn, src, d)?;
        let mut bare = d.clone();
        bare.annotations.clear();
        out.push((
            Loaded {
                digest: d.digest.clone(),
                id,
                tags: tag.into_iter().collect(),
            },
            bare,
        ));
    }
    Ok(out)
}

fn blob_rel(d: &Descriptor) -> String {
    format!("blobs/{}/{}", d.digest.algorithm(), d.digest.hex())
}

/// Copies the blob `d` and, for manifests and indexes, everything they reference, checking
/// digests, sizes and media types.
fn copy_tree(
    txn: &mut Txn<'_>,
    src: &Source,
    d: &Descriptor,
    parent: &str,
) -> Result<(), ArchiveError> {
    let object = format!("blob `{}` (referenced by {parent})", d.digest);
    let is_manifest = media::is_manifest(&d.media_type);
    let is_index = media::is_index(&d.media_type);
    if !is_manifest && !is_index {
        return Err(src.invalid(
            &object,
            format!("unsupported media type `{}` for a manifest", d.media_type),
        ));
    }
    let bytes = src.read(&blob_rel(d), &object)?;
    txn.put_bytes(&bytes, Some(&d.digest), &object)
        .map_err(src.store_err(&object))?;
    if bytes.len() as u64 != d.size {
        return Err(src.invalid(
            &object,
            format!(
                "it has {} bytes, its descriptor says {}",
                bytes.len(),
                d.size
            ),
        ));
    }
    let here = format!(
        "{} `{}`",
        if is_index { "index" } else { "manifest" },
        d.digest
    );
    if is_index {
        let index: Index = serde_json::from_slice(&bytes)
            .map_err(|e| src.invalid(&object, format!("not valid JSON: {e}")))?;
        for m in &index.manifests {
            copy_tree(txn, src, m, &here)?;
        }
        return Ok(());
    }
    let m: Manifest = serde_json::from_slice(&bytes)
        .map_err(|e| src.invalid(&object, format!("not valid JSON: {e}")))?;
    if !media::is_config(&m.config.media_type) {
        return Err(src.invalid(
            format!("config `{}` of {here}", m.config.digest),
            format!("unsupported media type `{}`", m.config.media_type),
        ));
    }
    let cobject = format!("config `{}` of {here}", m.config.digest);
    let cbytes = src.read(&blob_rel(&m.config), &cobject)?;
    crate::config::ImageConfig::from_slice(&cbytes)
        .map_err(|e| src.invalid(&cobject, format!("not valid JSON: {e}")))?;
    if cbytes.len() as u64 != m.config.size {
        return Err(src.invalid(
            &cobject,
            format!(
                "it has {} bytes, its descriptor says {}",
                cbytes.len(),
                m.config.size
            ),
        ));
    }
    txn.put_bytes(&cbytes, Some(&m.config.digest), &cobject)
        .map_err(src.store_err(&cobject))?;
    for l in &m.layers {
        let lobject = format!("layer `{}` of {here}", l.digest);
        if media::layer_compression(&l.media_type).is_none() {
            return Err(src.invalid(
                &lobject,
                format!("unsupported media type `{}`", l.media_type),
            ));
        }
        src.stage(txn, &blob_rel(l), Some((&l.digest, l.size)), &lobject)?;
    }
    Ok(())
}

fn config_digest(txn: &Txn<'_>, src: &Source, d: &Descriptor) -> Result<Digest, ArchiveError> {
    let read = |d: &Descriptor| {
        std::fs::read(txn.blob_path(&d.digest))
            .map_err(|e| src.invalid(format!("blob `{}`", d.digest), e.to_string()))
    };
    let mut d = d.clone();
    while media::is_index(&d.media_type) {
        let index: Index = serde_json::from_slice(&read(&d)?)
            .map_err(|e| src.invalid(format!("index `{}`", d.digest), e.to_string()))?;
        // The manifest `Image::read` will use: this machine's platform, else the first.
        d = crate::image::pick_platform(&index)
            .or_else(|| index.manifests.into_iter().next())
            .ok_or_else(|| src.invalid(format!("index `{}`", d.digest), "it lists no manifest"))?;
    }
    let m: Manifest = serde_json::from_slice(&read(&d)?)
        .map_err(|e| src.invalid(format!("manifest `{}`", d.digest), e.to_string()))?;
    Ok(m.config.digest)
}

/// Writes `images` as an OCI archive: `oci-layout`, `index.json` (one entry per reference,
/// named by `org.opencontainers.image.ref.name` and `io.containerd.image.name`), the blobs as
/// stored, and a docker-archive `manifest.json` pointing at the same blobs so that `docker load`
/// reads it as well.
pub fn write_oci_archive<W: Write>(
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
    let mut index = Index::default();
    let mut blobs = BTreeSet::new();
    let mut docker = Vec::new();
    for (image, tags) in images {
        let reachable =
            store
                .reachable(&image.descriptor)
                .map_err(|source| ArchiveError::Store {
                    file: file.to_owned(),
                    object: format!("image `{}`", image.id()),
                    source: Box::new(source),
                })?;
        blobs.extend(reachable);
        if tags.is_empty() {
            index.manifests.push(image.descriptor.clone());
        }
        for t in tags {
            let mut d = image.descriptor.clone();
            d.annotations = BTreeMap::from([
                (REF_NAME.to_owned(), t.to_string()),
                (CONTAINERD_NAME.to_owned(), t.to_string()),
            ]);
            index.manifests.push(d);
        }
        docker.push(serde_json::json!({
            "Config": blob_rel(&image.manifest.config),
            "RepoTags": tags.iter().filter(|t| t.tag.is_some()).map(Reference::familiar).collect::<Vec<_>>(),
            "Layers": image.manifest.layers.iter().map(blob_rel).collect::<Vec<_>>(),
        }));
    }
    for digest in blobs {
        let what = format!("blob `{digest}`");
        let blob = store
            .open_blob(&digest, &what)
            .map_err(|source| ArchiveError::Store {
                file: file.to_owned(),
                object: what.clone(),
                source: Box::new(source),
            })?;
        let size = blob.metadata().map_err(werr)?.len();
        let mut r = HashingReader::new(io::BufReader::with_capacity(1 << 20, blob));
        tar.add(&format!("blobs/sha256/{}", digest.hex()), size, &mut r)
            .map_err(werr)?;
        let (_, actual, _) = r.finish();
        if actual != digest {
            return Err(ArchiveError::Invalid {
                file: file.to_owned(),
                object: what,
                reason: format!("the stored blob hashes to `{actual}`; run `kiln fsck`"),
            });
        }
    }
    let ibytes = crate::canonical::to_vec(&index).map_err(|e| werr(io::Error::other(e)))?;
    tar.add_bytes("index.json", &ibytes).map_err(werr)?;
    let mbytes = serde_json::to_vec(&docker).map_err(|e| werr(io::Error::other(e)))?;
    tar.add_bytes("manifest.json", &mbytes).map_err(werr)?;
    tar.add_bytes("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)
        .map_err(werr)?;
    tar.finish().map_err(werr)
}
