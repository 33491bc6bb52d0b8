//! `kiln outline`: the stages of a Dockerfile, in build order.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::Globals;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The Dockerfile (default: `CONTEXT/Dockerfile`).
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// The build context.
    #[arg(default_value = ".")]
    pub context: PathBuf,
}

pub fn run(_globals: &Globals, _args: &Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("outline is being written")
}
