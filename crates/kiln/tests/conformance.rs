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

mod cases;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use cases::{CONFIG_FIELDS, Case, FsEntry, cases, config_subset, diff_fs, flags, read_tar};
use kiln_test_support::{Dockerd, busybox_rootfs_tar, require, run};

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
        problems.extend(diff_fs(("BuildKit", &bk_fs), ("kiln", &k_fs)));
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
