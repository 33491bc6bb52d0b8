//! `kiln analyze`, `kiln build --analyze` and `kiln diff` through the real binary, on images
//! built here: layers with their Dockerfile lines, waste by instruction, dive's numbers and
//! CI rules with their exit statuses, the stages of a multi-stage build, and diffs of two
//! builds. Needs root (RUN steps run in namespaces); under `CI=true` a missing prerequisite
//! fails.

// Tests read their own settings from the environment.
#![allow(clippy::disallowed_methods)]

use std::fs;
use std::path::Path;

use kiln_test_support::{KilnEnv, ok, text};
use serde_json::Value;

fn store_env() -> Option<KilnEnv> {
    KilnEnv::new(Path::new(env!("CARGO_BIN_EXE_kiln")), &[])
}

const DATA: usize = 150_000;
const LISTS: usize = 60_000;
const JUNK: usize = 40_000;

/// An image whose waste is known: a COPY of `app/` then a chmod of its big file (a rewrite
/// of the same bytes), apt lists left behind, a file made in one RUN and deleted in the next.
fn wasteful(env: &KilnEnv, tag: &str) -> std::path::PathBuf {
    let df = format!(
        "FROM busybox\n\
         COPY app /app\n\
         RUN chmod 755 /app/data.bin\n\
         RUN mkdir -p /var/lib/apt/lists && head -c {LISTS} /dev/zero > /var/lib/apt/lists/x_dists && head -c {JUNK} /dev/zero > /junk\n\
         RUN rm /junk\n"
    );
    let ctx = env.context(tag, &df, &[("app/small.txt", "small\n")]);
    fs::write(ctx.join("app/data.bin"), vec![7u8; DATA]).unwrap();
    ok(&env.kiln(&[
        "build",
        "-q",
        "-t",
        &format!("{tag}:1"),
        ctx.to_str().unwrap(),
    ]));
    ctx
}

#[test]
fn analyze_json_names_each_layers_line_its_waste_and_dives_numbers() {
    let Some(env) = store_env() else { return };
    let ctx = wasteful(&env, "waste");
    let df = ctx.join("Dockerfile");
    let out = env.kiln(&[
        "analyze",
        "waste:1",
        "-f",
        df.to_str().unwrap(),
        "--format",
        "json",
    ]);
    let doc: Value = serde_json::from_str(&ok(&out)).unwrap();
    // dive's shape.
    let layers = doc["layer"].as_array().unwrap();
    assert_eq!(layers.len(), 5, "busybox and four steps");
    let total: u64 = layers
        .iter()
        .map(|l| l["sizeBytes"].as_u64().unwrap())
        .sum();
    assert_eq!(doc["image"]["sizeBytes"].as_u64(), Some(total));
    assert!(
        layers[2]["command"]
            .as_str()
            .unwrap()
            .contains("chmod 755 /app/data.bin")
    );
    for (i, l) in layers.iter().enumerate() {
        assert_eq!(l["index"].as_u64(), Some(i as u64));
        assert!(l["digestId"].as_str().unwrap().starts_with("sha256:"));
    }
    // The data file is in two layers: dive counts both copies.
    let refs = doc["image"]["fileReference"].as_array().unwrap();
    let data = refs.iter().find(|r| r["file"] == "/app/data.bin").unwrap();
    assert_eq!(data["count"].as_u64(), Some(2));
    assert_eq!(data["sizeBytes"].as_u64(), Some(2 * DATA as u64));
    let junk = refs.iter().find(|r| r["file"] == "/junk").unwrap();
    assert_eq!(
        junk["sizeBytes"].as_u64(),
        Some(JUNK as u64),
        "a deleted file counts 0"
    );
    let score = doc["image"]["efficiencyScore"].as_f64().unwrap();
    assert!(score > 0.0 && score < 1.0, "{score}");
    // kiln's: lines, and waste by the instruction that wrote it.
    let kl = doc["kiln"]["layers"].as_array().unwrap();
    let lines: Vec<Option<u64>> = kl.iter().map(|l| l["source"]["line"].as_u64()).collect();
    assert_eq!(lines, vec![None, Some(2), Some(3), Some(4), Some(5)]);
    let waste = doc["kiln"]["waste"].as_array().unwrap();
    let find = |reason: &str| {
        waste
            .iter()
            .find(|w| w["reason"] == reason)
            .unwrap_or_else(|| panic!("no `{reason}` in {waste:#?}"))
    };
    let chmod = find("metadata-only");
    assert_eq!(
        (chmod["layer"].as_u64(), chmod["byLayer"].as_u64()),
        (Some(1), Some(2))
    );
    assert_eq!(chmod["bytes"].as_u64(), Some(DATA as u64));
    assert!(chmod["fix"].as_str().unwrap().contains("--chmod"));
    let deleted = find("deleted");
    assert_eq!(
        (deleted["layer"].as_u64(), deleted["byLayer"].as_u64()),
        (Some(3), Some(4))
    );
    assert_eq!(deleted["bytes"].as_u64(), Some(JUNK as u64));
    let cache = find("cache");
    assert_eq!(cache["cache"], "apt-lists");
    assert_eq!(
        (cache["layer"].as_u64(), cache["bytes"].as_u64()),
        (Some(3), Some(LISTS as u64))
    );
    assert_eq!(
        doc["kiln"]["wastedBytes"].as_u64(),
        Some((DATA + LISTS + JUNK) as u64)
    );

    // The text names the line and the fix.
    let out = env.kiln(&["analyze", "waste:1", "-f", df.to_str().unwrap()]);
    let t = ok(&out);
    assert!(
        t.contains(&format!("{}:3 RUN chmod 755 /app/data.bin", df.display())),
        "{t}"
    );
    assert!(t.contains("rm -rf /var/lib/apt/lists/*"), "{t}");
    assert!(t.contains("efficiency:"), "{t}");
    assert!(!t.contains("Evaluation:"), "no rules without --ci: {t}");
}

#[test]
fn ci_rules_use_dives_names_files_and_exit_status() {
    let Some(env) = store_env() else { return };
    wasteful(&env, "ci");
    // dive's defaults fail this image: a fifth of its user bytes is waste.
    let out = env.kiln(&["analyze", "ci:1", "--ci"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    let t = text(&out.stdout);
    assert!(t.contains("FAIL  highestUserWastedPercent"), "{t}");
    assert!(t.contains("FAIL ["), "{t}");
    // A `.dive-ci` that allows it passes; a flag overrides the file.
    let config = env.dir.join(".dive-ci");
    fs::write(
        &config,
        "rules:\n  # dive's keys\n  lowestEfficiency: 0.1\n  highestWastedBytes: 20MB\n  highestUserWastedPercent: \"0.99\"\n",
    )
    .unwrap();
    let cfg = config.to_str().unwrap();
    let out = env.kiln(&["analyze", "ci:1", "--ci", "--ci-config", cfg]);
    let t = ok(&out);
    assert!(t.contains("PASS  lowestEfficiency (0.1)"), "{t}");
    assert!(t.contains("PASS  highestWastedBytes (20MB)"), "{t}");
    assert!(t.contains("PASS [pass:3 skip:1]"), "{t}");
    let out = env.kiln(&[
        "analyze",
        "ci:1",
        "--ci-config",
        cfg,
        "--highestWastedBytes",
        "1kB",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stdout).contains("FAIL  highestWastedBytes (too many bytes wasted"));
    // kiln's own --max-size, in JSON.
    let out = env.kiln(&["analyze", "ci:1", "--max-size", "10kB", "--format", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["kiln"]["pass"], false);
    let max = doc["kiln"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "maxSize")
        .unwrap();
    assert_eq!(max["status"], "fail");
    // A bad file names its line and gives a hint; nothing panics.
    fs::write(
        &config,
        "rules:\n  lowestEfficiency: 0.1\n  highestWastedBytes: lots\n",
    )
    .unwrap();
    let out = env.kiln(&["analyze", "ci:1", "--ci-config", cfg]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!("{cfg}:3: invalid highestWastedBytes value `lots`")),
        "{err}"
    );
    assert!(err.contains("hint:"), "{err}");
    let out = env.kiln(&["analyze", "ci:1", "--lowestEfficiency", "2"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("--lowestEfficiency: invalid lowestEfficiency value `2`"));
}

#[test]
fn build_analyze_shows_what_each_stage_gave_the_final_image() {
    let Some(env) = store_env() else { return };
    let df = "FROM busybox AS builder\n\
              RUN mkdir /out && head -c 30000 /dev/zero > /out/tool && head -c 200000 /dev/zero > /objects\n\
              FROM busybox\n\
              COPY --from=builder /out/tool /usr/bin/tool\n";
    let ctx = env.context("stages", df, &[]);
    let out = env.kiln(&["build", "-q", "--analyze", ctx.to_str().unwrap()]);
    let t = ok(&out);
    assert!(t.starts_with("sha256:"), "the id first: {t}");
    assert!(t.contains("stages:"), "{t}");
    let builder = t
        .lines()
        .find(|l| l.trim_start().starts_with("builder"))
        .unwrap();
    assert!(
        builder.contains("1 file, 30kB (COPY --from at"),
        "{builder}"
    );
    assert!(builder.contains("Dockerfile:4"), "{builder}");
    assert!(
        t.contains("the other stages made 230kB; 30kB of it reached the final image"),
        "{t}"
    );
}

#[test]
fn diff_finds_what_made_two_builds_of_one_dockerfile_differ() {
    let Some(env) = store_env() else { return };
    let df = "FROM busybox\nCOPY same /same\nRUN head -c 64 /dev/urandom > /random && echo fixed > /fixed\n";
    let ctx = env.context("diff", df, &[("same", "same\n")]);
    let build = |tag: &str, epoch: &str| {
        let out = env.kiln_with(
            &[
                "build",
                "-q",
                "--no-cache",
                "-t",
                tag,
                ctx.to_str().unwrap(),
            ],
            &[("SOURCE_DATE_EPOCH", epoch)],
            None,
        );
        ok(&out);
    };
    build("d:1", "1000");
    build("d:2", "2000");
    let out = env.kiln(&["diff", "d:1", "d:2", "--format", "json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let entries = doc["entries"].as_array().unwrap();
    let entry = |p: &str| entries.iter().find(|e| e["path"] == p);
    let random = entry("/random").unwrap();
    assert_eq!(random["change"], "changed");
    assert_eq!(random["aspects"], serde_json::json!(["content", "mtime"]));
    assert_eq!(random["new"]["size"].as_u64(), Some(64));
    assert_ne!(random["old"]["digest"], random["new"]["digest"]);
    let fixed = entry("/fixed").unwrap();
    assert_eq!(
        fixed["aspects"],
        serde_json::json!(["mtime"]),
        "same bytes, later clamp"
    );
    assert_eq!(fixed["old"]["mtime"].as_u64(), Some(1000));
    // The copied file's bytes are the same; its mtime is clamped to each epoch.
    assert_eq!(
        entry("/same").unwrap()["aspects"],
        serde_json::json!(["mtime"])
    );
    // Text, and an image against itself.
    let t = text(&env.kiln(&["diff", "d:1", "d:2"]).stdout);
    assert!(t.contains("M  /random  (content 64B"), "{t}");
    assert!(
        t.contains("mtime 1970-01-01T00:16:40Z -> 1970-01-01T00:33:20Z"),
        "{t}"
    );
    let out = env.kiln(&["diff", "d:1", "d:1"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(text(&out.stdout), "no differences\n");
    // A file only one image has.
    let ctx2 = env.context(
        "diff2",
        "FROM busybox\nCOPY same /same\nCOPY same /extra\n",
        &[("same", "same\n")],
    );
    ok(&env.kiln(&["build", "-q", "-t", "d:3", ctx2.to_str().unwrap()]));
    let t = text(&env.kiln(&["diff", "d:1", "d:3"]).stdout);
    assert!(t.contains("A  /extra  (file, 5B)"), "{t}");
    assert!(t.contains("D  /random  (file, 64B)"), "{t}");
}

#[test]
fn unknown_images_are_clear_errors() {
    let Some(env) = store_env() else { return };
    let out = env.kiln(&["analyze", "nope:1"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("error: no such image `nope:1`"), "{err}");
    assert!(err.contains("hint: `kiln images`"), "{err}");
    let out = env.kiln(&["diff", "busybox", "nope:1"]);
    assert_eq!(out.status.code(), Some(2), "trouble is 2, as for diff(1)");
    assert!(text(&out.stderr).contains("no such image `nope:1`"));
}

/// dive's binary: `KILN_DIVE`, else where `scripts/dive.sh` keeps it. Missing: a failure
/// under `CI=true`, a loud skip otherwise.
fn dive() -> Option<std::path::PathBuf> {
    let path = std::env::var_os("KILN_DIVE").map_or_else(
        || {
            let cache = std::env::var_os("XDG_CACHE_HOME").map_or_else(
                || Path::new(&std::env::var_os("HOME").unwrap_or_default()).join(".cache"),
                std::path::PathBuf::from,
            );
            cache.join("kiln-test/dive-0.13.1")
        },
        std::path::PathBuf::from,
    );
    if path.is_file() {
        return Some(path);
    }
    kiln_test_support::missing(&format!(
        "dive not found at `{}` (run `bash scripts/dive.sh`)",
        path.display()
    ));
    None
}

/// The numbers, the inefficient files, the layers and the CI verdicts are dive's own, on
/// an image with a rewrite, a deleted file, a deleted directory and an opaque one.
#[test]
fn numbers_and_verdicts_match_dives_on_the_same_image() {
    let Some(env) = store_env() else { return };
    let Some(dive) = dive() else { return };
    let df = "FROM busybox\n\
              COPY app /app\n\
              RUN chmod 600 /app/data.bin && mkdir -p /d/e && head -c 5000 /dev/zero > /d/e/f && echo g > /d/g && head -c 3000 /dev/zero > /lone && echo t > /tmp/t\n\
              RUN rm -rf /d /lone && head -c 7000 /dev/zero > /app/data.bin\n\
              RUN rm -rf /tmp/* && echo x > /tmp/x\n";
    let ctx = env.context("dive", df, &[("app/small.txt", "small\n")]);
    fs::write(ctx.join("app/data.bin"), vec![1u8; 12_345]).unwrap();
    ok(&env.kiln(&["build", "-q", "-t", "dive:1", ctx.to_str().unwrap()]));
    let archive = env.dir.join("dive.tar");
    ok(&env.kiln(&[
        "save",
        "--format",
        "docker",
        "-o",
        archive.to_str().unwrap(),
        "dive:1",
    ]));
    let json = env.dir.join("dive.json");
    let out = std::process::Command::new(&dive)
        .args(["--source", "docker-archive"])
        .arg(&archive)
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let theirs: Value = serde_json::from_slice(&fs::read(&json).unwrap()).unwrap();
    let ours: Value =
        serde_json::from_str(&ok(&env.kiln(&["analyze", "dive:1", "--format", "json"]))).unwrap();
    for key in ["sizeBytes", "inefficientBytes", "efficiencyScore"] {
        assert_eq!(ours["image"][key], theirs["image"][key], "image.{key}");
    }
    let refs = |doc: &Value| {
        let mut v: Vec<String> = doc["image"]["fileReference"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| format!("{} {} {}", r["file"], r["count"], r["sizeBytes"]))
            .collect();
        v.sort();
        v
    };
    assert_eq!(refs(&ours), refs(&theirs));
    assert!(refs(&ours).len() >= 2, "{:?}", refs(&ours));
    let (ol, tl) = (
        ours["layer"].as_array().unwrap(),
        theirs["layer"].as_array().unwrap(),
    );
    assert_eq!(ol.len(), tl.len());
    for (o, t) in ol.iter().zip(tl) {
        for key in ["index", "id", "digestId", "sizeBytes", "command"] {
            assert_eq!(o[key], t[key], "layer {}: {key}", o["index"]);
        }
    }
    // The same rules give the same verdicts.
    for (i, rules) in [
        "rules:\n  lowestEfficiency: 0.5\n  highestUserWastedPercent: 0.9\n",
        "rules:\n  lowestEfficiency: 0.999\n",
        "rules:\n  lowestEfficiency: disabled\n  highestUserWastedPercent: disabled\n  highestWastedBytes: 10kB\n",
        "rules:\n  lowestEfficiency: disabled\n  highestUserWastedPercent: disabled\n  highestWastedBytes: 1MB\n",
    ]
    .iter()
    .enumerate()
    {
        let cfg = env.dir.join(format!("dive-ci-{i}"));
        fs::write(&cfg, rules).unwrap();
        let theirs = std::process::Command::new(&dive)
            .args(["--ci", "--source", "docker-archive"])
            .arg(&archive)
            .arg("--ci-config")
            .arg(&cfg)
            .output()
            .unwrap();
        let ours = env.kiln(&["analyze", "dive:1", "--ci", "--ci-config", cfg.to_str().unwrap()]);
        assert_eq!(
            ours.status.code(),
            theirs.status.code(),
            "{rules}\nkiln:\n{}\ndive:\n{}",
            text(&ours.stdout),
            text(&theirs.stdout)
        );
    }
}
