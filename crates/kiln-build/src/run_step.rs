//! RUN: the command in the sandbox over the stage's layers, its output streamed as events,
//! and what it changed turned into a layer (BuildKit's `dispatchRun`).
//!
//! Heredocs, as BuildKit runs them: `RUN <<EOF` alone runs the body as the shell's script
//! (a body starting with `#!` is written to `/dev/pipes/NAME`, mode 0755, and executed
//! instead); any other use
//! passes the instruction line with each body and terminator appended to the shell.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use kiln_frontend::instruction::{NetworkMode, Run};
use kiln_layer::diff::{DiffOptions, NewTree};
use kiln_sandbox::{FileContent, MountKind, MountSpec, Network, Process, Rootfs, Spec};

use crate::error::StepError;
use crate::layers::{Layer, LayerSink};
use crate::progress::{Event, Reporter, StepId};
use crate::sandbox::Sandbox;
use crate::snapshotter::Snapshotter;

/// A failed step's filesystem, kept for a look inside ([`StepRoot::keep`]), with what an
/// image of it needs: the stage's layers and config as they were when the step started.
#[derive(Debug, Clone)]
pub struct KeptStep {
    /// Its directory (under the store's `failed-steps/`), with `spec.json`.
    pub dir: PathBuf,
    /// The step's sandbox spec, its paths inside `dir` (and the snapshots below it).
    pub spec: Spec,
    /// The stage's name or index.
    pub stage: String,
    /// The step's position in its stage, from 1 (the FROM is 1).
    pub position: usize,
    /// The stage's image config before the step (its history and `diff_ids` those of
    /// `layers`).
    pub config: kiln_oci::ImageConfig,
    /// The stage's layers before the step, bottom first: in the store once the failed build
    /// has ended (the finished steps' layers are published).
    pub layers: Vec<Layer>,
    root: StepRoot,
}

impl KeptStep {
    /// Writes what the failed step changed as a layer to `out`, as its RUN layer would have
    /// been ([`StepRoot::diff`] with the mount points).
    pub fn diff<W: std::io::Write>(
        &self,
        out: W,
        compression: kiln_layer::Compression,
        source_date_epoch: Option<i64>,
    ) -> Result<(W, kiln_layer::LayerDigests), StepError> {
        self.root.diff(out, compression, source_date_epoch, true)
    }
}

/// Where and what to keep of a RUN that fails (`--keep-failed`).
pub(crate) struct KeepTo {
    /// The new directory for the step (under `failed-steps/`).
    pub dir: PathBuf,
    /// The stage's config before the step.
    pub config: kiln_oci::ImageConfig,
    /// The stage's layers before the step.
    pub layers: Vec<Layer>,
}

/// The filesystem a RUN-like step runs in and whose changes become its layer, made the same
/// way for a build's RUN and for `kiln run`: under `dir`, `state/` (the spec, `/etc/hosts`
/// and `/etc/resolv.conf`), `rootfs/` (the mount point) and either `upper/` and `work/` over
/// the lower dirs (overlay) or `tree/`, a copy of them (naive), marked right after copying so
/// the diff can tell what the step touched.
#[derive(Debug, Clone)]
pub struct StepRoot {
    dir: PathBuf,
    lowers: Vec<PathBuf>,
    snapshotter: Snapshotter,
    rootfs: Rootfs,
    hostname: String,
    hosts: PathBuf,
    resolv_conf: PathBuf,
    settled_before: Option<(i64, i64)>,
}

impl StepRoot {
    /// Prepares the step's directories under `dir` (which must exist) over `lowers` (snapshot
    /// dirs, topmost first, each once), with `/etc/hosts` naming `hostname`.
    pub fn prepare(
        dir: &Path,
        lowers: Vec<PathBuf>,
        snapshotter: Snapshotter,
        hostname: &str,
    ) -> Result<Self, StepError> {
        let state = dir.join("state");
        for d in ["state", "upper", "work", "rootfs"] {
            let p = dir.join(d);
            std::fs::create_dir_all(&p).map_err(|e| StepError::io("create", &p, e))?;
        }
        let (hosts, resolv_conf) = kiln_sandbox::write_etc_files(&state, hostname)?;
        let (rootfs, settled_before) = snapshotter.rootfs(dir, &lowers)?;
        Ok(Self {
            dir: dir.to_owned(),
            lowers,
            snapshotter,
            rootfs,
            hostname: hostname.to_owned(),
            hosts,
            resolv_conf,
            settled_before,
        })
    }

    /// The sandbox spec of `process` in this filesystem.
    pub fn spec(&self, network: Network, process: Process, mounts: Vec<MountSpec>) -> Spec {
        Spec {
            rootfs: self.rootfs.clone(),
            mountpoint: self.dir.join("rootfs"),
            hosts: self.hosts.clone(),
            resolv_conf: self.resolv_conf.clone(),
            hostname: self.hostname.clone(),
            network,
            process,
            mounts,
        }
    }

    /// Moves the step's directories to `to` (a new path on the same filesystem) so that they
    /// outlive the step, and writes there `spec.json`: `spec` with its paths moved along
    /// (returned, with this root as it is now, at `to`),
    /// without the extra mounts (RUN `--mount`s are made per run and gone with the step).
    /// What a failed RUN's process left is in `upper/` (overlay) or `tree/` (naive), over
    /// the lower dirs the spec names; a debugger can start a shell in it with the spec.
    pub fn keep(&self, spec: &Spec, to: &Path) -> Result<(Spec, Self), StepError> {
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent).map_err(|e| StepError::io("create", parent, e))?;
        }
        std::fs::rename(&self.dir, to).map_err(|e| StepError::io("keep", &self.dir, e))?;
        let moved = |p: &Path| match p.strip_prefix(&self.dir) {
            Ok(rel) => to.join(rel),
            Err(_) => p.to_owned(),
        };
        let mut spec = spec.clone();
        spec.rootfs = match spec.rootfs {
            Rootfs::Overlay { lower, upper, work } => Rootfs::Overlay {
                lower: lower.iter().map(|l| moved(l)).collect(),
                upper: moved(&upper),
                work: moved(&work),
            },
            Rootfs::Bind { dir } => Rootfs::Bind { dir: moved(&dir) },
        };
        spec.mountpoint = moved(&spec.mountpoint);
        spec.hosts = moved(&spec.hosts);
        spec.resolv_conf = moved(&spec.resolv_conf);
        spec.mounts.clear();
        let file = to.join("spec.json");
        let bytes = serde_json::to_vec_pretty(&spec)
            .map_err(|e| StepError::io("write", &file, std::io::Error::other(e)))?;
        std::fs::write(&file, bytes).map_err(|e| StepError::io("write", &file, e))?;
        let root = Self {
            dir: to.to_owned(),
            lowers: self.lowers.clone(),
            snapshotter: self.snapshotter,
            rootfs: spec.rootfs.clone(),
            hostname: self.hostname.clone(),
            hosts: spec.hosts.clone(),
            resolv_conf: spec.resolv_conf.clone(),
            settled_before: self.settled_before,
        };
        Ok((spec, root))
    }

    /// The tree the step's changes are diffed from: the overlay's upper dir, or the full
    /// copy. Its files may become the snapshot's (`LayerSink::commit_layer`'s `link_from`)
    /// once the step is done.
    pub fn tree(&self) -> PathBuf {
        match self.snapshotter {
            Snapshotter::Overlay => self.dir.join("upper"),
            Snapshotter::Naive => self.dir.join("tree"),
        }
    }

    /// Where the spec and the init's error report live.
    pub fn state(&self) -> PathBuf {
        self.dir.join("state")
    }

    /// Writes what the step changed as a layer to `out`. With `mount_points`, the layer
    /// carries the `/dev`, `/proc` and `/sys` mount points the lowers lack, as a BuildKit RUN
    /// layer does (`keep_mount_points`); `docker commit`'s layers do not.
    pub fn diff<W: std::io::Write>(
        &self,
        out: W,
        compression: kiln_layer::Compression,
        source_date_epoch: Option<i64>,
        mount_points: bool,
    ) -> Result<(W, kiln_layer::LayerDigests), StepError> {
        let tree_dir = self.tree();
        let tree = match self.snapshotter {
            Snapshotter::Overlay => NewTree::Upper(&tree_dir),
            Snapshotter::Naive => NewTree::Full(&tree_dir),
        };
        if mount_points {
            keep_mount_points(&self.lowers, &tree_dir)?;
        }
        let opts = DiffOptions {
            compression,
            source_date_epoch,
            settled_before: self.settled_before,
        };
        let (written, digests, _) = kiln_layer::diff::diff(tree, &self.lowers, out, &opts)?;
        Ok((written, digests))
    }
}

/// The argv a RUN executes, before the shell is prepended: heredocs resolved as BuildKit does.
/// Returns the arguments and, for a `#!` heredoc, the script file to provide.
pub(crate) fn run_args(run: &Run) -> (Vec<String>, Option<(String, String)>) {
    let args = run.command.args.clone();
    let files = &run.command.files;
    if files.is_empty() || args.len() != 1 || !run.command.prepend_shell {
        return (args, None);
    }
    if run.command.is_heredoc_script() {
        let data = files[0].content.clone();
        if data.starts_with("#!") {
            return (
                vec![format!("/dev/pipes/{}", files[0].name)],
                Some((files[0].name.clone(), data)),
            );
        }
        return (vec![data], None);
    }
    let mut line = args[0].clone();
    for f in files {
        line.push('\n');
        line.push_str(&f.content);
        line.push_str(&f.name);
    }
    (vec![line], None)
}

/// What a RUN step needs from its stage.
pub(crate) struct RunInput<'a> {
    /// The stage's layers' snapshots, topmost first.
    pub lowers: Vec<PathBuf>,
    /// The full argv (shell included).
    pub argv: Vec<String>,
    /// `KEY=VALUE` environment.
    pub env: Vec<String>,
    /// Working directory.
    pub cwd: String,
    /// USER.
    pub user: String,
    /// Network.
    pub network: NetworkMode,
    /// The build's default network (`--network`).
    pub default_network: Network,
    /// A `#!` heredoc to put at `/dev/pipes/NAME`.
    pub script: Option<(String, String)>,
    /// The step's `--mount`s, prepared ([`crate::run_mount`]).
    pub mounts: Vec<MountSpec>,
    /// The step, for log events.
    pub id: StepId,
    /// The stage's label and the step's position in it (for the failure hook).
    pub stage: &'a str,
    pub position: usize,
    /// The targets of `mounts` that are secrets, and the variables of `env` that hold them.
    pub secret_mounts: Vec<String>,
    pub secret_env: Vec<String>,
    /// Told when the process fails, before anything is cleaned up.
    pub on_failure: Option<&'a dyn crate::on_failure::OnRunFailure>,
    /// Where events go.
    pub reporter: &'a dyn Reporter,
    /// Runs the process ([`Launcher`](kiln_sandbox::Launcher) in a build).
    pub sandbox: &'a dyn Sandbox,
    /// Overlay or naive.
    pub snapshotter: Snapshotter,
    /// `SOURCE_DATE_EPOCH`.
    pub source_date_epoch: Option<i64>,
    /// Where to keep the step's filesystem if its process fails (`--keep-failed`).
    pub keep_failed: Option<KeepTo>,
}

/// How many of the last lines of a failed step's output come back with its error.
const OUTPUT_TAIL: usize = 10;

/// Run the step; its layer, empty when the step changed nothing. On failure, the last lines
/// of output come back with the error.
pub(crate) fn run_step(
    sink: &LayerSink<'_>,
    input: &RunInput<'_>,
) -> Result<Option<Layer>, (StepError, Vec<String>)> {
    let no_tail = |e: StepError| (e, Vec::new());
    let dir = sink.scratch_dir("run").map_err(no_tail)?;
    let root = StepRoot::prepare(
        &dir,
        input.lowers.clone(),
        input.snapshotter,
        "buildkitsandbox",
    )
    .map_err(no_tail)?;
    let mut mounts = input.mounts.clone();
    if let Some((name, body)) = &input.script {
        // BuildKit mounts the script read-only at /dev/pipes/NAME (mode 0755); here it is a
        // file on the step's private /dev tmpfs, so it never reaches the layer.
        mounts.push(MountSpec {
            target: format!("/dev/pipes/{name}"),
            kind: MountKind::File {
                content: FileContent::Inline(body.clone().into_bytes()),
                mode: 0o755,
                uid: 0,
                gid: 0,
            },
        });
    }
    let network = match input.network {
        NetworkMode::Default => input.default_network,
        NetworkMode::Host => Network::Host,
        NetworkMode::None => Network::None,
    };
    let spec = root.spec(
        network,
        Process {
            args: input.argv.clone(),
            env: input.env.clone(),
            cwd: input.cwd.clone(),
            user: input.user.clone(),
            terminal: false,
        },
        mounts,
    );
    let state = root.state();
    let tail = Mutex::new(VecDeque::new());
    let code = input.sandbox.run(&spec, &state, &|fd, line| {
        input.reporter.event(Event::Log {
            id: input.id,
            stream: fd,
            line: line.to_vec(),
        });
        let mut t = tail
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        t.push_back(String::from_utf8_lossy(line).trim_end().to_owned());
        if t.len() > OUTPUT_TAIL {
            t.pop_front();
        }
    });
    let tail: Vec<String> = tail.into_inner().unwrap_or_default().into_iter().collect();
    let code = code.map_err(|e| (e.into(), tail.clone()))?;
    if code != 0 {
        if let Some(hook) = input.on_failure {
            hook.run_failed(&crate::on_failure::FailedRun {
                stage: input.stage,
                position: input.position,
                code,
                spec: &spec,
                state: &state,
                secret_mounts: &input.secret_mounts,
                secret_env: &input.secret_env,
            });
        }
        let kept = match &input.keep_failed {
            Some(to) => {
                let (kept_spec, kept_root) = root.keep(&spec, &to.dir).map_err(no_tail)?;
                Some(Box::new(KeptStep {
                    dir: to.dir.clone(),
                    spec: kept_spec,
                    stage: input.stage.to_owned(),
                    position: input.position,
                    config: to.config.clone(),
                    layers: to.layers.clone(),
                    root: kept_root,
                }))
            }
            None => None,
        };
        return Err((
            StepError::RunFailed {
                command: input.argv.join(" "),
                code,
                kept,
            },
            tail,
        ));
    }
    let file = sink.layer_path();
    let out =
        std::fs::File::create(&file).map_err(|e| no_tail(StepError::io("create", &file, e)))?;
    let (mut written, digests) = root
        .diff(
            std::io::BufWriter::new(out),
            sink.compression(),
            input.source_date_epoch,
            true,
        )
        .map_err(no_tail)?;
    std::io::Write::flush(&mut written).map_err(|e| no_tail(StepError::io("write", &file, e)))?;
    drop(written);
    // A step that changed nothing still has its (empty) layer, as in BuildKit since v0.10
    // (Docker 20.10's v0.8 dropped it and marked the history entry empty).
    // The snapshot is made from the layer, not by adopting the upper dir: overlay copies up
    // directories the step did not change (for the /etc/hosts stub, say), and a snapshot
    // must hold exactly its layer, since an identical layer elsewhere shares it. Its regular
    // files are the step's own, hard-linked from the tree (which is discarded after), so
    // each file the step wrote is created once.
    sink.commit_layer(
        &file,
        &digests,
        Some(kiln_layer::LinkFrom::Adopt(root.tree())),
        &std::collections::BTreeSet::new(),
    )
    .map(Some)
    .map_err(no_tail)
}

/// BuildKit's RUN layers carry the `/dev`, `/proc` and `/sys` mount points its runtime made
/// when the rootfs lacked them (0755 directories owned by root); kiln's sandbox removes its
/// own, so they are made here, and only when no lower layer has them.
fn keep_mount_points(lowers: &[PathBuf], tree: &Path) -> Result<(), StepError> {
    use std::os::unix::fs::DirBuilderExt as _;
    for name in ["dev", "proc", "sys"] {
        let exists = lowers
            .iter()
            .any(|l| std::fs::symlink_metadata(l.join(name)).is_ok());
        let path = tree.join(name);
        if !exists && std::fs::symlink_metadata(&path).is_err() {
            std::fs::DirBuilder::new()
                .mode(0o755)
                .create(&path)
                .map_err(|e| StepError::io("create", &path, e))?;
        }
    }
    Ok(())
}
