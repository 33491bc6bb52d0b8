//! kiln's own image, built by kiln from the repository's `Dockerfile`, saved, loaded into a
//! private dockerd and run there as its non-root user without `--privileged` to build the
//! repository's example (RUN steps included).
//!
//! There is no registry here, so the two official images the Dockerfile names are made
//! locally under those names: `debian:bookworm-slim` is a debootstrap root filesystem
//! (cached for the day, see `kiln_test_support::bases`), `rust:1-bookworm` is that plus gcc
//! and the host's own Rust toolchain where the official image has it.
//!
//! The in-image compile uses `--build-arg PROFILE=dev` (about half the time of a release
//! compile); the `docker run` uses exactly the relaxations docs/rootless.md names:
//! `--security-opt seccomp=unconfined --security-opt apparmor=unconfined`, no capabilities,
//! no `--privileged`.

use std::fs;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Instant;

use kiln_test_support::{Dockerd, KilnEnv, bases, ok, require, text, workspace_root};

const KILN: &str = env!("CARGO_BIN_EXE_kiln");

/// The image's name in the test's store and in dockerd.
const IMAGE: &str = "kiln-test/kiln:dev";

/// The `docker run` flags kiln needs to build rootless in a container: the default seccomp
/// profile refuses `unshare(CLONE_NEWUSER)` and `docker-default` AppArmor refuses mounts.
/// Nothing else: no `--privileged`, no `--cap-add`, the image's own non-root user.
const RELAXATIONS: [&str; 4] = [
    "--security-opt",
    "seccomp=unconfined",
    "--security-opt",
    "apparmor=unconfined",
];

/// Print how long a phase took (for the report; never asserted).
fn timed<T>(what: &str, f: impl FnOnce() -> T) -> T {
    let start = Instant::now();
    let r = f();
    eprintln!("kiln_image: {what}: {:.1} s", start.elapsed().as_secs_f64());
    r
}

fn kiln_ok(env: &KilnEnv, args: &[&str]) -> String {
    ok(&env.kiln(args))
}

/// The two stand-ins for the official base images, in `env`'s store.
fn make_bases(env: &KilnEnv) {
    let rootfs = timed(
        "debootstrap root filesystem (cached for the day)",
        bases::debian_rootfs_tar,
    );
    timed("import debian:bookworm-slim", || {
        kiln_ok(
            env,
            &["import", rootfs.to_str().unwrap(), "debian:bookworm-slim"],
        )
    });
    let ctx = bases::rust_standin_context(&env.dir);
    timed("build the rust:1-bookworm stand-in", || {
        kiln_ok(
            env,
            &[
                "build",
                "--progress=plain",
                "-t",
                "rust:1-bookworm",
                ctx.to_str().unwrap(),
            ],
        )
    });
}

/// `docker run --rm ARGS...` on `dockerd`.
fn docker_run(dockerd: &Dockerd, args: &[&str]) -> Output {
    dockerd
        .docker()
        .args(["run", "--rm", "--network", "host"])
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn kilns_image_built_by_kiln_builds_the_example_in_docker_without_privileges() {
    if require(true, &["debootstrap", "dockerd", "rustc", "cargo"]).is_none() {
        return;
    }
    let Some(env) = KilnEnv::new(Path::new(KILN), &["tar"]) else {
        return;
    };
    make_bases(&env);

    // The image, from the repository's own Dockerfile and context.
    let repo = workspace_root();
    let repo = repo.canonicalize().unwrap();
    timed("kiln build of the kiln image (PROFILE=dev)", || {
        kiln_ok(
            &env,
            &[
                "build",
                "--progress=plain",
                "--build-arg",
                "PROFILE=dev",
                "-t",
                IMAGE,
                repo.to_str().unwrap(),
            ],
        )
    });
    let inspect: serde_json::Value =
        serde_json::from_str(&kiln_ok(&env, &["inspect", IMAGE])).unwrap();
    let config = &inspect[0]["Config"];
    assert_eq!(config["User"], "kiln", "{config:#}");
    assert_eq!(config["Entrypoint"][0], "/usr/local/bin/kiln", "{config:#}");

    let archive = env.dir.join("kiln-image.tar");
    timed("kiln save", || {
        kiln_ok(&env, &["save", "-o", archive.to_str().unwrap(), IMAGE])
    });
    // The example's base goes in through `kiln load` inside the container.
    let inputs = env.dir.join("inputs");
    fs::create_dir_all(&inputs).unwrap();
    kiln_ok(
        &env,
        &[
            "save",
            "-o",
            inputs.join("busybox.tar").to_str().unwrap(),
            "busybox:latest",
        ],
    );
    run_chmod_readable(&inputs);

    let dockerd = Dockerd::start(&env.dir.join("dockerd"));
    timed("docker load", || {
        ok(&dockerd
            .docker()
            .arg("load")
            .arg("-i")
            .arg(&archive)
            .output()
            .unwrap())
    });

    // What the image holds, seen by Docker: the user, the helpers with file capabilities
    // (not setuid: see the Dockerfile), the subordinate ids, the store's place.
    let out = docker_run(
        &dockerd,
        &[
            "--entrypoint",
            "sh",
            IMAGE,
            "-c",
            "id -u && getcap /usr/bin/newuidmap /usr/bin/newgidmap && cat /etc/subuid /etc/subgid && echo $XDG_DATA_HOME",
        ],
    );
    let seen = ok(&out);
    assert_eq!(
        seen.lines().collect::<Vec<_>>(),
        [
            "1000",
            "/usr/bin/newuidmap cap_setuid=ep",
            "/usr/bin/newgidmap cap_setgid=ep",
            "kiln:100000:65536",
            "kiln:100000:65536",
            "/data"
        ],
        "{seen}"
    );

    // With only the two relaxations, the image's user maps its subordinate ids into a user
    // namespace (what every rootless RUN step needs first).
    let out = docker_run(
        &dockerd,
        &[
            RELAXATIONS.as_slice(),
            &[
                "--entrypoint",
                "sh",
                IMAGE,
                "-c",
                "unshare --user sleep 10 & p=$!; sleep 0.3; \
                 newuidmap $p 0 1000 1 1 100000 65536 && newgidmap $p 0 1000 1 1 100000 65536 \
                 && cat /proc/$p/uid_map /proc/$p/gid_map; kill $p",
            ],
        ]
        .concat(),
    );
    let maps = ok(&out);
    let maps: Vec<Vec<&str>> = maps
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        maps,
        [
            ["0", "1000", "1"],
            ["1", "100000", "65536"],
            ["0", "1000", "1"],
            ["1", "100000", "65536"]
        ],
        "{}",
        text(&out.stderr)
    );

    // The store on a named volume, shared by the load and the build.
    let volume = format!("kiln-test-data-{}", std::process::id());
    let store = format!("{volume}:/data");
    let inputs_mount = format!("{}:/in:ro", inputs.display());
    // Every command of a rootless kiln runs in its user namespace (a load chowns the layers'
    // files to their owners): the relaxations apply to all of them.
    ok(&docker_run(
        &dockerd,
        &[
            RELAXATIONS.as_slice(),
            &[
                "-v",
                &store,
                "-v",
                &inputs_mount,
                IMAGE,
                "load",
                "-i",
                "/in/busybox.tar",
            ],
        ]
        .concat(),
    ));

    // doctor finds nothing that stops a build, with exactly these relaxations.
    let out = docker_run(
        &dockerd,
        &[RELAXATIONS.as_slice(), &["-v", &store, IMAGE, "doctor"]].concat(),
    );
    let report = text(&out.stdout);
    eprintln!(
        "kiln doctor in the container:\n{report}{}",
        text(&out.stderr)
    );
    assert!(out.status.success(), "{report}");
    // Without them it names the seccomp flag.
    let out = docker_run(&dockerd, &["-v", &store, IMAGE, "doctor"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stdout).contains("fix: --security-opt seccomp=unconfined"),
        "{}",
        text(&out.stdout)
    );

    // The build: the example's builder and test stages, RUN steps included.
    let example = repo.join("examples/busybox-app");
    let ctx_mount = format!("{}:/ctx:ro", example.display());
    let out = timed("docker run kiln build of the example", || {
        docker_run(
            &dockerd,
            &[
                RELAXATIONS.as_slice(),
                &[
                    "-v",
                    &store,
                    "-v",
                    &ctx_mount,
                    IMAGE,
                    "build",
                    "--progress=plain",
                    "--target",
                    "test",
                    "-t",
                    "greet:test",
                    "/ctx",
                ],
            ]
            .concat(),
        )
    });
    let _ = dockerd
        .docker()
        .args(["volume", "rm", "-f", &volume])
        .output();
    let log = text(&out.stderr);
    assert!(
        out.status.success(),
        "the rootless build in Docker failed:\n{}{log}",
        text(&out.stdout)
    );
    // The test stage's RUN ran (the example's greet.sh checked inside the build).
    assert!(log.contains("[test 2/2] RUN ./greet.sh"), "{log}");
}

/// Let the container's non-root user read what the test wrote (tempdirs are 0700).
fn run_chmod_readable(dir: &Path) {
    let mut p = Some(dir);
    while let Some(d) = p {
        if d == Path::new("/") || d == std::env::temp_dir() {
            break;
        }
        ok(&Command::new("chmod").arg("a+rX").arg(d).output().unwrap());
        p = d.parent();
    }
    ok(&Command::new("chmod")
        .arg("-R")
        .arg("a+rX")
        .arg(dir)
        .output()
        .unwrap());
}
