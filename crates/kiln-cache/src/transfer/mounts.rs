//! `RUN --mount=type=cache` directories in an export (`mounts=true`): each one's `data/` as a
//! tar layer, and restored where the importing store has none.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use kiln_oci::store::ExportCompression;
use kiln_oci::{MediaTypes, Store};

use super::{ExportedLayer, ExportedMount};
use crate::error::{CacheError, io_err};
use crate::remote::CacheRemote;

/// Packs every cache mount of `store` into `scratch`, sorted by key: the mounts and the files
/// holding their layers.
pub(super) fn pack_all(
    store: &Store,
    scratch: &Path,
    compression: ExportCompression,
) -> Result<Vec<(ExportedMount, PathBuf)>, CacheError> {
    let root = store.layout().cache_mounts();
    let entries = match fs::read_dir(&root) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err("read", &root)(e)),
    };
    let mut keys: Vec<String> = entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    keys.sort();
    let mut out = Vec::new();
    for key in keys {
        let mount = store.layout().cache_mount(&key);
        // A mount being made or removed has no `id` yet, or no longer.
        let (Ok(id), true) = (fs::read_to_string(mount.id()), mount.data().is_dir()) else {
            continue;
        };
        let path = scratch.join(format!("mount-{key}"));
        let file = fs::File::create(&path).map_err(io_err("create", &path))?;
        let opts = kiln_layer::PackOptions {
            compression: compression.compression,
            source_date_epoch: None,
        };
        let (file, digests) = kiln_layer::pack_dir(&mount.data(), io::BufWriter::new(file), &opts)
            .map_err(|e| io_err("pack", mount.data())(io::Error::other(e)))?;
        file.into_inner()
            .map_err(|e| io_err("write", &path)(e.into_error()))?
            .sync_all()
            .map_err(io_err("write", &path))?;
        out.push((
            ExportedMount {
                key,
                id,
                layer: ExportedLayer {
                    media_type: MediaTypes::Oci.layer(digests.compression).to_owned(),
                    digest: digests.digest,
                    size: digests.size,
                    diff_id: digests.diff_id,
                },
            },
            path,
        ));
    }
    Ok(out)
}

/// Whether the store has no files in cache mount `key`.
fn empty_or_missing(data: &Path) -> bool {
    fs::read_dir(data).map_or(true, |mut d| d.next().is_none())
}

/// Restores `m` from `remote` when the store's mount of that key is missing or empty;
/// whether it did. The layer is checked against its digest before it is unpacked, into a
/// directory renamed into place whole.
pub(super) fn restore(
    store: &Store,
    remote: &dyn CacheRemote,
    m: &ExportedMount,
) -> Result<bool, CacheError> {
    if m.key.is_empty() || m.key.contains(['/', '.']) {
        return Err(CacheError::NotExport {
            path: remote.name().into(),
            reason: format!("cache mount key `{}` is not a name", m.key),
        });
    }
    let mount = store.layout().cache_mount(&m.key);
    let data = mount.data();
    if !empty_or_missing(&data) {
        return Ok(false);
    }
    let tmp = store.layout().tmp_unique("cache-mount");
    fs::create_dir_all(&tmp).map_err(io_err("create", &tmp))?;
    let result = (|| {
        let blob = tmp.join("layer");
        let d = m.layer.descriptor();
        remote
            .fetch_blob(&d, &blob)
            .map_err(|source| CacheError::Remote {
                remote: remote.name(),
                action: format!("fetch cache mount `{}` (`{}`)", m.id, d.digest),
                source,
            })?;
        let f = fs::File::open(&blob).map_err(io_err("open", &blob))?;
        let (digest, size) =
            kiln_layer::digest_reader(io::BufReader::new(f)).map_err(io_err("read", &blob))?;
        if digest != d.digest || size != d.size {
            return Err(CacheError::Remote {
                remote: remote.name(),
                action: format!("fetch cache mount `{}`", m.id),
                source: format!(
                    "it is `{digest}` ({size} bytes), the export says `{}` ({} bytes)",
                    d.digest, d.size
                )
                .into(),
            });
        }
        let tree = tmp.join("data");
        fs::create_dir(&tree).map_err(io_err("create", &tree))?;
        let f = fs::File::open(&blob).map_err(io_err("open", &blob))?;
        let opts = kiln_layer::ApplyOptions {
            whiteouts: false,
            ..kiln_layer::ApplyOptions::default()
        };
        kiln_layer::apply(io::BufReader::new(f), &tree, &opts)
            .map_err(|e| io_err("unpack", &tree)(io::Error::other(e)))?;
        fs::create_dir_all(mount.dir()).map_err(io_err("create", mount.dir()))?;
        if data.exists() {
            fs::remove_dir(&data).map_err(io_err("remove", &data))?;
        }
        fs::rename(&tree, &data).map_err(io_err("rename", &tree))?;
        fs::write(mount.id(), &m.id).map_err(io_err("write", mount.id()))?;
        Ok(true)
    })();
    let _ = fs::remove_dir_all(&tmp);
    result
}
