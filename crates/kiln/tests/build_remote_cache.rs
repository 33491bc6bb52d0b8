//! Issue 13's shared cache through the real binary, without a registry: the inline cache
//! travels inside an image (saved on one store, loaded on another), an image with BuildKit's
//! inline cache is read without error, and `type=local` carries cache mounts. Through a real
//! registry: `build_registry.rs`; the three-runner proof over an in-memory remote: kiln-build.

use std::path::Path;

use kiln_test_support::{Dockerd, KilnEnv, have, missing, ok, text};

const DOCKERFILE: &str = "FROM busybox\nCOPY a.txt /a.txt\nRUN cat /a.txt > /b.txt\n";

fn env() -> Option<KilnEnv> {
    KilnEnv::new(Path::new(env!("CARGO_BIN_EXE_kiln")), &[])
}

/// Runs kiln on the store at `root`.
fn kiln_at(root: &Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_kiln"))
        .arg("--root")
        .arg(root)
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn an_inline_cache_travels_in_the_image_to_another_store() {
    let Some(first) = env() else { return };
    let ctx = first.context("ctx", DOCKERFILE, &[("a.txt", "a\n")]);
    let built = ok(&first.kiln(&[
        "build",
        "-q",
        "--cache-to",
        "type=inline",
        "-t",
        "app:1",
        ctx.to_str().unwrap(),
    ]));
    // Another machine: a fresh store with the same base image and the image.
    let archive = first.dir.join("app.tar");
    ok(&first.kiln(&[
        "save",
        "--format",
        "oci",
        "-o",
        archive.to_str().unwrap(),
        "app:1",
        "busybox:latest",
    ]));
    let second = first.dir.join("second-store");
    ok(&kiln_at(
        &second,
        &["load", "-i", archive.to_str().unwrap()],
    ));
    let out = kiln_at(
        &second,
        &[
            "build",
            "--cache-to",
            "type=inline",
            "--cache-from",
            "app:1",
            ctx.to_str().unwrap(),
        ],
    );
    let stdout = ok(&out);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("imported 2 cache records from the image app:1"),
        "{stderr}"
    );
    assert_eq!(
        stdout.trim(),
        built.trim(),
        "the same image, no RUN ran:\n{stderr}"
    );
}

#[test]
fn an_inline_cache_takes_mode_min_only() {
    let Some(env) = env() else { return };
    let out = env.kiln(&["build", "--cache-to", "type=inline,mode=max", "."]);
    assert!(text(&out.stderr).contains("the inline cache supports `mode=min` only"));
}

#[test]
fn a_buildkit_inline_cache_image_is_read_without_error() {
    let Some(env) = env() else { return };
    for tool in ["dockerd", "/usr/bin/docker"] {
        if !have(tool) {
            missing(&format!("`{tool}` is not installed (Debian: docker.io)"));
            return;
        }
    }
    let rootfs = kiln_test_support::busybox_rootfs_tar(&env.dir.join("bb"));
    let dockerd = Dockerd::start(&env.dir.join("docker"));
    let mut import = dockerd.docker();
    ok(&import
        .args(["import", "--change", "CMD [\"sh\"]"])
        .arg(&rootfs)
        .arg("local/bb:1")
        .output()
        .unwrap());
    let ctx = env.context("bk", "FROM local/bb:1\nRUN echo built > /built\n", &[]);
    let mut build = dockerd.docker();
    let out = build
        .env("DOCKER_BUILDKIT", "1")
        .args([
            "build",
            "--network=host",
            "--build-arg",
            "BUILDKIT_INLINE_CACHE=1",
            "-t",
            "local/bkinline:1",
        ])
        .arg(&ctx)
        .output()
        .unwrap();
    ok(&out);
    let saved = env.dir.join("bkinline.tar");
    ok(&dockerd
        .docker()
        .args(["save", "-o"])
        .arg(&saved)
        .arg("local/bkinline:1")
        .output()
        .unwrap());
    ok(&env.kiln(&["load", "-i", saved.to_str().unwrap()]));

    let ctx = env.context("ours", DOCKERFILE, &[("a.txt", "a\n")]);
    let out = env.kiln(&[
        "build",
        "-q",
        "--cache-from",
        "local/bkinline:1",
        ctx.to_str().unwrap(),
    ]);
    ok(&out);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("BuildKit's inline cache (`moby.buildkit.cache.v0`)"),
        "{stderr}"
    );
}

#[test]
fn a_local_cache_with_mounts_fills_another_store_lazily() {
    let Some(first) = env() else { return };
    let fill = "FROM busybox\nRUN --mount=type=cache,target=/var/cache/pkgs,id=pkgs \
                sh -c 'echo fetched > /var/cache/pkgs/got && echo built > /built'\n";
    let ctx = first.context("fill", fill, &[]);
    let cache = first.dir.join("cache");
    let spec = format!("type=local,dest={},mode=max,mounts=true", cache.display());
    let built = ok(&first.kiln(&["build", "-q", "--cache-to", &spec, ctx.to_str().unwrap()]));

    let base = first.dir.join("busybox.tar");
    ok(&first.kiln(&[
        "save",
        "--format",
        "oci",
        "-o",
        base.to_str().unwrap(),
        "busybox:latest",
    ]));
    let second = first.dir.join("second-store");
    ok(&kiln_at(&second, &["load", "-i", base.to_str().unwrap()]));
    let from = format!("type=local,src={}", cache.display());
    // A missing cache first (a branch's, say): a note, then the next one is used.
    let missing = format!("type=local,src={}", first.dir.join("nothing").display());
    let out = kiln_at(
        &second,
        &[
            "build",
            "--cache-from",
            &missing,
            "--cache-from",
            &from,
            ctx.to_str().unwrap(),
        ],
    );
    let stderr = text(&out.stderr);
    assert_eq!(ok(&out).trim(), built.trim(), "the same image: {stderr}");
    assert!(stderr.contains("note: no cache at"), "{stderr}");
    assert!(stderr.contains("restored 1 cache mounts"), "{stderr}");
    assert!(stderr.contains("fetched 1 cache layers"), "{stderr}");

    // A step that misses sees the first store's cache mount.
    let read = "FROM busybox\nRUN --mount=type=cache,target=/c,id=pkgs cp /c/got /seen\n";
    let ctx = first.context("read", read, &[]);
    let dest = first.dir.join("out");
    ok(&kiln_at(
        &second,
        &[
            "build",
            "-q",
            "-o",
            &format!("type=local,dest={}", dest.display()),
            ctx.to_str().unwrap(),
        ],
    ));
    assert_eq!(
        std::fs::read_to_string(dest.join("seen")).unwrap(),
        "fetched\n"
    );
}
