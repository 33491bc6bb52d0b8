//! `kiln build --on-error=shell|keep`: a shell in the failed RUN (driven through a
//! pseudo-terminal this test holds), the failed step kept as an image, and the refusal
//! without a terminal. Needs root (RUN steps run in namespaces); under `CI=true` a missing
//! prerequisite fails.

use std::fs;
use std::io::{Read as _, Write as _};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use kiln_test_support::{KilnEnv, ok, text};

/// A stage whose last RUN fails after changing the filesystem, as `nobody`, in `/work`,
/// with an ENV, a cache mount (filled by an earlier step), a bind mount of the context and
/// a secret.
const DOCKERFILE: &str = "FROM busybox AS app
ENV GREETING=hello
RUN mkdir /work && chown 65534 /work
RUN --mount=type=cache,target=/cache,id=onerr echo from-the-cache > /cache/c
WORKDIR /work
USER nobody
RUN --mount=type=cache,target=/cache,id=onerr --mount=type=bind,source=ctx.txt,target=/ctx.txt --mount=type=secret,id=tok,target=/run/secrets/tok,mode=0444 echo changed > /work/changed && exit 5
";

fn env() -> Option<(KilnEnv, std::path::PathBuf, std::path::PathBuf)> {
    let env = KilnEnv::new(Path::new(env!("CARGO_BIN_EXE_kiln")), &[])?;
    let ctx = env.context("on-error", DOCKERFILE, &[("ctx.txt", "from-the-context\n")]);
    let secret = env.dir.join("token");
    fs::write(&secret, "s3cret\n").unwrap();
    Some((env, ctx, secret))
}

/// The mounts of this system that mention `path`.
fn mounts_under(path: &Path) -> Vec<String> {
    let p = path.to_str().unwrap();
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.contains(p))
        .map(str::to_owned)
        .collect()
}

/// The store's entries that a failed build must leave as they were: the images (index.json)
/// and nothing in failed-steps, steps or tmp.
fn store_state(store: &Path) -> (String, Vec<String>) {
    let index = fs::read_to_string(store.join("index.json")).unwrap();
    let mut leftovers = Vec::new();
    for d in ["failed-steps", "steps", "tmp"] {
        if let Ok(entries) = fs::read_dir(store.join(d)) {
            leftovers.extend(entries.map(|e| format!("{d}/{}", e.unwrap().file_name().display())));
        }
    }
    (index, leftovers)
}

/// Runs `kiln build` with stdin and stdout on a pseudo-terminal (stderr too with
/// `stderr_too`, else piped), types each input once its prompt shows up, and returns what
/// the terminal showed, the stderr and the exit code.
fn build_on_a_terminal(
    env: &KilnEnv,
    args: &[&str],
    script: &[(&str, &str)],
    stderr_too: bool,
) -> (String, String, Option<i32>) {
    let pty = kiln_sandbox::pty::Pty::open(None).unwrap();
    pty.set_size(24, 100).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .arg("--root")
        .arg(&env.store)
        .args(args)
        .stdin(Stdio::from(pty.slave.try_clone().unwrap()))
        .stdout(Stdio::from(pty.slave.try_clone().unwrap()))
        .stderr(if stderr_too {
            Stdio::from(pty.slave.try_clone().unwrap())
        } else {
            Stdio::piped()
        })
        .spawn()
        .unwrap();
    drop(pty.slave);
    let stderr = child.stderr.take();
    let err_thread = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(mut e) = stderr {
            let _ = e.read_to_string(&mut s);
        }
        s
    });
    let master = fs::File::from(pty.master);
    let mut writer = master.try_clone().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut master = master;
        let mut buf = [0u8; 1024];
        // EIO once kiln, the last holder of the slave side, is gone.
        while let Ok(n) = master.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut seen = String::new();
    let deadline = Instant::now() + Duration::from_mins(2);
    // Each input once its prompt shows up; on a timeout (or kiln gone), the assertions
    // on what was shown say what went wrong.
    'script: for (ready, input) in script {
        while !seen.contains(ready) {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(chunk) => seen.push_str(&String::from_utf8_lossy(&chunk)),
                Err(_) => break 'script,
            }
        }
        writer.write_all(input.as_bytes()).unwrap();
    }
    let status = child.wait().unwrap();
    while let Ok(chunk) = rx.recv_timeout(Duration::from_secs(5)) {
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    (
        seen.replace('\r', ""),
        err_thread.join().unwrap(),
        status.code(),
    )
}

/// What the shell is asked, and the line after which its answers are complete (computed, so
/// that the terminal's echo of the typed line does not match it).
const ASK: &str = "id -u; pwd; echo $GREETING; cat /work/changed /cache/c /ctx.txt; cat /run/secrets/tok 2>/dev/null || echo no-secret; echo DONE-$((40+2))\n";

#[test]
fn shell_opens_in_the_failed_step_with_its_user_workdir_env_and_mounts() {
    let Some((env, ctx, secret)) = env() else {
        return;
    };
    let secret_arg = format!("id=tok,src={}", secret.display());
    // Fill the cache and the earlier steps first, so the shell build only fails.
    let out = env.kiln(&[
        "build",
        "--progress=plain",
        "--secret",
        &secret_arg,
        ctx.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let mounts_before = mounts_under(&env.store);
    let state_before = store_state(&env.store);
    for (mode, secret_line) in [("shell", "no-secret\n"), ("shell,secrets", "s3cret\n")] {
        let (shown, stderr, code) = build_on_a_terminal(
            &env,
            &[
                "build",
                "--progress=plain",
                &format!("--on-error={mode}"),
                "--secret",
                &secret_arg,
                ctx.to_str().unwrap(),
            ],
            &[("$ ", ASK), ("DONE-42", "exit 3\n")],
            false,
        );
        let answers = format!(
            "65534\n/work\nhello\nchanged\nfrom-the-cache\nfrom-the-context\n{secret_line}DONE-42\n"
        );
        assert!(
            shown.contains(&answers),
            "{mode}: {shown}\n--- stderr:\n{stderr}"
        );
        assert_eq!(code, Some(1), "{mode}: the build still fails: {stderr}");
        assert!(
            stderr.contains("step 7 of stage `app` failed (exit code 5)"),
            "{stderr}"
        );
        assert!(stderr.contains("the shell exited with code 3"), "{stderr}");
        assert!(
            stderr.contains("exit code: 5"),
            "the build's error: {stderr}"
        );
        assert_eq!(
            stderr.contains("secrets are left out"),
            mode == "shell",
            "{stderr}"
        );
        assert_eq!(
            mounts_under(&env.store),
            mounts_before,
            "nothing left mounted"
        );
        assert_eq!(
            store_state(&env.store),
            state_before,
            "the store is unchanged"
        );
    }
}

/// With stderr on the terminal too, the live progress view is drawn before the shell and
/// again after it, never over it.
#[test]
fn the_live_progress_holds_back_while_the_shell_has_the_terminal() {
    let Some((env, ctx, secret)) = env() else {
        return;
    };
    let (shown, _, code) = build_on_a_terminal(
        &env,
        &[
            "build",
            "--on-error=shell",
            "--secret",
            &format!("id=tok,src={}", secret.display()),
            ctx.to_str().unwrap(),
        ],
        &[
            ("$ ", "sleep 0.5; echo DONE-$((40+2))\n"),
            ("DONE-42", "exit\n"),
        ],
        true,
    );
    assert_eq!(code, Some(1), "{shown}");
    let banner = shown.find("a shell in its filesystem").expect(&shown);
    let done = banner + shown[banner..].find("DONE-42\n").expect(&shown);
    assert!(
        shown[..banner].contains("[+] Building"),
        "drawn before: {shown}"
    );
    assert!(
        !shown[banner..done].contains("[+] Building"),
        "not drawn over the shell: {shown}"
    );
    assert!(
        shown[done..].contains("[+] Building"),
        "drawn after: {shown}"
    );
    assert!(shown[done..].contains("exit code: 5"), "{shown}");
}

#[test]
fn keep_keeps_the_failed_step_as_an_image_for_kiln_run() {
    let Some((env, ctx, secret)) = env() else {
        return;
    };
    let secret_arg = format!("id=tok,src={}", secret.display());
    let out = env.kiln(&[
        "build",
        "--progress=plain",
        "--on-error=keep",
        "--secret",
        &secret_arg,
        ctx.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("exit code: 5"), "{err}");
    assert!(
        err.contains("the failed step is kept as the image `kiln-failed/app:7`"),
        "{err}"
    );
    assert!(
        !err.contains("the step's filesystem is kept"),
        "no kept directory without --keep-failed: {err}"
    );
    assert_eq!(
        fs::read_dir(env.store.join("failed-steps")).map_or(0, Iterator::count),
        0
    );
    let images = ok(&env.kiln(&["images"]));
    assert!(images.contains("kiln-failed/app"), "{images}");
    // The image has the step's changes, and the stage's user, workdir and env.
    let shown = ok(&env.kiln(&[
        "run",
        "kiln-failed/app:7",
        "sh",
        "-c",
        "id -u; pwd; echo $GREETING; cat /work/changed; ls /run/secrets 2>/dev/null | wc -l",
    ]));
    assert_eq!(shown, "65534\n/work\nhello\nchanged\n0\n");
    let history = ok(&env.kiln(&["history", "--no-trunc", "kiln-failed/app:7"]));
    assert!(history.contains("failed: exit code 5"), "{history}");
    let fsck = env.kiln(&["fsck"]);
    assert!(fsck.status.success(), "{}", text(&fsck.stdout));
    assert!(mounts_under(&env.store).is_empty(), "nothing left mounted");

    // With --keep-failed the directory stays too, and the error names both.
    let out = env.kiln(&[
        "build",
        "-q",
        "--on-error=keep",
        "--keep-failed",
        "--secret",
        &secret_arg,
        ctx.to_str().unwrap(),
    ]);
    let err = text(&out.stderr);
    assert!(err.contains("the step's filesystem is kept"), "{err}");
    assert!(err.contains("`kiln-failed/app:7`"), "{err}");
    assert_eq!(
        fs::read_dir(env.store.join("failed-steps"))
            .unwrap()
            .count(),
        1
    );
}

#[test]
fn shell_without_a_terminal_says_why_and_fails_with_the_builds_error() {
    let Some((env, ctx, secret)) = env() else {
        return;
    };
    let state_before = store_state(&env.store);
    let out = env.kiln(&[
        "build",
        "--progress",
        "plain",
        "--on-error=shell",
        "--secret",
        &format!("id=tok,src={}", secret.display()),
        ctx.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("`--on-error=shell`: cannot open a shell in the failed step: stdin and stdout are not a terminal"),
        "{err}"
    );
    assert!(err.contains("error: stage `app`: process"), "{err}");
    assert!(err.contains("exit code: 5"), "{err}");
    assert!(err.contains("--on-error=keep"), "the hint: {err}");
    assert_eq!(store_state(&env.store).0, state_before.0, "no new image");

    // A COPY that fails is no RUN: no shell, and it says so.
    let ctx = env.context("on-error-copy", "FROM busybox\nCOPY missing /x\n", &[]);
    let out = env.kiln(&["build", "--on-error=keep", ctx.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("the step that failed is not a RUN"), "{err}");
}

#[test]
fn bad_on_error_values_name_the_flag() {
    for (value, says) in [
        ("shel", "unknown `shel`"),
        ("secrets", "`secrets` goes with `shell`"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_kiln"))
            .args(["build", &format!("--on-error={value}"), "."])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        let err = text(&out.stderr);
        assert!(err.contains("--on-error"), "{err}");
        assert!(err.contains(says), "{err}");
    }
}
