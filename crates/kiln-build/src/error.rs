//! Build errors: what failed ([`StepError`]), and where ([`BuildError`]: stage, instruction,
//! location, exit code and the last lines of output).

use std::path::Path;

use kiln_syntax::{Diagnostic, TextRange};

/// Why one step failed.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// The store failed (a blob, the index, a transaction).
    #[error(transparent)]
    Store(Box<kiln_oci::StoreError>),
    /// A snapshot could not be made.
    #[error(transparent)]
    Snapshot(Box<kiln_oci::snapshot::SnapshotError>),
    /// A filesystem operation failed.
    #[error(transparent)]
    Io(#[from] kiln_io::IoError),
    /// A COPY or ADD could not be done.
    #[error(transparent)]
    FileOp(#[from] kiln_fileop::FileOpError),
    /// The sandbox failed to start or run the step.
    #[error(transparent)]
    Sandbox(#[from] kiln_sandbox::SandboxError),
    /// A `RUN --mount` could not be prepared.
    #[error(transparent)]
    Mount(#[from] crate::run_mount::MountError),
    /// The step's changes could not be turned into a layer.
    #[error(transparent)]
    Diff(#[from] kiln_layer::diff::DiffError),
    /// An instruction is invalid once expanded (a bad substitution, a stored trigger ...),
    /// in BuildKit's words.
    #[error(transparent)]
    Instruction(Box<kiln_frontend::InstructionError>),
    /// `--chmod` that is neither an octal mode up to 07777 nor a symbolic one.
    #[error("invalid chmod parameter: '{0}'. it should be octal string and between 0 and 07777")]
    Chmod(String),
    /// EXPOSE with a port that is not one (BuildKit's message).
    #[error(transparent)]
    Port(crate::ports::PortError),
    /// STOPSIGNAL with a signal that is not one (BuildKit's message).
    #[error(transparent)]
    Signal(crate::signal::SignalError),
    /// A stage's `FROM --platform` is not a platform.
    #[error("invalid platform `{value}`")]
    Platform {
        /// The value, expanded.
        value: String,
        /// Why.
        #[source]
        reason: kiln_frontend::PlatformError,
    },
    /// The build is for another machine than this one.
    #[error("cannot build for `{wanted}` on `{host}`")]
    ForeignPlatform {
        /// `--platform`.
        wanted: String,
        /// This machine's.
        host: String,
    },
    /// A base image's config names a `diff_id` that is not a digest.
    #[error("base image `{image}` has an invalid diff_id `{diff_id}`")]
    BadDiffId {
        /// The image, as named.
        image: String,
        /// The value.
        diff_id: String,
        /// Why.
        #[source]
        source: kiln_layer::DigestParseError,
    },
    /// Layers could not be merged into a plain directory (the fallback without overlayfs).
    #[error("cannot merge the layers {purpose}")]
    Merge {
        /// What the merged tree was for.
        purpose: &'static str,
        /// Why.
        #[source]
        source: Box<kiln_layer::overlay::OverlayError>,
    },
    /// A read-only overlay view of a stage could not be mounted.
    #[error("cannot mount a read-only view of the stage")]
    View(#[source] kiln_sandbox::SetupError),
    /// The build context could not be read.
    #[error("cannot read the build context")]
    Context(#[source] std::sync::Arc<dyn std::error::Error + Send + Sync>),
    /// A layer could not be written.
    #[error("cannot write the layer")]
    Pack(#[source] kiln_layer::PackError),
    /// The build cache failed.
    #[error("build cache")]
    Cache(#[source] Box<kiln_cache::CacheError>),
    /// A RUN step exited with a non-zero code.
    #[error("process {command:?} did not complete successfully: exit code: {code}")]
    RunFailed {
        /// The command as run.
        command: String,
        /// Its exit code.
        code: i32,
        /// Its filesystem, when the build was asked to keep a failed step's.
        kept: Option<Box<crate::run_step::KeptStep>>,
    },
    /// The base image is not in the store.
    #[error("base image `{name}` is not in the store")]
    BaseNotFound {
        /// The reference as written after expansion.
        name: String,
        /// The resolver's error.
        #[source]
        source: crate::resolve::ResolveError,
    },
    /// An ONBUILD trigger of the base image cannot fire.
    #[error(transparent)]
    Trigger(Box<kiln_frontend::TriggerError>),
    /// A stage this one needs failed.
    #[error("stage `{0}` it depends on failed")]
    DependencyFailed(String),
    /// A step reads a stage the build does not run: the plan did not see the reference (an
    /// ONBUILD trigger of a base image, or a `--from` made of variables).
    #[error("stage `{0}` is read here but is not part of this build")]
    StageNotScheduled(String),
    /// Another stage failed, so this one stopped.
    #[error("cancelled: another stage failed")]
    Cancelled,
}

impl StepError {
    pub(crate) fn store(e: kiln_oci::StoreError) -> Self {
        Self::Store(Box::new(e))
    }

    pub(crate) fn snapshot(e: kiln_oci::snapshot::SnapshotError) -> Self {
        Self::Snapshot(Box::new(e))
    }

    pub(crate) fn io(action: &'static str, path: &Path, source: std::io::Error) -> Self {
        Self::Io(kiln_io::IoError {
            action,
            path: path.to_owned(),
            source,
        })
    }

    /// What to do about it, when something useful can be said.
    pub fn hint(&self) -> Option<String> {
        match self {
            Self::BaseNotFound { name, .. } => Some(format!(
                "kiln builds from images in its store: `kiln load -i image.tar` or `kiln import rootfs.tar {name}` first (registry pulls are not supported yet)"
            )),
            Self::Instruction(e) => e.hint.clone(),
            Self::Chmod(_) => {
                Some("write an octal mode such as `0755` or a symbolic one such as `u+x`".into())
            }
            Self::ForeignPlatform { .. } => {
                Some("kiln builds for the machine it runs on; drop `--platform`".into())
            }
            Self::View(_) => {
                Some("kiln needs root and overlayfs for multi-layer COPY views".into())
            }
            Self::Cache(_) => Some("`kiln prune --all` empties a damaged cache".into()),
            Self::Mount(e) => e.hint(),
            Self::StageNotScheduled(name) => Some(format!(
                "build stage `{name}` as the target first, or name it in a `COPY --from={name}` of this stage"
            )),
            _ => None,
        }
    }
}

/// A failed build: the step that failed and why.
#[derive(Debug, thiserror::Error)]
#[error("{stage}: {instruction}: {error}")]
pub struct BuildError {
    /// The stage's name or index.
    pub stage: String,
    /// The instruction as written (the first line of it).
    pub instruction: String,
    /// Where it is in the Dockerfile.
    pub span: TextRange,
    /// What failed.
    #[source]
    pub error: Box<StepError>,
    /// The last lines of the step's output (RUN).
    pub output_tail: Vec<String>,
}

impl BuildError {
    /// This failure as a [`Diagnostic`] (rule `BuildError`) at the instruction that failed:
    /// the stage, the error and its causes on one line (as the sandbox init reports its own,
    /// `cannot start the sandbox init: Permission denied (os error 13)`; a cause whose text
    /// the message holds already is not said twice), and as the hint what to do about it
    /// followed by the last lines of the step's output.
    pub fn to_diagnostic(&self) -> Diagnostic {
        let mut hint = self.error.hint();
        if let StepError::RunFailed {
            kept: Some(kept), ..
        } = &*self.error
        {
            let what = match &kept.spec.rootfs {
                kiln_sandbox::Rootfs::Overlay { upper, .. } => format!(
                    "what it changed is in `{}`, over the layers `{}` names",
                    upper.display(),
                    kept.dir.join("spec.json").display()
                ),
                kiln_sandbox::Rootfs::Bind { dir } => {
                    format!("its whole filesystem is in `{}`", dir.display())
                }
            };
            let h = format!("the step's filesystem is kept: {what}");
            hint = Some(match hint {
                Some(x) => format!("{x}\n{h}"),
                None => h,
            });
        }
        if !self.output_tail.is_empty() {
            let tail = self.output_tail.join("\n  | ");
            let h = format!("last lines of its output:\n  | {tail}");
            hint = Some(match hint {
                Some(x) => format!("{x}\n{h}"),
                None => h,
            });
        }
        let message = format!("stage `{}`: {}", self.stage, one_line(&*self.error));
        Diagnostic::error("BuildError", self.span, message).with_hint(hint)
    }
}

impl From<&BuildError> for Diagnostic {
    fn from(e: &BuildError) -> Self {
        e.to_diagnostic()
    }
}

impl From<kiln_frontend::InstructionError> for StepError {
    fn from(e: kiln_frontend::InstructionError) -> Self {
        Self::Instruction(Box::new(e))
    }
}

/// An error and its causes on one line, as the sandbox init reports its own (`cannot start
/// the sandbox init: Permission denied (os error 13)`); a cause whose text the line holds
/// already is not said twice.
pub fn one_line(e: &dyn std::error::Error) -> String {
    let mut line = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        cause = c.source();
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_step_is_a_diagnostic_at_its_instruction() {
        let e = BuildError {
            stage: "app".into(),
            instruction: "RUN false".into(),
            span: TextRange::new(10, 19),
            error: Box::new(StepError::RunFailed {
                command: "/bin/sh -c false".into(),
                code: 1,
                kept: None,
            }),
            output_tail: vec!["a".into(), "b".into()],
        };
        let d = e.to_diagnostic();
        assert_eq!(d.rule, "BuildError");
        assert_eq!(d.severity, kiln_syntax::Severity::Error);
        assert_eq!(d.span, TextRange::new(10, 19));
        assert_eq!(
            d.message,
            "stage `app`: process \"/bin/sh -c false\" did not complete successfully: exit code: 1"
        );
        assert_eq!(
            d.hint.as_deref(),
            Some("last lines of its output:\n  | a\n  | b")
        );
    }
}
