//! `kiln debug-dump` (hidden): print the syntax tree as BuildKit's `Node.Dump()` does, for
//! comparing kiln's parser with BuildKit's on any file.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::Globals;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The Dockerfile.
    pub file: PathBuf,
}

pub(crate) fn run(_globals: &Globals, args: &Args) -> anyhow::Result<ExitCode> {
    let src = super::outline::read_dockerfile(Some(&args.file), std::path::Path::new("."))?;
    let df = kiln_syntax::parse(&src.text).map_err(|e| src.error(e.to_diagnostic()))?;
    outln!("{}", kiln_syntax::dump(&df))?;
    Ok(ExitCode::SUCCESS)
}
