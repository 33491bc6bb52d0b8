//! `kiln diff IMAGE1 IMAGE2`: the paths whose final state differs between two images:
//! added, removed, and changed in content (SHA-256 of the bytes), type, mode, owner, link
//! target or mtime, with sizes; as text or JSON. Two builds of one Dockerfile that should
//! be identical show here what made them differ. The status is 0 when nothing differs, 1
//! when something does, 2 on an error, as `diff` has it.

use std::fmt::Write as _;
use std::process::ExitCode;

use kiln_inspect::{Aspects, ChangeKind, DiffEntry, ImageDiff, Kind, Meta};
use kiln_oci::Store;
use serde_json::json;

use crate::Globals;
use crate::cmd::images::human_size;
use crate::cmd::outline::Format;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The first (old) image, by name or id.
    #[arg(value_name = "IMAGE1")]
    pub old: String,
    /// The second (new) image.
    #[arg(value_name = "IMAGE2")]
    pub new: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

pub(crate) fn run(globals: &Globals, args: &Args) -> anyhow::Result<ExitCode> {
    match compare(globals, args) {
        Ok(code) => Ok(code),
        Err(e) if e.downcast_ref::<crate::StdoutError>().is_some() => Err(e),
        Err(e) => {
            crate::diagnostics::print_error(&e);
            Ok(ExitCode::from(2))
        }
    }
}

fn compare(globals: &Globals, args: &Args) -> anyhow::Result<ExitCode> {
    let store = Store::open(&globals.root)?;
    let old = crate::cmd::analyze::resolve(&store, &args.old)?;
    let new = crate::cmd::analyze::resolve(&store, &args.new)?;
    let diff = kiln_inspect::diff_images(&store, &old, &new)?;
    match args.format {
        Format::Text => out!("{}", text(&diff))?,
        Format::Json => outln!("{}", serde_json::to_string_pretty(&to_json(&diff, args))?)?,
    }
    Ok(if diff.entries.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn size(m: &Meta) -> u64 {
    m.content_size()
}

fn describe(m: &Meta) -> String {
    match m.kind {
        Kind::File => format!("file, {}", human_size(m.size)),
        Kind::Symlink | Kind::Hardlink => format!(
            "{} to `{}`",
            m.kind.name(),
            String::from_utf8_lossy(m.link.as_deref().unwrap_or_default())
        ),
        k => k.name().to_owned(),
    }
}

/// `aspect (old -> new)` for each aspect of a change.
fn details(entry: &DiffEntry) -> Vec<(&'static str, String, String)> {
    let (Some(o), Some(n)) = (&entry.old, &entry.new) else {
        return Vec::new();
    };
    let link =
        |m: &Meta| String::from_utf8_lossy(m.link.as_deref().unwrap_or_default()).into_owned();
    let digest = |m: &Meta| {
        m.digest.map_or_else(String::new, |d| {
            kiln_layer::Digest::from_sha256(&d).short().to_owned()
        })
    };
    let time = |m: &Meta| kiln_oci::import::rfc3339(i64::try_from(m.mtime).unwrap_or(i64::MAX));
    let mut out = Vec::new();
    for name in entry.aspects.names() {
        let (before, after) = match name {
            "type" => (o.kind.name().to_owned(), n.kind.name().to_owned()),
            "content" => (
                format!("{} {}", human_size(o.size), digest(o)),
                format!("{} {}", human_size(n.size), digest(n)),
            ),
            "mode" => (format!("{:04o}", o.mode), format!("{:04o}", n.mode)),
            "owner" => (
                format!("{}:{}", o.uid, o.gid),
                format!("{}:{}", n.uid, n.gid),
            ),
            "link" => (link(o), link(n)),
            _ => (time(o), time(n)),
        };
        out.push((name, before, after));
    }
    out
}

fn text(diff: &ImageDiff) -> String {
    let mut s = String::new();
    let (mut added, mut removed, mut changed) = ((0u64, 0u64), (0u64, 0u64), 0u64);
    let mut mtime_only = 0u64;
    for e in &diff.entries {
        let path = diff.tree.path(e.node);
        match e.change {
            ChangeKind::Added => {
                let n = e
                    .new
                    .as_ref()
                    .map(|m| (describe(m), size(m)))
                    .unwrap_or_default();
                added.0 += 1;
                added.1 += n.1;
                let _ = writeln!(s, "A  {path}  ({})", n.0);
            }
            ChangeKind::Removed => {
                let o = e
                    .old
                    .as_ref()
                    .map(|m| (describe(m), size(m)))
                    .unwrap_or_default();
                removed.0 += 1;
                removed.1 += o.1;
                let _ = writeln!(s, "D  {path}  ({})", o.0);
            }
            ChangeKind::Changed => {
                changed += 1;
                if e.aspects == Aspects::MTIME {
                    mtime_only += 1;
                }
                let d: Vec<String> = details(e)
                    .into_iter()
                    .map(|(k, a, b)| format!("{k} {a} -> {b}"))
                    .collect();
                let _ = writeln!(s, "M  {path}  ({})", d.join("; "));
            }
        }
    }
    if diff.entries.is_empty() {
        let _ = writeln!(s, "no differences");
    } else {
        let _ = writeln!(
            s,
            "{} added ({}), {} removed ({}), {} changed ({} in mtime only)",
            added.0,
            human_size(added.1),
            removed.0,
            human_size(removed.1),
            changed,
            mtime_only
        );
    }
    s
}

fn meta_json(m: Option<&Meta>) -> serde_json::Value {
    m.map_or(serde_json::Value::Null, |m| {
        json!({
            "kind": m.kind.name(),
            "size": size(m),
            "mode": format!("{:04o}", m.mode),
            "uid": m.uid,
            "gid": m.gid,
            "mtime": m.mtime,
            "link": m.link.as_deref().map(|l| String::from_utf8_lossy(l).into_owned()),
            "digest": m.digest.map(|d| kiln_layer::Digest::from_sha256(&d).to_string()),
        })
    })
}

fn to_json(diff: &ImageDiff, args: &Args) -> serde_json::Value {
    let entries: Vec<_> = diff
        .entries
        .iter()
        .map(|e| {
            json!({
                "path": diff.tree.path(e.node),
                "change": e.change.name(),
                "aspects": e.aspects.names(),
                "old": meta_json(e.old.as_ref()),
                "new": meta_json(e.new.as_ref()),
            })
        })
        .collect();
    let count = |k: ChangeKind| diff.entries.iter().filter(|e| e.change == k).count();
    json!({
        "old": args.old,
        "new": args.new,
        "identical": diff.entries.is_empty(),
        "added": count(ChangeKind::Added),
        "removed": count(ChangeKind::Removed),
        "changed": count(ChangeKind::Changed),
        "entries": entries,
    })
}
