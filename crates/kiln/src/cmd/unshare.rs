//! `kiln unshare [CMD...]`: a command in the user namespace a rootless kiln works in, where
//! the store's files have the owners kiln gave them (to look at the store, or to remove it:
//! `kiln unshare rm -rf ~/.local/share/kiln`), as `podman unshare` does.

use std::process::{Command, ExitCode};

use anyhow::Context as _;

/// `kiln unshare`'s arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The command and its arguments (default: `$SHELL`, else `/bin/sh`).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub(crate) command: Vec<String>,
}

/// Runs the command (kiln has entered its namespace already when not root) and returns its
/// exit status.
pub(crate) fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let shell = std::env::var("SHELL").unwrap_or_else(|_| "/bin/sh".to_owned());
    let (program, rest) = match args.command.split_first() {
        Some((p, rest)) => (p.clone(), rest.to_vec()),
        None => (shell, Vec::new()),
    };
    let status = Command::new(&program)
        .args(&rest)
        .status()
        .with_context(|| format!("cannot run `{program}`"))?;
    let code = status.code().unwrap_or(125);
    Ok(ExitCode::from(u8::try_from(code).unwrap_or(125)))
}
