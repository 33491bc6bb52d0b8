//! Helpers for kiln-fileop's integration tests: trees on disk, running an op, reading the
//! layer back.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::os::unix::fs::symlink;
use std::path::Path;

use kiln_fileop::{
    CopyOp, DirView, EmptyView, Fetcher, FileOpError, Inputs, LayerOptions, LayerOutput, LowerView,
    SourceRoot, plan,
};
use kiln_layer::Compression;

/// What one layer entry looks like when read back from the tar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Got {
    pub kind: char,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: u64,
    pub data: String,
    pub link: String,
}

pub(crate) fn write(root: &Path, rel: &str, data: &str, mode: u32) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(&p, data).unwrap();
    set_mode(&p, mode);
}

pub(crate) fn dir(root: &Path, rel: &str, mode: u32) {
    let p = root.join(rel);
    fs::create_dir_all(&p).unwrap();
    set_mode(&p, mode);
}

pub(crate) fn link(root: &Path, rel: &str, target: &str) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    symlink(target, p).unwrap();
}

pub(crate) fn set_mode(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
}

pub(crate) fn set_mtime(p: &Path, secs: i64) {
    let t = rustix::fs::Timestamps {
        last_access: rustix::fs::Timespec {
            tv_sec: secs,
            tv_nsec: 0,
        },
        last_modification: rustix::fs::Timespec {
            tv_sec: secs,
            tv_nsec: 0,
        },
    };
    rustix::fs::utimensat(
        rustix::fs::CWD,
        p,
        &t,
        rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
    )
    .unwrap();
}

pub(crate) fn chown(p: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::lchown(p, Some(uid), Some(gid)).unwrap();
}

/// The layer read back, and the writer's output.
pub(crate) type Ran = (BTreeMap<String, Got>, LayerOutput<Vec<u8>>);

/// Runs `op` with `source` as the source root and `target` (a directory) as the parent.
pub(crate) fn run_with(
    op: &CopyOp,
    source: Option<&SourceRoot>,
    target: Option<&Path>,
    fetcher: Option<&dyn Fetcher>,
) -> Result<Ran, FileOpError> {
    let view: Box<dyn LowerView> = match target {
        Some(t) => Box::new(DirView::new(t)),
        None => Box::new(EmptyView),
    };
    let inputs = Inputs {
        source,
        target: view.as_ref(),
        fetcher,
        scratch_dir: None,
    };
    let planned = plan(op, inputs)?;
    let out = planned.write_layer(
        Vec::new(),
        &LayerOptions {
            compression: Compression::None,
            source_date_epoch: None,
        },
    )?;
    Ok((read_layer(&out.out), out))
}

/// Copies from a context at `ctx` (no ignore rules) onto `target`.
pub(crate) fn run(
    op: &CopyOp,
    ctx: &Path,
    target: Option<&Path>,
) -> Result<BTreeMap<String, Got>, FileOpError> {
    let root = SourceRoot::context(ctx, &kiln_context::IgnoreRules::empty()).unwrap();
    run_with(op, Some(&root), target, None).map(|(m, _)| m)
}

pub(crate) fn read_layer(tar_bytes: &[u8]) -> BTreeMap<String, Got> {
    let mut out = BTreeMap::new();
    let mut archive = tar::Archive::new(tar_bytes);
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let h = entry.header().clone();
        let path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let kind = match h.entry_type() {
            tar::EntryType::Regular => 'f',
            tar::EntryType::Directory => 'd',
            tar::EntryType::Symlink => 'l',
            tar::EntryType::Link => 'h',
            tar::EntryType::Fifo => 'p',
            tar::EntryType::Char => 'c',
            other => panic!("unexpected {other:?}"),
        };
        let link = entry
            .link_name_bytes()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).unwrap();
        let data = String::from_utf8_lossy(&bytes).into_owned();
        out.insert(
            path.trim_end_matches('/').to_owned(),
            Got {
                kind,
                mode: h.mode().unwrap(),
                uid: h.uid().unwrap(),
                gid: h.gid().unwrap(),
                mtime: h.mtime().unwrap(),
                data,
                link,
            },
        );
    }
    out
}

pub(crate) fn copy(sources: &[&str], dest: &str) -> CopyOp {
    CopyOp {
        sources: sources
            .iter()
            .map(|s| kiln_fileop::Source::Path((*s).to_owned()))
            .collect(),
        dest: dest.to_owned(),
        ..CopyOp::default()
    }
}

pub(crate) fn paths(m: &BTreeMap<String, Got>) -> Vec<&str> {
    m.keys().map(String::as_str).collect()
}
