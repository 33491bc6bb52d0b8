//! `kiln rmi IMAGE...`: remove names, and images with no name left.

use std::process::ExitCode;

use kiln_oci::{Reference, Store};

use crate::Globals;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Images by name (removes that name) or id (removes the image and all its names).
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<String>,
}

pub(crate) fn run(globals: &Globals, args: &Args) -> anyhow::Result<ExitCode> {
    let store = Store::open(&globals.root)?;
    for name in &args.images {
        let image = store.resolve(name)?;
        let only = Reference::parse(name)
            .ok()
            .filter(|r| image.tags.contains(r));
        let (removed, deleted) = store.remove(&image, only.as_ref())?;
        for r in removed {
            outln!("Untagged: {}", r.familiar())?;
        }
        for d in deleted {
            outln!("Deleted: {d}")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
