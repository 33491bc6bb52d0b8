//! Cases from BuildKit's own integration tests (`frontend/dockerfile/*_test.go` in
//! moby/buildkit) and from real projects' Dockerfiles that kiln once got wrong (issue 10).
//! Each test is named after the BuildKit test it comes from, where there is one, and checks
//! that test's assertion on kiln's result, ported to a busybox base. Needs root (RUN steps
//! run in namespaces); under `CI=true` a missing prerequisite fails.

use std::fs;
use std::os::unix::fs::MetadataExt as _;
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
    let ctx = if dockerfile.is_empty() {
        env.dir.join(name)
    } else {
        env.context(name, dockerfile, files)
    };
    let mut args = vec!["build", "--progress=plain", "-t", name];
    args.extend_from_slice(extra);
    let ctx = ctx.to_str().unwrap().to_owned();
    args.push(&ctx);
    env.kiln(&args)
}

/// Build, assert success, and export the image's filesystem; its directory. An empty
/// `dockerfile` keeps the context's (written before, with files a test made itself).
fn build(env: &KilnEnv, name: &str, dockerfile: &str, files: &[(&str, &str)]) -> PathBuf {
    let out = env.dir.join(format!("{name}-out"));
    let dest = format!("type=local,dest={}", out.display());
    ok(&build_with(env, name, dockerfile, files, &["-o", &dest]));
    out
}

/// [`build`], failing the test (and ending the build) if it takes over two minutes: for the
/// cases that once hung.
fn build_or_hang(env: &KilnEnv, name: &str, dockerfile: &str) -> PathBuf {
    let (tx, rx) = std::sync::mpsc::channel();
    let started = Instant::now();
    std::thread::scope(|s| {
        s.spawn(|| {
            let _ = tx.send(build(env, name, dockerfile, &[]));
        });
        rx.recv_timeout(Duration::from_mins(2)).unwrap_or_else(|_| {
            // Leave no kiln behind: a hung build waits in futexes forever.
            let _ = std::process::Command::new("pkill")
                .args(["-f", &env.dir.display().to_string()])
                .status();
            panic!("the build hung for {:?}", started.elapsed());
        })
    })
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
    let out = build_or_hang(
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
    );
    assert_eq!(read(&out, "bar"), "12");
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

/// A tar archive of `entries`: `(name, kind, data)` with kind `d` (directory), `f` (file with
/// `data`), `l` (symlink to `data`) or `h` (hard link to `data`).
fn tar_of(entries: &[(&str, char, &str)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, kind, data) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_mtime(0);
        h.set_uid(0);
        h.set_gid(0);
        h.set_size(0);
        match kind {
            'd' => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                b.append_data(&mut h, name, &[][..]).unwrap();
            }
            'f' => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o644);
                h.set_size(data.len() as u64);
                b.append_data(&mut h, name, data.as_bytes()).unwrap();
            }
            'l' | 'h' => {
                h.set_entry_type(if *kind == 'l' {
                    tar::EntryType::Symlink
                } else {
                    tar::EntryType::Link
                });
                h.set_mode(0o777);
                b.append_link(&mut h, name, data).unwrap();
            }
            _ => unreachable!(),
        }
    }
    b.into_inner().unwrap()
}

/// BuildKit's `testSymlinkDestination`: an archive's `symlink -> ../tmp/symlink-target` at `/`
/// is kept, and a COPY through it lands in `/tmp/symlink-target` (issue 10, item 8).
#[test]
fn test_symlink_destination() {
    let Some(env) = setup() else { return };
    let ctx = env.context(
        "symlink-dest",
        "FROM scratch\nADD t.tar /\nCOPY foo /symlink/\n",
        &[("foo", "content0")],
    );
    fs::write(
        ctx.join("t.tar"),
        tar_of(&[("symlink", 'l', "../tmp/symlink-target")]),
    )
    .unwrap();
    let out = build(&env, "symlink-dest", "", &[]);
    assert_eq!(read(&out, "tmp/symlink-target/foo"), "content0");
    assert_eq!(
        fs::read_link(out.join("symlink")).unwrap(),
        Path::new("../tmp/symlink-target")
    );
}

/// BuildKit's `testDockerfileAddArchiveThroughAbsoluteSymlink`: an archive whose entries (a
/// hard link among them) run through `var/run -> /run` of an earlier layer extracts through
/// it (issue 10, item 9).
#[test]
fn test_dockerfile_add_archive_through_absolute_symlink() {
    let Some(env) = setup() else { return };
    let ctx = env.context(
        "through-link",
        "FROM scratch\nADD rootfs.tar /\nADD payload.tar /\n",
        &[],
    );
    fs::write(
        ctx.join("rootfs.tar"),
        tar_of(&[
            ("run/", 'd', ""),
            ("var/", 'd', ""),
            ("var/run", 'l', "/run"),
        ]),
    )
    .unwrap();
    let git = "var/run/act/actions/broad/.git";
    fs::write(
        ctx.join("payload.tar"),
        tar_of(&[
            ("var/run/act/", 'd', ""),
            ("var/run/act/actions/", 'd', ""),
            ("var/run/act/actions/broad/", 'd', ""),
            (&format!("{git}/"), 'd', ""),
            (&format!("{git}/HEAD"), 'f', "ref: refs/heads/main\n"),
            (&format!("{git}/HEAD.link"), 'h', &format!("{git}/HEAD")),
        ]),
    )
    .unwrap();
    let out = build(&env, "through-link", "", &[]);
    let head = "run/act/actions/broad/.git/HEAD";
    assert_eq!(read(&out, head), "ref: refs/heads/main\n");
    assert_eq!(
        read(&out, &format!("{head}.link")),
        "ref: refs/heads/main\n"
    );
    let (a, b) = (
        fs::metadata(out.join(head)).unwrap(),
        fs::metadata(out.join(format!("{head}.link"))).unwrap(),
    );
    assert_eq!((a.dev(), a.ino()), (b.dev(), b.ino()), "a real hard link");
}

/// BuildKit's `testOnBuildHeredoc`: an `ONBUILD RUN <<EOF` trigger keeps its heredoc body in
/// the image, and the child build runs it (issue 10, item 10).
#[test]
fn test_on_build_heredoc() {
    let Some(env) = setup() else { return };
    ok(&build_with(
        &env,
        "onbuild-heredoc-base",
        "FROM busybox\nONBUILD RUN <<EOF\necho \"hello world\" >> /dest\nEOF\n",
        &[],
        &[],
    ));
    let out = build(
        &env,
        "onbuild-heredoc",
        "FROM onbuild-heredoc-base AS base\nFROM scratch\nCOPY --from=base /dest /dest\n",
        &[],
    );
    assert_eq!(read(&out, "dest"), "hello world\n");
}

/// BuildKit's `testAddChecksum`: the sources are expanded before their kind is checked
/// (`ADD --checksum=${DIGEST} ${LINK}` with `LINK` a URL in an ENV), and bad digests get
/// go-digest's words (issue 10, items 11 and 20).
#[test]
fn test_add_checksum() {
    const BODY: &[u8] = b"content1";
    let Some(env) = setup() else { return };
    let (url, _) = kiln_test_support::serve_http(BODY);
    let sum = format!("{:x}", <sha2::Sha256 as sha2::Digest>::digest(BODY));
    let out = build(
        &env,
        "checksum-env",
        &format!(
            "FROM scratch\nENV DIGEST=sha256:{sum}\nENV LINK={url}/foo\nADD --checksum=${{DIGEST}} ${{LINK}} /tmp/foo\n"
        ),
        &[],
    );
    assert_eq!(read(&out, "tmp/foo"), "content1");
    for (checksum, words) in [
        (
            "md5:7e55db001d319a94b0b713529a756623".to_owned(),
            "unsupported digest algorithm",
        ),
        (format!("unknown:{sum}"), "unsupported digest algorithm"),
        (sum.clone(), "invalid checksum digest format"),
        ("sha256:abc".to_owned(), "invalid checksum digest length"),
    ] {
        let failed = build_with(
            &env,
            "checksum-bad",
            &format!("FROM scratch\nADD --checksum={checksum} {url}/foo /tmp/foo\n"),
            &[],
            &[],
        );
        let err = text(&failed.stderr);
        assert!(!failed.status.success(), "{checksum}");
        assert!(
            err.contains(&format!("error: {words}")),
            "{checksum}: {err}"
        );
        assert!(err.contains("Dockerfile:2"), "{checksum}: {err}");
    }
    let local = build_with(
        &env,
        "checksum-local",
        &format!("FROM scratch\nADD --checksum=sha256:{sum} foo /tmp/foo\n"),
        &[("foo", "content1")],
        &[],
    );
    assert!(text(&local.stderr).contains("checksum requires HTTP(S) or Git sources"));
}

/// Variables in `RUN --mount=type=$MNT_TYPE` are expanded like the other fields (BuildKit's
/// `testMountEnvVar` style; issue 10, item 12).
#[test]
fn mount_type_from_a_variable() {
    let Some(env) = setup() else { return };
    let out = build(
        &env,
        "mount-type-var",
        "FROM busybox\n\
         ARG MNT_TYPE=cache\n\
         RUN --mount=type=$MNT_TYPE,target=/mycache2 touch /mycache2/foo\n\
         RUN --mount=type=$MNT_TYPE,target=/mycache2 [ -f /mycache2/foo ] && echo kept > /seen\n",
        &[],
    );
    assert_eq!(read(&out, "seen"), "kept\n");
    assert!(!out.join("mycache2/foo").exists(), "a cache, not the layer");
}

/// BuildKit's `testBuiltinArgs`: a proxy build arg reaches RUN under both cases without an
/// ARG, and stays out of the cache key (issue 10, item 13).
#[test]
fn test_builtin_args() {
    let Some(env) = setup() else { return };
    let df = "FROM busybox AS build\nARG FOO\nARG BAR\nARG BAZ=bazcontent\n\
              RUN echo -n $HTTP_PROXY::$http_proxy::$NO_PROXY::$no_proxy::$FOO::$BAR::$BAZ > /out\n";
    let dest = |n: &str| format!("type=local,dest={}", env.dir.join(n).display());
    let args = |p: &str| {
        vec![
            "--build-arg".to_owned(),
            "FOO=foocontents".to_owned(),
            "--build-arg".to_owned(),
            format!("http_proxy={p}"),
        ]
    };
    let mut first = args("hpvalue");
    first.extend([
        "--build-arg".into(),
        "NO_PROXY=npvalue".into(),
        "-o".into(),
        dest("b1"),
    ]);
    let first: Vec<&str> = first.iter().map(String::as_str).collect();
    ok(&build_with(&env, "builtin-args", df, &[], &first));
    assert_eq!(
        read(&env.dir, "b1/out"),
        "hpvalue::hpvalue::npvalue::npvalue::foocontents::::bazcontent"
    );
    // Another proxy value only: the step is cached, as in BuildKit.
    let mut second = args("hpvalue2");
    second.extend(["-o".into(), dest("b2")]);
    let second: Vec<&str> = second.iter().map(String::as_str).collect();
    ok(&build_with(&env, "builtin-args", df, &[], &second));
    assert_eq!(
        read(&env.dir, "b2/out"),
        "hpvalue::hpvalue::npvalue::npvalue::foocontents::::bazcontent"
    );
}

/// BuildKit's `testDockerfileLowercase`: a context with only a lowercase `dockerfile` builds
/// (issue 10, item 14).
#[test]
fn test_dockerfile_lowercase() {
    let Some(env) = setup() else { return };
    let ctx = env.dir.join("lowercase");
    fs::create_dir_all(&ctx).unwrap();
    fs::write(
        ctx.join("dockerfile"),
        "FROM busybox\nRUN echo lower > /which\n",
    )
    .unwrap();
    let out = env.dir.join("lowercase-out");
    ok(&env.kiln(&[
        "build",
        "-o",
        &format!("type=local,dest={}", out.display()),
        ctx.to_str().unwrap(),
    ]));
    assert_eq!(read(&out, "which"), "lower\n");
}

/// BuildKit's hints: a misspelt instruction and mount type say what was meant, and a cycle of
/// stages is called circular (`TestDockerfileCircularDependencies`) (issue 10, item 20).
#[test]
fn errors_say_what_buildkit_says() {
    let Some(env) = setup() else { return };
    let err = |name: &str, df: &str| {
        let out = build_with(&env, name, df, &[], &[]);
        assert!(!out.status.success(), "{name} built");
        text(&out.stderr)
    };
    let e = err("typo", "FROM busybox\nFNTRYPOINT [\"x\"]\n");
    assert!(
        e.contains("error: unknown instruction: FNTRYPOINT (did you mean ENTRYPOINT?)"),
        "{e}"
    );
    let e = err(
        "mount-typo",
        "FROM busybox\nRUN --mount=type=tmp,target=/x true\n",
    );
    assert!(
        e.contains("unsupported mount type \"tmp\" (did you mean tmpfs?)"),
        "{e}"
    );
    let e = err(
        "self",
        "FROM busybox AS stage0\nCOPY --from=stage0 f1 /sub/\n",
    );
    assert!(
        e.contains("error: circular dependency detected on stage: stage0"),
        "{e}"
    );
    let e = err(
        "cycle",
        "FROM busybox AS stage0\nCOPY --from=stage2 f1 /sub/\nFROM busybox AS stage1\n\
         COPY --from=stage0 f2 /sub/\nFROM busybox AS stage2\nCOPY --from=stage1 f2 /sub/\n",
    );
    assert!(
        e.contains("error: circular dependency detected on stage: stage0"),
        "{e}"
    );
    let e = err(
        "later",
        "FROM busybox AS stage0\nCOPY --from=stage1 f1 /sub/\nFROM busybox AS stage1\n",
    );
    assert!(
        e.contains("cannot copy from stage \"stage1\", it needs to be defined before current stage \"stage0\""),
        "{e}"
    );
}

/// `kiln inspect IMAGE`'s `[0]`.
fn inspect(env: &KilnEnv, image: &str) -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_str(&ok(&env.kiln(&["inspect", image]))).unwrap();
    v[0].clone()
}

/// Image metadata as today's BuildKit writes it (issue 10, item 16): a RUN that changes
/// nothing still has its (empty) layer (`client_export_image_test`), EXPOSE lists its ports
/// sorted and RUN lists build args in declaration order (`testHistory`).
#[test]
fn test_history_and_empty_layers() {
    let Some(env) = setup() else { return };
    build(
        &env,
        "history-order",
        "FROM busybox\nRUN mkdir -p /dev /proc /sys\nARG foo=bar\nARG bar=123\nARG foo=bar2\n\
         RUN true\nEXPOSE 2375 5000 1234/udp\n",
        &[],
    );
    let image = inspect(&env, "history-order");
    let history: Vec<(String, bool)> = image["History"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["created_by"].as_str().unwrap_or_default().to_owned(),
                h["empty_layer"].as_bool().unwrap_or(false),
            )
        })
        .collect();
    let run = history.iter().find(|(c, _)| c.contains("-c true")).unwrap();
    assert_eq!(
        run,
        &(
            "RUN |2 foo=bar2 bar=123 /bin/sh -c true # buildkit".to_owned(),
            false
        )
    );
    assert!(
        history.contains(&("EXPOSE [1234/udp 2375/tcp 5000/tcp]".to_owned(), true)),
        "{history:?}"
    );
    let layers = image["RootFS"]["Layers"].as_array().unwrap().len();
    let non_empty = history.iter().filter(|(_, e)| !e).count();
    assert_eq!(layers, non_empty, "one layer per non-empty history entry");
    assert_eq!(layers, 3, "the base, the mkdir and the empty RUN");
}

/// BuildKit's `testCacheMountModeNoCache` (moby/buildkit#5305): under `--no-cache` a cache
/// mount starts empty; without it, it keeps what earlier builds left (issue 10, item 17).
#[test]
fn test_cache_mount_mode_no_cache() {
    let Some(env) = setup() else { return };
    let df = "FROM busybox\nARG FOO\n\
              RUN --mount=type=cache,target=/cache,mode=0773 touch /cache/$FOO && ls -l /cache | wc -l > /out\n";
    let count = |foo: &str, extra: &[&str]| {
        let dest = format!("type=local,dest={}", env.dir.join(foo).display());
        let arg = format!("FOO={foo}");
        let mut args = vec!["--build-arg", &arg, "-o", &dest];
        args.extend_from_slice(extra);
        ok(&build_with(&env, "cache-no-cache", df, &[], &args));
        read(&env.dir, &format!("{foo}/out")).trim().to_owned()
    };
    assert_eq!(count("abc", &[]), "2");
    assert_eq!(
        count("def", &["--no-cache"]),
        "2",
        "emptied under --no-cache"
    );
    assert_eq!(count("ghi", &[]), "3", "kept otherwise");
}

/// A RUN whose mount reads a path of another stage (`--mount=from=...,source=...`, a bind or
/// a cache's seed) is keyed on that path's content, as BuildKit keys a mount on its selector:
/// a change elsewhere in that stage keeps the step cached (issue 10, item 17).
#[test]
fn mounts_from_a_stage_are_keyed_on_their_content() {
    let Some(env) = setup() else { return };
    let df = |other: &str, seed: &str| {
        format!(
            "FROM busybox AS src\nRUN mkdir /a && echo {seed} > /a/seed && echo {other} > /other\n\
             FROM busybox\n\
             RUN --mount=from=src,source=/a,target=/m cat /m/seed > /bound\n\
             RUN --mount=type=cache,from=src,source=/a,target=/c,id=seeded cat /c/seed > /cached\n"
        )
    };
    let ran = |out: &Output| {
        text(&out.stderr)
            .lines()
            .filter(|l| l.contains("CACHED"))
            .count()
    };
    ok(&build_with(&env, "mount-key", &df("one", "s"), &[], &[]));
    let again = build_with(&env, "mount-key", &df("two", "s"), &[], &[]);
    ok(&again);
    assert_eq!(
        ran(&again),
        2,
        "only /other changed: both mounting steps stay cached\n{}",
        text(&again.stderr)
    );
    let changed = build_with(&env, "mount-key", &df("two", "t"), &[], &[]);
    ok(&changed);
    assert_eq!(ran(&changed), 0, "{}", text(&changed.stderr));
}

/// BuildKit's `testCopyChmod` (Dockerfile 1.25): the directories a `COPY --chmod` creates for
/// its destination get the octal mode; a symbolic mode leaves them 0755 (issue 10, item 18).
#[test]
fn test_copy_chmod() {
    let Some(env) = setup() else { return };
    let out = build(
        &env,
        "copy-chmod",
        "FROM busybox\nCOPY --chmod=777 foo /parent/foo\nCOPY --chmod=770 foo /parent/sub/foo\n\
         COPY --chmod=u+x foo /sym/a/foo\n\
         RUN stat -c '%n %a' /parent /parent/sub /sym /sym/a /parent/sub/foo > /perms\n",
        &[("foo", "hi")],
    );
    assert_eq!(
        read(&out, "perms"),
        "/parent 777\n/parent/sub 770\n/sym 755\n/sym/a 755\n/parent/sub/foo 770\n"
    );
}

/// `--build-arg SOURCE_DATE_EPOCH` (how buildx passes it) makes a RUN build reproducible, as
/// the environment variable does (issue 10, item 19).
#[test]
fn source_date_epoch_as_a_build_arg() {
    let Some(env) = setup() else { return };
    let df = "FROM busybox\nRUN echo hi > /x && mkdir /d\n";
    let id = |name: &str| {
        let out = build_with(
            &env,
            name,
            df,
            &[],
            &[
                "--no-cache",
                "-q",
                "--build-arg",
                "SOURCE_DATE_EPOCH=1700000001",
            ],
        );
        ok(&out).trim().to_owned()
    };
    let (a, b) = (id("sde-a"), id("sde-b"));
    assert_eq!(a, b, "the same image twice");
    let image = inspect(&env, "sde-a");
    assert_eq!(image["Created"], "2023-11-14T22:13:21Z");
    let bad = build_with(
        &env,
        "sde-bad",
        df,
        &[],
        &["--build-arg", "SOURCE_DATE_EPOCH=soon"],
    );
    assert!(!bad.status.success());
    assert!(text(&bad.stderr).contains("invalid SOURCE_DATE_EPOCH `soon`"));
}

/// An ONBUILD `COPY --from=<stage>` of a base image from the store names a stage the planner
/// cannot see: it is scheduled once the image's config is read, and never waited on unbuilt
/// (issue 10, item 5).
#[test]
fn onbuild_from_a_store_image_schedules_the_stage_it_reads() {
    let Some(env) = setup() else { return };
    ok(&build_with(
        &env,
        "onbuild-image",
        "FROM busybox\nONBUILD COPY --from=src /in/file /out/foo\n",
        &[],
        &[],
    ));
    let out = build_or_hang(
        &env,
        "onbuild-image-use",
        "FROM busybox AS src\nRUN mkdir -p /in && echo -n 12 > /in/file\n\
         FROM onbuild-image AS mid\nRUN cp /out/foo /out/bar\n\
         FROM scratch\nCOPY --from=mid /out/bar /\n",
    );
    assert_eq!(read(&out, "bar"), "12");
}

/// A local export goes into an empty directory only, and says so before building anything
/// (it failed after the build with `File exists`).
#[test]
fn local_export_into_a_non_empty_directory_is_refused_first() {
    let Some(env) = setup() else { return };
    let dest = env.dir.join("full");
    fs::create_dir_all(dest.join("bin")).unwrap();
    let out = build_with(
        &env,
        "local-full",
        "FROM busybox\nRUN echo ran >&2\n",
        &[],
        &["-o", &format!("type=local,dest={}", dest.display())],
    );
    let err = text(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("the directory is not empty"), "{err}");
    assert!(!err.contains("ran"), "nothing was built: {err}");
}
