//! `kiln push IMAGE [REF] [--compression gzip|zstd]`: an image of the store to a registry;
//! prints the pushed manifest's digest.

use std::process::ExitCode;

use kiln_oci::store::ExportCompression;
use kiln_oci::{Reference, Store};
use kiln_registry::PushOptions;

use crate::Globals;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The image of the store, by name or id.
    #[arg(value_name = "IMAGE")]
    pub image: String,
    /// Where to push it (`host[:port]/name[:tag]`); the image's name by default.
    #[arg(value_name = "REF")]
    pub reference: Option<String>,
    /// How layers are compressed on their way out (each layer is compressed once and the
    /// result kept in the store).
    #[arg(long, value_enum, default_value_t = Compression::Gzip)]
    pub compression: Compression,
    /// Print nothing but the digest.
    #[arg(short, long)]
    pub quiet: bool,
}

/// `--compression`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum Compression {
    /// gzip (every registry and runtime reads it).
    Gzip,
    /// zstd (smaller and faster; needs containerd 1.5+ / Docker 23+ to run).
    Zstd,
}

pub(crate) fn run(globals: &Globals, args: &Args) -> anyhow::Result<ExitCode> {
    let store = Store::open(&globals.root)?;
    let image = store.resolve(&args.image)?;
    let target = args.reference.as_deref().unwrap_or(&args.image);
    let reference = Reference::parse(target).map_err(|e| {
        anyhow::anyhow!(
            "{e}\nhint: name where to push it: `kiln push {} HOST/NAME:TAG`",
            args.image
        )
    })?;
    let compression = match args.compression {
        Compression::Gzip => kiln_layer::Compression::default(),
        Compression::Zstd => kiln_layer::Compression::Zstd { level: 3 },
    };
    let opts = PushOptions {
        compression: ExportCompression {
            compression,
            force: false,
        },
    };
    let registries = super::pull::registries(globals)?;
    let pushed = registries
        .push(
            &store,
            &image,
            &reference,
            &opts,
            &super::pull::BlobLines {
                verb: "push",
                quiet: args.quiet,
            },
        )
        .map_err(super::pull::hinted)?;
    if !args.quiet {
        eprintln!(
            "pushed {}: {} blobs uploaded, {} mounted, {} already there",
            reference.familiar(),
            pushed.uploaded,
            pushed.mounted,
            pushed.present
        );
    }
    outln!("{}", pushed.digest)?;
    Ok(ExitCode::SUCCESS)
}
