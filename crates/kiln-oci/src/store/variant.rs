//! Images as they leave the machine. kiln keeps the layers it builds uncompressed (compressing
//! them is most of a package install's commit time, and nothing local needs it); an export
//! that leaves the machine (an OCI archive or layout) compresses them, gzip by default. The
//! compressed blobs and the manifest naming them are added to the store, and each compressed
//! layer is remembered under `layer-variants/<compression>/<hex>` ([`Layout`]), so a layer is
//! compressed once however often it is exported. The image's identity (its config, so its id
//! and `diff_ids`) does not change; only the manifest of the export does.

use std::fs;
use std::path::PathBuf;

use kiln_layer::{Compression, Digest};

use super::{Layout, Store};
use crate::error::{StoreError, io_err};
use crate::image::Image;
use crate::media::{self, MediaTypes};
use crate::model::Descriptor;

/// How layers are compressed on their way out of the store: BuildKit's `compression=` (and
/// `compression-level=`) and `force-compression=` export attributes. Layers stored without
/// compression (all that kiln builds) get `compression`; layers already compressed keep their
/// compression unless `force` is set, then they are recompressed (decompressed, for
/// `Compression::None`). Foreign (non-distributable) layers are never rewritten.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ExportCompression {
    /// What a layer leaving the machine is compressed with; gzip by default.
    pub compression: Compression,
    /// Recompress layers that are already compressed otherwise.
    pub force: bool,
}

/// The name of a compression in `layer-variants/`: `gzip`, `zstd`, `uncompressed`, with
/// `-<level>` when the level is not the default one.
fn compression_name(c: Compression) -> String {
    match c {
        Compression::None => "uncompressed".to_owned(),
        Compression::Gzip { level: 6 } => "gzip".to_owned(),
        Compression::Gzip { level } => format!("gzip-{level}"),
        Compression::Zstd { level: 3 } => "zstd".to_owned(),
        Compression::Zstd { level } => format!("zstd-{level}"),
    }
}

/// A variant made in a transaction: where to remember it, and its blob's digest and size.
type Memo = (PathBuf, (Digest, u64));

/// Whether `a` and `b` are the same algorithm (levels aside).
fn same_algorithm(a: Compression, b: Compression) -> bool {
    std::mem::discriminant(&a) == std::mem::discriminant(&b)
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
    /// `layer` as it leaves the machine under `want`: itself when it already is, else its
    /// variant, made once and remembered (see the module docs), with a `family` media type.
    pub fn layer_variant(
        &self,
        layer: &Descriptor,
        family: MediaTypes,
        want: ExportCompression,
    ) -> Result<Descriptor, StoreError> {
        let Some(plan) = self.variant_plan(layer, want) else {
            return Ok(layer.clone());
        };
        let mut txn = self.txn()?;
        let (d, memo) = self.make_variant(&mut txn, layer, family, want, plan)?;
        txn.commit(|_| Ok(()))?;
        self.remember_variants(memo);
        Ok(d)
    }

    /// `image` with its layers as they leave the machine under `want` (see
    /// [`ExportCompression`]), under a manifest of its own added to the store; `image` itself
    /// when no layer changes. Multi-platform images are left as they are.
    pub fn compressed_variant(
        &self,
        image: &Image,
        want: ExportCompression,
    ) -> Result<Image, StoreError> {
        if media::is_index(&image.descriptor.media_type)
            || !image
                .manifest
                .layers
                .iter()
                .any(|l| self.variant_plan(l, want).is_some())
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
            match self.variant_plan(l, want) {
                None => layers.push(l.clone()),
                Some(plan) => {
                    let (d, memo) = self.make_variant(&mut txn, l, family, want, plan)?;
                    memos.extend(memo);
                    layers.push(d);
                }
            }
        }
        let manifest = txn.put_manifest(family, image.manifest.config.clone(), layers)?;
        txn.commit(|_| Ok(()))?;
        self.remember_variants(memos);
        Image::read(self, &manifest, image.tags.clone())
    }

    /// Remembers `compressed` as the variant under `compression` of the uncompressed layer
    /// `plain` (a layer that arrived compressed and is stored plain too, as a lazily imported
    /// cache layer is), so that exporting `plain` gives `compressed` without compressing it
    /// again. Both blobs must be in the store; a memo that cannot be written only costs
    /// compressing again.
    pub fn remember_layer_variant(
        &self,
        plain: &Digest,
        compression: Compression,
        compressed: &Descriptor,
    ) {
        let memo = self
            .layout()
            .layer_variant(&compression_name(compression), plain);
        self.remember_variants([(memo, (compressed.digest.clone(), compressed.size))]);
    }

    /// Where `layer`'s variant under `want` is remembered, when it needs one.
    fn variant_plan(&self, layer: &Descriptor, want: ExportCompression) -> Option<PathBuf> {
        let has = media::layer_compression(&layer.media_type)?;
        let foreign =
            layer.media_type.contains("foreign") || layer.media_type.contains("nondistributable");
        let rewrite = !foreign
            && !same_algorithm(has, want.compression)
            && (has == Compression::None || want.force);
        rewrite.then(|| {
            self.layout()
                .layer_variant(&compression_name(want.compression), &layer.digest)
        })
    }

    /// `layer`'s variant under `want`, remembered at `memo`: the remembered blob when the
    /// store still has it, else made now in `txn` (with the memo to write once committed).
    fn make_variant(
        &self,
        txn: &mut super::Txn,
        layer: &Descriptor,
        family: MediaTypes,
        want: ExportCompression,
        memo: PathBuf,
    ) -> Result<(Descriptor, Option<Memo>), StoreError> {
        let known = fs::read_to_string(&memo).ok().and_then(|s| {
            let (d, size) = s.trim().split_once(' ')?;
            let d: Digest = d.parse().ok()?;
            Some((d, size.parse::<u64>().ok()?))
        });
        let (made, (digest, size)) = match known {
            Some((d, size)) if self.has_blob(&d) => (None, (d, size)),
            _ => {
                let blob = self.open_blob(&layer.digest, &format!("layer `{}`", layer.digest))?;
                let read_err = |e| io_err("read", self.blob_path(&layer.digest))(e);
                let (plain, _) =
                    kiln_layer::decompress(std::io::BufReader::with_capacity(1 << 20, blob))
                        .map_err(read_err)?;
                let mut w = txn.blob_writer()?;
                let (_, digests) = kiln_layer::compress_tar(plain, &mut w, want.compression)
                    .map_err(|e| {
                        io_err("compress", self.blob_path(&layer.digest))(std::io::Error::other(e))
                    })?;
                let committed = w.commit(Some((&digests.digest, digests.size)), "layer variant")?;
                (Some((memo, committed.clone())), committed)
            }
        };
        let mut d = Descriptor::new(family.layer(want.compression), digest, size);
        d.annotations.clone_from(&layer.annotations);
        Ok((d, made))
    }

    /// Writes the memos of variants just committed (a memo that cannot be written only costs
    /// compressing again next time).
    fn remember_variants(&self, memos: impl IntoIterator<Item = Memo>) {
        for (memo, (digest, size)) in memos {
            if let Some(dir) = memo.parent()
                && fs::create_dir_all(dir).is_ok()
            {
                let _ = self.write_atomic(&memo, format!("{digest} {size}\n").as_bytes());
            }
        }
    }
}
