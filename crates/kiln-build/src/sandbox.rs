//! The seam between a RUN step and the process it runs: the [`Sandbox`] trait, implemented by
//! `kiln-sandbox`'s [`Launcher`] (the re-executed init in fresh namespaces, which needs
//! root) and, in this crate's tests, by a recording fake that needs nothing
//! (`fake::FakeSandbox`), so that how each instruction is dispatched is tested without
//! privileges (youki's `Syscall` / `TestHelperSyscall`).
//!
//! Everything else a RUN does stays on the build's side of the seam and is the same for both:
//! the step's filesystem ([`crate::StepRoot`]), the spec, the output's log events and tail,
//! the diff into a layer and keeping a failed step's filesystem.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::Stdio;

use kiln_sandbox::{Launcher, SandboxError, Spec};

/// Runs one step's process to its end.
///
/// Called from the stage's thread, once per RUN that is not a cache hit (never under
/// [`crate::explain`]); a build runs several stages at once, so several calls may be under way.
pub trait Sandbox: Sync {
    /// Runs the process `spec` describes, over the filesystem it names, with an empty stdin.
    /// `state` is the step's own existing directory for the spec file and the init's error
    /// report. Each line of output (with its newline; the last one may lack it) goes to
    /// `output` with the descriptor it was written to, 1 or 2, as it comes: stdout's and
    /// stderr's lines may come from two threads at once.
    ///
    /// Returns the process's exit status (128 + the signal's number when a signal ended it);
    /// an error means the process could not be run or waited for, not that it failed.
    fn run(
        &self,
        spec: &Spec,
        state: &Path,
        output: &(dyn Fn(u8, &[u8]) + Sync),
    ) -> Result<i32, SandboxError>;
}

/// The real sandbox: the init started by [`Launcher::spawn`], its stdout and stderr piped and
/// read line by line in a thread each.
///
/// The init gets SIGKILL when the calling thread exits ([`Launcher::spawn`]); the call
/// returns only when the step has ended, so the stage thread outlives it.
impl Sandbox for Launcher {
    fn run(
        &self,
        spec: &Spec,
        state: &Path,
        output: &(dyn Fn(u8, &[u8]) + Sync),
    ) -> Result<i32, SandboxError> {
        let mut running =
            self.spawn(spec, state, [Stdio::null(), Stdio::piped(), Stdio::piped()])?;
        let stdout = running.child_mut().stdout.take();
        let stderr = running.child_mut().stderr.take();
        std::thread::scope(|s| {
            if let Some(out) = stdout {
                s.spawn(|| forward_lines(out, 1, output));
            }
            if let Some(err) = stderr {
                s.spawn(|| forward_lines(err, 2, output));
            }
            running.wait()
        })
    }
}

/// Passes each line of `stream` to `output`, until its end or a read error.
fn forward_lines(stream: impl Read, fd: u8, output: &(dyn Fn(u8, &[u8]) + Sync)) {
    let mut reader = BufReader::new(stream);
    let mut line = Vec::new();
    while reader.read_until(b'\n', &mut line).is_ok_and(|n| n > 0) {
        output(fd, &line);
        line.clear();
    }
}

#[cfg(test)]
pub(crate) mod fake;
