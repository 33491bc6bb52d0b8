//! `kiln run [--rm] [-e K=V]... [-u USER] [-w DIR] [--network host|none] [-it] [--entrypoint CMD]
//! IMAGE [ARG...]`:
//! runs a command in an image, for checking and debugging images without Docker.
//!
//! The command comes from the image's config as Docker takes it: `Entrypoint` (or `--entrypoint`)
//! followed by the ARGs given here, or else, without `--entrypoint`, the image's `Cmd`; `Env`,
//! `WorkingDir` and `User` likewise, each overridden by its flag. As in `docker run`, flags end at
//! IMAGE: everything after it is the command's. kiln keeps no containers: what the command changes is dropped when it
//! ends (`--rm` is accepted and is what always happens), unless `--commit NAME` keeps it as a new
//! image, like `docker commit`. The exit code is the command's.

pub(crate) mod step;
pub(crate) mod terminal;

use std::io;
use std::os::fd::AsFd;
use std::process::{ExitCode, Stdio};

use anyhow::{Context, bail};
use kiln_oci::{Reference, Store};
use kiln_sandbox::{Network, Process, SandboxError};

use crate::Globals;

/// `--network`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum NetworkArg {
    /// The host's network (the default, as for builds).
    Host,
    /// No network: a namespace with only a loopback interface.
    None,
}

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Remove what the command changed when it ends (always the case; for Docker's muscle
    /// memory).
    #[arg(long)]
    pub rm: bool,
    /// Set an environment variable (`K=V`, or `K` to pass this process's value).
    #[arg(short, long = "env", value_name = "K=V")]
    pub env: Vec<String>,
    /// The user to run as: `name`, `uid`, `name:group` or `uid:gid`, resolved in the image.
    #[arg(short, long, value_name = "USER")]
    pub user: Option<String>,
    /// The working directory inside the image (created when missing).
    #[arg(short, long, value_name = "DIR")]
    pub workdir: Option<String>,
    /// The network.
    #[arg(long, value_enum, default_value_t = NetworkArg::Host)]
    pub network: NetworkArg,
    /// Keep stdin open.
    #[arg(short, long)]
    pub interactive: bool,
    /// Give the command a terminal (when stdin is one).
    #[arg(short, long)]
    pub tty: bool,
    /// Keep what the command changed as a new image named NAME (like `docker commit`).
    #[arg(long, value_name = "NAME")]
    pub commit: Option<String>,
    /// The command to start instead of the image's `Entrypoint`; `--entrypoint ""` clears it.
    /// With this flag the image's `Cmd` is not used: the command's arguments are the CMD given
    /// here, as with `docker run --entrypoint`.
    #[arg(long, value_name = "CMD")]
    pub entrypoint: Option<String>,
    /// The image (by name or id), then the command and its arguments (default: the image's
    /// Entrypoint and Cmd). Flags end at the image, as in `docker run`: whatever follows it,
    /// `--version` or `-e` included, belongs to the command.
    #[arg(
        value_names = ["IMAGE", "ARG"],
        required = true,
        num_args = 1..,
        trailing_var_arg = true
    )]
    // One argument rather than two, because clap stops reading flags only once a trailing
    // argument has begun: with IMAGE apart, a flag right after it was still kiln's. It always
    // holds the image (at least one value is required).
    pub image_and_cmd: Vec<String>,
}

impl Args {
    /// The image, by name or id.
    pub(crate) fn image(&self) -> &str {
        &self.image_and_cmd[0]
    }

    /// The command and its arguments given after the image.
    pub(crate) fn cmd(&self) -> &[String] {
        &self.image_and_cmd[1..]
    }
}

/// The process Docker would run for `args` in an image with `config`.
pub(crate) fn process_for(
    config: Option<&kiln_oci::ContainerConfig>,
    args: &Args,
) -> anyhow::Result<Process> {
    let default = kiln_oci::ContainerConfig::default();
    let c = config.unwrap_or(&default);
    // Docker's merge: `--entrypoint` replaces the image's Entrypoint and drops its Cmd (the
    // daemon then reads an empty entrypoint as none); without it, the image's Entrypoint is
    // kept and its Cmd is the default for arguments.
    let mut command = match &args.entrypoint {
        Some(e) if e.is_empty() => Vec::new(),
        Some(e) => vec![e.clone()],
        None => c.entrypoint.clone().unwrap_or_default(),
    };
    if args.cmd().is_empty() && args.entrypoint.is_none() {
        command.extend(c.cmd.clone().unwrap_or_default());
    } else {
        command.extend(args.cmd().iter().cloned());
    }
    if command.is_empty() {
        bail!(
            "no command specified: the image has no Entrypoint or Cmd, and none was given\n\
             hint: name one after the image (`kiln run IMAGE sh`) or with `--entrypoint`"
        );
    }
    let mut env = c.env.clone().unwrap_or_default();
    for e in &args.env {
        let (key, value) = match e.split_once('=') {
            Some((k, v)) => (k.to_owned(), v.to_owned()),
            None => match std::env::var(e) {
                Ok(v) => (e.clone(), v),
                Err(_) => continue,
            },
        };
        env.retain(|x| x.split('=').next() != Some(key.as_str()));
        env.push(format!("{key}={value}"));
    }
    Ok(Process {
        args: command,
        env,
        cwd: args
            .workdir
            .clone()
            .or_else(|| c.working_dir.clone())
            .filter(|w| !w.is_empty())
            .unwrap_or_else(|| "/".to_owned()),
        user: args
            .user
            .clone()
            .or_else(|| c.user.clone())
            .unwrap_or_default(),
        terminal: false,
    })
}

pub(crate) fn run(globals: &Globals, args: &Args) -> anyhow::Result<ExitCode> {
    let store = Store::open(&globals.root)?;
    let image = store.resolve(args.image())?;
    let reference = args.commit.as_deref().map(Reference::parse).transpose()?;
    let mut process = process_for(image.config.config.as_ref(), args)?;
    let stdin_tty = kiln_sandbox::pty::is_terminal(io::stdin().as_fd());
    let use_pty = args.tty && stdin_tty;
    process.terminal = use_pty;
    let network = match args.network {
        NetworkArg::Host => Network::Host,
        NetworkArg::None => Network::None,
    };
    let created_by = format!("kiln run {}", process.args.join(" "));
    let step = step::Step::prepare(
        &store,
        &image,
        process,
        network,
        globals.snapshotter(&store),
    )?;

    // Ctrl-C and SIGTERM stop the step (its processes and mounts go with it), then kiln exits.
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
    ])
    .context("cannot install signal handlers")?;
    let handle = signals.handle();

    let (running, pty) = if use_pty {
        let pty = kiln_sandbox::pty::Pty::open(Some(io::stdin().as_fd()))?;
        let stdio = [
            Stdio::from(pty.slave.try_clone()?),
            Stdio::from(pty.slave.try_clone()?),
            Stdio::from(pty.slave.try_clone()?),
        ];
        let running = step.spawn(stdio)?;
        (running, Some(pty.master))
    } else {
        let stdin = if args.interactive {
            Stdio::inherit()
        } else {
            Stdio::null()
        };
        (
            step.spawn([stdin, Stdio::inherit(), Stdio::inherit()])?,
            None,
        )
    };
    let stopper = running.stopper();
    let signal_thread = std::thread::spawn(move || {
        let got = signals.forever().next();
        if got.is_some() {
            stopper.stop();
        }
        got
    });

    let result = if let Some(master) = pty {
        terminal::attach(master, args.interactive)?;
        running.wait()
    } else {
        running.wait()
    };
    handle.close();
    let signal = signal_thread.join().ok().flatten();

    let code = match result {
        Ok(code) => code,
        Err(SandboxError::Stopped) => {
            drop(step);
            return Ok(ExitCode::from(
                u8::try_from(128 + signal.unwrap_or(signal_hook::consts::SIGTERM)).unwrap_or(143),
            ));
        }
        Err(SandboxError::Setup { message, code }) => {
            eprintln!("error: {message}");
            return Ok(ExitCode::from(u8::try_from(code).unwrap_or(125)));
        }
        Err(e) => return Err(e.into()),
    };
    if let Some(reference) = &reference {
        let descriptor = step.commit(&store, &image, &created_by, Some(reference))?;
        let committed = kiln_oci::Image::read(&store, &descriptor, vec![reference.clone()])?;
        eprintln!("committed {} as {}", committed.id(), reference.familiar());
    }
    Ok(ExitCode::from(u8::try_from(code).unwrap_or(255)))
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::{Args, process_for};

    #[derive(Debug, Parser)]
    #[command(version)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    /// The command Docker would run for `kiln run ARGS` on an image with `entrypoint` and
    /// `cmd`.
    fn command(entrypoint: &[&str], cmd: &[&str], args: &[&str]) -> Result<Vec<String>, String> {
        let cli = Cli::try_parse_from(std::iter::once("run").chain(args.iter().copied()))
            .map_err(|e| e.to_string())?;
        let strings = |v: &[&str]| v.iter().map(|&s| s.to_owned()).collect::<Vec<_>>();
        let config = kiln_oci::ContainerConfig {
            entrypoint: (!entrypoint.is_empty()).then(|| strings(entrypoint)),
            cmd: (!cmd.is_empty()).then(|| strings(cmd)),
            ..Default::default()
        };
        process_for(Some(&config), &cli.args)
            .map(|p| p.args)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn flags_end_at_the_image() {
        let ep = ["/ep"];
        assert_eq!(command(&ep, &["c"], &["img"]).unwrap(), ["/ep", "c"]);
        assert_eq!(
            command(&ep, &["c"], &["img", "--version"]).unwrap(),
            ["/ep", "--version"]
        );
        assert_eq!(
            command(&ep, &["c"], &["-e", "A=1", "img", "-e", "B", "--rm", "--"]).unwrap(),
            ["/ep", "-e", "B", "--rm", "--"]
        );
        let cli = Cli::try_parse_from(["run", "--rm", "img", "--rm"]).unwrap();
        assert!(cli.args.rm);
        assert_eq!(cli.args.image(), "img");
        assert_eq!(cli.args.cmd(), ["--rm"]);
        assert!(command(&ep, &[], &["--unknown", "img"]).is_err());
        assert!(command(&ep, &[], &[]).is_err());
    }

    #[test]
    fn entrypoint_replaces_the_images_and_drops_its_cmd() {
        let (ep, cmd) = (["/ep", "a"], ["c"]);
        assert_eq!(
            command(&ep, &cmd, &["--entrypoint", "x", "img"]).unwrap(),
            ["x"]
        );
        assert_eq!(
            command(&ep, &cmd, &["--entrypoint", "x", "img", "y"]).unwrap(),
            ["x", "y"]
        );
        assert_eq!(
            command(&ep, &cmd, &["--entrypoint", "", "img", "y", "z"]).unwrap(),
            ["y", "z"]
        );
        let err = command(&ep, &cmd, &["--entrypoint=", "img"]).unwrap_err();
        assert!(err.contains("no command specified"), "{err}");
        // Without the flag the image's Entrypoint stays and its Cmd is the default.
        assert_eq!(
            command(&ep, &cmd, &["img", "y"]).unwrap(),
            ["/ep", "a", "y"]
        );
        assert_eq!(command(&[], &cmd, &["img"]).unwrap(), ["c"]);
    }
}
