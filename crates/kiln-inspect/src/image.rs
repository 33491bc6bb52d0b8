//! Images of the store as input: their layers paired with the history entries that made
//! them, read from the store's blobs.

use kiln_oci::{Image, Store};

use crate::analysis::{Analysis, Analyzer, LayerInfo};
use crate::diff::{Differ, ImageDiff, Side};
use crate::error::InspectError;
use crate::walk::Walk;

/// `image`'s layers, bottom first, each with its diff id and the history entry that made
/// it: history entries are paired with layers in order, skipping `empty_layer` ones (as
/// `docker history` and dive pair them).
pub fn layer_infos(image: &Image) -> Vec<LayerInfo> {
    let mut history = image
        .config
        .history
        .iter()
        .enumerate()
        .filter(|(_, h)| !h.empty_layer);
    image
        .manifest
        .layers
        .iter()
        .enumerate()
        .map(|(i, l)| LayerInfo {
            digest: l.digest.clone(),
            diff_id: image
                .config
                .rootfs
                .diff_ids
                .get(i)
                .and_then(|d| d.parse().ok()),
            history: history
                .next()
                .map(|(idx, h)| (idx, h.created_by.clone().unwrap_or_default())),
        })
        .collect()
}

fn open(store: &Store, info: &LayerInfo) -> Result<std::fs::File, InspectError> {
    Ok(store.open_blob(&info.digest, &format!("layer `{}`", info.digest))?)
}

/// Analyses `image`: one pass over each layer's tar headers.
pub fn analyze_image(store: &Store, image: &Image) -> Result<Analysis, InspectError> {
    let mut analyzer = Analyzer::new();
    for info in layer_infos(image) {
        let file = open(store, &info)?;
        let digest = info.digest.clone();
        analyzer
            .add_layer_file(info, file)
            .map_err(|source| InspectError::Layer { digest, source })?;
    }
    Ok(analyzer.finish())
}

/// The difference between the final filesystems of `old` and `new`. The layers the two
/// share at the bottom of their stacks (same digests, same order) are read once.
pub fn diff_images(store: &Store, old: &Image, new: &Image) -> Result<ImageDiff, InspectError> {
    let (a, b) = (layer_infos(old), layer_infos(new));
    let shared = a
        .iter()
        .zip(&b)
        .take_while(|(x, y)| x.digest == y.digest)
        .count();
    let mut differ = Differ::new();
    let layers = a[..shared]
        .iter()
        .map(|l| (Side::Both, l))
        .chain(a[shared..].iter().map(|l| (Side::Old, l)))
        .chain(b[shared..].iter().map(|l| (Side::New, l)));
    for (side, info) in layers {
        let file = open(store, info)?;
        let mut entries = Vec::new();
        Walk { hash: true }
            .file(file, |e| entries.push(e))
            .map_err(|source| InspectError::Layer {
                digest: info.digest.clone(),
                source,
            })?;
        differ.add_entries(side, entries);
    }
    Ok(differ.finish())
}
