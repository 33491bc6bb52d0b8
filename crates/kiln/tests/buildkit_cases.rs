//! Cases from BuildKit's own integration tests (`frontend/dockerfile/*_test.go` in
//! moby/buildkit) and from real projects' Dockerfiles that kiln once got wrong (issue 10).
//! Each test is named after the BuildKit test it comes from, where there is one, and checks
//! that test's assertion on kiln's result, ported to a busybox base. Needs root (RUN steps
//! run in namespaces); under `CI=true` a missing prerequisite fails.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use kiln_test_support::{KilnEnv, ok, text};

fn setup() -> Option<KilnEnv> {
    KilnEnv::new(Path::new(env!("CARGO_BIN_EXE_kiln")), &[])
}

/// Build `dockerfile` with `files` in the context `name`, tagged `name`, with `extra` flags.
fn build_with(
    env: &KilnEnv,
    name: &str,
    dockerfile: &str,
    files: &[(&str, &str)],
    extra: &[&str],
) -> Output {
    let ctx = env.context(name, dockerfile, files);
    let mut args = vec!["build", "--progress=plain", "-t", name];
    args.extend_from_slice(extra);
    let ctx = ctx.to_str().unwrap().to_owned();
    args.push(&ctx);
    env.kiln(&args)
}

/// Build, assert success, and export the image's filesystem; its directory.
fn build(env: &KilnEnv, name: &str, dockerfile: &str, files: &[(&str, &str)]) -> PathBuf {
    let out = env.dir.join(format!("{name}-out"));
    let dest = format!("type=local,dest={}", out.display());
    ok(&build_with(env, name, dockerfile, files, &["-o", &dest]));
    out
}

/// `kiln run --rm IMAGE sh -c SCRIPT`: its stdout.
fn run_sh(env: &KilnEnv, image: &str, script: &str) -> String {
    ok(&env.kiln(&["run", "--rm", image, "sh", "-c", script]))
}

fn read(dir: &Path, rel: &str) -> String {
    let p = dir.join(rel);
    fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// A file rewritten by a RUN at the same size and mtime (`touch -d`, `cp -p`, `useradd`'s
/// backups) is the new content, not the old (issue 10, item 1).
#[test]
fn run_rewrite_at_the_same_size_and_mtime_is_kept() {
    let Some(env) = setup() else { return };
    let out = build(
        &env,
        "rewrite",
        "FROM busybox\n\
         RUN printf 'AAAA\\n' > /f && touch -d '2020-01-01 00:00:00' /f\n\
         RUN printf 'BBBB\\n' > /f && touch -d '2020-01-01 00:00:00' /f\n",
        &[],
    );
    assert_eq!(read(&out, "f"), "BBBB\n");
    assert_eq!(run_sh(&env, "rewrite", "cat /f"), "BBBB\n");
}

/// A directory a layer only implies (`data/` above WORKDIR's `data/sub/`) keeps its owner
/// in the stack (issue 10, item 2).
#[test]
fn implied_parent_directories_keep_their_owner() {
    let Some(env) = setup() else { return };
    build(
        &env,
        "implied",
        "FROM busybox\n\
         RUN mkdir /data && chown 1000:1000 /data\n\
         USER 1000\n\
         WORKDIR /data\n\
         WORKDIR sub\n\
         USER root\n\
         RUN touch /data/x\n",
        &[],
    );
    assert_eq!(
        run_sh(&env, "implied", "stat -c '%u:%g %a' /data /data/sub"),
        "1000:1000 755\n1000:1000 755\n"
    );
}

/// BuildKit's `testCopyOverrideFiles`: the same layer twice in a stack (`COPY g g` twice)
/// and later steps still run (issue 10, item 3).
#[test]
fn test_copy_override_files() {
    let Some(env) = setup() else { return };
    let out = build(
        &env,
        "override",
        "FROM busybox AS base\n\
         COPY sub sub\n\
         COPY sub sub\n\
         COPY files/foo.go dest/foo.go\n\
         COPY files/foo.go dest/foo.go\n\
         COPY files dest\n\
         RUN cat dest/foo.go > /seen\n",
        &[("sub/dir/file", "x"), ("files/foo.go", "foo.go contents")],
    );
    assert_eq!(read(&out, "sub/dir/file"), "x");
    assert_eq!(read(&out, "dest/foo.go"), "foo.go contents");
    assert_eq!(read(&out, "seen"), "foo.go contents");
}

/// BuildKit's `testCacheMountSourceEscape`: `source=` on a cache mount is a path inside the
/// cache, and a link in it that points out of the cache does not lead out (issue 10, item 4).
#[test]
fn test_cache_mount_source_escape() {
    let Some(env) = setup() else { return };
    let df = "FROM busybox AS init\n\
         RUN --mount=type=cache,id=sourceescape,target=/cache mkdir -p /cache/sel && echo benign > /cache/sel/benign.txt\n\
         RUN --mount=type=cache,id=sourceescape,source=sel,target=/sub cat /sub/benign.txt > /seen\n\
         FROM init AS link\n\
         RUN --mount=type=cache,id=sourceescape,target=/cache rm -rf /cache/sel && ln -s /etc /cache/sel\n\
         FROM link AS victim\n\
         RUN --mount=type=cache,id=sourceescape,source=sel,target=/victim cat /victim/hostname\n";
    let dest = format!("type=local,dest={}", env.dir.join("init-out").display());
    ok(&build_with(
        &env,
        "cache-source",
        df,
        &[],
        &["--target", "init", "-o", &dest],
    ));
    assert_eq!(
        read(&env.dir, "init-out/seen"),
        "benign\n",
        "source= selects the subdirectory"
    );
    let failed = build_with(&env, "cache-escape", df, &[], &["--target", "victim"]);
    assert!(
        !failed.status.success(),
        "a cache source= through a link out of the cache must fail: {}",
        text(&failed.stderr)
    );
}

/// BuildKit's `testOnBuildInheritedStageWithFrom`: an ONBUILD `COPY --from` of a stage, fired
/// in a child stage, schedules that stage; the build never waits on a stage nobody runs
/// (issue 10, item 5: it hung).
#[test]
fn test_on_build_inherited_stage_with_from() {
    let Some(env) = setup() else { return };
    let (tx, rx) = std::sync::mpsc::channel();
    let dir = env.dir.clone();
    let started = Instant::now();
    std::thread::scope(|s| {
        s.spawn(|| {
            let out = build(
                &env,
                "onbuild-from",
                "FROM busybox AS src\n\
                 RUN mkdir -p /in && echo -n 12 > /in/file\n\
                 FROM busybox AS base\n\
                 ONBUILD COPY --from=src /in/file /out/foo\n\
                 FROM base AS mid\n\
                 RUN cp /out/foo /out/bar\n\
                 FROM scratch\n\
                 COPY --from=mid /out/bar /\n",
                &[],
            );
            let _ = tx.send(read(&out, "bar"));
        });
        if let Ok(bar) = rx.recv_timeout(Duration::from_mins(2)) {
            assert_eq!(bar, "12");
        } else {
            // Leave no kiln behind: the build hangs in futex waits otherwise.
            let _ = std::process::Command::new("pkill")
                .args(["-f", &dir.display().to_string()])
                .status();
            panic!("the build hung for {:?}", started.elapsed());
        }
    });
}

/// BuildKit's `testCacheMountParallel`: parallel stages mounting the same nested caches
/// (`/foo/bar` and `/foo/bar/baz`) never race on the mount point (issue 10, item 6).
#[test]
fn test_cache_mount_parallel() {
    let Some(env) = setup() else { return };
    let df = "FROM busybox AS b1\n\
         RUN --mount=type=cache,target=/foo/bar --mount=type=cache,target=/foo/bar/baz echo 1\n\
         FROM busybox AS b2\n\
         RUN --mount=type=cache,target=/foo/bar --mount=type=cache,target=/foo/bar/baz echo 2\n\
         FROM scratch\n\
         COPY --from=b1 /etc/passwd p1\n\
         COPY --from=b2 /etc/passwd p2\n";
    for _ in 0..10 {
        ok(&build_with(
            &env,
            "cache-parallel",
            df,
            &[],
            &["--no-cache"],
        ));
    }
}

/// RUN's command is pid 1 of its namespace, as under BuildKit's runc and `docker run`, and no
/// host path of the build shows in its `/proc` (issue 10, item 7).
#[test]
fn run_command_is_pid_1() {
    let Some(env) = setup() else { return };
    let out = build(
        &env,
        "pid1",
        "FROM busybox\n\
         RUN echo $$ > /pid && tr '\\0' ' ' < /proc/1/cmdline > /cmdline && ls /proc | grep -c '^[0-9]' > /procs\n",
        &[],
    );
    assert_eq!(read(&out, "pid"), "1\n");
    assert_eq!(
        read(&out, "cmdline"),
        "/bin/sh -c echo $$ > /pid && tr '\\0' ' ' < /proc/1/cmdline > /cmdline && ls /proc | grep -c '^[0-9]' > /procs "
    );
    assert_eq!(run_sh(&env, "pid1", "echo $$"), "1\n");
}

/// BuildKit's `testUserAdditionalGids`: the primary group is among the supplementary groups
/// (the CVE-2023-25173 fix), so root in busybox is `groups=0(root),10(wheel)` (issue 10,
/// item 15).
#[test]
fn test_user_additional_gids() {
    let Some(env) = setup() else { return };
    let out = build(
        &env,
        "gids",
        "FROM busybox\n\
         RUN echo 'wheel:x:10:root' >> /etc/group && echo 'daemon:x:1:1:daemon:/:/bin/sh' >> /etc/passwd && echo 'daemon:x:1:' >> /etc/group\n\
         RUN id > /root.txt\n\
         USER 1234\n\
         RUN id > /tmp/uid.txt\n\
         USER 1234:1234\n\
         RUN id > /tmp/uidgid.txt\n\
         USER daemon\n\
         RUN id > /tmp/daemon.txt\n",
        &[],
    );
    assert_eq!(
        read(&out, "root.txt"),
        "uid=0(root) gid=0(root) groups=0(root),10(wheel)\n"
    );
    assert_eq!(
        read(&out, "tmp/uid.txt"),
        "uid=1234 gid=0(root) groups=0(root)\n"
    );
    assert_eq!(
        read(&out, "tmp/uidgid.txt"),
        "uid=1234 gid=1234 groups=1234\n"
    );
    assert_eq!(
        read(&out, "tmp/daemon.txt"),
        "uid=1(daemon) gid=1(daemon) groups=1(daemon)\n"
    );
}
