//! `RUN --mount` and the `#!` heredoc through the real binary: bind (context, stage, image;
//! read-only, and rw with writes discarded), cache (persisted across builds, id, sharing,
//! mode/uid/gid, seeded from a stage), tmpfs, secret (file and env, required, and a search of
//! every blob of the store for the secret's bytes), ssh (refused clearly). Needs root (RUN
//! steps run in namespaces); under `CI=true` a missing prerequisite fails.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use kiln_test_support::{KilnEnv, ok, text};

/// A store with busybox for this binary (see `kiln_test_support::KilnEnv`).
fn store_env() -> Option<KilnEnv> {
    KilnEnv::new(Path::new(env!("CARGO_BIN_EXE_kiln")), &["gzip"])
}

trait Mounts {
    fn kiln(&self, args: &[&str], env: &[(&str, &str)]) -> Output;
    fn build_local(&self, ctx: &Path, extra: &[&str], env: &[(&str, &str)]) -> PathBuf;
}

impl Mounts for KilnEnv {
    fn kiln(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        self.kiln_with(args, env, None)
    }

    /// Builds `ctx` into a fresh local directory and returns it; `--no-cache` unless `extra`
    /// says `--cache` (which is not passed on).
    fn build_local(&self, ctx: &Path, extra: &[&str], env: &[(&str, &str)]) -> PathBuf {
        let out = self.dir.join(format!(
            "out-{}-{}",
            ctx.file_name().unwrap().to_string_lossy(),
            fs::read_dir(&self.dir).unwrap().count()
        ));
        let cached = extra.contains(&"--cache");
        let extra: Vec<&str> = extra.iter().copied().filter(|a| *a != "--cache").collect();
        let extra = extra.as_slice();
        let mut args = vec!["build", "--progress=plain", "-o", out.to_str().unwrap()];
        if !cached {
            args.push("--no-cache");
        }
        args.extend_from_slice(extra);
        args.push(ctx.to_str().unwrap());
        ok(&Mounts::kiln(self, &args, env));
        out
    }
}

fn read(dir: &Path, p: &str) -> String {
    fs::read_to_string(dir.join(p)).unwrap_or_else(|e| panic!("{p}: {e}"))
}

#[test]
fn bind_mounts_from_context_stage_and_image_leave_no_trace() {
    let Some(env) = store_env() else { return };
    let ctx = env.context(
        "bind",
        "FROM busybox AS tools\n\
         RUN mkdir /tools && echo from-stage > /tools/f\n\
         FROM busybox\n\
         RUN --mount=target=/ctx cat /ctx/in.txt > /a && ls /ctx > /ctx-listing\n\
         RUN --mount=type=bind,from=tools,source=/tools,target=/t cat /t/f > /b\n\
         RUN --mount=type=bind,from=busybox,source=/etc/passwd,target=/p head -1 /p > /c\n\
         RUN --mount=type=bind,source=.,target=/w,rw echo x > /w/written && rm /w/in.txt && echo ok > /d\n\
         RUN --mount=type=bind,from=tools,source=/tools,target=/t2,rw echo y > /t2/new && cat /t2/new > /e\n\
         RUN --mount=target=/ro (echo z > /ro/z) 2>/dev/null || echo refused > /g\n\
         WORKDIR /app\n\
         RUN --mount=source=sub,target=rel cat rel/deep > /h\n\
         COPY --from=tools /tools /tools-after\n",
        &[
            ("in.txt", "from-context\n"),
            ("ignored.txt", "secretish\n"),
            (".dockerignore", "ignored.txt\n"),
            ("sub/deep", "deep\n"),
        ],
    );
    let out = env.build_local(&ctx, &[], &[]);
    assert_eq!(read(&out, "a"), "from-context\n");
    let listing = read(&out, "ctx-listing");
    assert!(
        listing.contains("in.txt") && !listing.contains("ignored.txt"),
        "{listing}"
    );
    assert_eq!(read(&out, "b"), "from-stage\n");
    assert_eq!(read(&out, "c"), "root:x:0:0:root:/root:/bin/sh\n");
    assert_eq!(read(&out, "d"), "ok\n");
    assert_eq!(read(&out, "e"), "y\n");
    assert_eq!(read(&out, "g"), "refused\n");
    assert_eq!(read(&out, "h"), "deep\n");
    // Writes to rw binds went nowhere: not the context, not the stage.
    assert!(ctx.join("in.txt").exists() && !ctx.join("written").exists());
    assert!(!out.join("tools-after/new").exists());
    // No mount point reached a layer.
    for p in ["ctx", "t", "p", "w", "t2", "ro", "app/rel"] {
        assert!(!out.join(p).exists(), "/{p} reached the image");
    }

    let missing = env.context(
        "bind-missing",
        "FROM busybox\nRUN --mount=source=nope,target=/x true\n",
        &[],
    );
    let o = Mounts::kiln(&env, &["build", "-q", missing.to_str().unwrap()], &[]);
    assert!(!o.status.success());
    assert!(
        text(&o.stderr).contains("bind mount source `nope` not found in the build context"),
        "{}",
        text(&o.stderr)
    );

    // A mount's `from=` names a stage by name only (BuildKit's `findStateByName`): `0` is
    // an image, not the first stage, which nothing else needs here and is never built.
    let by_number = env.context(
        "bind-from-number",
        "FROM busybox AS tools\nRUN mkdir /tools\nFROM busybox\n\
         RUN --mount=type=bind,from=0,target=/t true\n",
        &[],
    );
    let o = Mounts::kiln(&env, &["build", "-q", by_number.to_str().unwrap()], &[]);
    assert!(!o.status.success());
    assert!(
        text(&o.stderr).contains("base image `0` is not in the store"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn cache_mounts_persist_across_builds_and_leave_no_trace() {
    let Some(env) = store_env() else { return };
    let ctx = env.context(
        "cache",
        "FROM busybox AS seed\n\
         RUN mkdir /s && echo seeded > /s/f\n\
         FROM busybox\n\
         ARG RUN_ID\n\
         RUN --mount=type=cache,target=/cache,uid=1000,gid=50,mode=0700 \
             stat -c '%u %g %a' /cache > /stat && echo run >> /cache/count && cat /cache/count > /seen && true $RUN_ID\n\
         RUN --mount=type=cache,id=common,target=/x,sharing=locked echo a > /x/f\n\
         RUN --mount=type=cache,id=common,target=/y,sharing=private cat /y/f > /common\n\
         RUN --mount=type=cache,from=seed,source=/s,target=/z cat /z/f > /seeded\n\
         RUN --mount=type=cache,target=/cache,ro (echo w > /cache/w) 2>/dev/null || echo ro > /ro\n",
        &[],
    );
    let first = env.build_local(&ctx, &[], &[]);
    assert_eq!(read(&first, "stat"), "1000 50 700\n");
    assert_eq!(read(&first, "seen"), "run\n");
    assert_eq!(read(&first, "common"), "a\n");
    assert_eq!(read(&first, "seeded"), "seeded\n");
    assert_eq!(read(&first, "ro"), "ro\n");
    for p in ["cache", "x", "y", "z"] {
        assert!(!first.join(p).exists(), "/{p} reached the image");
    }
    // A step that runs again (another RUN_ID), without --no-cache, finds what the first left.
    let second = env.build_local(&ctx, &["--cache", "--build-arg", "RUN_ID=2"], &[]);
    assert_eq!(read(&second, "seen"), "run\nrun\n");
    // Under --no-cache, a cache mount starts empty (moby/buildkit#5305).
    let third = env.build_local(&ctx, &[], &[]);
    assert_eq!(read(&third, "seen"), "run\n");
    // The caches live in the store, one directory per id, and per seed for a seeded one
    // (`--no-cache` may rebuild the seed stage into a different layer, and a new `from` ref
    // gets a new cache, as in BuildKit).
    let mut ids: Vec<_> = fs::read_dir(env.store.join("cache-mounts"))
        .unwrap()
        .map(|e| fs::read_to_string(e.unwrap().path().join("id")).unwrap())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids, ["/cache", "/z", "common"]);
}

#[test]
fn tmpfs_mounts_are_sized_and_leave_no_trace() {
    let Some(env) = store_env() else { return };
    let ctx = env.context(
        "tmpfs",
        "FROM busybox\n\
         RUN --mount=type=tmpfs,target=/scratch,size=1m echo t > /scratch/t && \
             df -k /scratch | tail -1 | awk '{print $2}' > /size && ls /scratch > /listing\n",
        &[],
    );
    let out = env.build_local(&ctx, &[], &[]);
    assert_eq!(read(&out, "size"), "1024\n");
    assert_eq!(read(&out, "listing"), "t\n");
    assert!(!out.join("scratch").exists());
}

const SECRET: &str = "kiln-S3CRET-6d1f0c2a-do-not-leak";

/// Every file under `dir`, gzip layers decompressed too.
fn search(dir: &Path, needle: &[u8], hits: &mut Vec<String>) {
    for e in fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let p = e.path();
        let ft = e.file_type().unwrap();
        if ft.is_dir() {
            search(&p, needle, hits);
        } else if ft.is_file() {
            let bytes = fs::read(&p).unwrap();
            let decompressed = Command::new("gzip")
                .args(["-dcf"])
                .stdin(fs::File::open(&p).unwrap())
                .output()
                .map(|o| o.stdout)
                .unwrap_or_default();
            for data in [&bytes, &decompressed] {
                if data.windows(needle.len()).any(|w| w == needle) {
                    hits.push(p.display().to_string());
                }
            }
        }
    }
}

#[test]
fn secrets_reach_the_step_and_nothing_else() {
    let Some(env) = store_env() else { return };
    let secret_file = env.dir.join("token");
    fs::write(&secret_file, SECRET).unwrap();
    let ctx = env.context(
        "secret",
        &format!(
            "FROM busybox\n\
             RUN --mount=type=secret,id=tok test \"$(cut -c1-12 /run/secrets/tok)\" = kiln-S3CRET- && \
                 stat -c '%a %u %g' /run/secrets/tok > /stat1\n\
             RUN --mount=type=secret,id=tok,target=/etc/tok,mode=0440,uid=1000,gid=50 \
                 stat -c '%a %u %g' /etc/tok > /stat2 && cp /etc/tok /tmp/x && rm /tmp/x\n\
             RUN --mount=type=secret,id=envtok,env=TOKEN test \"${{#TOKEN}}\" = {len} && \
                 echo env-ok > /envok && test ! -e /run/secrets/envtok\n\
             RUN --mount=type=secret,id=absent (ls /run/secrets/absent || echo none) > /absent 2>/dev/null\n\
             ENV AFTER=1\n",
            len = SECRET.len()
        ),
        &[],
    );
    let secret_arg = format!("id=tok,src={}", secret_file.display());
    let out = env.dir.join("secret-out");
    let o = Mounts::kiln(
        &env,
        &[
            "build",
            "--progress=plain",
            "--no-cache",
            "-t",
            "with-secret",
            "--secret",
            &secret_arg,
            "--secret",
            "id=envtok,env=KILN_TEST_TOKEN",
            "-o",
            "type=image",
            "-o",
            &format!("type=local,dest={}", out.display()),
            ctx.to_str().unwrap(),
        ],
        &[("KILN_TEST_TOKEN", SECRET)],
    );
    let logs = ok(&o) + &text(&o.stderr);
    assert_eq!(read(&out, "stat1"), "400 0 0\n");
    assert_eq!(read(&out, "stat2"), "440 1000 50\n");
    assert_eq!(read(&out, "envok"), "env-ok\n");
    assert_eq!(read(&out, "absent"), "none\n");
    assert!(!out.join("run/secrets").exists() && !out.join("etc/tok").exists());
    // Not in the logs, not in any file of the store (blobs decompressed: layers, config with
    // its history, manifest; snapshots; caches), not in the exported filesystem.
    assert!(!logs.contains(SECRET), "the secret is in the logs");
    let mut hits = Vec::new();
    search(&env.store, SECRET.as_bytes(), &mut hits);
    search(&out, SECRET.as_bytes(), &mut hits);
    assert!(hits.is_empty(), "the secret leaked into {hits:?}");
    let inspect = ok(&Mounts::kiln(&env, &["inspect", "with-secret"], &[]));
    assert!(!inspect.contains(SECRET) && !inspect.contains("KILN_TEST_TOKEN"));

    let required = env.context(
        "secret-required",
        "FROM busybox\nRUN --mount=type=secret,id=missing,required true\n",
        &[],
    );
    let o = Mounts::kiln(&env, &["build", "-q", required.to_str().unwrap()], &[]);
    assert!(!o.status.success());
    let err = text(&o.stderr);
    assert!(err.contains("secret `missing` not found"), "{err}");
    assert!(err.contains("--secret id=missing,src=FILE"), "{err}");
}

#[test]
fn ssh_mounts_are_refused_clearly() {
    let Some(env) = store_env() else { return };
    let ctx = env.context("ssh", "FROM busybox\nRUN --mount=type=ssh true\n", &[]);
    let o = Mounts::kiln(&env, &["build", "-q", ctx.to_str().unwrap()], &[]);
    assert!(!o.status.success());
    let err = text(&o.stderr);
    assert!(
        err.contains("RUN --mount=type=ssh is not supported yet"),
        "{err}"
    );
}

#[test]
fn shebang_heredoc_runs_from_dev_pipes_and_leaves_no_trace() {
    let Some(env) = store_env() else { return };
    let ctx = env.context(
        "shebang",
        "FROM busybox\n\
         RUN <<EOF\n\
         #!/bin/sh\n\
         echo \"script $0\" > /script-out\n\
         stat -c '%a %u' \"$0\" >> /script-out\n\
         EOF\n\
         RUN <<EOT\n\
         #!/bin/sh -e\n\
         echo second > /second\n\
         EOT\n",
        &[],
    );
    let out = env.build_local(&ctx, &[], &[]);
    assert_eq!(read(&out, "script-out"), "script /dev/pipes/EOF\n755 0\n");
    assert_eq!(read(&out, "second"), "second\n");
    assert!(!out.join("dev/pipes").exists());
}

/// `kiln du` shows RUN cache mounts and `kiln prune` removes them, by id, by age or all, as
/// `docker builder prune` does; they were never collected before (issue 11).
#[test]
fn cache_mounts_are_shown_by_du_and_removed_by_prune() {
    let Some(env) = store_env() else { return };
    let ctx = env.context(
        "cache-gc",
        "FROM busybox\n\
         RUN --mount=type=cache,id=alpha,target=/a head -c 100000 /dev/zero > /a/blob\n\
         RUN --mount=type=cache,id=beta,target=/b head -c 3000 /dev/zero > /b/blob\n",
        &[],
    );
    env.build_local(&ctx, &[], &[]);
    let du = ok(&Mounts::kiln(&env, &["du", "-v"], &[]));
    assert!(du.contains("cache mounts: 2 (103kB)"), "{du}");
    assert!(du.contains("alpha") && du.contains("beta"), "{du}");
    let pruned = ok(&Mounts::kiln(&env, &["prune", "--filter", "id=alpha"], &[]));
    assert!(
        pruned.contains("removed 1 cache mounts; freed 100kB"),
        "{pruned}"
    );
    let du = ok(&Mounts::kiln(&env, &["du", "-v"], &[]));
    assert!(
        du.contains("cache mounts: 1 (3kB)") && !du.contains("alpha"),
        "{du}"
    );
    // Not older than an hour: kept.
    let pruned = ok(&Mounts::kiln(&env, &["prune", "--filter", "until=1h"], &[]));
    assert!(pruned.contains("removed 0 cache mounts"), "{pruned}");
    let pruned = ok(&Mounts::kiln(&env, &["prune", "--all"], &[]));
    assert!(
        pruned.contains("removed 1 cache mounts; freed 3kB"),
        "{pruned}"
    );
    assert!(ok(&Mounts::kiln(&env, &["du"], &[])).contains("cache mounts: 0 (0B)"));
}
