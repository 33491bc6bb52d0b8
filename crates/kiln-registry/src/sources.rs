//! Which repositories a blob of the store came from or went to
//! (`registry-sources/<hex>` under the store root, one `host/path` a line): a push to the
//! same registry mounts the blob from one of them instead of uploading it.

use std::io::Write as _;

use kiln_layer::Digest;
use kiln_oci::Store;

/// The repositories (`host/path`) recorded for `digest`.
pub(crate) fn read(store: &Store, digest: &Digest) -> Vec<String> {
    std::fs::read_to_string(store.layout().registry_sources(digest))
        .map(|s| s.lines().map(str::to_owned).collect())
        .unwrap_or_default()
}

/// Records `repository` (`host/path`) for each of `digests`. Best effort: a record that
/// cannot be written only costs an upload later.
pub(crate) fn record<'a>(
    store: &Store,
    digests: impl IntoIterator<Item = &'a Digest>,
    repository: &str,
) {
    for d in digests {
        if read(store, d).iter().any(|r| r == repository) {
            continue;
        }
        let path = store.layout().registry_sources(d);
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
        {
            let _ = writeln!(f, "{repository}");
        }
    }
}

/// A repository of `domain` other than `path` that has `digest`, to mount it from.
pub(crate) fn mount_source(
    store: &Store,
    digest: &Digest,
    domain: &str,
    path: &str,
) -> Option<String> {
    read(store, digest).into_iter().find_map(|r| {
        let (d, p) = r.split_once('/')?;
        (d == domain && p != path).then(|| p.to_owned())
    })
}
