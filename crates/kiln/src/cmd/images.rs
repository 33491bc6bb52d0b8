//! `kiln images [--format json]`: the images of the store, like `docker images`.
//!
//! SIZE is Docker's: the unpacked content of the image's layers ([`Store::layer_size`]), the
//! same for an image however it came into the store and however its layers are compressed.

use std::process::ExitCode;

use kiln_oci::{Image, Store};

use crate::Globals;

/// Table or JSON.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Format {
    /// Columns for people.
    Table,
    /// A JSON array.
    Json,
}

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Print only image ids.
    #[arg(short, long)]
    pub quiet: bool,
}

pub(crate) fn run(globals: &Globals, args: &Args) -> anyhow::Result<ExitCode> {
    let store = Store::open(&globals.root)?;
    let mut rows = Vec::new();
    for entry in store.images()? {
        let image = Image::read(&store, &entry.descriptor, entry.tags.clone())?;
        let created = image
            .config
            .created
            .as_deref()
            .and_then(kiln_oci::import::parse_rfc3339);
        let names: Vec<(String, String)> = if image.tags.is_empty() {
            vec![("<none>".into(), "<none>".into())]
        } else {
            image
                .tags
                .iter()
                .map(|t| {
                    (
                        t.familiar_repository(),
                        t.tag.clone().unwrap_or_else(|| "<none>".into()),
                    )
                })
                .collect()
        };
        let size = image.content_size(&store)?;
        for (repo, tag) in names {
            rows.push((repo, tag, image.clone(), created, size));
        }
    }
    if args.quiet {
        for (_, _, image, _, _) in &rows {
            outln!("{}", image.id().short())?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    if args.format == Format::Json {
        let json: Vec<_> = rows
            .iter()
            .map(|(repo, tag, image, _, size)| {
                serde_json::json!({
                    "Repository": repo,
                    "Tag": tag,
                    "Id": image.id().to_string(),
                    "Digest": image.digest().to_string(),
                    "Created": image.config.created,
                    "Size": size,
                })
            })
            .collect();
        outln!("{}", serde_json::to_string_pretty(&json)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = vec![[
        "REPOSITORY".to_owned(),
        "TAG".into(),
        "IMAGE ID".into(),
        "CREATED".into(),
        "SIZE".into(),
    ]];
    for (repo, tag, image, created, size) in rows {
        table.push([
            repo,
            tag,
            image.id().short().to_owned(),
            created.map_or_else(|| "N/A".into(), ago),
            human_size(size),
        ]);
    }
    print_table(&table)?;
    Ok(ExitCode::SUCCESS)
}

/// Prints rows with columns padded to their widest cell, three spaces apart (as Docker).
pub(crate) fn print_table<const N: usize>(rows: &[[String; N]]) -> Result<(), crate::StdoutError> {
    let mut widths = [0usize; N];
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            line.push_str(cell);
            if i + 1 < N {
                line.push_str(&" ".repeat(widths[i] - cell.chars().count() + 3));
            }
        }
        outln!("{}", line.trim_end())?;
    }
    Ok(())
}

/// A size as Docker prints it: decimal units, three significant digits (`4.26MB`, `0B`).
pub(crate) fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "kB", "MB", "GB", "TB", "PB"];
    #[allow(clippy::cast_precision_loss)]
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1000.0 && unit + 1 < UNITS.len() {
        v /= 1000.0;
        unit += 1;
    }
    let digits = if v >= 100.0 {
        0
    } else if v >= 10.0 {
        1
    } else {
        2
    };
    let s = format!("{v:.digits$}");
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        s
    };
    format!("{s}{}", UNITS[unit])
}

/// How long ago `secs` was, as Docker prints it (`3 days ago`).
pub(crate) fn ago(secs: i64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0));
    let d = (now - secs).max(0);
    let text = match d {
        0 => "Less than a second".to_owned(),
        1 => "1 second".to_owned(),
        2..60 => format!("{d} seconds"),
        60..120 => "About a minute".to_owned(),
        120..3600 => format!("{} minutes", d / 60),
        3600..7200 => "About an hour".to_owned(),
        7200..172_800 => format!("{} hours", d / 3600),
        172_800..1_209_600 => format!("{} days", d / 86_400),
        1_209_600..5_184_000 => format!("{} weeks", d / 604_800),
        5_184_000..63_072_000 => format!("{} months", d / 2_592_000),
        _ => format!("{} years", d / 31_536_000),
    };
    format!("{text} ago")
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes_like_docker() {
        assert_eq!(super::human_size(0), "0B");
        assert_eq!(super::human_size(4_261_234), "4.26MB");
        assert_eq!(super::human_size(123_456), "123kB");
        assert_eq!(super::human_size(1_500_000), "1.5MB");
    }
}
