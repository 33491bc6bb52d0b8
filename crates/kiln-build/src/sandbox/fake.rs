//! A recording fake of the [`Sandbox`] seam: it keeps every spec it is given and, instead of
//! running a process, calls the test's closure, which may write into the step's filesystem
//! and says what the process printed and how it exited. Needs no privileges: with
//! [`crate::Snapshotter::Naive`] the step's root is a plain directory.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use kiln_sandbox::{Rootfs, SandboxError, Spec};

use super::Sandbox;

/// What the simulated process did.
#[derive(Debug, Default)]
pub(crate) struct FakeRun {
    /// Its exit status.
    pub code: i32,
    /// Its output lines (without newlines), each with its descriptor (1 or 2), in order.
    pub output: Vec<(u8, String)>,
}

impl FakeRun {
    /// Exited with `code`, printing nothing.
    pub(crate) fn exit(code: i32) -> Self {
        Self {
            code,
            output: Vec::new(),
        }
    }

    /// Also printed `line` on `fd`.
    pub(crate) fn print(mut self, fd: u8, line: &str) -> Self {
        self.output.push((fd, line.to_owned()));
        self
    }
}

type Behaviour = Box<dyn Fn(&Spec, &Path) -> FakeRun + Sync>;

/// Records each spec and answers with its behaviour.
pub(crate) struct FakeSandbox {
    behaviour: Behaviour,
    specs: Mutex<Vec<Spec>>,
}

impl FakeSandbox {
    /// Every process exits 0 and changes nothing.
    pub(crate) fn succeeding() -> Self {
        Self::new(|_, _| FakeRun::exit(0))
    }

    /// Simulates each process with `behaviour`, given the spec and the root directory of the
    /// step's filesystem (writable; what is written there is what the process changed).
    pub(crate) fn new(behaviour: impl Fn(&Spec, &Path) -> FakeRun + Sync + 'static) -> Self {
        Self {
            behaviour: Box::new(behaviour),
            specs: Mutex::default(),
        }
    }

    /// The specs run so far, in the order they were run.
    pub(crate) fn specs(&self) -> Vec<Spec> {
        self.specs.lock().unwrap().clone()
    }
}

impl Sandbox for FakeSandbox {
    fn run(
        &self,
        spec: &Spec,
        state: &Path,
        output: &(dyn Fn(u8, &[u8]) + Sync),
    ) -> Result<i32, SandboxError> {
        assert!(state.is_dir(), "the state directory exists");
        self.specs.lock().unwrap().push(spec.clone());
        let root: PathBuf = match &spec.rootfs {
            Rootfs::Bind { dir } => dir.clone(),
            Rootfs::Overlay { upper, .. } => upper.clone(),
        };
        let run = (self.behaviour)(spec, &root);
        for (fd, line) in run.output {
            output(fd, format!("{line}\n").as_bytes());
        }
        Ok(run.code)
    }
}
