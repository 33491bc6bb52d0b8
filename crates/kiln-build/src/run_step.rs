//! RUN: the command in the sandbox over the stage's layers, its output streamed as events,
//! and what it changed turned into a layer (BuildKit's `dispatchRun`).
//!
//! Heredocs, as BuildKit runs them: `RUN <<EOF` alone runs the body as the shell's script
//! (a body starting with `#!` is written to `/dev/pipes/NAME`, mode 0755, and executed
//! instead); any other use
//! passes the instruction line with each body and terminator appended to the shell.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Mutex;

use kiln_frontend::instruction::{NetworkMode, Run};
use kiln_layer::diff::{DiffOptions, NewTree};
use kiln_sandbox::{FileContent, Launcher, MountKind, MountSpec, Network, Process, Rootfs, Spec};

use crate::error::StepError;
use crate::layers::{Layer, LayerSink};
use crate::progress::{Event, Reporter, StepId};

/// How a step's filesystem is made and diffed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Snapshotter {
    /// An overlay mount over the snapshots; the upper dir is the diff.
    Overlay,
    /// A full copy of the merged snapshots, bind-mounted, diffed against them afterwards.
    Naive,
}

impl Snapshotter {
    /// `requested` when given (the command line's `--snapshotter`); otherwise overlay when
    /// this process can mount it and `root` (the store) is not itself on an overlayfs, whose
    /// directories overlay refuses as upper dirs.
    pub fn choose(root: &Path, requested: Option<Self>) -> Self {
        requested.unwrap_or_else(|| {
            if kiln_sandbox::overlay_available() && !on_overlayfs(root) {
                Self::Overlay
            } else {
                Self::Naive
            }
        })
    }
}

/// Whether `path` is on an overlayfs, by the longest matching mount point.
fn on_overlayfs(path: &Path) -> bool {
    let (Ok(mounts), Ok(path)) = (
        std::fs::read_to_string("/proc/self/mountinfo"),
        std::fs::canonicalize(path),
    ) else {
        return false;
    };
    let mut best: Option<(usize, bool)> = None;
    for line in mounts.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let (Some(mount_point), Some(sep)) = (fields.get(4), fields.iter().position(|f| *f == "-"))
        else {
            continue;
        };
        let fstype = fields.get(sep + 1).copied().unwrap_or("");
        if path.starts_with(mount_point) && best.is_none_or(|(len, _)| mount_point.len() >= len) {
            best = Some((mount_point.len(), fstype == "overlay"));
        }
    }
    best.is_some_and(|(_, overlay)| overlay)
}

/// The argv a RUN executes, before the shell is prepended: heredocs resolved as BuildKit does.
/// Returns the arguments and, for a `#!` heredoc, the script file to provide.
pub fn run_args(run: &Run) -> (Vec<String>, Option<(String, String)>) {
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
pub struct RunInput<'a> {
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
    /// Where events go.
    pub reporter: &'a dyn Reporter,
    /// Starts the sandbox init.
    pub launcher: &'a Launcher,
    /// Overlay or naive.
    pub snapshotter: Snapshotter,
    /// `SOURCE_DATE_EPOCH`.
    pub source_date_epoch: Option<i64>,
}

/// Run the step; its layer, empty when the step changed nothing. On failure, the last lines
/// of output come back with the error.
pub fn run_step(
    sink: &LayerSink<'_>,
    input: &RunInput<'_>,
) -> Result<Option<Layer>, (StepError, Vec<String>)> {
    let no_tail = |e: StepError| (e, Vec::new());
    let dir = sink.scratch_dir("run").map_err(no_tail)?;
    let (state, upper, work, mnt) = (
        dir.join("state"),
        dir.join("upper"),
        dir.join("work"),
        dir.join("rootfs"),
    );
    for d in [&state, &upper, &work, &mnt] {
        std::fs::create_dir_all(d).map_err(|e| no_tail(StepError::io("create", d, e)))?;
    }
    let (hosts, resolv_conf) =
        kiln_sandbox::write_etc_files(&state, "buildkitsandbox").map_err(|e| no_tail(e.into()))?;
    let full = dir.join("tree");
    let mut settled_before = None;
    let rootfs = match input.snapshotter {
        Snapshotter::Overlay => {
            let mut lower = input.lowers.clone();
            if lower.is_empty() {
                let empty = dir.join("empty");
                std::fs::create_dir_all(&empty)
                    .map_err(|e| no_tail(StepError::io("create", &empty, e)))?;
                lower.push(empty);
            }
            Rootfs::Overlay {
                lower,
                upper: upper.clone(),
                work,
            }
        }
        Snapshotter::Naive => {
            std::fs::create_dir_all(&full)
                .map_err(|e| no_tail(StepError::io("create", &full, e)))?;
            kiln_layer::overlay::copy_merged(&input.lowers, &full).map_err(|e| {
                no_tail(StepError::Invalid {
                    message: format!("cannot prepare the step's filesystem: {e}"),
                    hint: None,
                })
            })?;
            settled_before = Some(
                kiln_layer::diff::settle_mark(&dir)
                    .map_err(|e| no_tail(StepError::io("create a file in", &dir, e)))?,
            );
            Rootfs::Bind { dir: full.clone() }
        }
    };
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
    let spec = Spec {
        rootfs,
        mountpoint: mnt,
        hosts,
        resolv_conf,
        hostname: "buildkitsandbox".into(),
        network,
        process: Process {
            args: input.argv.clone(),
            env: input.env.clone(),
            cwd: input.cwd.clone(),
            user: input.user.clone(),
            terminal: false,
        },
        mounts,
    };
    let mut running = input
        .launcher
        .spawn(
            &spec,
            &state,
            [Stdio::null(), Stdio::piped(), Stdio::piped()],
        )
        .map_err(|e| no_tail(e.into()))?;
    let stdout = running.child_mut().stdout.take();
    let stderr = running.child_mut().stderr.take();
    let tail = Mutex::new(std::collections::VecDeque::new());
    let code = std::thread::scope(|s| {
        if let Some(out) = stdout {
            s.spawn(|| forward(out, 1, input, &tail));
        }
        if let Some(err) = stderr {
            s.spawn(|| forward(err, 2, input, &tail));
        }
        running.wait()
    });
    let tail: Vec<String> = tail.into_inner().unwrap_or_default().into_iter().collect();
    let code = code.map_err(|e| (e.into(), tail.clone()))?;
    if code != 0 {
        return Err((
            StepError::RunFailed {
                command: input.argv.join(" "),
                code,
            },
            tail,
        ));
    }
    let tree_dir = match input.snapshotter {
        Snapshotter::Overlay => &upper,
        Snapshotter::Naive => &full,
    };
    keep_mount_points(&input.lowers, tree_dir).map_err(no_tail)?;
    let tree = match input.snapshotter {
        Snapshotter::Overlay => NewTree::Upper(&upper),
        Snapshotter::Naive => NewTree::Full(&full),
    };
    let file = sink.layer_path();
    let out =
        std::fs::File::create(&file).map_err(|e| no_tail(StepError::io("create", &file, e)))?;
    let opts = DiffOptions {
        compression: sink.compression(),
        source_date_epoch: input.source_date_epoch,
        settled_before,
    };
    let (mut written, digests, _) =
        kiln_layer::diff::diff(tree, &input.lowers, std::io::BufWriter::new(out), &opts)
            .map_err(|e| no_tail(e.into()))?;
    std::io::Write::flush(&mut written).map_err(|e| no_tail(StepError::io("write", &file, e)))?;
    drop(written);
    // A step that changed nothing still has its (empty) layer, as in BuildKit since v0.10
    // (Docker 20.10's v0.8 dropped it and marked the history entry empty).
    // The snapshot is unpacked from the layer, not adopted from the upper dir: overlay copies
    // up directories the step did not change (for the /etc/hosts stub, say), and a snapshot
    // must hold exactly its layer, since an identical layer elsewhere shares it.
    sink.commit_layer(&file, &digests)
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

/// Stream one output of the step as log events, keeping the last lines for error reports.
fn forward(
    stream: impl Read,
    fd: u8,
    input: &RunInput<'_>,
    tail: &Mutex<std::collections::VecDeque<String>>,
) {
    let mut reader = BufReader::new(stream);
    let mut line = Vec::new();
    while reader.read_until(b'\n', &mut line).is_ok_and(|n| n > 0) {
        input.reporter.event(Event::Log {
            id: input.id,
            stream: fd,
            line: line.clone(),
        });
        let mut t = tail
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        t.push_back(String::from_utf8_lossy(&line).trim_end().to_owned());
        if t.len() > 10 {
            t.pop_front();
        }
        line.clear();
    }
}
