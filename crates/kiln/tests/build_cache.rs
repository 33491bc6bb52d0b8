//! The build cache through the real binary: what a rebuild reuses, what a change invalidates
//! (and nothing else), and how misses are explained in `--progress=plain`.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use kiln_test_support::{KilnEnv, busybox_rootfs_tar, run};

const DOCKERFILE: &str = "\
FROM busybox AS deps
COPY deps.txt /deps.txt
RUN cat /deps.txt > /deps.out
FROM busybox AS app
ARG MODE=dev
COPY src/ /src/
RUN echo \"$MODE\" > /mode && cat /src/main > /main.out
FROM busybox
COPY --from=deps /deps.out /
COPY --from=app /main.out /
";

struct Env {
    _keep: Option<KilnEnv>,
    store: PathBuf,
    ctx: PathBuf,
}

fn setup() -> Option<Env> {
    let kiln_env = KilnEnv::new(Path::new(env!("CARGO_BIN_EXE_kiln")), &[])?;
    let store = kiln_env.store.clone();
    let ctx = kiln_env.dir.join("ctx");
    fs::create_dir_all(ctx.join("src")).unwrap();
    fs::write(ctx.join("Dockerfile"), DOCKERFILE).unwrap();
    fs::write(ctx.join("deps.txt"), "deps v1\n").unwrap();
    fs::write(ctx.join("src/main"), "main v1\n").unwrap();
    fs::write(ctx.join("ignored.txt"), "x\n").unwrap();
    fs::write(ctx.join(".dockerignore"), "ignored.txt\n").unwrap();
    Some(Env {
        _keep: Some(kiln_env),
        store,
        ctx,
    })
}

fn kiln(store: &Path, args: &[&str]) -> String {
    run(Command::new(env!("CARGO_BIN_EXE_kiln"))
        .arg("--root")
        .arg(store)
        .args(args))
}

/// Build with plain progress; returns the image id and, per layer step
/// (`stage: INSTRUCTION`), `Ok(())` for a hit or `Err(reason)` for a miss.
fn build(env: &Env, extra: &[&str]) -> (String, BTreeMap<String, Result<(), String>>) {
    let (stdout, _, steps) = build_output(env, extra);
    (stdout, steps)
}

/// `build --explain` with plain progress: the summary (the last line of stderr; stdout is
/// empty) and the steps as [`build`] gives them.
fn explain(env: &Env, extra: &[&str]) -> (String, BTreeMap<String, Result<(), String>>) {
    let mut args = vec!["--explain"];
    args.extend_from_slice(extra);
    let (stdout, stderr, steps) = build_output(env, &args);
    assert_eq!(stdout, "", "--explain prints nothing on stdout");
    let summary = stderr.lines().last().unwrap_or_default().to_owned();
    (summary, steps)
}

/// Build with plain progress: stdout (trimmed), stderr and the steps as [`build`] gives them.
fn build_output(
    env: &Env,
    extra: &[&str],
) -> (String, String, BTreeMap<String, Result<(), String>>) {
    let out = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .arg("--root")
        .arg(&env.store)
        .args(["build", "--progress=plain"])
        .args(extra)
        .arg(&env.ctx)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    let mut names = BTreeMap::new();
    let mut steps = BTreeMap::new();
    for line in stderr.lines() {
        let Some((id, rest)) = line.strip_prefix('#').and_then(|l| l.split_once(' ')) else {
            continue;
        };
        if let Some(title) = rest.strip_prefix('[') {
            let (stage_pos, name) = title.split_once("] ").unwrap();
            let stage = stage_pos.split(' ').next().unwrap();
            names.insert(id.to_owned(), format!("{stage}: {name}"));
        } else if rest == "CACHED" {
            steps.insert(names[id].clone(), Ok(()));
        } else if let Some(reason) = rest.strip_prefix("cache miss: ") {
            steps.insert(names[id].clone(), Err(reason.to_owned()));
        }
    }
    (
        String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        stderr,
        steps,
    )
}

fn hits(steps: &BTreeMap<String, Result<(), String>>) -> Vec<&str> {
    steps
        .iter()
        .filter(|(_, r)| r.is_ok())
        .map(|(k, _)| k.as_str())
        .collect()
}

fn miss<'a>(steps: &'a BTreeMap<String, Result<(), String>>, step: &str) -> &'a str {
    match steps.get(step) {
        Some(Err(reason)) => reason,
        other => panic!("`{step}` should miss, got {other:?} in {steps:#?}"),
    }
}

#[test]
fn rebuilds_reuse_exactly_what_did_not_change() {
    let Some(env) = setup() else { return };
    let (first, steps) = build(&env, &[]);
    assert_eq!(steps.len(), 6, "six layer steps: {steps:#?}");
    assert!(hits(&steps).is_empty());

    // Nothing changed: every step is reused and the image is the same.
    let (second, steps) = build(&env, &[]);
    assert_eq!(hits(&steps).len(), 6, "{steps:#?}");
    assert_eq!(first, second, "same image digest");

    // An ignored file changed: nothing is invalidated.
    fs::write(env.ctx.join("ignored.txt"), "changed\n").unwrap();
    let (third, steps) = build(&env, &[]);
    assert_eq!(hits(&steps).len(), 6, "{steps:#?}");
    assert_eq!(first, third);

    // One context file changed: the COPY that copies it and what follows it in its stage and
    // in the stages that use it; nothing else.
    fs::write(env.ctx.join("src/main"), "main v2\n").unwrap();
    let (_, steps) = build(&env, &[]);
    assert!(miss(&steps, "app: COPY src/ /src/").contains("file `/src/main` changed"));
    assert!(
        miss(
            &steps,
            "app: RUN echo \"$MODE\" > /mode && cat /src/main > /main.out"
        )
        .contains("previous step changed")
    );
    assert!(
        miss(&steps, "stage-2: COPY --from=app /main.out /").contains("file `/main.out` changed")
    );
    assert_eq!(
        hits(&steps),
        [
            "deps: COPY deps.txt /deps.txt",
            "deps: RUN cat /deps.txt > /deps.out",
            "stage-2: COPY --from=deps /deps.out /"
        ]
    );

    // A build arg changed: only the steps that see it. The RUN re-runs, but the file the
    // last stage copies from it comes out the same, so that COPY (keyed on exactly the files
    // it copies) is reused: finer than BuildKit, which rebuilds it.
    let (_, steps) = build(&env, &["--build-arg", "MODE=prod"]);
    assert!(
        miss(
            &steps,
            "app: RUN echo \"$MODE\" > /mode && cat /src/main > /main.out"
        )
        .contains("build arg `MODE` changed")
    );
    assert_eq!(
        hits(&steps),
        [
            "app: COPY src/ /src/",
            "deps: COPY deps.txt /deps.txt",
            "deps: RUN cat /deps.txt > /deps.out",
            "stage-2: COPY --from=app /main.out /",
            "stage-2: COPY --from=deps /deps.out /",
        ]
    );

    // --no-cache: everything runs; --no-cache-filter: only that stage (and what it feeds,
    // whose inputs are unchanged here, so it hits again).
    let (_, steps) = build(&env, &["--build-arg", "MODE=prod", "--no-cache"]);
    assert!(hits(&steps).is_empty(), "{steps:#?}");
    assert!(miss(&steps, "deps: COPY deps.txt /deps.txt").contains("--no-cache"));
    let (_, steps) = build(
        &env,
        &["--build-arg", "MODE=prod", "--no-cache-filter", "deps"],
    );
    assert!(miss(&steps, "deps: RUN cat /deps.txt > /deps.out").contains("--no-cache-filter deps"));
    assert!(hits(&steps).contains(&"app: COPY src/ /src/"));
}

#[test]
fn a_changed_base_image_invalidates_its_stage() {
    let Some(env) = setup() else { return };
    build(&env, &[]);
    // Another busybox: one more file in the rootfs gives a new manifest digest.
    let tmp = tempfile::tempdir().unwrap();
    let rootfs = busybox_rootfs_tar(tmp.path());
    let dir = tmp.path().join("more");
    fs::create_dir_all(&dir).unwrap();
    run(Command::new("tar")
        .arg("-xf")
        .arg(&rootfs)
        .arg("-C")
        .arg(&dir));
    fs::write(dir.join("etc/extra"), "x\n").unwrap();
    let tar = tmp.path().join("more.tar");
    run(Command::new("tar")
        .arg("-C")
        .arg(&dir)
        .arg("-cf")
        .arg(&tar)
        .arg("."));
    kiln(
        &env.store,
        &["import", tar.to_str().unwrap(), "busybox:latest"],
    );
    let (_, steps) = build(&env, &[]);
    assert!(
        miss(&steps, "deps: COPY deps.txt /deps.txt").contains("base image changed"),
        "{steps:#?}"
    );
    assert!(miss(&steps, "app: COPY src/ /src/").contains("base image changed"));
}

#[test]
fn an_exported_cache_rebuilds_on_a_fresh_store_without_running_anything() {
    let Some(env) = setup() else { return };
    let exported = env.store.parent().unwrap().join("exported-cache");
    let base = env.store.parent().unwrap().join("busybox.tar");
    let first = kiln(
        &env.store,
        &[
            "build",
            "-q",
            "--cache-to",
            // Every stage's steps: `mode=min`, the default, carries the target's only.
            &format!("type=local,dest={},mode=max", exported.display()),
            env.ctx.to_str().unwrap(),
        ],
    )
    .trim()
    .to_owned();
    // Issue 12: the layers kiln stores plain leave compressed, gzip by default, or as the
    // export says; the same records either way.
    let zstd = env.store.parent().unwrap().join("exported-zstd");
    kiln(
        &env.store,
        &[
            "build",
            "-q",
            "--cache-to",
            &format!(
                "type=local,dest={},mode=max,compression=zstd,compression-level=5",
                zstd.display()
            ),
            env.ctx.to_str().unwrap(),
        ],
    );
    for (dir, media_type, magic) in [
        (
            &exported,
            "application/vnd.oci.image.layer.v1.tar+gzip",
            &[0x1f, 0x8b][..],
        ),
        (
            &zstd,
            "application/vnd.oci.image.layer.v1.tar+zstd",
            &[0x28, 0xb5, 0x2f, 0xfd][..],
        ),
    ] {
        let blob = |d: &str| fs::read(dir.join("blobs/sha256").join(&d[7..])).unwrap();
        let index: serde_json::Value =
            serde_json::from_slice(&fs::read(dir.join("index.json")).unwrap()).unwrap();
        let manifest: serde_json::Value =
            serde_json::from_slice(&blob(index["manifests"][0]["digest"].as_str().unwrap()))
                .unwrap();
        let layers: Vec<_> = manifest["layers"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|l| l["mediaType"].as_str().unwrap().contains("layer"))
            .collect();
        assert!(layers.len() >= 4, "{manifest}");
        for l in layers {
            assert_eq!(l["mediaType"], media_type, "{}", dir.display());
            assert!(blob(l["digest"].as_str().unwrap()).starts_with(magic));
        }
    }
    kiln(
        &env.store,
        &[
            "save",
            "--format",
            "oci",
            "-o",
            base.to_str().unwrap(),
            "busybox:latest",
        ],
    );
    // Another machine: a fresh store with the same base image (as a registry would give it).
    let other = Env {
        store: env.store.parent().unwrap().join("other-store"),
        ctx: env.ctx.clone(),
        _keep: None,
    };
    kiln(&other.store, &["load", "-i", base.to_str().unwrap()]);
    // Issue 12: the base is unpacked as it enters the store, not by the first build.
    let unpacked: Vec<String> = fs::read_dir(other.store.join("snapshots"))
        .unwrap()
        .filter_map(|e| fs::read_to_string(e.unwrap().path().join("diff_id")).ok())
        .collect();
    let inspect = kiln(&other.store, &["inspect", "busybox:latest"]);
    let config: serde_json::Value = serde_json::from_str(&inspect).unwrap();
    let diff_ids = config[0]["RootFS"]["Layers"]
        .as_array()
        .or_else(|| config["rootfs"]["diff_ids"].as_array())
        .unwrap_or_else(|| panic!("no diff_ids in {inspect}"));
    assert!(!diff_ids.is_empty());
    for d in diff_ids {
        assert!(
            unpacked.iter().any(|u| u == d.as_str().unwrap()),
            "layer {d} is unpacked by `kiln load`: {unpacked:?}"
        );
    }
    let (second, steps) = build(
        &other,
        &[
            "--cache-from",
            &format!("type=local,src={}", exported.display()),
        ],
    );
    assert_eq!(
        hits(&steps).len(),
        6,
        "every step reused, no RUN ran: {steps:#?}"
    );
    assert_eq!(first, second, "the same image");
}

#[test]
fn prune_and_du_shrink_the_cache_and_keep_images() {
    let Some(env) = setup() else { return };
    kiln(
        &env.store,
        &["build", "-q", "-t", "kept:1", env.ctx.to_str().unwrap()],
    );
    let du = kiln(&env.store, &["du"]);
    assert!(du.contains("records:      6"), "{du}");
    // A registry download cut short (which the next pull would resume) goes too.
    let partial = env
        .store
        .join("tmp")
        .join(format!("download-{}", "ab".repeat(32)));
    fs::create_dir_all(&partial).unwrap();
    fs::write(partial.join(".lock"), b"").unwrap();
    fs::write(partial.join("data"), [0u8; 2048]).unwrap();
    let out = kiln(&env.store, &["prune", "--all"]);
    assert!(out.starts_with("removed 6 cache records"), "{out}");
    assert!(
        out.contains("removed 1 partial downloads; freed 2"),
        "{out}"
    );
    assert!(!partial.exists());
    assert!(kiln(&env.store, &["du"]).contains("records:      0"));
    // The image is intact and still runs; the next build runs its steps again.
    kiln(&env.store, &["fsck"]);
    assert!(kiln(&env.store, &["images"]).contains("kept"));
    let (_, steps) = build(&env, &[]);
    assert!(hits(&steps).is_empty(), "{steps:#?}");
    let bad = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .arg("--root")
        .arg(&env.store)
        .args(["prune", "--keep-storage", "ten"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&bad.stderr).contains("invalid size `ten`"));
}

#[test]
fn a_failed_build_keeps_the_steps_that_finished() {
    let Some(env) = setup() else { return };
    let dockerfile = |last: &str| {
        format!("FROM busybox\nCOPY deps.txt /deps.txt\nRUN cat /deps.txt > /out\nRUN {last}\n")
    };
    fs::write(env.ctx.join("Dockerfile"), dockerfile("exit 3")).unwrap();
    // Repository, tag and id of every image (not the age).
    let images = || -> Vec<String> {
        kiln(&env.store, &["images"])
            .lines()
            .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
            .collect()
    };
    let before = images();
    let failed = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .arg("--root")
        .arg(&env.store)
        .args(["build", "--progress=plain", "-t", "never:made"])
        .arg(&env.ctx)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(
        !failed.status.success() && stderr.contains("exit code: 3"),
        "{stderr}"
    );
    // No image and no tag from the failed build, and the store checks out.
    assert_eq!(images(), before);
    kiln(&env.store, &["fsck"]);
    // The failing step fixed: the steps before it are reused, as with BuildKit.
    fs::write(env.ctx.join("Dockerfile"), dockerfile("true")).unwrap();
    let (_, steps) = build(&env, &[]);
    assert_eq!(
        hits(&steps),
        [
            "stage-0: COPY deps.txt /deps.txt",
            "stage-0: RUN cat /deps.txt > /out"
        ],
        "{steps:#?}"
    );
    let reason = miss(&steps, "stage-0: RUN true");
    // It never finished, so nothing was remembered of it.
    assert!(reason.contains("first build"), "{reason}");
}

#[test]
fn a_context_bind_mount_is_keyed_on_the_files_it_shows() {
    let Some(env) = setup() else { return };
    fs::write(
        env.ctx.join("Dockerfile"),
        "FROM busybox AS part\n\
         RUN --mount=type=bind,source=src,target=/s cat /s/main > /seen\n\
         FROM busybox AS all\n\
         RUN --mount=type=bind,target=/ctx cat /ctx/deps.txt > /deps\n",
    )
    .unwrap();
    let src = "part: RUN --mount=type=bind,source=src,target=/s cat /s/main > /seen";
    let all = "all: RUN --mount=type=bind,target=/ctx cat /ctx/deps.txt > /deps";
    let (_, steps) = build(&env, &["--target", "part"]);
    assert!(hits(&steps).is_empty(), "{steps:#?}");
    build(&env, &[]);
    let (_, steps) = build(&env, &[]);
    assert_eq!(hits(&steps), [all], "{steps:#?}");
    let (_, steps) = build(&env, &["--target", "part"]);
    assert_eq!(hits(&steps), [src], "{steps:#?}");
    // A file outside `src`: only the mount of the whole context sees it.
    fs::write(env.ctx.join("deps.txt"), "deps v2\n").unwrap();
    let (_, steps) = build(&env, &[]);
    assert!(miss(&steps, all).contains("/ctx"), "{steps:#?}");
    let (_, steps) = build(&env, &["--target", "part"]);
    assert_eq!(hits(&steps), [src], "{steps:#?}");
    // A file in `src`: both; an ignored file: neither.
    fs::write(env.ctx.join("src/main"), "main v2\n").unwrap();
    fs::write(env.ctx.join("ignored.txt"), "changed\n").unwrap();
    let (_, steps) = build(&env, &["--target", "part"]);
    assert!(miss(&steps, src).contains("/s"), "{steps:#?}");
    let (_, steps) = build(&env, &[]);
    assert!(hits(&steps).is_empty(), "{steps:#?}");
    fs::write(env.ctx.join("ignored.txt"), "changed again\n").unwrap();
    let (_, steps) = build(&env, &[]);
    assert_eq!(hits(&steps), [all], "{steps:#?}");
}

/// A mount's source is a literal path (not a glob: its key must not come from an empty
/// selection) cleaned before symlinks are followed, as BuildKit cleans a mount's selector.
#[test]
fn a_bind_mount_source_is_literal_and_cleaned_before_links() {
    let Some(env) = setup() else { return };
    let ctx = &env.ctx;
    fs::write(ctx.join("data[1].csv"), "v1\n").unwrap();
    for d in ["b", "sub/dir", "sub/b"] {
        fs::create_dir_all(ctx.join(d)).unwrap();
    }
    fs::write(ctx.join("b/f"), "top\n").unwrap();
    fs::write(ctx.join("sub/b/f"), "under the link\n").unwrap();
    std::os::unix::fs::symlink("sub/dir", ctx.join("a")).unwrap();
    fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox\n\
         RUN --mount=type=bind,source=data[1].csv,target=/d cat /d > /csv\n\
         RUN --mount=type=bind,source=a/../b,target=/m cat /m/f > /f\n",
    )
    .unwrap();
    let out = |n: u32| env.store.with_file_name(format!("out{n}"));
    let read = |n: u32, f: &str| fs::read_to_string(out(n).join(f)).unwrap();
    build(&env, &["-o", out(1).to_str().unwrap()]);
    assert_eq!(read(1, "csv"), "v1\n");
    assert_eq!(
        read(1, "f"),
        "top\n",
        "`a/../b` is `b`, whatever `a` links to"
    );
    fs::write(ctx.join("data[1].csv"), "v2\n").unwrap();
    build(&env, &["-o", out(2).to_str().unwrap()]);
    assert_eq!(
        read(2, "csv"),
        "v2\n",
        "a changed file is never a stale hit"
    );
}

/// A COPY whose files, as written, are not the files its key was made from (a file changed
/// between the two reads; here the stat cache is made to vouch for other content, which is
/// what a change within one timestamp tick looks like): the layer is used, and not recorded
/// under that key.
#[test]
fn a_copy_whose_files_changed_while_it_ran_is_not_cached() {
    use std::os::unix::fs::MetadataExt;
    let Some(env) = setup() else { return };
    fs::write(
        env.ctx.join("Dockerfile"),
        "FROM busybox\nCOPY deps.txt /deps.txt\n",
    )
    .unwrap();
    let file = env.ctx.join("deps.txt");
    let meta = fs::symlink_metadata(&file).unwrap();
    let db = rusqlite::Connection::open(env.store.join("cache.db")).unwrap();
    db.execute_batch(
        "CREATE TABLE IF NOT EXISTS stat_cache (root TEXT NOT NULL, path BLOB NOT NULL,
         ino INTEGER NOT NULL, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,
         ctime_ns INTEGER NOT NULL, hashed_ns INTEGER NOT NULL, sha256 BLOB NOT NULL,
         PRIMARY KEY (root, path)) WITHOUT ROWID;",
    )
    .unwrap();
    // The row vouches for the file's current stat, with the hash of other bytes.
    let fake = <sha2::Sha256 as sha2::Digest>::digest(b"other bytes\n").to_vec();
    db.execute(
        "INSERT INTO stat_cache VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        rusqlite::params![
            kiln_cache::context_root_id(&env.ctx).unwrap(),
            b"deps.txt".to_vec(),
            meta.ino().cast_signed(),
            meta.size().cast_signed(),
            meta.mtime() * 1_000_000_000 + meta.mtime_nsec(),
            meta.ctime() * 1_000_000_000 + meta.ctime_nsec(),
            i64::MAX / 2,
            fake,
        ],
    )
    .unwrap();
    drop(db);
    for round in 0..2 {
        let out = Command::new(env!("CARGO_BIN_EXE_kiln"))
            .arg("--root")
            .arg(&env.store)
            .args(["build", "--progress=plain", "-o"])
            .arg(env.store.with_file_name(format!("out{round}")))
            .arg(&env.ctx)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert!(
            stderr.contains("files changed while this step copied them")
                && !stderr.contains("CACHED"),
            "round {round}: {stderr}"
        );
        // What was written is the file as it is.
        let copied = env
            .store
            .with_file_name(format!("out{round}"))
            .join("deps.txt");
        assert_eq!(fs::read_to_string(copied).unwrap(), "deps v1\n");
    }
}

#[test]
fn add_with_a_checksum_is_not_downloaded_again_on_a_hit() {
    use std::sync::atomic::Ordering::SeqCst;
    const BODY: &[u8] = b"release 1.0\n";
    let Some(env) = setup() else { return };
    let sum = kiln_layer::Digest::of(BODY).to_string();
    let (url, requests) = kiln_test_support::serve_http(BODY);
    let dockerfile = |checksum: &str| {
        format!("FROM busybox\nADD --checksum={checksum} {url}/pkg/release.txt /opt/\n")
    };
    fs::write(env.ctx.join("Dockerfile"), dockerfile(&sum)).unwrap();
    let (first, steps) = build(&env, &[]);
    assert!(hits(&steps).is_empty(), "{steps:#?}");
    assert_eq!(requests.load(SeqCst), 1);
    // Rebuilt: reused on the checksum alone, nothing fetched, the same image.
    let (second, steps) = build(&env, &[]);
    assert_eq!(hits(&steps).len(), 1, "{steps:#?}");
    assert_eq!(requests.load(SeqCst), 1, "downloaded again on a hit");
    assert_eq!(first, second);
    // Another checksum is another key: fetched, and refused when the content disagrees.
    let wrong = format!("sha256:{}", "0".repeat(64));
    fs::write(env.ctx.join("Dockerfile"), dockerfile(&wrong)).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .arg("--root")
        .arg(&env.store)
        .args(["build", "-q"])
        .arg(&env.ctx)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains(&wrong), "{stderr}");
    assert_eq!(requests.load(SeqCst), 2);
}

#[test]
fn explain_reports_every_step_and_builds_nothing() {
    let Some(env) = setup() else { return };
    build(&env, &["-t", "explained:1"]);
    fs::write(env.ctx.join("deps.txt"), "deps v2\n").unwrap();
    let images_before = kiln(&env.store, &["images", "--format", "json"]);
    let (said, steps) = explain(&env, &[]);
    assert_eq!(said, "some steps would run (see above); nothing was built");
    assert!(miss(&steps, "deps: COPY deps.txt /deps.txt").contains("file `/deps.txt` changed"));
    assert!(
        miss(&steps, "deps: RUN cat /deps.txt > /deps.out")
            .contains("an earlier step of this stage would run")
    );
    assert!(
        miss(&steps, "stage-2: COPY --from=deps /deps.out /")
            .contains("stage `deps` would be rebuilt")
    );
    assert_eq!(
        hits(&steps),
        [
            "app: COPY src/ /src/",
            "app: RUN echo \"$MODE\" > /mode && cat /src/main > /main.out"
        ]
    );
    assert_eq!(
        kiln(&env.store, &["images", "--format", "json"]),
        images_before,
        "nothing stored"
    );
    // The explanation recorded nothing: the real build still misses for the same reason.
    let (_, steps) = build(&env, &[]);
    assert!(miss(&steps, "deps: COPY deps.txt /deps.txt").contains("file `/deps.txt` changed"));
    let (said, _) = explain(&env, &[]);
    assert_eq!(said, "every step is cached; nothing was built");
}

#[test]
fn explain_makes_no_mounts() {
    let Some(env) = setup() else { return };
    fs::write(
        env.ctx.join("Dockerfile"),
        "FROM busybox\nRUN --mount=type=cache,target=/c echo hi > /c/x\n",
    )
    .unwrap();
    let (said, steps) = explain(&env, &[]);
    assert_eq!(said, "some steps would run (see above); nothing was built");
    assert_eq!(steps.len(), 1, "{steps:?}");
    assert!(
        !env.store.join("cache-mounts").exists(),
        "--explain made a cache mount"
    );
}

#[test]
fn explain_as_json_lists_cached_and_would_run_steps() {
    let Some(env) = setup() else { return };
    build(&env, &[]);
    fs::write(env.ctx.join("deps.txt"), "deps v2\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .arg("--root")
        .arg(&env.store)
        .args(["build", "--progress=plain", "--explain", "--format", "json"])
        .arg(&env.ctx)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    assert_eq!(doc["would_run"], serde_json::json!(true));
    let steps = doc["steps"].as_array().unwrap();
    let find = |stage: &str, instruction: &str| {
        steps
            .iter()
            .find(|s| s["stage"] == stage && s["instruction"] == instruction)
            .unwrap_or_else(|| panic!("no `{stage}: {instruction}` in {steps:#?}"))
    };
    let cached = find("app", "COPY src/ /src/");
    assert_eq!(cached["status"], "cached");
    assert_eq!(cached["reason"], serde_json::Value::Null);
    assert_eq!((&cached["line"], &cached["step"]), (&6.into(), &3.into()));
    let changed = find("deps", "COPY deps.txt /deps.txt");
    assert_eq!(changed["status"], "would_run");
    assert_eq!(changed["reason"]["kind"], "changed");
    assert!(
        changed["reason"]["changes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["component"] == "file"
                && c["name"] == "/deps.txt"
                && c["delta"] == "changed"),
        "{changed:#}"
    );
    let after = find("deps", "RUN cat /deps.txt > /deps.out");
    assert_eq!(after["reason"]["kind"], "earlier_step");
    let reader = find("stage-2", "COPY --from=deps /deps.out /");
    assert_eq!(reader["reason"]["kind"], "stage_rebuilt");
    assert_eq!(reader["reason"]["stage"], "deps");
    assert_eq!(steps.len(), 6, "{steps:#?}");
    // The summary line is for people; with `--format json` only the document is printed.
    assert!(!stderr.contains("nothing was built"), "{stderr}");
}

#[test]
fn format_without_explain_is_a_usage_error() {
    let Some(env) = setup() else { return };
    let out = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .arg("--root")
        .arg(&env.store)
        .args(["build", "--format", "json"])
        .arg(&env.ctx)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--explain"), "{stderr}");
}

/// Issue 12: a rebuild's `COPY --from` of an unchanged stage reads the 64-byte Merkle root
/// kept beside the source's snapshot, not the source's files nor the memo of every file's
/// hash. Shown by taking both away after the first build: the rebuild still hits. (Reading
/// either would have hashed the emptied tree anew, or failed to decode, and missed.)
#[test]
fn copy_from_an_unchanged_stage_reads_only_its_kept_root() {
    let Some(env) = setup() else { return };
    let (first, _) = build(&env, &[]);
    let snapshots = env.store.join("snapshots");
    let mut roots = 0;
    for snap in fs::read_dir(&snapshots).unwrap() {
        let snap = snap.unwrap().path();
        if let Ok(memos) = fs::read_dir(snap.join("selections")) {
            for memo in memos {
                let memo = memo.unwrap().path();
                if fs::metadata(&memo).unwrap().len() == 64 {
                    roots += 1;
                } else {
                    fs::write(&memo, b"damaged").unwrap();
                }
            }
        }
    }
    assert!(roots >= 2, "a root memo per COPY --from source");
    for out in ["deps.out", "main.out"] {
        for snap in fs::read_dir(&snapshots).unwrap() {
            let _ = fs::remove_file(snap.unwrap().path().join("fs").join(out));
        }
    }
    let (again, steps) = build(&env, &[]);
    assert_eq!(
        hits(&steps),
        [
            "app: COPY src/ /src/",
            "app: RUN echo \"$MODE\" > /mode && cat /src/main > /main.out",
            "deps: COPY deps.txt /deps.txt",
            "deps: RUN cat /deps.txt > /deps.out",
            "stage-2: COPY --from=app /main.out /",
            "stage-2: COPY --from=deps /deps.out /",
        ]
    );
    assert_eq!(first, again);
}
