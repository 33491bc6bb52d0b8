//! `kiln fsck [--repair]`: re-hash every blob, check every reference, find leftovers.

use std::process::ExitCode;

use kiln_oci::Store;

use crate::Globals;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Remove leftovers of interrupted writes, corrupt blobs and the entries of broken images,
    /// and registry downloads cut short more than a day ago (younger ones stay, for a resume).
    #[arg(long)]
    pub repair: bool,
}

pub(crate) fn run(globals: &Globals, args: &Args) -> anyhow::Result<ExitCode> {
    let store = Store::open(&globals.root)?;
    let report = store.fsck(args.repair)?;
    for p in &report.problems {
        outln!("problem: {p}")?;
    }
    for r in &report.resumable {
        outln!("resumable: {r}")?;
    }
    for r in &report.removed {
        outln!("removed: {r}")?;
    }
    outln!(
        "checked {} blobs and {} index entries: {} problems{}",
        report.blobs_checked,
        report.images_checked,
        report.problems.len(),
        if args.repair { ", repaired" } else { "" }
    )?;
    if report.problems.is_empty() || args.repair {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("hint: `kiln fsck --repair` removes what is broken");
        Ok(ExitCode::from(1))
    }
}
