//! `kiln save -o FILE [--format docker|oci] IMAGE...`: images out as a tarball that
//! `docker load` accepts.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use kiln_oci::{Reference, SaveFormat, Store};

use crate::Globals;

/// Media type family (and, for `save`, archive format).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Format {
    /// Docker (`docker save` layout; Docker v2 schema 2 media types).
    Docker,
    /// OCI (an OCI image layout; OCI media types).
    Oci,
}

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Where to write the tarball (default: stdout).
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// The archive format.
    #[arg(long, value_enum, default_value_t = Format::Docker)]
    pub format: Format,
    /// How an OCI archive's layers are compressed (layers kiln built are stored
    /// uncompressed; each is compressed once, and remembered). A docker archive's layers are
    /// always plain tars.
    #[arg(long, value_enum, default_value_t = ExportCompression::Gzip)]
    pub compression: ExportCompression,
    /// Recompress layers that are already compressed otherwise (a base image's gzip layers
    /// under `--compression zstd`, say), as BuildKit's `force-compression=true`.
    #[arg(long)]
    pub force_compression: bool,
    /// Images by name or id.
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<String>,
}

/// `--compression` of what leaves the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ExportCompression {
    /// gzip, level 6 (what registries and every runtime accept).
    Gzip,
    /// zstd, level 3.
    Zstd,
    /// Plain tars.
    Uncompressed,
}

impl ExportCompression {
    pub(crate) fn compression(self) -> kiln_layer::Compression {
        match self {
            Self::Gzip => kiln_layer::Compression::default(),
            Self::Zstd => kiln_layer::Compression::Zstd { level: 3 },
            Self::Uncompressed => kiln_layer::Compression::None,
        }
    }
}

pub(crate) fn run(globals: &Globals, args: &Args) -> anyhow::Result<ExitCode> {
    let store = Store::open(&globals.root)?;
    let mut images = Vec::new();
    for name in &args.images {
        let image = store.resolve(name)?;
        // A name saves that name; an id saves every tag of the image.
        let tags = match Reference::parse(name) {
            Ok(r) if image.tags.contains(&r) => vec![r],
            _ => image.tags.clone(),
        };
        images.push((image, tags));
    }
    let format = match args.format {
        Format::Docker => SaveFormat::Docker,
        Format::Oci => SaveFormat::Oci,
    };
    write_archive(
        &store,
        &images,
        format,
        kiln_oci::store::ExportCompression {
            compression: args.compression.compression(),
            force: args.force_compression,
        },
        args.output.as_deref(),
    )?;
    Ok(ExitCode::SUCCESS)
}

/// Write `images` as an archive to `output` (stdout when `None`), an OCI archive's plain
/// layers compressed as `compression` says. A file is written beside its final name and
/// renamed, so a failure leaves no half-written archive.
pub(crate) fn write_archive(
    store: &Store,
    images: &[(kiln_oci::Image, Vec<Reference>)],
    format: SaveFormat,
    compression: kiln_oci::store::ExportCompression,
    output: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    let variants = match format {
        SaveFormat::Oci => images
            .iter()
            .map(|(i, t)| Ok((store.compressed_variant(i, compression)?, t.clone())))
            .collect::<anyhow::Result<Vec<_>>>()?,
        SaveFormat::Docker => images.to_vec(),
    };
    let set: Vec<_> = variants.iter().map(|(i, t)| (i, t.clone())).collect();
    if let Some(path) = output {
        let tmp = path.with_extension("kiln-partial");
        let out = BufWriter::new(File::create(&tmp)?);
        let result = kiln_oci::save(store, &set, format, out, path)
            .map_err(anyhow::Error::from)
            .and_then(|mut w| Ok(w.flush()?));
        if let Err(e) = result {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        std::fs::rename(&tmp, path)?;
    } else {
        let out = BufWriter::new(std::io::stdout().lock());
        kiln_oci::save(store, &set, format, out, &PathBuf::from("-"))?.flush()?;
    }
    Ok(())
}
