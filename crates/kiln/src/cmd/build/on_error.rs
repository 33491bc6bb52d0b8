//! `kiln build --on-error=...`: what is done with a RUN whose process fails, besides failing
//! the build. `shell` opens `/bin/sh` in the failed step (its filesystem with what the
//! command changed, its user, working directory, environment and mounts; secrets only with
//! `shell,secrets`) when stdin and stdout are a terminal; `keep` keeps its filesystem as the
//! image `kiln-failed/<stage>:<step>` for `kiln run`. The builder calls the shell through
//! its `OnRunFailure` hook, while the step's mounts still stand; the image is made after the
//! build, from the kept step (`--keep-failed`'s machinery).

use std::io::{self, IsTerminal as _};
use std::os::fd::AsFd as _;
use std::process::Stdio;
use std::sync::Mutex;

use kiln_build::{FailedRun, KeptStep, OnRunFailure};
use kiln_oci::{MediaTypes, Reference, Store};
use kiln_sandbox::{Launcher, Spec};

use crate::progress::Timings;

/// `--on-error`: `fail` (the default), `shell`, `shell,secrets`, `keep`, or `shell` and
/// `keep` together (`shell,keep`: the image has what the shell changed too).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct OnError {
    /// Open a shell in the failed step.
    pub shell: bool,
    /// Mount the step's secrets in that shell.
    pub secrets: bool,
    /// Keep the failed step as an image.
    pub keep: bool,
}

/// Parses `--on-error`'s value.
pub(crate) fn parse(spec: &str) -> Result<OnError, String> {
    let mut on = OnError::default();
    if spec == "fail" {
        return Ok(on);
    }
    for word in spec.split(',') {
        match word {
            "shell" => on.shell = true,
            "secrets" => on.secrets = true,
            "keep" => on.keep = true,
            _ => {
                return Err(format!(
                    "unknown `{word}`: write `fail`, `shell`, `shell,secrets`, `keep` or `shell,keep`"
                ));
            }
        }
    }
    if on.secrets && !on.shell {
        return Err(
            "`secrets` goes with `shell` (`shell,secrets`): only the debug shell mounts secrets"
                .into(),
        );
    }
    Ok(on)
}

/// Why a shell cannot be opened here, if it cannot: stdin and stdout must be a terminal.
pub(crate) fn no_terminal() -> Option<&'static str> {
    match (io::stdin().is_terminal(), io::stdout().is_terminal()) {
        (true, true) => None,
        (false, true) => Some("stdin is not a terminal"),
        (true, false) => Some("stdout is not a terminal"),
        (false, false) => Some("stdin and stdout are not a terminal"),
    }
}

/// The debug shell, as the builder's failure hook: opened for the first RUN that fails.
pub(crate) struct Shell<'a> {
    launcher: &'a Launcher,
    secrets: bool,
    progress: &'a Timings,
    opened: Mutex<bool>,
}

impl<'a> Shell<'a> {
    pub(crate) fn new(launcher: &'a Launcher, secrets: bool, progress: &'a Timings) -> Self {
        Self {
            launcher,
            secrets,
            progress,
            opened: Mutex::new(false),
        }
    }

    /// Whether the shell was opened (for the message after the build).
    pub(crate) fn opened(&self) -> bool {
        *self
            .opened
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl OnRunFailure for Shell<'_> {
    fn run_failed(&self, failed: &FailedRun<'_>) {
        let mut opened = self
            .opened
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if *opened {
            return;
        }
        *opened = true;
        self.progress.pause();
        eprintln!(
            "\nkiln: step {} of stage `{}` failed (exit code {}): a shell in its filesystem, as its user, in its working directory, with its environment and mounts; `exit` ends the build",
            failed.position, failed.stage, failed.code
        );
        let has_secrets = !failed.secret_mounts.is_empty() || !failed.secret_env.is_empty();
        if has_secrets && !self.secrets {
            eprintln!(
                "kiln: the step's secrets are left out; `--on-error=shell,secrets` mounts them"
            );
        }
        match shell_spec(failed, self.secrets)
            .and_then(|spec| open_shell(self.launcher, &spec, failed.state))
        {
            Ok(code) => eprintln!("kiln: the shell exited with code {code}"),
            Err(e) => eprintln!("kiln: cannot open a shell in the failed step: {e:#}"),
        }
        self.progress.resume();
    }
}

/// The failed step's spec with `/bin/sh` on a terminal instead of its command; without
/// `secrets`, its secret mounts and variables left out. An overlay gets a fresh work dir
/// (beside the step's, removed with it): the step's was mounted `volatile`, and overlayfs
/// refuses a work dir a volatile mount has used.
fn shell_spec(failed: &FailedRun<'_>, secrets: bool) -> anyhow::Result<Spec> {
    let mut spec = failed.spec.clone();
    if let kiln_sandbox::Rootfs::Overlay { work, .. } = &mut spec.rootfs {
        let fresh = work.with_file_name("work-shell");
        std::fs::create_dir(&fresh)
            .map_err(|e| anyhow::anyhow!("cannot create `{}`: {e}", fresh.display()))?;
        *work = fresh;
    }
    spec.process.args = vec!["/bin/sh".to_owned()];
    spec.process.terminal = true;
    if !secrets {
        spec.mounts
            .retain(|m| !failed.secret_mounts.contains(&m.target));
        spec.process.env.retain(|e| {
            let name = e.split_once('=').map_or(e.as_str(), |(k, _)| k);
            !failed.secret_env.iter().any(|s| s == name)
        });
    }
    Ok(spec)
}

/// Runs `spec` on a new pseudo-terminal joined to the caller's; its exit code.
fn open_shell(launcher: &Launcher, spec: &Spec, state: &std::path::Path) -> anyhow::Result<i32> {
    let pty = kiln_sandbox::pty::Pty::open(Some(io::stdin().as_fd()))?;
    let stdio = [
        Stdio::from(pty.slave.try_clone()?),
        Stdio::from(pty.slave.try_clone()?),
        Stdio::from(pty.slave.try_clone()?),
    ];
    let running = launcher.spawn(spec, state, stdio)?;
    drop(pty.slave);
    crate::cmd::run::terminal::attach(pty.master, true)?;
    Ok(running.wait()?)
}

/// The name of a failed step's image: `kiln-failed/<stage>:<position>` (shown as is; the
/// store holds it as `docker.io/kiln-failed/...`, as every short name).
pub(crate) fn image_name(kept: &KeptStep) -> anyhow::Result<Reference> {
    let name = format!("kiln-failed/{}:{}", kept.stage, kept.position);
    Reference::parse(&name).map_err(|e| anyhow::anyhow!("cannot name the image `{name}`: {e}"))
}

/// Keeps the failed step as an image: the stage's layers and config before the step, and
/// what the step changed as a layer on top (as its RUN layer would have been), named
/// [`image_name`]. Its history says which command failed.
pub(crate) fn keep_image(
    store: &Store,
    kept: &KeptStep,
    command: &str,
    code: i32,
) -> anyhow::Result<Reference> {
    let reference = image_name(kept)?;
    for l in &kept.layers {
        if !store.layout().blob(&l.descriptor.digest).is_file() {
            anyhow::bail!(
                "cannot keep the failed step as an image: the layer `{}` of the stage is not in the store\nhint: build with the cache on (its finished steps' layers are kept then)",
                l.descriptor.digest
            );
        }
    }
    let epoch = crate::source_date_epoch_from_env();
    crate::cmd::run::step::commit_image(
        store,
        MediaTypes::Oci,
        &kept.config,
        kept.layers.iter().map(|l| l.descriptor.clone()).collect(),
        &|w| kept.diff(w, kiln_layer::Compression::None, epoch),
        &format!("RUN {command} # failed: exit code {code} (kept by kiln build --on-error=keep)"),
        Some(&reference),
    )?;
    Ok(reference)
}

#[cfg(test)]
mod tests {
    use super::{OnError, parse};

    #[test]
    fn on_error_values() {
        assert_eq!(parse("fail").unwrap(), OnError::default());
        let shell = OnError {
            shell: true,
            ..OnError::default()
        };
        assert_eq!(parse("shell").unwrap(), shell);
        assert_eq!(
            parse("shell,secrets").unwrap(),
            OnError {
                secrets: true,
                ..shell
            }
        );
        assert_eq!(
            parse("keep,shell").unwrap(),
            OnError {
                keep: true,
                ..shell
            }
        );
        assert!(parse("secrets").unwrap_err().contains("goes with `shell`"));
        assert!(parse("shel").unwrap_err().contains("unknown `shel`"));
        assert!(parse("fail,shell").unwrap_err().contains("unknown `fail`"));
    }
}
