//! The `kiln` command line: parses arguments, calls into the library crates and renders their
//! results and errors. Data goes to stdout; progress, warnings and errors go to stderr.

#![forbid(unsafe_code)]
// The binary is where settings are read from the environment (clippy.toml bans it elsewhere).
#![allow(clippy::disallowed_methods)]

/// `println!` to stdout, as a `Result`: writing to a closed stdout (`kiln images | head`)
/// is an error the caller returns, and `main` ends quietly on it, as ripgrep does.
macro_rules! outln {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($t)*).map_err($crate::StdoutError)
    }};
}

/// `print!` to stdout, as a `Result` (see `outln!`).
macro_rules! out {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        write!(std::io::stdout().lock(), $($t)*).map_err($crate::StdoutError)
    }};
}

mod cmd;
mod diagnostics;
mod explanation;
mod graph;
mod markup;
mod progress;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// A daemonless container image builder.
#[derive(Debug, Parser)]
#[command(name = "kiln", version, about, propagate_version = true)]
struct Cli {
    /// Where kiln keeps its store (an OCI image layout plus kiln's own state).
    ///
    /// The default is `/var/lib/kiln` for root and `$XDG_DATA_HOME/kiln` otherwise.
    #[arg(long, global = true, env = "KILN_ROOT", value_name = "DIR")]
    root: Option<PathBuf>,

    /// How RUN steps (and `kiln run`) get their root filesystem: `overlay` mounts the
    /// image's layers under a fresh upper dir, `naive` copies them into a plain directory.
    ///
    /// The default probes: overlay where this process can mount it and the store is not
    /// itself on overlayfs (inside a container, say), naive otherwise.
    ///
    /// `KILN_SNAPSHOTTER` says the same when the flag is not given (empty: probe).
    #[arg(long, global = true, value_name = "NAME")]
    snapshotter: Option<SnapshotterArg>,

    /// kiln's config file (registry mirrors, TLS, plain HTTP), in the format of BuildKit's
    /// `buildkitd.toml`. The default is `$XDG_CONFIG_HOME/kiln/config.toml`
    /// (`~/.config/kiln/config.toml`), `/etc/kiln/config.toml` for root.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Build an image from a Dockerfile and a context.
    Build(Box<cmd::build::Args>),
    /// Remove build cache records, their layers and snapshots (never what images use).
    Prune(cmd::prune::PruneArgs),
    /// Show the build cache's disk usage.
    Du(cmd::prune::DuArgs),
    /// Run BuildKit's build checks on a Dockerfile (text, JSON or SARIF), building nothing.
    Lint(cmd::lint::Args),
    /// Show the stages of a Dockerfile in build order, what each depends on and which the
    /// target needs.
    Outline(cmd::outline::Args),
    /// Draw the stage graph of a Dockerfile (text, Graphviz DOT, Mermaid or JSON): stages,
    /// the images and stages they read, and what the target needs.
    Graph(cmd::graph::Args),
    /// Load images from a `docker save` tarball, an OCI archive or an OCI layout.
    Load(cmd::load::Args),
    /// Save images to a tarball that `docker load` accepts.
    Save(cmd::save::Args),
    /// Make a one-layer image from a root filesystem tarball.
    Import(cmd::import::Args),
    /// List the images of the store.
    Images(cmd::images::Args),
    /// Give an image another name.
    Tag(cmd::tag::Args),
    /// Remove image names, and images left without one.
    Rmi(cmd::rmi::Args),
    /// Describe images as JSON.
    Inspect(cmd::inspect::Args),
    /// Run a command in an image (isolated; its changes are dropped unless `--commit`).
    Run(cmd::run::Args),
    /// Show the steps an image was made of, newest first.
    History(cmd::history::Args),
    /// Show why an image is big: per layer what it adds, changes and removes, wasted bytes
    /// with the instruction responsible and the fix, dive's efficiency and CI rules.
    Analyze(cmd::analyze::Args),
    /// Show the files that differ between two images (content, type, mode, owner, link
    /// target, mtime); status 1 when any do.
    Diff(cmd::diff::Args),
    /// Pull an image from a registry into the store; prints its digest.
    Pull(cmd::pull::Args),
    /// Push an image of the store to a registry; prints the manifest's digest.
    Push(cmd::push::Args),
    /// Check credentials against a registry and keep them as Docker does.
    Login(cmd::login::LoginArgs),
    /// Forget the credentials of a registry.
    Logout(cmd::login::LogoutArgs),
    /// Check what kiln needs here (root or user namespaces, subordinate ids, newuidmap,
    /// overlay, /proc, AppArmor, seccomp, binfmt, the store) and print the fix for each
    /// problem; status 1 when a build cannot work.
    Doctor(cmd::doctor::Args),
    /// Check the store: re-hash blobs, check references, find half-written files.
    Fsck(cmd::fsck::Args),
    /// Run a command in the user namespace a rootless kiln works in (where the store's files
    /// have the owners kiln gave them); for root, just the command.
    Unshare(cmd::unshare::Args),
    /// Print the syntax tree as BuildKit's parser dump (for debugging the parser).
    #[command(hide = true)]
    DebugDump(cmd::dump::Args),
}

/// `--snapshotter`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum SnapshotterArg {
    /// An overlay mount over the layers' snapshots.
    Overlay,
    /// A full copy of the layers, diffed afterwards.
    Naive,
}

/// Global settings every command may use.
#[derive(Debug)]
pub struct Globals {
    /// The store root, resolved from `--root`, `KILN_ROOT` or the default.
    pub root: PathBuf,
    /// `--snapshotter` / `KILN_SNAPSHOTTER`; `None` probes.
    pub snapshotter: Option<kiln_build::Snapshotter>,
    /// `--config FILE`; `None`: the default place (see `cmd::pull::registries`).
    pub config: Option<PathBuf>,
    /// Whether kiln was started by an ordinary user and runs in a user namespace of its own
    /// (where it is root): its defaults are the user's, not root's.
    pub rootless: bool,
}

impl Globals {
    /// The snapshotter of this command's steps in `store`: the one asked for, or what the
    /// probe finds. Commands ask once and pass the answer on.
    pub fn snapshotter(&self, store: &kiln_oci::Store) -> kiln_build::Snapshotter {
        kiln_build::Snapshotter::choose(store.root(), self.snapshotter)
    }
}

impl Globals {
    fn from_cli(
        root: Option<PathBuf>,
        snapshotter: Option<SnapshotterArg>,
    ) -> anyhow::Result<Self> {
        let root = root.unwrap_or_else(default_root);
        // Absolute, because build steps run in threads and processes with working
        // directories of their own.
        let root = std::path::absolute(&root).unwrap_or(root);
        let snapshotter = match snapshotter {
            Some(s) => Some(s),
            None => match std::env::var("KILN_SNAPSHOTTER") {
                Ok(v) if !v.is_empty() => Some(
                    <SnapshotterArg as clap::ValueEnum>::from_str(&v, true).map_err(|_| {
                        anyhow::anyhow!(
                            "unknown snapshotter `{v}` in KILN_SNAPSHOTTER\nhint: `overlay` or `naive`, or leave it empty to probe"
                        )
                    })?,
                ),
                _ => None,
            },
        };
        Ok(Self {
            root,
            config: None,
            rootless: false,
            snapshotter: snapshotter.map(|s| match s {
                SnapshotterArg::Overlay => kiln_build::Snapshotter::Overlay,
                SnapshotterArg::Naive => kiln_build::Snapshotter::Naive,
            }),
        })
    }
}

fn default_root() -> PathBuf {
    // SAFETY-free check of the effective uid through the environment is unreliable, so ask
    // the filesystem: root can write /var/lib.
    if is_root() {
        return PathBuf::from("/var/lib/kiln");
    }
    if let Some(xdg) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(xdg).join("kiln");
    }
    if let Some(home) = std::env::var_os("HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(home).join(".local/share/kiln");
    }
    PathBuf::from("/var/lib/kiln")
}

fn is_root() -> bool {
    // /proc/self/status carries the effective uid on the `Uid:` line (real, effective, ...).
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

fn main() -> ExitCode {
    // `kiln __sandbox-init SPEC`: the re-executed init of a RUN step (single-threaded here).
    kiln_sandbox::init::main_if_init();
    // `kiln __map-ids ...`: the helper that maps a rootless kiln's user namespace.
    kiln_sandbox::userns::main_if_map_ids();
    // `kiln __doctor-probe ...`: one of `kiln doctor`'s namespace probes.
    cmd::doctor::probe::main_if_probe();
    let cli = Cli::parse();
    let mut globals = match Globals::from_cli(cli.root, cli.snapshotter) {
        Ok(g) => Globals {
            config: cli.config,
            ..g
        },
        Err(err) => {
            diagnostics::print_error(&err);
            return ExitCode::from(2);
        }
    };
    // Not root: the rest runs in a user namespace of kiln's own, as its root (still one
    // thread here, as unshare(2) needs). Not `kiln doctor`: it checks, as the caller, what
    // entering needs, and must run where entering fails.
    if !is_root() && !matches!(cli.command, Command::Doctor(_)) {
        let exe = std::env::current_exe().unwrap_or_default();
        let search = std::env::var_os("PATH").unwrap_or_default();
        match kiln_sandbox::userns::enter(&exe, &search) {
            Ok(entered) => {
                globals.rootless = true;
                if let kiln_sandbox::userns::Mapping::Single { why } = &entered.mapping {
                    eprintln!(
                        "warning: rootless kiln maps only your own id ({why}): steps and images that use other users or groups fail\nhint: `sudo usermod --add-subuids 100000-165535 --add-subgids 100000-165535 {}` and `apt-get install uidmap`",
                        entered.user
                    );
                }
            }
            Err(err) => {
                diagnostics::print_error(&anyhow::Error::from(err));
                return ExitCode::from(1);
            }
        }
    }
    let result = match cli.command {
        Command::Build(args) => cmd::build::run(&globals, &args),
        Command::Prune(args) => cmd::prune::prune(&globals, &args),
        Command::Du(args) => cmd::prune::du(&globals, &args),
        Command::Lint(args) => cmd::lint::run(&globals, &args),
        Command::Outline(args) => cmd::outline::run(&globals, &args),
        Command::Graph(args) => cmd::graph::run(&args),
        Command::Load(args) => cmd::load::run(&globals, &args),
        Command::Save(args) => cmd::save::run(&globals, &args),
        Command::Import(args) => cmd::import::run(&globals, &args),
        Command::Images(args) => cmd::images::run(&globals, &args),
        Command::Tag(args) => cmd::tag::run(&globals, &args),
        Command::Rmi(args) => cmd::rmi::run(&globals, &args),
        Command::Inspect(args) => cmd::inspect::run(&globals, &args),
        Command::History(args) => cmd::history::run(&globals, &args),
        Command::Analyze(args) => cmd::analyze::run(&globals, &args),
        Command::Diff(args) => cmd::diff::run(&globals, &args),
        Command::Run(args) => cmd::run::run(&globals, &args),
        Command::Pull(args) => cmd::pull::run(&globals, &args),
        Command::Push(args) => cmd::push::run(&globals, &args),
        Command::Login(args) => cmd::login::login(&globals, &args),
        Command::Logout(args) => cmd::login::logout(&globals, &args),
        Command::Fsck(args) => cmd::fsck::run(&globals, &args),
        Command::Unshare(args) => cmd::unshare::run(&args),
        Command::Doctor(args) => cmd::doctor::run(&globals, &args),
        Command::DebugDump(args) => cmd::dump::run(&globals, &args),
    };
    match result {
        Ok(code) => code,
        // Whoever read the output has stopped (`kiln images | head`): nothing to say.
        Err(err) if closed_stdout(&err) => ExitCode::SUCCESS,
        Err(err) => {
            diagnostics::print_error(&err);
            ExitCode::from(1)
        }
    }
}

/// A failed write of kiln's data to stdout (`outln!`, `out!`).
#[derive(Debug)]
pub(crate) struct StdoutError(pub std::io::Error);

impl std::fmt::Display for StdoutError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot write to stdout: {}", self.0)
    }
}

impl std::error::Error for StdoutError {}

/// Whether `err` is a write to a stdout nobody reads any more (and nothing else: a broken
/// pipe inside a build is an error like any other).
fn closed_stdout(err: &anyhow::Error) -> bool {
    err.downcast_ref::<StdoutError>()
        .is_some_and(|e| e.0.kind() == std::io::ErrorKind::BrokenPipe)
}

/// `SOURCE_DATE_EPOCH` from the environment, when set to an integer.
pub(crate) fn source_date_epoch_from_env() -> Option<i64> {
    std::env::var("SOURCE_DATE_EPOCH").ok()?.trim().parse().ok()
}

/// kiln's HTTP(S) client for `ADD <url>`, with the settings of the environment: the proxies
/// as Docker reads them (`HTTP_PROXY`, `HTTPS_PROXY`, `ALL_PROXY`, `NO_PROXY`, lowercase
/// too) and the CA bundle `SSL_CERT_FILE` names (as OpenSSL and Go read it), else the
/// system's.
pub(crate) fn http_client() -> anyhow::Result<kiln_http::Client> {
    let mut opts = kiln_http::ClientOptions {
        proxies: kiln_http::Proxies::from_vars(|k| std::env::var(k).ok()),
        ..kiln_http::ClientOptions::default()
    };
    if let Some(ca) = std::env::var_os("SSL_CERT_FILE").filter(|v| !v.is_empty()) {
        opts.ca_file = ca.into();
    }
    Ok(kiln_http::Client::new(&opts)?)
}
