//! One RUN-like step over an image of the store: snapshots as lower dirs, the sandbox, the diff
//! of what it changed and, on request, that diff committed as a new image. The step's
//! filesystem, spec and diff are a build's RUN's ([`kiln_build::StepRoot`]); only the hostname
//! differs (`kiln`, where a build step is `buildkitsandbox`).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::Context;
use kiln_layer::Compression;
use kiln_oci::config::History;
use kiln_oci::{Descriptor, Image, MediaTypes, Reference, Snapshots, Store};
use kiln_sandbox::{Launcher, Network, Process, Running, Spec};

pub(crate) use kiln_build::Snapshotter;

/// A step's working directories under `<root>/steps/<unique>/`, removed on drop.
#[derive(Debug)]
pub(crate) struct StepDirs {
    pub base: PathBuf,
}

impl StepDirs {
    fn new(layout: &kiln_oci::Layout) -> anyhow::Result<Self> {
        remove_stale(&layout.steps());
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let base = layout
            .steps()
            .join(format!("{}-{nanos}", std::process::id()));
        fs::create_dir_all(&base).with_context(|| format!("cannot create `{}`", base.display()))?;
        Ok(Self { base })
    }
}

/// Removes the directories of steps whose kiln process is gone (killed with SIGKILL, or the
/// machine crashed): they are named `<pid>-<nanos>`.
fn remove_stale(steps: &Path) {
    let Ok(entries) = fs::read_dir(steps) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.split('-').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new("/proc").join(pid.to_string()).exists() {
            let _ = fs::remove_dir_all(e.path());
        }
    }
}

impl Drop for StepDirs {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.base);
    }
}

/// A prepared step: its directories, filesystem and spec (built as a build's RUN builds its
/// own: [`kiln_build::StepRoot`]).
pub(crate) struct Step {
    pub root: kiln_build::StepRoot,
    pub spec: Spec,
    /// Removed when the step is dropped.
    _dirs: StepDirs,
}

impl Step {
    /// Prepares `process` over `image`: snapshots of its layers (unpacked on first use), the
    /// step's directories, and (for the naive snapshotter) the copy of the merged tree.
    pub(crate) fn prepare(
        store: &Store,
        image: &Image,
        process: Process,
        network: Network,
        snapshotter: Snapshotter,
    ) -> anyhow::Result<Self> {
        let snaps = Snapshots::new(store)?;
        let lowers = kiln_layer::overlay::unique_stack(snaps.ensure_image(image)?);
        let dirs = StepDirs::new(store.layout())?;
        // `docker run` names the container's host after it; a build step is `buildkitsandbox`.
        let root = kiln_build::StepRoot::prepare(&dirs.base, lowers, snapshotter, "kiln")?;
        let spec = root.spec(network, process, Vec::new());
        Ok(Self {
            root,
            spec,
            _dirs: dirs,
        })
    }

    /// Starts the step with `stdio`.
    pub(crate) fn spawn(&self, stdio: [Stdio; 3]) -> anyhow::Result<Running> {
        let launcher = Launcher::current_exe().context("cannot find the kiln binary")?;
        Ok(launcher.spawn(&self.spec, &self.root.state(), stdio)?)
    }

    /// Writes what the step changed as a layer of a new image on top of `base`, tagged
    /// `reference` when given; `created_by` goes into the history.
    pub(crate) fn commit(
        &self,
        store: &Store,
        base: &Image,
        created_by: &str,
        reference: Option<&Reference>,
    ) -> anyhow::Result<Descriptor> {
        commit_layer(store, base, &self.root, created_by, reference)
    }
}

/// Diffs the step's filesystem into the store and writes the image `base` + that layer.
pub(crate) fn commit_layer(
    store: &Store,
    base: &Image,
    root: &kiln_build::StepRoot,
    created_by: &str,
    reference: Option<&Reference>,
) -> anyhow::Result<Descriptor> {
    let family = if base.manifest_descriptor.media_type == kiln_oci::media::DOCKER_MANIFEST {
        MediaTypes::Docker
    } else {
        MediaTypes::Oci
    };
    let epoch = crate::source_date_epoch_from_env();
    // As `docker commit`: no runtime mount points in the layer.
    commit_image(
        store,
        family,
        &base.config,
        base.manifest.layers.clone(),
        &|w| root.diff(w, Compression::None, epoch, false),
        created_by,
        reference,
    )
}

/// What writes a layer into a blob writer (a step's diff).
pub(crate) type LayerDiff<'d> = dyn for<'t, 's> Fn(
        kiln_oci::store::BlobWriter<'t, 's>,
    ) -> Result<
        (
            kiln_oci::store::BlobWriter<'t, 's>,
            kiln_layer::LayerDigests,
        ),
        kiln_build::StepError,
    > + 'd;

/// Writes the layer `diff` makes into the store and the image `config` + `layers` + that
/// layer (stored uncompressed, as a build's layers are; compressed on export), with
/// `created_by` in its history, tagged `reference` when given.
pub(crate) fn commit_image(
    store: &Store,
    family: MediaTypes,
    config: &kiln_oci::ImageConfig,
    mut layers: Vec<Descriptor>,
    diff: &LayerDiff<'_>,
    created_by: &str,
    reference: Option<&Reference>,
) -> anyhow::Result<Descriptor> {
    let epoch = crate::source_date_epoch_from_env();
    let mut txn = store.txn()?;
    let writer = txn.blob_writer()?;
    let (writer, digests) = diff(writer)?;
    let (layer_digest, layer_size) =
        writer.commit(Some((&digests.digest, digests.size)), "step layer")?;
    let now = epoch.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
    });
    let created = kiln_oci::import::rfc3339(now);
    let mut config = config.clone();
    config.created = Some(created.clone());
    config.rootfs.diff_ids.push(digests.diff_id.to_string());
    config.history.push(History {
        created: Some(created),
        created_by: Some(created_by.to_owned()),
        ..History::default()
    });
    layers.push(Descriptor::new(
        family.layer(Compression::None),
        layer_digest,
        layer_size,
    ));
    let (descriptor, _) = txn.put_image(family, &config, layers)?;
    txn.commit(|index| {
        match reference {
            Some(r) => kiln_oci::store::set_tag(index, r, &descriptor),
            None => kiln_oci::store::add_untagged(index, &descriptor),
        }
        Ok(())
    })?;
    Ok(descriptor)
}
