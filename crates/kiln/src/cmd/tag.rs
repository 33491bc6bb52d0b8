//! `kiln tag SRC DST`: another name for an image.

use std::process::ExitCode;

use kiln_oci::{Reference, Store};

use crate::Globals;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The image, by name or id.
    #[arg(value_name = "SOURCE")]
    pub source: String,
    /// The new name.
    #[arg(value_name = "TARGET[:TAG]")]
    pub target: String,
}

pub(crate) fn run(globals: &Globals, args: &Args) -> anyhow::Result<ExitCode> {
    let store = Store::open(&globals.root)?;
    let image = store.resolve(&args.source)?;
    let target = Reference::parse(&args.target)?;
    anyhow::ensure!(
        target.digest.is_none(),
        "cannot tag with a digest: `{}`",
        args.target
    );
    store.tag(&target, &image.descriptor)?;
    Ok(ExitCode::SUCCESS)
}
