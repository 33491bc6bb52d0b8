//! The conformance cases under `tests/conformance/` and how their results are compared:
//! shared by the BuildKit comparison (`conformance.rs`) and the rootless one (`rootless.rs`).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

/// One filesystem entry as compared.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct FsEntry {
    pub(crate) kind: &'static str,
    pub(crate) mode: u32,
    pub(crate) uid: u64,
    pub(crate) gid: u64,
    pub(crate) size: u64,
    pub sha256: String,
    pub(crate) link: String,
}

/// Read a tar export into `path -> entry`. Hard links take their target's content, so that
/// which member of a link group came first does not matter; the group shows as `link`.
pub(crate) fn read_tar(path: &Path) -> BTreeMap<String, FsEntry> {
    let mut archive = tar::Archive::new(fs::File::open(path).unwrap());
    let mut out: BTreeMap<String, FsEntry> = BTreeMap::new();
    let mut hardlinks: Vec<(String, String)> = Vec::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = normalize(&entry.path().unwrap().to_string_lossy());
        if name.is_empty() {
            continue;
        }
        let header = entry.header().clone();
        let kind = match header.entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous => "file",
            tar::EntryType::Directory => "dir",
            tar::EntryType::Symlink => "symlink",
            tar::EntryType::Link => "hardlink",
            tar::EntryType::Char => "char",
            tar::EntryType::Block => "block",
            tar::EntryType::Fifo => "fifo",
            _ => continue,
        };
        let link = entry
            .link_name()
            .unwrap()
            .map(|l| l.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        if kind == "hardlink" {
            hardlinks.push((name.clone(), normalize(&link)));
        }
        out.insert(
            name,
            FsEntry {
                kind,
                mode: header.mode().unwrap() & 0o7777,
                uid: header.uid().unwrap(),
                gid: header.gid().unwrap(),
                size: data.len() as u64,
                sha256: if kind == "file" {
                    hex(&Sha256::digest(&data))
                } else {
                    String::new()
                },
                link: if kind == "symlink" {
                    link
                } else {
                    String::new()
                },
            },
        );
    }
    for (name, target) in hardlinks {
        let mut e = out
            .get(&target)
            .cloned()
            .unwrap_or_else(|| panic!("hard link {name} to missing {target}"));
        e.kind = "file";
        e.link = format!("hardlink group of {}", name.clone().min(target.clone()));
        out.insert(name, e.clone());
        out.get_mut(&target).unwrap().link = e.link;
    }
    out
}

fn normalize(p: &str) -> String {
    p.trim_start_matches("./")
        .trim_start_matches('/')
        .trim_end_matches('/')
        .to_owned()
}

fn hex(b: &[u8]) -> String {
    use std::fmt::Write as _;
    b.iter().fold(String::new(), |mut s, x| {
        let _ = write!(s, "{x:02x}");
        s
    })
}

pub(crate) const CONFIG_FIELDS: [&str; 11] = [
    "Env",
    "Cmd",
    "Entrypoint",
    "WorkingDir",
    "User",
    "ExposedPorts",
    "Labels",
    "Volumes",
    "StopSignal",
    "Healthcheck",
    "Shell",
];

/// The compared config fields; null, missing, `""`, `[]` and `{}` all count as unset.
pub(crate) fn config_subset(
    config: &serde_json::Value,
) -> BTreeMap<&'static str, serde_json::Value> {
    CONFIG_FIELDS
        .iter()
        .map(|f| {
            let v = config.get(*f).cloned().unwrap_or(serde_json::Value::Null);
            let empty = match &v {
                serde_json::Value::Null => true,
                serde_json::Value::String(s) => s.is_empty(),
                serde_json::Value::Array(a) => a.is_empty(),
                serde_json::Value::Object(o) => o.is_empty(),
                _ => false,
            };
            (*f, if empty { serde_json::Value::Null } else { v })
        })
        .collect()
}

pub(crate) struct Case {
    pub(crate) name: String,
    pub(crate) dir: PathBuf,
    pub(crate) args: Vec<String>,
    pub(crate) target: Option<String>,
    /// Entries whose mode kiln deliberately takes from today's BuildKit: path and mode.
    pub(crate) deviations: Vec<(String, u32)>,
}

pub(crate) fn cases() -> Vec<Case> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/conformance");
    let mut cases: Vec<Case> = fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("Dockerfile").is_file())
        .map(|dir| Case {
            name: dir.file_name().unwrap().to_string_lossy().into_owned(),
            args: fs::read_to_string(dir.join("args"))
                .map(|s| s.lines().map(str::to_owned).collect())
                .unwrap_or_default(),
            target: fs::read_to_string(dir.join("target"))
                .ok()
                .map(|s| s.trim().to_owned()),
            deviations: fs::read_to_string(dir.join("deviations"))
                .unwrap_or_default()
                .lines()
                .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
                .map(|l| {
                    let mut w = l.split_whitespace();
                    let path = w.next().unwrap().to_owned();
                    let mode = u32::from_str_radix(w.next().unwrap(), 8).unwrap();
                    (path, mode)
                })
                .collect(),
            dir,
        })
        .collect();
    cases.sort_by(|a, b| a.name.cmp(&b.name));
    cases
}

pub(crate) fn flags(case: &Case) -> Vec<String> {
    let mut f = Vec::new();
    for a in &case.args {
        f.push("--build-arg".into());
        f.push(a.clone());
    }
    if let Some(t) = &case.target {
        f.push("--target".into());
        f.push(t.clone());
    }
    f
}

/// The differences of two listings, each named for the messages.
pub(crate) fn diff_fs(
    (an, a): (&str, &BTreeMap<String, FsEntry>),
    (bn, b): (&str, &BTreeMap<String, FsEntry>),
) -> Vec<String> {
    let mut out = Vec::new();
    for (p, e) in a {
        match b.get(p) {
            None => out.push(format!("  only in {an}: {p} {e:?}")),
            Some(k) if k != e => {
                out.push(format!("  differs: {p}\n    {an} {e:?}\n    {bn} {k:?}"));
            }
            _ => {}
        }
    }
    for (p, e) in b {
        if !a.contains_key(p) {
            out.push(format!("  only in {bn}: {p} {e:?}"));
        }
    }
    out
}
