//! `kiln inspect IMAGE...`: a JSON array describing each image, like `docker image inspect`.

use std::process::ExitCode;

use kiln_oci::Store;

use crate::Globals;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Images by name or id.
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<String>,
}

pub(crate) fn run(globals: &Globals, args: &Args) -> anyhow::Result<ExitCode> {
    let store = Store::open(&globals.root)?;
    let mut out = Vec::new();
    for name in &args.images {
        let image = store.resolve(name)?;
        let c = &image.config;
        out.push(serde_json::json!({
            "Id": image.id().to_string(),
            "RepoTags": image.tags.iter().map(kiln_oci::Reference::familiar).collect::<Vec<_>>(),
            "Digest": image.digest().to_string(),
            "MediaType": image.descriptor.media_type,
            "Created": c.created,
            "Author": c.author,
            "Config": c.config.clone().unwrap_or_default(),
            "Architecture": c.architecture,
            "Os": c.os,
            "Variant": c.variant,
            "RootFS": { "Type": c.rootfs.kind, "Layers": c.rootfs.diff_ids },
            "Layers": image.manifest.layers,
            "History": c.history,
            "Size": image.content_size(&store)?,
        }));
    }
    outln!("{}", serde_json::to_string_pretty(&out)?)?;
    Ok(ExitCode::SUCCESS)
}
