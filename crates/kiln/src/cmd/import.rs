//! `kiln import ROOTFS.tar [NAME[:TAG]]`: a root filesystem tarball as a one-layer image.

use std::fs::File;
use std::io::BufReader;
use std::path::PathBuf;
use std::process::ExitCode;

use kiln_oci::{ImportOptions, MediaTypes, Reference, Store};

use crate::Globals;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The tarball (plain, gzip or zstd), or `-` for stdin.
    #[arg(value_name = "ROOTFS.tar")]
    pub file: PathBuf,
    /// The name to give the image.
    #[arg(value_name = "NAME[:TAG]")]
    pub name: Option<String>,
    /// Media types of the manifest.
    #[arg(long, value_enum, default_value_t = super::save::Format::Oci)]
    pub format: super::save::Format,
    /// The image's default command (JSON array or a string run by `/bin/sh -c`).
    #[arg(long, value_name = "CMD")]
    pub cmd: Option<String>,
    /// History comment.
    #[arg(short, long)]
    pub message: Option<String>,
}

pub(crate) fn run(globals: &Globals, args: &Args) -> anyhow::Result<ExitCode> {
    let store = Store::open(&globals.root)?;
    let reference = args.name.as_deref().map(Reference::parse).transpose()?;
    let config = args.cmd.as_ref().map(|c| {
        let cmd = serde_json::from_str::<Vec<String>>(c)
            .unwrap_or_else(|_| vec!["/bin/sh".into(), "-c".into(), c.clone()]);
        kiln_oci::ContainerConfig {
            cmd: Some(cmd),
            ..Default::default()
        }
    });
    let opts = ImportOptions {
        media_types: if args.format == super::save::Format::Docker {
            MediaTypes::Docker
        } else {
            MediaTypes::Oci
        },
        created: crate::source_date_epoch_from_env(),
        config,
        comment: Some(
            args.message
                .clone()
                .unwrap_or_else(|| format!("Imported from {}", args.file.display())),
        ),
        ..ImportOptions::default()
    };
    let descriptor = if args.file.as_os_str() == "-" {
        kiln_oci::import_rootfs(&store, std::io::stdin().lock(), reference.as_ref(), &opts)?
    } else {
        let file = File::open(&args.file)
            .map_err(|e| anyhow::anyhow!("cannot open `{}`: {e}", args.file.display()))?;
        kiln_oci::import_rootfs(
            &store,
            BufReader::with_capacity(1 << 20, file),
            reference.as_ref(),
            &opts,
        )?
    };
    let image = kiln_oci::Image::read(&store, &descriptor, reference.into_iter().collect())?;
    // Unpacked now, not on the critical path of the first build FROM it.
    kiln_oci::Snapshots::new(&store)?.ensure_image(&image)?;
    outln!("{}", image.id())?;
    Ok(ExitCode::SUCCESS)
}
