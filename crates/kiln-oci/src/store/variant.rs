//! Images as they leave the machine. kiln keeps the layers it builds uncompressed (compressing
//! them is most of a package install's commit time, and nothing local needs it); an export
//! that leaves the machine (an OCI archive or layout) compresses them, gzip by default. The
//! compressed blobs and the manifest naming them are added to the store, and each compressed
//! layer is remembered under `layer-variants/<compression>/<hex>` ([`Layout`]), so a layer is
//! compressed once however often it is exported. The image's identity (its config, so its id
//! and `diff_ids`) does not change; only the manifest of the export does.

use std::fs;

use kiln_layer::{Compression, Digest};

use super::{Layout, Store};
use crate::error::{StoreError, io_err};
use crate::image::Image;
use crate::media::{self, MediaTypes};
use crate::model::Descriptor;

/// The name of a compression in `layer-variants/`.
fn compression_name(c: Compression) -> Option<&'static str> {
    match c {
        Compression::None => None,
        Compression::Gzip { .. } => Some("gzip"),
        Compression::Zstd { .. } => Some("zstd"),
    }
}

impl Layout {
    /// Where the compressed variant of the uncompressed layer `digest` is remembered:
    /// `layer-variants/<gzip|zstd>/<hex>`, holding `sha256:<hex> <size>` of the compressed blob.
    pub fn layer_variant(&self, compression: &str, digest: &Digest) -> std::path::PathBuf {
        self.root()
            .join("layer-variants")
            .join(compression)
            .join(digest.hex())
    }
}

impl Store {
    /// `image` with its uncompressed layers compressed with `compression` (layers stored
    /// compressed stay as they are), under a manifest of its own added to the store; `image`
    /// itself when there is nothing to compress. Multi-platform images are left as they are.
    pub fn compressed_variant(
        &self,
        image: &Image,
        compression: Compression,
    ) -> Result<Image, StoreError> {
        let Some(name) = compression_name(compression) else {
            return Ok(image.clone());
        };
        let plain =
            |d: &Descriptor| media::layer_compression(&d.media_type) == Some(Compression::None);
        if media::is_index(&image.descriptor.media_type) || !image.manifest.layers.iter().any(plain)
        {
            return Ok(image.clone());
        }
        let family = if image.manifest_descriptor.media_type == media::DOCKER_MANIFEST {
            MediaTypes::Docker
        } else {
            MediaTypes::Oci
        };
        let mut txn = self.txn()?;
        let mut layers = Vec::with_capacity(image.manifest.layers.len());
        let mut memos = Vec::new();
        for l in &image.manifest.layers {
            if !plain(l) {
                layers.push(l.clone());
                continue;
            }
            let memo = self.layout().layer_variant(name, &l.digest);
            let known = fs::read_to_string(&memo).ok().and_then(|s| {
                let (d, size) = s.trim().split_once(' ')?;
                let d: Digest = d.parse().ok()?;
                Some((d, size.parse::<u64>().ok()?))
            });
            let (digest, size) = match known {
                Some((d, size)) if self.has_blob(&d) => (d, size),
                _ => {
                    let blob = self.open_blob(&l.digest, &format!("layer `{}`", l.digest))?;
                    let mut w = txn.blob_writer()?;
                    let (_, digests) = kiln_layer::compress_tar(
                        std::io::BufReader::with_capacity(1 << 20, blob),
                        &mut w,
                        compression,
                    )
                    .map_err(|e| {
                        io_err("compress", self.blob_path(&l.digest))(std::io::Error::other(e))
                    })?;
                    let committed =
                        w.commit(Some((&digests.digest, digests.size)), "compressed layer")?;
                    memos.push((memo, committed.clone()));
                    committed
                }
            };
            let mut d = Descriptor::new(family.layer(compression), digest, size);
            d.annotations.clone_from(&l.annotations);
            layers.push(d);
        }
        let manifest = txn.put_manifest(family, image.manifest.config.clone(), layers)?;
        txn.commit(|_| Ok(()))?;
        for (memo, (digest, size)) in memos {
            if let Some(dir) = memo.parent()
                && fs::create_dir_all(dir).is_ok()
            {
                let _ = self.write_atomic(&memo, format!("{digest} {size}\n").as_bytes());
            }
        }
        Image::read(self, &manifest, image.tags.clone())
    }
}
