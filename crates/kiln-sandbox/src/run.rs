//! The caller's side: writing a step's spec, starting the re-executed init, waiting for it and
//! stopping it.

use std::ffi::OsString;
use std::fs;
use std::io;
use std::os::unix::fs::OpenOptionsExt as _;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use crate::init::{ERROR_FILE, INIT_ARG};
use crate::spec::Spec;

/// Errors of running a step.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The step's state directory or spec could not be written or read.
    #[error(transparent)]
    Io(#[from] kiln_io::IoError),
    /// The init program could not be started.
    #[error("cannot start the sandbox init `{program}`")]
    Spawn {
        /// The program.
        program: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The sandbox could not be set up, or the program could not be executed; `code` is the
    /// exit status Docker would report (125, 126 or 127).
    #[error("{message}")]
    Setup {
        /// The init's message (what failed, with its causes).
        message: String,
        /// The exit status.
        code: i32,
    },
    /// The step was stopped by [`Stopper::stop`].
    #[error("the step was stopped")]
    Stopped,
}

/// How to start the init: a program and the arguments before the spec path.
#[derive(Debug, Clone)]
pub struct Launcher {
    program: PathBuf,
    args: Vec<OsString>,
}

impl Launcher {
    /// Re-executes the running binary as `SELF __sandbox-init SPEC`; the binary must call
    /// [`crate::init::main_if_init`] first thing in `main`.
    pub fn current_exe() -> io::Result<Self> {
        Ok(Self {
            program: std::env::current_exe()?,
            args: vec![INIT_ARG.into()],
        })
    }

    /// Runs `program SPEC`, a binary whose `main` is [`crate::init::main`] (such as this
    /// crate's `kiln-sandbox-init`).
    pub fn program(program: impl Into<PathBuf>) -> Self {
        Self {
            program: program.into(),
            args: Vec::new(),
        }
    }

    /// Starts the step described by `spec`, with the spec and the init's error report kept in
    /// `state` (an existing directory). The step inherits `stdio` (stdin, stdout, stderr).
    ///
    /// The init gets SIGKILL when the thread that called this exits (Linux's parent-death
    /// signal is per thread): call it from a thread that outlives the step.
    pub fn spawn(
        &self,
        spec: &Spec,
        state: &Path,
        stdio: [Stdio; 3],
    ) -> Result<Running, SandboxError> {
        let spec_path = state.join("spec.json");
        let json = serde_json::to_vec(spec).map_err(|e| {
            SandboxError::Io(kiln_io::IoError {
                action: "serialize the spec into",
                path: spec_path.clone(),
                source: io::Error::other(e),
            })
        })?;
        // Readable by root only: it may hold secrets (the init deletes it once read).
        let _ = fs::remove_file(&spec_path);
        fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&spec_path)
            .and_then(|mut f| io::Write::write_all(&mut f, &json))
            .map_err(|source| {
                SandboxError::Io(kiln_io::IoError {
                    action: "write",
                    path: spec_path.clone(),
                    source,
                })
            })?;
        let _ = fs::remove_file(state.join(ERROR_FILE));
        let [input, output, errors] = stdio;
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.args)
            .arg(&spec_path)
            .stdin(input)
            .stdout(output)
            .stderr(errors);
        // SAFETY: the closure only makes the async-signal-safe prctl(2) call.
        unsafe {
            cmd.pre_exec(|| {
                rustix::process::set_parent_process_death_signal(Some(
                    rustix::process::Signal::KILL,
                ))?;
                Ok(())
            });
        }
        let child = cmd.spawn().map_err(|source| SandboxError::Spawn {
            program: self.program.clone(),
            source,
        })?;
        let pid = child.id();
        Ok(Running {
            child,
            state: state.to_owned(),
            shared: Arc::new(Mutex::new(Shared {
                pid: Some(pid),
                stopped: false,
            })),
        })
    }
}

#[derive(Debug)]
struct Shared {
    /// The init's pid while it has not been reaped.
    pid: Option<u32>,
    stopped: bool,
}

/// A started step.
#[derive(Debug)]
pub struct Running {
    child: Child,
    state: PathBuf,
    shared: Arc<Mutex<Shared>>,
}

/// Stops a step from another thread (a signal handler thread, a timeout).
#[derive(Debug, Clone)]
pub struct Stopper {
    shared: Arc<Mutex<Shared>>,
}

impl Stopper {
    /// Kills the step: the init, the pid namespace with every process of the step, and its
    /// mount namespace with every mount. Does nothing when the step has ended.
    pub fn stop(&self) {
        let mut s = self
            .shared
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(pid) = s.pid {
            s.stopped = true;
            // The pid is still ours: it is only reaped under this lock.
            if let Some(pid) = rustix::process::Pid::from_raw(pid.cast_signed()) {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
            }
        }
    }
}

impl Running {
    /// The child's pipes, when `spawn` was given [`Stdio::piped`].
    pub fn child_mut(&mut self) -> &mut Child {
        &mut self.child
    }

    /// A handle that stops the step.
    pub fn stopper(&self) -> Stopper {
        Stopper {
            shared: Arc::clone(&self.shared),
        }
    }

    /// Waits for the step to end and returns its exit code (128 + signal when a signal ended
    /// it). Every process of the step is gone and nothing it mounted remains when this returns.
    pub fn wait(mut self) -> Result<i32, SandboxError> {
        drop(self.child.stdin.take());
        let pid = rustix::process::Pid::from_raw(self.child.id().cast_signed())
            .expect("a child's pid is positive");
        // Wait without reaping, so the stopper never signals a recycled pid.
        loop {
            match rustix::process::waitid(
                rustix::process::WaitId::Pid(pid),
                rustix::process::WaitIdOptions::EXITED | rustix::process::WaitIdOptions::NOWAIT,
            ) {
                Ok(_) => break,
                Err(rustix::io::Errno::INTR) => {}
                Err(e) => {
                    return Err(SandboxError::Io(kiln_io::IoError {
                        action: "wait for the step in",
                        path: self.state.clone(),
                        source: e.into(),
                    }));
                }
            }
        }
        let stopped = {
            let mut s = self
                .shared
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            s.pid = None;
            s.stopped
        };
        let status = self.child.wait().map_err(|source| {
            SandboxError::Io(kiln_io::IoError {
                action: "wait for the step in",
                path: self.state.clone(),
                source,
            })
        })?;
        if stopped {
            return Err(SandboxError::Stopped);
        }
        let code = status.code().unwrap_or_else(|| {
            use std::os::unix::process::ExitStatusExt;
            128 + status.signal().unwrap_or(0)
        });
        match fs::read_to_string(self.state.join(ERROR_FILE)) {
            Ok(message) if !message.trim().is_empty() => Err(SandboxError::Setup {
                message: message.trim().to_owned(),
                code,
            }),
            _ => Ok(code),
        }
    }
}

/// Writes the step's `/etc/hosts` (localhost and `hostname`) and a copy of the host's
/// `/etc/resolv.conf` into `state`, and returns their paths. The step may write to them;
/// neither the host's files nor the layer see it.
pub fn write_etc_files(state: &Path, hostname: &str) -> Result<(PathBuf, PathBuf), SandboxError> {
    let hosts = state.join("hosts");
    let resolv = state.join("resolv.conf");
    let hosts_text = format!(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t{hostname}\n"
    );
    let resolv_text = fs::read("/etc/resolv.conf").unwrap_or_default();
    for (path, bytes) in [(&hosts, hosts_text.as_bytes()), (&resolv, &resolv_text[..])] {
        fs::write(path, bytes).map_err(|source| {
            SandboxError::Io(kiln_io::IoError {
                action: "write",
                path: path.clone(),
                source,
            })
        })?;
    }
    Ok((hosts, resolv))
}

/// Whether this process can use overlayfs for steps: the kernel knows it and the caller is
/// root (mounting needs `CAP_SYS_ADMIN`).
pub fn overlay_available() -> bool {
    rustix::process::geteuid().is_root()
        && fs::read_to_string("/proc/filesystems").is_ok_and(|f| {
            f.lines()
                .any(|l| l.split_whitespace().last() == Some("overlay"))
        })
}
