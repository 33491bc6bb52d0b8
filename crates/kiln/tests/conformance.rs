//! Multi-stage conformance with BuildKit: every case under `tests/conformance/` is built by
//! Docker 20.10's BuildKit and by kiln; the final filesystems (path, type, mode, uid, gid,
//! size, content hash, link target) and the image configs (`Env`, `Cmd`, `Entrypoint`,
//! `WorkingDir`, `User`, `ExposedPorts`, `Labels`, `Volumes`, `StopSignal`, `Healthcheck`,
//! `Shell`) must be identical.
//!
//! A case is a build context with a `Dockerfile`, plus optional `args` (`K=V` lines for
//! `--build-arg`) and `target` files, and an optional `deviations` file: `PATH MODE WHY`
//! lines for the entries where kiln follows today's BuildKit instead of Docker 20.10's (their
//! mode must be `MODE` in kiln's result; everything else about them is still compared).
//! Runs as root in CI with a private dockerd.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use kiln_test_support::{Dockerd, busybox_rootfs_tar, require, run};
use sha2::{Digest as _, Sha256};

/// One filesystem entry as compared.
#[derive(Clone, Debug, PartialEq, Eq)]
struct FsEntry {
    kind: &'static str,
    mode: u32,
    uid: u64,
    gid: u64,
    size: u64,
    sha256: String,
    link: String,
}

/// Read a tar export into `path -> entry`. Hard links take their target's content, so that
/// which member of a link group came first does not matter; the group shows as `link`.
fn read_tar(path: &Path) -> BTreeMap<String, FsEntry> {
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

const CONFIG_FIELDS: [&str; 11] = [
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
fn config_subset(config: &serde_json::Value) -> BTreeMap<&'static str, serde_json::Value> {
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

struct Case {
    name: String,
    dir: PathBuf,
    args: Vec<String>,
    target: Option<String>,
    /// Entries whose mode kiln deliberately takes from today's BuildKit: path and mode.
    deviations: Vec<(String, u32)>,
}

fn cases() -> Vec<Case> {
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

fn flags(case: &Case) -> Vec<String> {
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

fn buildkit(
    d: &Dockerd,
    case: &Case,
    out: &Path,
) -> (BTreeMap<String, FsEntry>, serde_json::Value) {
    let tar = out.join(format!("{}-buildkit.tar", case.name));
    let tag = format!("kiln-conformance/{}", case.name);
    for output in [
        vec!["-o".to_owned(), format!("type=tar,dest={}", tar.display())],
        vec!["-t".to_owned(), tag.clone()],
    ] {
        run(d
            .docker()
            .env("DOCKER_BUILDKIT", "1")
            .args(["build", "--network=host", "-q"])
            .args(flags(case))
            .args(&output)
            .arg(&case.dir));
    }
    let inspect: serde_json::Value =
        serde_json::from_str(&run(d.docker().args(["image", "inspect", &tag]))).unwrap();
    (read_tar(&tar), inspect[0]["Config"].clone())
}

fn kiln(root: &Path, case: &Case, out: &Path) -> (BTreeMap<String, FsEntry>, serde_json::Value) {
    let tar = out.join(format!("{}-kiln.tar", case.name));
    let tag = format!("kiln-conformance/{}", case.name);
    run(Command::new(env!("CARGO_BIN_EXE_kiln"))
        .arg("--root")
        .arg(root)
        .args(["build", "--progress=plain", "-t", &tag])
        .args(["--output", &format!("type=image,name={tag}")])
        .args(["--output", &format!("type=tar,dest={}", tar.display())])
        .args(flags(case))
        .arg(&case.dir));
    let inspect: serde_json::Value =
        serde_json::from_str(&run(Command::new(env!("CARGO_BIN_EXE_kiln"))
            .arg("--root")
            .arg(root)
            .args(["inspect", &tag])))
        .unwrap();
    (read_tar(&tar), inspect[0]["Config"].clone())
}

fn diff_fs(a: &BTreeMap<String, FsEntry>, b: &BTreeMap<String, FsEntry>) -> Vec<String> {
    let mut out = Vec::new();
    for (p, e) in a {
        match b.get(p) {
            None => out.push(format!("  only in BuildKit: {p} {e:?}")),
            Some(k) if k != e => out.push(format!(
                "  differs: {p}\n    buildkit {e:?}\n    kiln     {k:?}"
            )),
            _ => {}
        }
    }
    for (p, e) in b {
        if !a.contains_key(p) {
            out.push(format!("  only in kiln: {p} {e:?}"));
        }
    }
    out
}

#[test]
fn multi_stage_builds_match_buildkit() {
    if require(
        true,
        &["dockerd", kiln_test_support::DOCKER, "/bin/busybox", "tar"],
    )
    .is_none()
    {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let rootfs = busybox_rootfs_tar(tmp.path());
    run(Command::new(env!("CARGO_BIN_EXE_kiln"))
        .arg("--root")
        .arg(&store)
        .args(["import", rootfs.to_str().unwrap(), "busybox:latest"]));
    let d = Dockerd::start(&tmp.path().join("dockerd"));
    run(d
        .docker()
        .args(["import", rootfs.to_str().unwrap(), "busybox:latest"]));

    let cases = cases();
    assert!(
        cases.len() >= 30,
        "at least 30 conformance cases, found {}",
        cases.len()
    );
    let mut failures = Vec::new();
    for case in &cases {
        let (bk_fs, bk_cfg) = buildkit(&d, case, tmp.path());
        let (mut k_fs, k_cfg) = kiln(&store, case, tmp.path());
        let mut problems = Vec::new();
        for (path, mode) in &case.deviations {
            match (k_fs.get_mut(path), bk_fs.get(path)) {
                (Some(k), Some(b)) if k.mode == *mode => k.mode = b.mode,
                (k, _) => problems.push(format!(
                    "  deviation {path}: kiln should have mode {mode:o}, has {:?}",
                    k.map(|k| k.mode)
                )),
            }
        }
        problems.extend(diff_fs(&bk_fs, &k_fs));
        let (bc, kc) = (config_subset(&bk_cfg), config_subset(&k_cfg));
        for f in CONFIG_FIELDS {
            if bc[f] != kc[f] {
                problems.push(format!("  config {f}: buildkit {} kiln {}", bc[f], kc[f]));
            }
        }
        if !problems.is_empty() {
            failures.push(format!("{}:\n{}", case.name, problems.join("\n")));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
