//! Docker on the other side of the registry (root; a private dockerd of the test, which
//! treats the loopback registry as insecure, plain HTTP, by default; Debian's
//! `docker-registry` on 127.0.0.1): Docker pulls and runs an image kiln built and pushed
//! (gzip layers); kiln pulls and runs an image Docker built and pushed; and skopeo copies,
//! verifying every blob, an image kiln pushed with zstd layers.

use std::fs;
use std::path::Path;
use std::process::Command;

use kiln_test_support::{Dockerd, KilnEnv, Registry, RegistrySetup, have, missing, ok, run, text};

fn env() -> Option<KilnEnv> {
    let env = KilnEnv::new(
        Path::new(env!("CARGO_BIN_EXE_kiln")),
        &["docker-registry", "skopeo"],
    )?;
    for tool in ["dockerd", "/usr/bin/docker"] {
        if !have(tool) {
            missing(&format!("`{tool}` is not installed (Debian: docker.io)"));
            return None;
        }
    }
    Some(env)
}

#[test]
fn docker_runs_what_kiln_pushed_and_kiln_runs_what_docker_pushed() {
    let Some(env) = env() else { return };
    let reg =
        Registry::start(&env.dir.join("reg"), &RegistrySetup::default()).expect("checked by env()");
    let addr = reg.addr.as_str();
    let ctx = env.context(
        "ctx",
        "FROM busybox:latest\nRUN echo built-by-kiln > /msg\nCMD [\"cat\", \"/msg\"]\n",
        &[],
    );
    ok(&env.kiln(&["build", "-q", "-t", "app:1", ctx.to_str().unwrap()]));
    let kiln_ref = format!("{addr}/kiln/app:1");
    let pushed = ok(&env.kiln(&["push", "-q", "app:1", &kiln_ref]));
    let pushed = pushed.trim();
    assert!(pushed.starts_with("sha256:"), "{pushed}");

    let dockerd = Dockerd::start(&env.dir.join("docker"));
    let docker = |args: &[&str]| {
        let out = dockerd.docker().args(args).output().unwrap();
        assert!(
            out.status.success(),
            "docker {args:?}: {}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        text(&out.stdout)
    };
    docker(&["pull", &kiln_ref]);
    let digests = docker(&["image", "inspect", "-f", "{{json .RepoDigests}}", &kiln_ref]);
    assert!(digests.contains(pushed), "{digests}");
    assert_eq!(
        docker(&["run", "--rm", "--network=none", &kiln_ref]),
        "built-by-kiln\n"
    );

    // Docker builds (legacy builder, FROM an imported busybox) and pushes; kiln pulls and
    // runs it.
    let rootfs = kiln_test_support::busybox_rootfs_tar(&env.dir.join("bb"));
    docker(&[
        "import",
        "--change",
        "CMD [\"sh\"]",
        rootfs.to_str().unwrap(),
        "local/bb:1",
    ]);
    let dctx = env.context(
        "dctx",
        "FROM local/bb:1\nCOPY msg /msg\nCMD [\"cat\", \"/msg\"]\n",
        &[("msg", "built-by-docker\n")],
    );
    let docker_ref = format!("{addr}/docker/app:1");
    let out = dockerd
        .docker()
        .env("DOCKER_BUILDKIT", "0")
        .args(["build", "--network=host", "-t", &docker_ref])
        .arg(&dctx)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let push = docker(&["push", &docker_ref]);
    let docker_digest = push
        .split_whitespace()
        .find(|w| w.starts_with("sha256:"))
        .expect("docker push prints the digest")
        .to_owned();
    let fresh = env.dir.join("store2");
    let kiln2 = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_kiln"))
            .arg("--root")
            .arg(&fresh)
            .args(args)
            .output()
            .unwrap()
    };
    assert_eq!(
        ok(&kiln2(&["pull", "-q", &docker_ref])).trim(),
        docker_digest
    );
    assert_eq!(ok(&kiln2(&["run", &docker_ref])), "built-by-docker\n");
}

#[test]
fn skopeo_reads_an_image_kiln_pushed_with_zstd_layers() {
    let Some(env) = KilnEnv::new(
        Path::new(env!("CARGO_BIN_EXE_kiln")),
        &["docker-registry", "skopeo"],
    ) else {
        return;
    };
    let reg =
        Registry::start(&env.dir.join("reg"), &RegistrySetup::default()).expect("checked above");
    let ctx = env.context("ctx", "FROM busybox:latest\nRUN echo zstd > /msg\n", &[]);
    ok(&env.kiln(&["build", "-q", "-t", "app:1", ctx.to_str().unwrap()]));
    let r = format!("{}/kiln/zstd:1", reg.addr);
    ok(&env.kiln(&["push", "-q", "--compression", "zstd", "app:1", &r]));
    let raw = run(Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{r}")));
    let m: serde_json::Value = serde_json::from_str(&raw).unwrap();
    let layers = m["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 2);
    // The layer kiln built leaves as zstd; the imported base was stored gzip and keeps it
    // (BuildKit's `compression=zstd` without `force-compression`).
    assert_eq!(
        layers[1]["mediaType"], "application/vnd.oci.image.layer.v1.tar+zstd",
        "{raw}"
    );
    assert_eq!(
        layers[0]["mediaType"], "application/vnd.oci.image.layer.v1.tar+gzip",
        "{raw}"
    );
    // skopeo copies it, verifying every blob against its digest, and reads the files back.
    let layout = env.dir.join("layout");
    run(Command::new("skopeo")
        .args(["copy", "-q", "--src-tls-verify=false"])
        .arg(format!("docker://{r}"))
        .arg(format!("oci:{}:x", layout.display())));
    let top = layers[1]["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:");
    let blob = fs::read(layout.join("blobs/sha256").join(top)).unwrap();
    let (mut plain_reader, kind) = kiln_layer::decompress(&blob[..]).unwrap();
    assert!(matches!(kind, kiln_layer::Compression::Zstd { .. }));
    let mut plain = Vec::new();
    std::io::Read::read_to_end(&mut plain_reader, &mut plain).unwrap();
    assert!(
        plain.windows(5).any(|w| w == b"zstd\n"),
        "the RUN's file is in the layer"
    );
}
