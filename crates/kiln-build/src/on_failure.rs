//! The moment a RUN's process has failed, offered to the caller before the step's
//! filesystem and mounts go away: `kiln build --on-error=shell` opens a shell there. The
//! builder only calls the hook; what it does (a terminal, a shell) is the caller's business.

use std::path::Path;

use kiln_sandbox::Spec;

/// A RUN whose process exited with a non-zero code, its sandbox still standing: the upper
/// dir (or tree) holds what the process changed, and every mount the spec names (caches,
/// binds, secrets, tmpfs) is still there to be mounted again.
#[derive(Debug)]
pub struct FailedRun<'a> {
    /// The stage's name or index.
    pub stage: &'a str,
    /// The step's position in its stage, from 1 (the FROM is 1).
    pub position: usize,
    /// The process's exit code.
    pub code: i32,
    /// The step's sandbox spec, with its `--mount`s.
    pub spec: &'a Spec,
    /// The sandbox's state dir of the step (where a new process can keep its own).
    pub state: &'a Path,
    /// The targets of the spec's mounts that are secrets (`--mount=type=secret`).
    pub secret_mounts: &'a [String],
    /// The names of the environment variables that hold secrets (`env=`).
    pub secret_env: &'a [String],
}

/// Called from the stage thread whose RUN failed, before that step is cleaned up (and, with
/// `keep_failed`, before it is kept: what the hook changes is kept too). Other stages may
/// still be running meanwhile. Called once per failed RUN.
pub trait OnRunFailure: Sync {
    /// The RUN of `failed` has failed.
    fn run_failed(&self, failed: &FailedRun<'_>);
}
