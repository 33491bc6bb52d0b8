//! `kiln build` through the real binary: flags, outputs, failures, parallel stages, and
//! images that Docker loads and runs. Needs root (RUN steps run in namespaces); under
//! `CI=true` a missing prerequisite fails.

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use kiln_test_support::{Dockerd, KilnEnv, ok, require, run, text};

/// A store with busybox for this binary (see `kiln_test_support::KilnEnv`).
fn store_env() -> Option<KilnEnv> {
    KilnEnv::new(Path::new(env!("CARGO_BIN_EXE_kiln")), &[])
}

trait Stdin {
    fn kiln_stdin(&self, args: &[&str], stdin: &[u8]) -> Output;
}

impl Stdin for KilnEnv {
    fn kiln_stdin(&self, args: &[&str], stdin: &[u8]) -> Output {
        self.kiln_with(args, &[], Some(stdin))
    }
}

#[test]
fn failing_step_reports_stage_line_exit_code_and_output_and_stores_nothing() {
    let Some(env) = store_env() else { return };
    let ctx = env.context(
        "fail",
        "FROM busybox AS b\nRUN echo one && echo two >&2\nRUN echo before-failure; exit 3\nFROM busybox\nCOPY --from=b / /x\n",
        &[],
    );
    let out = env.kiln(&[
        "build",
        "--progress=plain",
        "-t",
        "broken:1",
        ctx.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("error: stage `b`: process \"/bin/sh -c echo before-failure; exit 3\" did not complete successfully: exit code: 3"), "{err}");
    assert!(err.contains("Dockerfile:3:1"), "{err}");
    assert!(err.contains("3 | RUN echo before-failure; exit 3"), "{err}");
    assert!(err.contains("| before-failure"), "the output tail: {err}");
    let images = ok(&env.kiln(&["images"]));
    assert!(!images.contains("broken"), "no partial image: {images}");
    let fsck = env.kiln(&["fsck"]);
    assert!(fsck.status.success(), "{}", text(&fsck.stdout));
}

/// `--keep-failed`: the failed RUN's filesystem and spec outlive it, in both snapshotters,
/// and `kiln prune --all` removes them; without the flag nothing is kept.
#[test]
fn keep_failed_hands_back_the_failed_steps_filesystem() {
    let Some(env) = store_env() else { return };
    let df = "FROM busybox\nRUN echo kept > /marker && mkdir -p /made/here && exit 4\n";
    let ctx = env.context("keep-failed", df, &[]);
    let kept_dir = env.store.join("failed-steps");
    let out = env.kiln(&["build", "-q", ctx.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(!kept_dir.exists(), "nothing kept without the flag");
    for snapshotter in ["overlay", "naive"] {
        let out = env.kiln(&[
            "--snapshotter",
            snapshotter,
            "build",
            "-q",
            "--keep-failed",
            ctx.to_str().unwrap(),
        ]);
        assert_eq!(out.status.code(), Some(1));
        let err = text(&out.stderr);
        assert!(err.contains("the step's filesystem is kept"), "{err}");
        let dirs: Vec<_> = fs::read_dir(&kept_dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(dirs.len(), 1, "{dirs:?}");
        let spec: serde_json::Value =
            serde_json::from_slice(&fs::read(dirs[0].join("spec.json")).unwrap()).unwrap();
        assert_eq!(
            spec["process"]["args"][2],
            "echo kept > /marker && mkdir -p /made/here && exit 4"
        );
        let changed = if snapshotter == "overlay" {
            let upper = spec["rootfs"]["Overlay"]["upper"].as_str().unwrap();
            assert!(upper.starts_with(dirs[0].to_str().unwrap()), "{upper}");
            Path::new(upper).to_owned()
        } else {
            let tree = spec["rootfs"]["Bind"]["dir"].as_str().unwrap();
            assert!(
                Path::new(tree).join("bin/busybox").exists(),
                "the whole tree"
            );
            Path::new(tree).to_owned()
        };
        assert_eq!(
            fs::read_to_string(changed.join("marker")).unwrap(),
            "kept\n"
        );
        assert!(changed.join("made/here").is_dir());
        assert!(err.contains(&changed.display().to_string()), "{err}");
        let pruned = ok(&env.kiln(&["prune", "--all"]));
        assert!(pruned.contains("removed 1 kept failed steps"), "{pruned}");
        assert_eq!(fs::read_dir(&kept_dir).unwrap().count(), 0);
    }
}

#[test]
fn unused_failing_stage_is_not_built_and_missing_base_is_clear() {
    let Some(env) = store_env() else { return };
    let ctx = env.context(
        "unused",
        "FROM busybox AS bad\nRUN false\nFROM busybox\nRUN echo ok > /ok\n",
        &[],
    );
    ok(&env.kiln(&["build", "-q", ctx.to_str().unwrap()]));
    let ctx = env.context("nobase", "FROM local/not-here:1\nRUN true\n", &[]);
    let out = env.kiln(&["build", "-q", ctx.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("base image `local/not-here:1` is not in the store"),
        "{err}"
    );
    assert!(
        err.contains("hint: kiln builds from images in its store"),
        "{err}"
    );
    assert!(err.contains("Dockerfile:1:1"), "{err}");
}

#[test]
fn independent_stages_run_at_the_same_time() {
    let Some(env) = store_env() else { return };
    let ctx = env.context(
        "parallel",
        "FROM busybox AS left\nRUN sleep 1 && echo l > /l\nFROM busybox AS right\nRUN sleep 1 && echo r > /r\nFROM busybox\nCOPY --from=left /l /\nCOPY --from=right /r /\n",
        &[],
    );
    let out = env.kiln(&["build", "--progress=rawjson", ctx.to_str().unwrap()]);
    ok(&out);
    let events: Vec<serde_json::Value> = text(&out.stderr)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let sleeps: Vec<u64> = events
        .iter()
        .filter(|e| {
            e["event"] == "step-started"
                && e["name"]
                    .as_str()
                    .is_some_and(|n| n.starts_with("RUN sleep"))
        })
        .map(|e| e["step"].as_u64().unwrap())
        .collect();
    assert_eq!(sleeps.len(), 2);
    // Both sleeping steps start before either finishes: they overlap. (Order, not time.)
    let pos = |pred: &dyn Fn(&serde_json::Value) -> bool| events.iter().position(pred).unwrap();
    let second_start = sleeps
        .iter()
        .map(|s| pos(&|e| e["event"] == "step-started" && e["step"] == *s))
        .max()
        .unwrap();
    let first_done = sleeps
        .iter()
        .map(|s| pos(&|e| e["event"] == "step-done" && e["step"] == *s))
        .min()
        .unwrap();
    assert!(
        second_start < first_done,
        "stages ran one after the other: {events:#?}"
    );
}

#[test]
fn outputs_iidfile_metadata_labels_and_quiet() {
    let Some(env) = store_env() else { return };
    let ctx = env.context("outputs", "FROM busybox AS b\nRUN echo hi > /hi\nFROM scratch\nCOPY --from=b /hi /hi\nCMD [\"/hi\"]\n", &[]);
    let d = &env.dir;
    let (oci, docker, tar, local, iid, meta) = (
        d.join("o.tar"),
        d.join("d.tar"),
        d.join("fs.tar"),
        d.join("local"),
        d.join("iid"),
        d.join("meta.json"),
    );
    let out = env.kiln(&[
        "build",
        "-q",
        "-t",
        "out:1",
        "--label",
        "org.example=yes",
        "--output",
        &format!("type=oci,dest={}", oci.display()),
        "--output",
        &format!("type=docker,dest={}", docker.display()),
        "--output",
        &format!("type=tar,dest={}", tar.display()),
        "--output",
        local.to_str().unwrap(),
        "--output",
        "type=image,name=out:2",
        "--iidfile",
        iid.to_str().unwrap(),
        "--metadata-file",
        meta.to_str().unwrap(),
        ctx.to_str().unwrap(),
    ]);
    let id = ok(&out).trim().to_owned();
    assert!(
        id.starts_with("sha256:") && text(&out.stderr).is_empty(),
        "quiet: {}",
        text(&out.stderr)
    );
    assert_eq!(fs::read_to_string(&iid).unwrap(), id);
    let meta: serde_json::Value = serde_json::from_slice(&fs::read(&meta).unwrap()).unwrap();
    assert_eq!(meta["containerimage.config.digest"], id.as_str());
    assert_eq!(fs::read_to_string(local.join("hi")).unwrap(), "hi\n");
    let listing = run(Command::new("tar").arg("-tf").arg(&tar));
    assert_eq!(listing.lines().collect::<Vec<_>>(), ["hi"]);
    assert!(run(Command::new("tar").arg("-tf").arg(&oci)).contains("index.json"));
    assert!(run(Command::new("tar").arg("-tf").arg(&docker)).contains("manifest.json"));
    let inspect: serde_json::Value =
        serde_json::from_str(&ok(&env.kiln(&["inspect", "out:2"]))).unwrap();
    assert_eq!(inspect[0]["Id"], id.as_str());
    assert_eq!(inspect[0]["Config"]["Labels"]["org.example"], "yes");
    assert!(inspect[0]["RepoTags"].as_array().unwrap().len() >= 2);
}

#[test]
fn context_from_a_tarball_and_stdin() {
    let Some(env) = store_env() else { return };
    let ctx = env.context(
        "tarctx",
        "FROM scratch\nCOPY a.txt /\n",
        &[("a.txt", "from tar\n")],
    );
    let tar = env.dir.join("ctx.tar.gz");
    run(Command::new("tar")
        .arg("-C")
        .arg(&ctx)
        .arg("-czf")
        .arg(&tar)
        .arg("."));
    let local = env.dir.join("l1");
    ok(&env.kiln(&[
        "build",
        "-q",
        "-o",
        local.to_str().unwrap(),
        tar.to_str().unwrap(),
    ]));
    assert_eq!(
        fs::read_to_string(local.join("a.txt")).unwrap(),
        "from tar\n"
    );
    let local = env.dir.join("l2");
    ok(&env.kiln_stdin(
        &["build", "-q", "-o", local.to_str().unwrap(), "-"],
        &fs::read(&tar).unwrap(),
    ));
    assert_eq!(
        fs::read_to_string(local.join("a.txt")).unwrap(),
        "from tar\n"
    );
    let local = env.dir.join("l3");
    ok(&env.kiln_stdin(
        &["build", "-q", "-o", local.to_str().unwrap(), "-"],
        b"FROM busybox\nRUN echo piped > /p\n",
    ));
    assert_eq!(fs::read_to_string(local.join("p")).unwrap(), "piped\n");
}

#[test]
fn onbuild_triggers_fire_in_the_child_build() {
    let Some(env) = store_env() else { return };
    let base = env.context(
        "onbase",
        "FROM busybox\nONBUILD COPY marker /from-trigger\nONBUILD RUN echo fired > /fired\n",
        &[],
    );
    ok(&env.kiln(&[
        "build",
        "-q",
        "-t",
        "withtriggers:1",
        base.to_str().unwrap(),
    ]));
    let child = env.context(
        "onchild",
        "FROM withtriggers:1\nRUN test -f /fired && test -f /from-trigger\n",
        &[("marker", "m\n")],
    );
    let local = env.dir.join("onlocal");
    ok(&env.kiln(&[
        "build",
        "-q",
        "-t",
        "child:1",
        "-o",
        local.to_str().unwrap(),
        child.to_str().unwrap(),
    ]));
    assert_eq!(fs::read_to_string(local.join("fired")).unwrap(), "fired\n");
    let inspect: serde_json::Value =
        serde_json::from_str(&ok(&env.kiln(&["inspect", "child:1"]))).unwrap();
    assert!(
        inspect[0]["Config"]["OnBuild"].is_null(),
        "triggers are consumed: {}",
        inspect[0]["Config"]
    );
}

#[test]
fn kiln_built_images_load_into_docker_and_run() {
    if require(
        true,
        &["dockerd", kiln_test_support::DOCKER, "/bin/busybox"],
    )
    .is_none()
    {
        return;
    }
    let Some(env) = store_env() else { return };
    let ctx = env.context(
        "dockerrun",
        "FROM busybox AS build\nRUN printf '#!/bin/sh\\necho hello from kiln\\n' > /greet && chmod +x /greet\nFROM busybox\nCOPY --from=build /greet /usr/local/bin/greet\nCMD [\"greet\"]\n",
        &[],
    );
    let archive = env.dir.join("img.tar");
    ok(&env.kiln(&[
        "build",
        "-q",
        "-t",
        "kiln-built/greet:1",
        "--output",
        &format!("type=docker,dest={}", archive.display()),
        ctx.to_str().unwrap(),
    ]));
    let d = Dockerd::start(&env.dir.join("dockerd"));
    run(d.docker().arg("load").arg("-i").arg(&archive));
    let out = run(d
        .docker()
        .args(["run", "--rm", "--network=none", "kiln-built/greet:1"]));
    assert_eq!(out, "hello from kiln\n");
    // Issue 10, item 23: the sizes are Docker's, layer by layer and in total.
    let kiln_history: serde_json::Value = serde_json::from_str(&ok(&env.kiln(&[
        "history",
        "--format",
        "json",
        "kiln-built/greet:1",
    ])))
    .unwrap();
    let kiln_sizes: Vec<String> = kiln_history
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["Size"].to_string())
        .collect();
    let docker_sizes = run(d.docker().args([
        "history",
        "--human=false",
        "--format",
        "{{.Size}}",
        "kiln-built/greet:1",
    ]));
    assert_eq!(kiln_sizes.join("\n") + "\n", docker_sizes);
    let kiln_inspect: serde_json::Value =
        serde_json::from_str(&ok(&env.kiln(&["inspect", "kiln-built/greet:1"]))).unwrap();
    let docker_size =
        run(d
            .docker()
            .args(["inspect", "--format", "{{.Size}}", "kiln-built/greet:1"]));
    assert_eq!(format!("{}\n", kiln_inspect[0]["Size"]), docker_size);
}

#[test]
fn copy_only_builds_are_reproducible_without_source_date_epoch() {
    let Some(env) = store_env() else { return };
    let ctx = env.context(
        "repro",
        "FROM busybox AS b\nCOPY a /a\nFROM scratch\nCOPY --from=b /a /a\nCOPY dir /dir\nWORKDIR /w\nENV X=1\n",
        &[("a", "a\n"), ("dir/x", "x\n")],
    );
    let first = ok(&env.kiln(&["build", "-q", ctx.to_str().unwrap()]));
    let other = store_env().unwrap();
    let second = ok(&other.kiln(&["build", "-q", ctx.to_str().unwrap()]));
    assert_eq!(
        first, second,
        "same inputs, same image id, in another store"
    );
}

#[test]
fn history_and_config_are_what_buildkit_writes() {
    let Some(env) = store_env() else { return };
    let ctx = env.context(
        "history",
        "FROM busybox\nARG A=1\nARG B\nENV X=x Y=\"a b\"\nLABEL l=v\nWORKDIR app\nCOPY --chown=1:2 --chmod=0644 f /dst/\nRUN echo hi\nEXPOSE 80 53/udp\nVOLUME /data /logs\nSTOPSIGNAL SIGQUIT\nUSER nobody\nSHELL [\"/bin/sh\", \"-xc\"]\nCMD echo run\nENTRYPOINT [\"/bin/echo\"]\nHEALTHCHECK --interval=5s --retries=3 CMD true\nONBUILD RUN x\n",
        &[("f", "f")],
    );
    ok(&env.kiln(&["build", "-q", "-t", "hist:1", ctx.to_str().unwrap()]));
    let inspect: serde_json::Value =
        serde_json::from_str(&ok(&env.kiln(&["inspect", "hist:1"]))).unwrap();
    let history: Vec<(String, bool)> = inspect[0]["History"]
        .as_array()
        .unwrap()
        .iter()
        .skip(1) // the base image's own entry
        .map(|h| {
            (
                h["created_by"].as_str().unwrap().to_owned(),
                h["empty_layer"].as_bool().unwrap_or(false),
            )
        })
        .collect();
    let expected: Vec<(&str, bool)> = vec![
        ("ARG A=1", true),
        ("ARG B", true),
        ("ENV X=x Y=a b", true),
        ("LABEL l=v", true),
        ("WORKDIR /app", false),
        ("COPY --chown=1:2 --chmod=0644 f /dst/ # buildkit", false),
        ("RUN |2 A=1 B= /bin/sh -c echo hi # buildkit", false),
        ("EXPOSE [53/udp 80/tcp]", true),
        ("VOLUME [/data /logs]", true),
        ("STOPSIGNAL SIGQUIT", true),
        ("USER nobody", true),
        ("SHELL [/bin/sh -xc]", true),
        ("CMD [\"/bin/sh\" \"-xc\" \"echo run\"]", true),
        ("ENTRYPOINT [\"/bin/echo\"]", true),
        (
            "HEALTHCHECK {Test:[CMD-SHELL true] Interval:5s Timeout:0s StartPeriod:0s StartInterval:0s Retries:3}",
            true,
        ),
    ];
    let got: Vec<(&str, bool)> = history.iter().map(|(s, e)| (s.as_str(), *e)).collect();
    assert_eq!(got, expected);
    let config = &inspect[0]["Config"];
    assert_eq!(config["WorkingDir"], "/app");
    assert_eq!(config["OnBuild"], serde_json::json!(["RUN x"]));
    assert_eq!(
        config["Cmd"],
        serde_json::json!(["/bin/sh", "-xc", "echo run"]),
        "a CMD set earlier in the same stage survives ENTRYPOINT (only an inherited one is cleared)"
    );
}

#[test]
fn base_names_are_normalized_like_docker_and_network_none_isolates() {
    let Some(env) = store_env() else { return };
    ok(&env.kiln(&["tag", "busybox", "local/bb"]));
    ok(&env.kiln(&["tag", "busybox", "docker.io/library/alpine:3"]));
    let ctx = env.context(
        "names",
        "FROM local/bb AS a\nFROM alpine:3 AS b\nFROM docker.io/local/bb:latest\nCOPY --from=a /bin/busybox /a\nCOPY --from=b /bin/busybox /b\nRUN --network=none cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d ' ' > /ifaces\n",
        &[],
    );
    let out = env.dir.join("names-out");
    ok(&env.kiln(&[
        "build",
        "-q",
        "-o",
        out.to_str().unwrap(),
        ctx.to_str().unwrap(),
    ]));
    assert!(out.join("a").is_file() && out.join("b").is_file());
    assert_eq!(
        fs::read_to_string(out.join("ifaces")).unwrap(),
        "lo\n",
        "only loopback"
    );
    let out2 = env.dir.join("names-out2");
    let ctx2 = env.context(
        "netnone",
        "FROM busybox\nRUN cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d ' ' > /ifaces\n",
        &[],
    );
    ok(&env.kiln(&[
        "build",
        "-q",
        "--network",
        "none",
        "-o",
        out2.to_str().unwrap(),
        ctx2.to_str().unwrap(),
    ]));
    assert_eq!(
        fs::read_to_string(out2.join("ifaces")).unwrap(),
        "lo\n",
        "--network none applies to every RUN"
    );
}

/// `kiln images`' SIZE, `kiln history`'s and the build summary's: Docker's (the unpacked content
/// of each layer), whether the image was built here or loaded from `kiln save`, and not the
/// size of the (compressed or not) blob. Issue 10, item 23.
#[test]
fn r10_23_sizes_are_dockers_for_built_and_loaded_images() {
    let Some(env) = store_env() else { return };
    // 100000 zeros: gzip makes almost nothing of them, a tar a little more.
    let zeros = "\0".repeat(100_000);
    let ctx = env.context(
        "sizes",
        "FROM busybox AS base\nCOPY zeros /zeros\n\
         FROM base\nRUN echo hi > /hi && ln -s /a/long/target/name /link && rm /bin/vi\n",
        &[("zeros", &zeros)],
    );
    let out = env.kiln(&["build", "-t", "sized:1", ctx.to_str().unwrap()]);
    let summary = text(&out.stderr);
    ok(&out);
    let saved = env.dir.join("sized.tar");
    ok(&env.kiln(&["save", "-o", saved.to_str().unwrap(), "sized:1"]));
    let loaded = env.dir.join("loaded-store");
    let in_loaded = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_kiln"))
            .arg("--root")
            .arg(&loaded)
            .args(args)
            .output()
            .unwrap();
        ok(&out)
    };
    in_loaded(&["load", "-i", saved.to_str().unwrap()]);

    let json = |s: String| -> serde_json::Value { serde_json::from_str(&s).unwrap() };
    let history = |s: String| -> Vec<u64> {
        json(s)
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["Size"].as_u64().unwrap())
            .collect()
    };
    let built = history(ok(&env.kiln(&["history", "--format", "json", "sized:1"])));
    let from_save = history(in_loaded(&["history", "--format", "json", "sized:1"]));
    assert_eq!(built, from_save);
    // Newest first: the RUN (`hi\n` and the link's target; the whiteout adds nothing), the
    // COPY (the file's bytes, no tar headers), then busybox's layer.
    assert_eq!(built[0], 3 + "/a/long/target/name".len() as u64);
    assert_eq!(built[1], 100_000);
    let busybox = history(ok(&env.kiln(&[
        "history",
        "--format",
        "json",
        "busybox:latest",
    ])));
    assert_eq!(built[2..], busybox[..]);
    let total: u64 = built.iter().sum();

    let images = |s: String| -> Vec<(String, u64)> {
        json(s)
            .as_array()
            .unwrap()
            .iter()
            .map(|i| {
                (
                    i["Repository"].as_str().unwrap().to_owned(),
                    i["Size"].as_u64().unwrap(),
                )
            })
            .collect()
    };
    let listed = images(ok(&env.kiln(&["images", "--format", "json"])));
    assert!(listed.contains(&("sized".to_owned(), total)), "{listed:?}");
    assert_eq!(
        images(in_loaded(&["images", "--format", "json"])),
        [("sized".to_owned(), total)]
    );
    let inspect = json(in_loaded(&["inspect", "sized:1"]));
    assert_eq!(inspect[0]["Size"].as_u64(), Some(total));

    // The table and the build summary print the same numbers.
    let table = ok(&env.kiln(&["images"]));
    let row = table.lines().find(|l| l.starts_with("sized ")).unwrap();
    let shown = row.split_whitespace().last().unwrap().to_owned();
    assert_eq!(
        in_loaded(&["images"])
            .lines()
            .nth(1)
            .unwrap()
            .split_whitespace()
            .last(),
        Some(shown.as_str())
    );
    let stage = summary
        .lines()
        .find(|l| l.starts_with("  stage stage-1 "))
        .unwrap_or_else(|| panic!("no summary line for the target: {summary}"));
    let fields: Vec<&str> = stage.split_whitespace().collect();
    // `stage NAME N layers SIZE (OWN over its base)`
    assert_eq!(fields[2..5], ["3", "layers", shown.as_str()], "{stage}");
    let own_run = fields[5].trim_start_matches('(');
    assert_eq!(own_run, "22B", "{stage}");
    let base = summary
        .lines()
        .find(|l| l.starts_with("  stage base "))
        .unwrap();
    assert!(base.contains("(100kB over its base)"), "{base}");
}

/// Issue 12: built layers stay uncompressed in the store; what leaves the machine as an OCI
/// archive is gzip by default (once per layer: a second save gives the same manifest from
/// the remembered blobs), `--compression uncompressed` keeps plain tars, and the image's
/// identity (config, `diff_ids`) is the same either way.
#[test]
fn layers_are_stored_plain_and_compressed_on_export() {
    use std::io::Read as _;
    let Some(env) = store_env() else { return };
    let ctx = env.context(
        "variant",
        "FROM busybox\nRUN echo hi > /hi\nCOPY f /f\n",
        &[("f", "content\n")],
    );
    ok(&env.kiln(&["build", "-q", "-t", "variant:1", ctx.to_str().unwrap()]));
    let inspect: serde_json::Value =
        serde_json::from_str(&ok(&env.kiln(&["inspect", "variant:1"]))).unwrap();
    let id = inspect[0]["Id"].as_str().unwrap_or_default().to_owned();
    let manifest_of = |archive: &Path| -> (serde_json::Value, Vec<(String, Vec<u8>)>) {
        let mut blobs = Vec::new();
        let mut a = tar::Archive::new(fs::File::open(archive).unwrap());
        for e in a.entries().unwrap() {
            let mut e = e.unwrap();
            let name = e.path().unwrap().display().to_string();
            let mut bytes = Vec::new();
            e.read_to_end(&mut bytes).unwrap();
            blobs.push((name, bytes));
        }
        let blob = |d: &str| {
            let hex = d.strip_prefix("sha256:").unwrap();
            blobs
                .iter()
                .find(|(n, _)| n == &format!("blobs/sha256/{hex}"))
                .map(|(_, b)| b.clone())
                .unwrap()
        };
        let index: serde_json::Value =
            serde_json::from_slice(&blob_by_name(&blobs, "index.json")).unwrap();
        let m: serde_json::Value =
            serde_json::from_slice(&blob(index["manifests"][0]["digest"].as_str().unwrap()))
                .unwrap();
        let layers = m["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                (
                    l["mediaType"].as_str().unwrap().to_owned(),
                    blob(l["digest"].as_str().unwrap()),
                )
            })
            .collect();
        (m, layers)
    };
    let gz = env.dir.join("v-gz.tar");
    ok(&env.kiln(&[
        "save",
        "--format",
        "oci",
        "-o",
        gz.to_str().unwrap(),
        "variant:1",
    ]));
    let (m1, layers) = manifest_of(&gz);
    let built: Vec<_> = layers.iter().rev().take(2).collect();
    for (media_type, bytes) in &built {
        assert_eq!(media_type, "application/vnd.oci.image.layer.v1.tar+gzip");
        assert_eq!(&bytes[..2], &[0x1f, 0x8b], "gzip");
    }
    let gz2 = env.dir.join("v-gz2.tar");
    ok(&env.kiln(&[
        "save",
        "--format",
        "oci",
        "-o",
        gz2.to_str().unwrap(),
        "variant:1",
    ]));
    assert_eq!(manifest_of(&gz2).0, m1, "the same export again");
    let plain = env.dir.join("v-plain.tar");
    ok(&env.kiln(&[
        "save",
        "--format",
        "oci",
        "--compression",
        "uncompressed",
        "-o",
        plain.to_str().unwrap(),
        "variant:1",
    ]));
    let (m2, layers) = manifest_of(&plain);
    for (media_type, _) in layers.iter().rev().take(2) {
        assert_eq!(
            media_type, "application/vnd.oci.image.layer.v1.tar",
            "as stored"
        );
    }
    assert_eq!(m1["config"], m2["config"], "one image, one config");
    // zstd: the built layers; the base's gzip layer stays, unless forced (BuildKit's
    // `force-compression=true`).
    for (force, base_type) in [
        (false, "application/vnd.oci.image.layer.v1.tar+gzip"),
        (true, "application/vnd.oci.image.layer.v1.tar+zstd"),
    ] {
        let zst = env.dir.join(format!("v-zstd-{force}.tar"));
        let mut args = vec!["save", "--format", "oci", "--compression", "zstd"];
        if force {
            args.push("--force-compression");
        }
        args.extend(["-o", zst.to_str().unwrap(), "variant:1"]);
        ok(&env.kiln(&args));
        let (m, layers) = manifest_of(&zst);
        assert_eq!(m["config"], m1["config"]);
        assert_eq!(layers[0].0, base_type, "force: {force}");
        for (media_type, bytes) in &layers[1..] {
            assert_eq!(media_type, "application/vnd.oci.image.layer.v1.tar+zstd");
            assert_eq!(&bytes[..4], &[0x28, 0xb5, 0x2f, 0xfd], "zstd");
        }
    }
    // Loaded back from the gzip archive: the same image id.
    let other = env.dir.join("variant-store");
    let loaded = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .arg("--root")
        .arg(&other)
        .args(["load", "-q", "-i", gz.to_str().unwrap()])
        .output()
        .unwrap();
    let loaded_id = ok(&loaded);
    assert!(
        id.is_empty() || loaded_id.trim() == id,
        "{loaded_id} vs {id}"
    );
    assert_eq!(
        m1["config"]["digest"].as_str().unwrap(),
        loaded_id.trim(),
        "the image id is the config's digest"
    );
}

fn blob_by_name(blobs: &[(String, Vec<u8>)], name: &str) -> Vec<u8> {
    blobs
        .iter()
        .find(|(n, _)| n == name)
        .map_or_else(|| panic!("no {name} in the archive"), |(_, b)| b.clone())
}
