//! `kiln history IMAGE [--no-trunc] [--format json]`: the image's steps, newest first, in the
//! columns of `docker history`. A step's SIZE is its layer's unpacked content, as Docker's
//! ([`Store::layer_size`]).

use std::process::ExitCode;

use kiln_oci::Store;

use super::images::{Format, ago, human_size, print_table};
use crate::Globals;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The image, by name or id.
    #[arg(value_name = "IMAGE")]
    pub image: String,
    /// Do not truncate `CREATED BY` (nor the image id).
    #[arg(long)]
    pub no_trunc: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

pub(crate) fn run(globals: &Globals, args: &Args) -> anyhow::Result<ExitCode> {
    let store = Store::open(&globals.root)?;
    let image = store.resolve(&args.image)?;
    // Pair each non-empty history entry with its layer, bottom up.
    let mut layers = image.manifest.layers.iter().peekable();
    let mut rows = Vec::new();
    for h in &image.config.history {
        let size = match layers.next_if(|_| !h.empty_layer) {
            Some(l) => store.layer_size(&l.digest)?,
            None => 0,
        };
        rows.push((h, size));
    }
    rows.reverse();
    if args.format == Format::Json {
        let json: Vec<_> = rows
            .iter()
            .enumerate()
            .map(|(i, (h, size))| {
                serde_json::json!({
                    "Id": if i == 0 { image.id().to_string() } else { "<missing>".to_owned() },
                    "Created": h.created,
                    "CreatedBy": h.created_by.clone().unwrap_or_default(),
                    "Size": size,
                    "Comment": h.comment.clone().unwrap_or_default(),
                    "EmptyLayer": h.empty_layer,
                })
            })
            .collect();
        outln!("{}", serde_json::to_string_pretty(&json)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = vec![[
        "IMAGE".to_owned(),
        "CREATED".into(),
        "CREATED BY".into(),
        "SIZE".into(),
        "COMMENT".into(),
    ]];
    for (i, (h, size)) in rows.iter().enumerate() {
        let id = match (i, args.no_trunc) {
            (0, true) => image.id().to_string(),
            (0, false) => image.id().short().to_owned(),
            _ => "<missing>".to_owned(),
        };
        let created = h
            .created
            .as_deref()
            .and_then(kiln_oci::import::parse_rfc3339)
            .map_or_else(|| "N/A".into(), ago);
        let by = h.created_by.clone().unwrap_or_default();
        let by = if args.no_trunc || by.chars().count() <= 45 {
            by
        } else {
            format!("{}…", by.chars().take(44).collect::<String>())
        };
        table.push([
            id,
            created,
            by,
            human_size(*size),
            h.comment.clone().unwrap_or_default(),
        ]);
    }
    print_table(&table)?;
    Ok(ExitCode::SUCCESS)
}
