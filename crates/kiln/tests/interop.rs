//! Interoperability with the real tools: skopeo and umoci read the store; Docker's `docker
//! save` output loads and saves back with the same layers; what kiln saves, Docker loads and
//! runs. Runs as root in CI (`CI=true`: a missing tool fails the test).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use kiln_test_support::{DOCKER, Dockerd, have, missing, run};

fn kiln(root: &Path, args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .arg("--root")
        .arg(root)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "kiln {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A root filesystem tarball with the static busybox and `/bin/sh`.
fn busybox_rootfs(dir: &Path) -> PathBuf {
    let root = dir.join("rootfs");
    fs::create_dir_all(root.join("bin")).unwrap();
    fs::copy("/bin/busybox", root.join("bin/busybox")).unwrap();
    std::os::unix::fs::symlink("busybox", root.join("bin/sh")).unwrap();
    let tar = dir.join("rootfs.tar");
    run(Command::new("tar")
        .arg("-cf")
        .arg(&tar)
        .arg("-C")
        .arg(&root)
        .arg("."));
    tar
}

#[test]
fn skopeo_and_umoci_read_the_store() {
    for tool in ["skopeo", "umoci", "/bin/busybox"] {
        if !have(tool) {
            missing(&format!(
                "`{tool}` is not installed (Debian: skopeo, umoci, busybox-static)"
            ));
            return;
        }
    }
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("store");
    let rootfs = busybox_rootfs(tmp.path());
    kiln(
        &root,
        &["import", rootfs.to_str().unwrap(), "local/busybox"],
    );
    let r = root.to_str().unwrap();
    let out = run(Command::new("skopeo")
        .arg("inspect")
        .arg(format!("oci:{r}:docker.io/local/busybox:latest")));
    assert!(out.contains("\"Layers\""), "{out}");
    let out = run(Command::new("umoci").args(["ls", "--layout", r]));
    assert!(out.contains("docker.io/local/busybox:latest"), "{out}");
    let bundle = tmp.path().join("bundle");
    run(Command::new("umoci")
        .args([
            "unpack",
            "--image",
            &format!("{r}:docker.io/local/busybox:latest"),
        ])
        .arg(&bundle));
    assert!(bundle.join("rootfs/bin/busybox").is_file());
}

/// `(config digest, [layer digests])` of a docker-archive, from its `manifest.json`.
fn archive_digests(tar: &Path, scratch: &Path) -> (String, Vec<String>) {
    fs::create_dir_all(scratch).unwrap();
    run(Command::new("tar")
        .arg("-xf")
        .arg(tar)
        .arg("-C")
        .arg(scratch));
    let manifest: serde_json::Value =
        serde_json::from_slice(&fs::read(scratch.join("manifest.json")).unwrap()).unwrap();
    let sha = |rel: &str| {
        run(Command::new("sha256sum").arg(scratch.join(rel)))
            .split_whitespace()
            .next()
            .unwrap()
            .to_owned()
    };
    let config = sha(manifest[0]["Config"].as_str().unwrap());
    let layers = manifest[0]["Layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| sha(l.as_str().unwrap()))
        .collect();
    (config, layers)
}

#[test]
fn docker_round_trips_through_kiln() {
    if !rustix::process::geteuid().is_root() {
        missing("root is needed to run a private dockerd");
        return;
    }
    for tool in ["dockerd", DOCKER, "/bin/busybox"] {
        if !have(tool) {
            missing(&format!(
                "`{tool}` is not installed (Debian: docker.io, busybox-static)"
            ));
            return;
        }
    }
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("store");
    let rootfs = busybox_rootfs(tmp.path());
    let dockerd = Dockerd::start(&tmp.path().join("docker"));

    // Docker -> kiln -> Docker format: same config (image id) and same layer digests.
    run(dockerd
        .docker()
        .args(["import", "--change", "CMD [\"sh\"]"])
        .arg(&rootfs)
        .arg("local/dbb:1"));
    let saved = tmp.path().join("docker-saved.tar");
    run(dockerd
        .docker()
        .args(["save", "-o"])
        .arg(&saved)
        .arg("local/dbb:1"));
    kiln(&root, &["load", "-i", saved.to_str().unwrap()]);
    let back = tmp.path().join("kiln-saved.tar");
    kiln(
        &root,
        &["save", "-o", back.to_str().unwrap(), "local/dbb:1"],
    );
    assert_eq!(
        archive_digests(&saved, &tmp.path().join("x1")),
        archive_digests(&back, &tmp.path().join("x2"))
    );

    // kiln -> Docker, in both formats, and it runs.
    kiln(
        &root,
        &[
            "import",
            "--cmd",
            "[\"sh\"]",
            rootfs.to_str().unwrap(),
            "local/kbb:docker",
        ],
    );
    kiln(&root, &["tag", "local/kbb:docker", "local/kbb:oci"]);
    for (tag, format) in [("docker", "docker"), ("oci", "oci")] {
        let file = tmp.path().join(format!("kiln-{format}.tar"));
        kiln(
            &root,
            &[
                "save",
                "--format",
                format,
                "-o",
                file.to_str().unwrap(),
                &format!("local/kbb:{tag}"),
            ],
        );
        run(dockerd.docker().args(["load", "-i"]).arg(&file));
        let out = run(dockerd.docker().args([
            "run",
            "--rm",
            "--network",
            "none",
            &format!("local/kbb:{tag}"),
            "/bin/busybox",
            "echo",
            "hello from kiln",
        ]));
        assert_eq!(out.trim(), "hello from kiln", "format {format}");
    }
}
