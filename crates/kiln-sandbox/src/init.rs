//! The re-executed init: the process tree of one step.
//!
//! ```text
//! kiln (caller)                 spawns `kiln __sandbox-init STATE/spec.json`, parent-death
//!  └─ outer                     signal SIGKILL; forks; waits; writes STATE/error when
//!      │                        something failed; exits with the code
//!      └─ init                  parent-death signal SIGKILL; unshares mount, ipc, uts (net);
//!          │                    builds the rootfs; pivots; unshares the pid namespace; forks;
//!          │                    waits; when the step's process exits, removes its stubs and
//!          │                    exits with its code
//!          └─ process (pid 1)   mounts /proc; capabilities, ids, parent-death signal, cwd,
//!                               execve: the command is pid 1 of its namespace, as under
//!                               BuildKit and `docker run` (`RUN echo $$` prints 1), and
//!                               nothing of kiln, no host path, shows in its `/proc`
//! ```
//! Everything the step mounts lives in its own mount namespace, which dies with the last of
//! these processes: the host never sees a mount, whatever way the step ends. Killing `outer`
//! (what [`crate::Stopper::stop`] does) kills `init` through its parent-death signal, `init`'s
//! death kills the process through its own, and the kernel kills every process of a pid
//! namespace whose first process dies. Like a container without `--init`, the process reaps
//! (or not) what its children leave behind.
//!
//! Errors travel back on a close-on-exec pipe: a successful `execve` closes it, a failure
//! writes its message, and `outer` (still in the host's root) stores it as `STATE/error`.

use std::fs;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::path::Path;

use nix::sys::signal::{SigHandler, Signal, signal};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork};

use crate::setup::{self, SetupError};
use crate::spec::Spec;
use crate::sys::{LinuxSyscall, Namespaces, Syscall};

/// The first argument that selects the init in a binary that embeds it (see [`main_if_init`]).
pub const INIT_ARG: &str = "__sandbox-init";

/// Name of the file, in the step's state directory, where a setup error is reported.
pub const ERROR_FILE: &str = "error";

/// Runs the init and exits when the process was started as `PROGRAM __sandbox-init SPEC`;
/// returns otherwise. Call it first thing in `main`, while the process is single-threaded.
pub fn main_if_init() {
    let mut args = std::env::args_os();
    if args.nth(1).is_some_and(|a| a == INIT_ARG) {
        main();
    }
}

/// The init's entry point: `args[1]` is [`INIT_ARG`] (or absent), the next argument the path
/// of the spec. Never returns.
pub fn main() -> ! {
    let spec_path = std::env::args_os()
        .skip(1)
        .find(|a| a != INIT_ARG)
        .map(std::path::PathBuf::from)
        .unwrap_or_default();
    let state = spec_path.parent().unwrap_or(Path::new(".")).to_owned();
    let (code, message) = match outer(&spec_path) {
        Ok((code, message)) => (code, message),
        Err(e) => (e.exit_code(), render(&e)),
    };
    if !message.is_empty() {
        let _ = fs::write(state.join(ERROR_FILE), message);
    }
    std::process::exit(code)
}

/// An error and its causes on one line.
fn render(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cause = c.source();
    }
    s
}

fn exit_code(status: WaitStatus) -> i32 {
    match status {
        WaitStatus::Exited(_, code) => code,
        WaitStatus::Signaled(_, sig, _) => 128 + sig as i32,
        _ => 125,
    }
}

fn fail<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(nix::Error) -> SetupError + 'a {
    move |e| {
        SetupError::Io(kiln_io::IoError {
            action,
            path: path.to_owned(),
            source: e.into(),
        })
    }
}

/// Returns the step's exit code and the error reported on the pipe (empty when none).
fn outer(spec_path: &Path) -> Result<(i32, String), SetupError> {
    let bytes = fs::read(spec_path).map_err(|source| {
        SetupError::Io(kiln_io::IoError {
            action: "read the spec",
            path: spec_path.to_owned(),
            source,
        })
    })?;
    let spec: Spec = serde_json::from_slice(&bytes).map_err(|e| {
        SetupError::Io(kiln_io::IoError {
            action: "parse the spec",
            path: spec_path.to_owned(),
            source: std::io::Error::other(e),
        })
    })?;
    // It may hold a secret's bytes ([`crate::FileContent::Inline`]): gone from the disk as
    // soon as it is read.
    let _ = fs::remove_file(spec_path);
    let sys = LinuxSyscall;
    let (err_r, err_w) =
        rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).map_err(|e| {
            SetupError::Io(kiln_io::IoError {
                action: "create a pipe for",
                path: spec_path.to_owned(),
                source: e.into(),
            })
        })?;
    // Closed by `outer` after the fork: `init` sees EOF on it once `outer` is gone.
    let (alive_r, alive_w) =
        rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).map_err(|e| {
            SetupError::Io(kiln_io::IoError {
                action: "create a pipe for",
                path: spec_path.to_owned(),
                source: e.into(),
            })
        })?;
    // SAFETY: this process was exec'd for the init and has started no threads, so the child
    // may run arbitrary code after the fork.
    match unsafe { fork() }.map_err(fail("fork the init for", &spec.mountpoint))? {
        ForkResult::Parent { child } => {
            drop(err_w);
            drop(alive_r);
            // The step decides how it reacts to Ctrl-C; `outer` only ends when `init` does, or
            // when the caller kills it.
            for sig in [
                Signal::SIGINT,
                Signal::SIGTERM,
                Signal::SIGQUIT,
                Signal::SIGHUP,
            ] {
                // SAFETY: SIG_IGN installs no handler code.
                let _ = unsafe { signal(sig, SigHandler::SigIgn) };
            }
            let status = loop {
                match waitpid(child, None) {
                    Ok(s @ (WaitStatus::Exited(..) | WaitStatus::Signaled(..))) => break s,
                    Ok(_) | Err(nix::Error::EINTR) => {}
                    Err(e) => return Err(fail("wait for the init of", &spec.mountpoint)(e)),
                }
            };
            drop(alive_w);
            let mut message = String::new();
            let _ = fs::File::from(err_r).read_to_string(&mut message);
            Ok((exit_code(status), message.trim().to_owned()))
        }
        ForkResult::Child => {
            drop(err_r);
            drop(alive_w);
            let code = init(&spec, &sys, &alive_r, &err_w);
            std::process::exit(code)
        }
    }
}

fn report(err_w: &OwnedFd, e: &SetupError) {
    // Nothing better can be done when even the error pipe fails: the exit code still tells.
    if let Ok(fd) = err_w.try_clone() {
        let _ = writeln!(fs::File::from(fd), "{}", render(e));
    }
}

/// The init: builds the step's namespaces and rootfs, starts the process as pid 1 of a new pid
/// namespace, waits for it and cleans up. Returns the process's exit code.
fn init(spec: &Spec, sys: &dyn Syscall, alive_r: &OwnedFd, err_w: &OwnedFd) -> i32 {
    let _ = rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL));
    // `outer` may have died before the line above: then the pipe reads EOF at once.
    let _ = rustix::fs::fcntl_setfl(alive_r, rustix::fs::OFlags::NONBLOCK);
    if matches!(rustix::io::read(alive_r, &mut [0u8; 1]), Ok(0)) {
        return 137;
    }
    let stubs = match setup::build_rootfs(spec, sys) {
        Ok(s) => s,
        Err(e) => {
            report(err_w, &e);
            return e.exit_code();
        }
    };
    let prepared = setup::resolve_user(spec, sys)
        .and_then(|user| setup::prepare_cwd(spec, sys).map(|cwd| (user, cwd)))
        .and_then(|p| {
            sys.unshare(Namespaces {
                pid: true,
                ..Namespaces::default()
            })
            .map_err(|source| {
                SetupError::Io(kiln_io::IoError {
                    action: "unshare the pid namespace for",
                    path: spec.mountpoint.clone(),
                    source,
                })
            })?;
            Ok(p)
        });
    let (user, cwd) = match prepared {
        Ok(p) => p,
        Err(e) => {
            report(err_w, &e);
            return e.exit_code();
        }
    };
    // SAFETY: the init is single-threaded (forked from a single-threaded process).
    let child = match unsafe { fork() } {
        Ok(ForkResult::Child) => {
            let e = match sys.kill_with_parent().map_err(|source| {
                SetupError::Io(kiln_io::IoError {
                    action: "set the parent-death signal of",
                    path: spec.mountpoint.clone(),
                    source,
                })
            }) {
                Ok(()) => setup::mount_proc(sys)
                    .err()
                    .unwrap_or_else(|| setup::exec_process(spec, &user, &cwd, sys)),
                Err(e) => e,
            };
            report(err_w, &e);
            // SAFETY: `_exit` skips atexit handlers and buffered-stdio flushing that belong to
            // the parent's copy of the process.
            unsafe { nix::libc::_exit(e.exit_code()) }
        }
        Ok(ForkResult::Parent { child }) => child,
        Err(e) => {
            let e = fail("fork the process for", &spec.mountpoint)(e);
            report(err_w, &e);
            return e.exit_code();
        }
    };
    let code = wait_for(child);
    if let Err(e) = setup::remove_stubs(&stubs, sys) {
        report(err_w, &e);
        return e.exit_code();
    }
    code
}

/// Waits for `child`, the first process of the step's pid namespace: when it exits, the kernel
/// kills and reaps everything else in that namespace before reporting it.
fn wait_for(child: Pid) -> i32 {
    loop {
        match waitpid(child, Some(WaitPidFlag::__WALL)) {
            Ok(WaitStatus::Exited(_, code)) => return code,
            Ok(WaitStatus::Signaled(_, sig, _)) => return 128 + sig as i32,
            Ok(_) | Err(nix::Error::EINTR) => {}
            Err(_) => return 125,
        }
    }
}
