//! Builds against a real registry (Debian's `docker-registry` on 127.0.0.1, started here):
//!
//! - a build pulls its base and `COPY --from` images once, records them by digest in
//!   `--metadata-file`, pushes its result (`--push`, `-o type=registry`, compression
//!   included) as skopeo reads it, rebuilds offline from the store, and `--pull=never` /
//!   `--pull=always` do what they say;
//! - three runners (three empty stores) share one registry cache: the second and third run no
//!   RUN step, upload nothing new, and make the same image;
//! - an inline cache travels in a pushed image, and an image with BuildKit's inline cache
//!   (Docker 20.10, `BUILDKIT_INLINE_CACHE=1`, pushed by Docker) is read without error;
//! - a Dockerfile that says `FROM debian:bookworm` builds through a loopback mirror configured
//!   for `docker.io` in kiln's config file.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use kiln_test_support::{
    Dockerd, KilnEnv, Registry, RegistrySetup, busybox_rootfs_tar, have, missing, ok, text,
};

fn env() -> Option<KilnEnv> {
    KilnEnv::new(Path::new(env!("CARGO_BIN_EXE_kiln")), &["skopeo"])
}

/// kiln on the store at `root`.
fn kiln_at(root: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kiln"))
        .arg("--root")
        .arg(root)
        .args(args)
        .output()
        .unwrap()
}

/// A plain registry, and busybox pushed to it as `lib/busybox:1`.
fn registry_with_base(env: &KilnEnv) -> Option<(Registry, String)> {
    let registry = Registry::start(&env.dir.join("registry"), &RegistrySetup::default())?;
    let base = format!("{}/lib/busybox:1", registry.addr);
    ok(&env.kiln(&["push", "busybox:latest", &base]));
    Some((registry, base))
}

fn skopeo_inspect(reference: &str) -> serde_json::Value {
    let out = Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{reference}"))
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("skopeo inspect {reference}: {}", text(&out.stderr)))
}

fn skopeo_digest(reference: &str) -> String {
    let out = Command::new("skopeo")
        .args(["inspect", "--tls-verify=false", "--format", "{{.Digest}}"])
        .arg(format!("docker://{reference}"))
        .output()
        .unwrap();
    ok(&out).trim().to_owned()
}

#[test]
fn a_build_pulls_its_images_once_records_them_and_pushes_its_result() {
    let Some(env) = env() else { return };
    let Some((mut registry, base)) = registry_with_base(&env) else {
        return;
    };
    let dockerfile = format!(
        "FROM {base} AS build\nRUN echo built > /out\nFROM {base}\nCOPY --from=build /out /out\nCOPY --from={base} /bin/busybox /bb\n"
    );
    let ctx = env.context("ctx", &dockerfile, &[]);
    let store = env.dir.join("store-b");
    let app = format!("{}/app:1", registry.addr);
    let meta = env.dir.join("meta.json");
    let out = kiln_at(
        &store,
        &[
            "build",
            "--push",
            "-t",
            &app,
            "--metadata-file",
            meta.to_str().unwrap(),
            ctx.to_str().unwrap(),
        ],
    );
    ok(&out);
    let stderr = text(&out.stderr);
    // Two stages and a COPY --from name the base: it is pulled once, a line per blob.
    assert_eq!(stderr.matches("pulled ").count(), 1, "{stderr}");
    assert!(stderr.contains("pull sha256:"), "{stderr}");
    // The base's layer is in the registry already (another repository): mounted.
    assert!(
        stderr.contains("mounted from another repository"),
        "{stderr}"
    );
    let meta: serde_json::Value = serde_json::from_slice(&std::fs::read(&meta).unwrap()).unwrap();
    let pushed = meta["containerimage.digest"].as_str().unwrap().to_owned();
    assert_eq!(pushed, skopeo_digest(&app), "{meta}");
    let base_digest = skopeo_digest(&base);
    assert_eq!(
        meta["kiln.resolved-images"][&base].as_str(),
        Some(base_digest.as_str()),
        "{meta}"
    );
    // The pushed layers are gzip, as docker push sends them.
    let manifest = skopeo_inspect(&app);
    for layer in manifest["layers"].as_array().unwrap() {
        let mt = layer["mediaType"].as_str().unwrap();
        assert!(mt.ends_with("gzip"), "{mt}");
    }
    // `-o type=registry` with zstd.
    let zstd = format!("{}/app:zstd", registry.addr);
    ok(&kiln_at(
        &store,
        &[
            "build",
            "-q",
            "-o",
            &format!("type=registry,name={zstd},compression=zstd"),
            ctx.to_str().unwrap(),
        ],
    ));
    let manifest = skopeo_inspect(&zstd);
    assert!(
        manifest["layers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["mediaType"].as_str().unwrap().ends_with("zstd")),
        "{manifest}"
    );
    // Offline: the base is in the store, the default `--pull=missing` asks no registry.
    registry.kill();
    let again = kiln_at(
        &store,
        &["build", "--no-cache", "-q", ctx.to_str().unwrap()],
    );
    ok(&again);
    assert!(!text(&again.stderr).contains("pulled "));
    let always = kiln_at(&store, &["build", "-q", "--pull", ctx.to_str().unwrap()]);
    assert!(!always.status.success(), "--pull asks the registry");
    assert!(
        text(&always.stderr).contains(&registry.addr),
        "{}",
        text(&always.stderr)
    );
    // `--pull=never` with an empty store: the image is not there, and it says so.
    let empty = env.dir.join("store-empty");
    let never = kiln_at(&empty, &["build", "--pull=never", ctx.to_str().unwrap()]);
    assert!(!never.status.success());
    assert!(
        text(&never.stderr).contains("--pull=never"),
        "{}",
        text(&never.stderr)
    );
    // A push needs a name.
    let nameless = kiln_at(&store, &["build", "--push", ctx.to_str().unwrap()]);
    assert!(text(&nameless.stderr).contains("nothing to push to"));
}

/// A RUN that makes what it makes only once: run again, its layer (and the image) differs.
const RUNNER_DOCKERFILE: &str = "FROM BASE AS deps\nRUN mkdir /deps && for i in $(seq 200); do echo $i > /deps/$i; done && date +%s%N > /deps/stamp\nFROM BASE\nCOPY --from=deps /deps /deps\nRUN date +%s%N > /stamp && cat /deps/stamp >> /stamp\n";

#[test]
fn three_runners_share_one_registry_cache() {
    let Some(env) = env() else { return };
    let Some((_registry, base)) = registry_with_base(&env) else {
        return;
    };
    let cache = base.replace("lib/busybox:1", "app/cache:main");
    let ctx = env.context("ctx", &RUNNER_DOCKERFILE.replace("BASE", &base), &[]);
    let ctx = ctx.to_str().unwrap();
    let flags = [
        "build",
        "--progress=plain",
        "--cache-from",
        &format!("type=registry,ref={cache}"),
        "--cache-to",
        &format!("type=registry,ref={cache},mode=max"),
        ctx,
    ];
    let mut ids = Vec::new();
    for runner in 1..=3 {
        let store = env.dir.join(format!("runner-{runner}"));
        let out = kiln_at(&store, &flags);
        let id = ok(&out).trim().to_owned();
        let stderr = text(&out.stderr);
        if runner == 1 {
            assert!(stderr.contains("cache miss"), "{stderr}");
            assert!(stderr.contains("exported 3 cache records"), "{stderr}");
        } else {
            // No step ran: every layer step is a hit whose layer came from the registry.
            assert!(!stderr.contains("cache miss"), "runner {runner}:\n{stderr}");
            assert!(stderr.contains("cache layers ("), "{stderr}");
            assert!(stderr.contains("(0 blobs uploaded"), "{stderr}");
        }
        ids.push(id);
    }
    assert_eq!(ids[0], ids[1]);
    assert_eq!(ids[1], ids[2]);
    // Runner 3 unpacked no layer at all: the COPY's key came from the selection memo
    // exported with its record, not from the dependency stage's files; the base image, pulled
    // by a build with a remote cache, and every hit are promised snapshots, unpacked when
    // first used (the `kiln run` below).
    let store = env.dir.join("runner-3");
    let mut entries: Vec<String> = std::fs::read_dir(store.join("snapshots"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    entries.sort();
    assert_eq!(
        entries.len(),
        4,
        "the base's, the dependency stage's, the COPY's and the last RUN's: {entries:?}"
    );
    assert!(
        entries.iter().all(|e| e.ends_with(".pending")),
        "a layer was unpacked: {entries:?}"
    );
    let stamp = ok(&kiln_at(&store, &["run", "--rm", &ids[2], "cat", "/stamp"]));
    assert_eq!(stamp.lines().count(), 2, "{stamp}");
    ok(&kiln_at(&store, &["fsck"]));
}

#[test]
fn an_inline_cache_travels_through_the_registry() {
    let Some(env) = env() else { return };
    let Some((_registry, base)) = registry_with_base(&env) else {
        return;
    };
    // One stage: an inline cache holds the image's own steps (BuildKit's `mode=min`).
    let dockerfile = format!("FROM {base}\nRUN date +%s%N > /stamp\n");
    let ctx = env.context("ctx", &dockerfile, &[]);
    let ctx = ctx.to_str().unwrap();
    let app = base.replace("lib/busybox:1", "app/inline:1");
    let first = kiln_at(
        &env.dir.join("runner-1"),
        &[
            "build",
            "-q",
            "--cache-to",
            "type=inline",
            "--push",
            "-t",
            &app,
            ctx,
        ],
    );
    let id = ok(&first).trim().to_owned();
    for cache_from in [app.clone(), format!("type=registry,ref={app}")] {
        let store = env.dir.join(format!("runner-{}", cache_from.len()));
        let out = kiln_at(
            &store,
            // The same flags as the first runner's (the inline records are in the config).
            &[
                "build",
                "--progress=plain",
                "--cache-to",
                "type=inline",
                "--cache-from",
                &cache_from,
                ctx,
            ],
        );
        let stderr = text(&out.stderr);
        assert_eq!(ok(&out).trim(), id, "{stderr}");
        assert!(!stderr.contains("cache miss"), "{cache_from}:\n{stderr}");
    }
}

#[test]
fn an_image_with_buildkits_inline_cache_is_read_from_the_registry() {
    let Some(env) = env() else { return };
    for tool in ["dockerd", kiln_test_support::DOCKER] {
        if !have(tool) {
            missing(&format!("`{tool}` is not installed (Debian: docker.io)"));
            return;
        }
    }
    let Some(registry) = Registry::start(&env.dir.join("registry"), &RegistrySetup::default())
    else {
        return;
    };
    let rootfs = busybox_rootfs_tar(&env.dir.join("bb"));
    let dockerd = Dockerd::start(&env.dir.join("docker"));
    ok(&dockerd
        .docker()
        .args(["import", rootfs.to_str().unwrap(), "busybox:latest"])
        .output()
        .unwrap());
    let ctx = env.context(
        "bk",
        "FROM busybox:latest\nRUN echo from-buildkit > /x\n",
        &[],
    );
    let image = format!("{}/bk/app:1", registry.addr);
    ok(&dockerd
        .docker()
        .env("DOCKER_BUILDKIT", "1")
        .args(["build", "--network=host", "-q"])
        .args(["--build-arg", "BUILDKIT_INLINE_CACHE=1", "-t", &image])
        .arg(&ctx)
        .output()
        .unwrap());
    ok(&dockerd.docker().args(["push", &image]).output().unwrap());
    let out = env.kiln(&[
        "build",
        "-q",
        "--cache-from",
        &format!("type=registry,ref={image}"),
        ctx.to_str().unwrap(),
    ]);
    ok(&out);
    assert!(
        text(&out.stderr).contains("moby.buildkit.cache.v0"),
        "{}",
        text(&out.stderr)
    );
}

/// A Dockerfile that says `FROM debian:bookworm`, unchanged, builds through the loopback
/// mirror kiln's config file gives `docker.io` (as a `buildkitd.toml` would), holding a
/// debootstrap bookworm base.
#[test]
fn from_debian_bookworm_builds_through_a_docker_io_mirror() {
    let Some(env) = env() else { return };
    let Some(mirror) = Registry::start(&env.dir.join("mirror"), &RegistrySetup::default()) else {
        return;
    };
    if !have("debootstrap") {
        missing("`debootstrap` is not installed (Debian: debootstrap)");
        return;
    }
    let rootfs = kiln_test_support::bases::debian_rootfs_tar();
    ok(&env.kiln(&["import", rootfs.to_str().unwrap(), "local/debian:bookworm"]));
    let on_mirror = format!("{}/library/debian:bookworm", mirror.addr);
    ok(&env.kiln(&["push", "local/debian:bookworm", &on_mirror]));
    let config = env.dir.join("config.toml");
    std::fs::write(
        &config,
        format!(
            "# as in buildkitd.toml\n[registry.\"docker.io\"]\nmirrors = [\"{}\"]\n",
            mirror.addr
        ),
    )
    .unwrap();
    let ctx = env.context(
        "ctx",
        "FROM debian:bookworm\nRUN grep -q bookworm /etc/os-release && echo through-the-mirror > /m\n",
        &[],
    );
    let store: PathBuf = env.dir.join("fresh");
    let out = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .arg("--root")
        .arg(&store)
        .arg("--config")
        .arg(&config)
        .args(["build", "-t", "m", ctx.to_str().unwrap()])
        .output()
        .unwrap();
    ok(&out);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!("pulled debian:bookworm from {}", mirror.addr)),
        "{stderr}"
    );
    let seen = ok(&kiln_at(&store, &["run", "--rm", "m", "cat", "/m"]));
    assert_eq!(seen.trim(), "through-the-mirror");
}
