//! `kiln prune [--all] [--keep-storage SIZE] [--filter until=DURATION] [--filter id=ID]` and
//! `kiln du`: the build cache's records, layers and snapshots, and the RUN cache mounts (as
//! `docker builder prune` counts them), and registry downloads cut short; what images use
//! always stays, and so does a cache mount a running step holds or a download a pull is
//! writing.

use std::process::ExitCode;

use anyhow::Context as _;
use kiln_cache::Cache;
use kiln_oci::Store;

use crate::Globals;
use crate::cmd::images::human_size;

#[derive(Debug, clap::Args)]
pub(crate) struct PruneArgs {
    /// Remove every cache record (and the context stat cache).
    #[arg(short, long)]
    pub all: bool,
    /// Keep at most this much cache (`10GB`, `500MB`, `1.5g`), least recently used first out.
    #[arg(long, value_name = "SIZE")]
    pub keep_storage: Option<String>,
    /// `until=DURATION`: remove records and cache mounts unused for longer than that (`24h`,
    /// `90m`); `id=ID`: remove the RUN cache mounts with that id (only them).
    #[arg(long, value_name = "FILTER")]
    pub filter: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub(crate) struct DuArgs {
    /// Show every record.
    #[arg(short, long)]
    pub verbose: bool,
}

pub(crate) fn prune(globals: &Globals, args: &PruneArgs) -> anyhow::Result<ExitCode> {
    let keep = args.keep_storage.as_deref().map(parse_size).transpose()?;
    let mut older_than = None;
    let mut ids = Vec::new();
    for f in &args.filter {
        if let Some(id) = f.strip_prefix("id=") {
            ids.push(id.to_owned());
            continue;
        }
        let Some(d) = f.strip_prefix("until=") else {
            anyhow::bail!(
                "invalid `--filter {f}`\nhint: kiln knows `--filter until=DURATION` (e.g. `until=24h`) and `--filter id=ID` (a RUN cache mount's id)"
            );
        };
        let (_, dur) = kiln_frontend::instruction::parse_go_duration(d)
            .filter(|(negative, _)| !negative)
            .ok_or_else(|| anyhow::anyhow!("invalid duration `{d}` in `--filter`\nhint: write e.g. `until=24h` or `until=90m`"))?;
        older_than = Some(dur);
    }
    if !args.all && keep.is_none() && older_than.is_none() && ids.is_empty() {
        anyhow::bail!(
            "say what to remove\nhint: `kiln prune --all`, `--keep-storage SIZE`, `--filter until=DURATION` or `--filter id=ID`"
        );
    }
    let store = Store::open(&globals.root)?;
    let cache = Cache::open(&store)?;
    // `--filter id=` names cache mounts only: records stay unless another flag says so.
    let records_too = args.all || keep.is_some() || older_than.is_some();
    if records_too {
        let report = cache.prune(keep, older_than, args.all, &|_| false)?;
        outln!(
            "removed {} cache records, {} layers, {} snapshots; freed {}",
            report.removed.len(),
            report.deleted_blobs.len(),
            report.deleted_snapshots.len(),
            human_size(report.freed)
        )?;
    }
    // Cache mounts, least recently used first: what the flags select, then with
    // `--keep-storage` more until what stays (records included) fits.
    let mounts = kiln_build::cache_mounts(store.layout())?;
    let now = std::time::SystemTime::now();
    let mut left = if keep.is_some() {
        cache.du()?.reclaimable() + mounts.iter().map(|m| m.size).sum::<u64>()
    } else {
        0
    };
    let (mut removed, mut freed, mut busy) = (0, 0, 0);
    for m in &mounts {
        let old = older_than.is_some_and(|d| now.duration_since(m.last_used).is_ok_and(|a| a > d));
        let over = keep.is_some_and(|k| left > k);
        if args.all || old || over || ids.contains(&m.id) {
            if kiln_build::remove_cache_mount(store.layout(), &m.key)? {
                removed += 1;
                freed += m.size;
                left = left.saturating_sub(m.size);
            } else {
                busy += 1;
            }
        }
    }
    if args.all || older_than.is_some() {
        // Registry downloads cut short, which a later pull would have resumed.
        let gone = store.remove_downloads(if args.all { None } else { older_than })?;
        if !gone.is_empty() {
            outln!(
                "removed {} partial downloads; freed {}",
                gone.len(),
                human_size(gone.iter().map(|r| r.bytes).sum())
            )?;
        }
    }
    if args.all {
        // Failed steps kept by `kiln build --keep-failed`.
        let dir = store.layout().failed_steps();
        if let Ok(entries) = std::fs::read_dir(&dir) {
            let mut kept = 0;
            for e in entries.flatten() {
                std::fs::remove_dir_all(e.path())
                    .with_context(|| format!("cannot remove `{}`", e.path().display()))?;
                kept += 1;
            }
            if kept > 0 {
                outln!("removed {kept} kept failed steps")?;
            }
        }
    }
    outln!(
        "removed {removed} cache mounts; freed {}{}",
        human_size(freed),
        if busy > 0 {
            format!(" ({busy} in use by a running step kept)")
        } else {
            String::new()
        }
    )?;
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn du(globals: &Globals, args: &DuArgs) -> anyhow::Result<ExitCode> {
    let store = Store::open(&globals.root)?;
    let cache = Cache::open(&store)?;
    let report = cache.du()?;
    if args.verbose {
        outln!(
            "{:<20} {:>10} {:>10} {:>9}",
            "KEY",
            "LAYER",
            "SNAPSHOT",
            "IN IMAGE"
        )?;
        for r in &report.records {
            let key = r.key.to_string();
            outln!(
                "{:<20} {:>10} {:>10} {:>9}",
                &key[7..19],
                r.layer
                    .as_ref()
                    .map_or_else(|| "-".into(), |l| human_size(l.descriptor.size)),
                r.snapshot_size.map_or_else(|| "-".into(), human_size),
                if r.in_image { "yes" } else { "no" }
            )?;
        }
    }
    outln!("records:      {}", report.records.len())?;
    outln!("layers:       {}", human_size(report.blob_bytes))?;
    outln!("snapshots:    {}", human_size(report.snapshot_bytes))?;
    outln!(
        "shared:       {} (held by images too)",
        human_size(report.shared_bytes)
    )?;
    outln!("reclaimable:  {}", human_size(report.reclaimable()))?;
    let mounts = kiln_build::cache_mounts(store.layout())?;
    if args.verbose && !mounts.is_empty() {
        outln!("{:<14} {:>10}  ID", "CACHE MOUNT", "SIZE")?;
        for m in &mounts {
            let short = m.key.get(..12).unwrap_or(&m.key);
            outln!("{short:<14} {:>10}  {}", human_size(m.size), m.id)?;
        }
    }
    outln!(
        "cache mounts: {} ({})",
        mounts.len(),
        human_size(mounts.iter().map(|m| m.size).sum())
    )?;
    Ok(ExitCode::SUCCESS)
}

/// Docker's sizes: a number with an optional `b`, `k`, `m`, `g`, `t` unit (binary multiples),
/// `kb`/`mb`/`gb`/`tb` accepted.
pub(crate) fn parse_size(s: &str) -> anyhow::Result<u64> {
    let lower = s.trim().to_ascii_lowercase();
    let split = lower
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(lower.len());
    let (num, unit) = lower.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| anyhow::anyhow!("invalid size `{s}`\nhint: write e.g. `10GB` or `500MB`"))?;
    let mult: u64 = match unit.trim().trim_end_matches('b').trim_end_matches('i') {
        "" => 1,
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        "t" => 1 << 40,
        _ => anyhow::bail!("invalid size unit in `{s}`\nhint: write e.g. `10GB` or `500MB`"),
    };
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    Ok((n * mult as f64) as u64)
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes() {
        assert_eq!(super::parse_size("10GB").unwrap(), 10 << 30);
        assert_eq!(super::parse_size("500m").unwrap(), 500 << 20);
        assert_eq!(super::parse_size("1024").unwrap(), 1024);
        assert!(super::parse_size("ten").is_err());
    }
}
