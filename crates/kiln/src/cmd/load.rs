//! `kiln load -i FILE|DIR`: a `docker save` tarball, an OCI archive or an OCI layout into the
//! store, keeping tags.

use std::path::PathBuf;
use std::process::ExitCode;

use kiln_oci::{LoadOptions, MediaTypes, Store};

use crate::Globals;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The archive (plain, gzip or zstd tar) or layout directory to load.
    #[arg(short = 'i', long = "input", value_name = "FILE|DIR")]
    pub input: PathBuf,
    /// Media types of the manifests kiln writes for docker-archives.
    #[arg(long, value_enum, default_value_t = super::save::Format::Oci)]
    pub format: super::save::Format,
    /// Print only the image ids.
    #[arg(short, long)]
    pub quiet: bool,
}

pub(crate) fn run(globals: &Globals, args: &Args) -> anyhow::Result<ExitCode> {
    let store = Store::open(&globals.root)?;
    let media_types = match args.format {
        super::save::Format::Oci => MediaTypes::Oci,
        super::save::Format::Docker => MediaTypes::Docker,
    };
    let loaded = kiln_oci::load(&store, &args.input, &LoadOptions { media_types })?;
    // Each image's layers are unpacked into snapshots now (in parallel), not on the critical
    // path of the first build FROM it. A platform this machine cannot run is left packed.
    let snapshots = kiln_oci::Snapshots::new(&store)?;
    for image in &loaded {
        if let Ok(img) = store.resolve(&image.digest.to_string()) {
            snapshots.ensure_image(&img)?;
        }
    }
    for image in loaded {
        if args.quiet {
            outln!("{}", image.id)?;
        } else if image.tags.is_empty() {
            outln!("Loaded image ID: {}", image.id)?;
        } else {
            for t in &image.tags {
                outln!("Loaded image: {}", t.familiar())?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
