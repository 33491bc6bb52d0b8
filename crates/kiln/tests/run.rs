//! `kiln run`: the image's config as Docker reads it, flags, exit codes, `--commit` layers that
//! are the same with overlayfs and with the fallback snapshotter, and nothing left behind after
//! SIGTERM. Needs root (namespaces, overlayfs) and the static busybox; runs in CI as root.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use kiln_test_support::{busybox_rootfs_tar, require};

fn kiln(root: &Path, snapshotter: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kiln"))
        .arg("--root")
        .arg(root)
        .args(args)
        .env("KILN_SNAPSHOTTER", snapshotter)
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "failed ({:?}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A store with `bb:1`, a busybox image whose default command is `echo default`.
fn store_with_busybox(tmp: &Path) -> PathBuf {
    let root = tmp.join("store");
    let tar = busybox_rootfs_tar(tmp);
    ok(&kiln(
        &root,
        "",
        &[
            "import",
            tar.to_str().unwrap(),
            "bb:1",
            "--cmd",
            r#"["echo","default"]"#,
        ],
    ));
    root
}

fn prerequisites() -> bool {
    require(true, &["/bin/busybox", "tar"]).is_some()
}

#[test]
fn runs_with_the_image_config_and_the_flags() {
    if !prerequisites() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let root = store_with_busybox(tmp.path());
    // A step directory left by a kiln that was SIGKILLed (pid 0 is never a live process).
    let stale = root.join("steps/0-123");
    fs::create_dir_all(stale.join("upper")).unwrap();
    assert_eq!(ok(&kiln(&root, "", &["run", "bb:1"])), "default\n");
    assert!(!stale.exists(), "stale step directories are removed");
    let out = kiln(
        &root,
        "",
        &[
            "run",
            "--rm",
            "-e",
            "A=1",
            "-w",
            "/w",
            "-u",
            "nobody",
            "bb:1",
            "sh",
            "-c",
            "echo $A $(pwd) $(id -u):$(id -g) $HOME; exit 3",
        ],
    );
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "1 /w 65534:65534 /nonexistent\n"
    );
    let out = kiln(&root, "", &["run", "bb:1", "no-such-tool"]);
    assert_eq!(out.status.code(), Some(127));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("executable `no-such-tool` not found in $PATH"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = kiln(&root, "", &["run", "-u", "ghost", "bb:1", "true"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unable to find user `ghost`"));
    let out = kiln(
        &root,
        "",
        &["run", "--network", "none", "bb:1", "ls", "/sys/class/net"],
    );
    assert_eq!(ok(&out), "lo\n");
}

/// Issue 10, item 21: flags end at the image, as `docker run`'s do, and `--entrypoint` replaces
/// the image's Entrypoint and drops its Cmd (Docker's `merge`), `--entrypoint ""` clearing it.
#[test]
fn r10_21_args_after_the_image_and_entrypoint_are_dockers() {
    if !prerequisites() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let root = store_with_busybox(tmp.path());
    let ctx = tmp.path().join("ctx");
    fs::create_dir_all(&ctx).unwrap();
    fs::write(
        ctx.join("Dockerfile"),
        "FROM bb:1\nENTRYPOINT [\"echo\", \"ep\"]\nCMD [\"default\"]\n",
    )
    .unwrap();
    ok(&kiln(
        &root,
        "",
        &["build", "-q", "-t", "ep:1", ctx.to_str().unwrap()],
    ));
    let run = |args: &[&str]| {
        let mut all = vec!["run"];
        all.extend_from_slice(args);
        kiln(&root, "", &all)
    };
    assert_eq!(ok(&run(&["ep:1"])), "ep default\n");
    // Everything after the image is the command's, kiln's own flags included.
    assert_eq!(ok(&run(&["ep:1", "--version"])), "ep --version\n");
    assert_eq!(ok(&run(&["ep:1", "-e", "A=1", "--"])), "ep -e A=1 --\n");
    assert_eq!(ok(&run(&["bb:1", "echo", "--help"])), "--help\n");
    // Before the image, an unknown flag is still an error.
    let out = run(&["--no-such-flag", "ep:1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--no-such-flag"));
    // --entrypoint replaces the Entrypoint, and the image's Cmd is not its default argument.
    assert_eq!(ok(&run(&["--entrypoint", "echo", "ep:1", "hi"])), "hi\n");
    assert_eq!(ok(&run(&["--entrypoint", "echo", "ep:1"])), "\n");
    assert_eq!(
        ok(&run(&["--entrypoint", "sh", "bb:1", "-c", "echo $0", "x"])),
        "x\n"
    );
    // --entrypoint "" clears it: the arguments are the whole command, and there must be some.
    assert_eq!(ok(&run(&["--entrypoint", "", "ep:1", "echo", "x"])), "x\n");
    let out = run(&["--entrypoint=", "ep:1"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no command specified"), "{stderr}");
    assert!(stderr.contains("hint:"), "{stderr}");
}

/// The entries of the top layer of `image` in the store at `root`.
fn top_layer_entries(root: &Path, image: &str) -> Vec<String> {
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(root.join("index.json")).unwrap()).unwrap();
    let want = format!("docker.io/library/{image}");
    let desc = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == want.as_str())
        .unwrap();
    let blob = |d: &serde_json::Value| {
        let digest = d["digest"]
            .as_str()
            .unwrap()
            .strip_prefix("sha256:")
            .unwrap();
        root.join("blobs/sha256").join(digest)
    };
    let manifest: serde_json::Value =
        serde_json::from_slice(&fs::read(blob(desc)).unwrap()).unwrap();
    let top = manifest["layers"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    let out = Command::new("tar")
        .arg("-tvf")
        .arg(blob(&top))
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            format!("{} {}", f[0], f[5..].join(" "))
        })
        .collect()
}

fn diff_ids(root: &Path, image: &str) -> serde_json::Value {
    let out = ok(&kiln(root, "", &["inspect", image]));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v[0]["RootFS"]["Layers"].clone()
}

const CHANGE: &str = "set -e; echo new > /new; rm /bin/vi; chmod 700 /root; \
    chown nobody /etc/group; mkdir -p /d/e; echo x > /d/e/f; ln /d/e/f /d/e/g; \
    ln -s f /d/e/s; echo junk >> /etc/hosts; echo junk >> /etc/resolv.conf; \
    echo junk > /proc/sys/kernel/domainname || true; touch /dev/junk; rm -rf /tmp; mkdir /tmp";

#[test]
fn commit_gives_the_same_layer_with_overlay_and_fallback() {
    if !prerequisites() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let root = store_with_busybox(tmp.path());
    let host_hosts = fs::read("/etc/hosts").unwrap();
    ok(&kiln(
        &root,
        "overlay",
        &["run", "--commit", "bb:overlay", "bb:1", "sh", "-c", CHANGE],
    ));
    ok(&kiln(
        &root,
        "naive",
        &["run", "--commit", "bb:naive", "bb:1", "sh", "-c", CHANGE],
    ));
    assert_eq!(fs::read("/etc/hosts").unwrap(), host_hosts);
    let entries = top_layer_entries(&root, "bb:overlay");
    // No /etc/hosts, /etc/resolv.conf, /proc, /dev or /sys: bind mounts and mount points
    // never reach the layer.
    assert_eq!(
        entries,
        [
            "drwxr-xr-x bin/",
            "---------- bin/.wh.vi",
            "drwxr-xr-x d/",
            "drwxr-xr-x d/e/",
            "-rw-r--r-- d/e/f",
            "hrw-r--r-- d/e/g link to d/e/f",
            "lrwxrwxrwx d/e/s -> f",
            "drwxr-xr-x etc/",
            "-rw-r--r-- etc/group",
            "-rw-r--r-- new",
            "drwx------ root/",
            "drwxr-xr-x tmp/",
        ],
    );
    assert_eq!(diff_ids(&root, "bb:overlay"), diff_ids(&root, "bb:naive"));
    // The committed image runs and has the change.
    assert_eq!(
        ok(&kiln(&root, "", &["run", "bb:overlay", "cat", "/d/e/g"])),
        "x\n"
    );
    // Nothing of the steps is left in the store's working area.
    let steps = root.join("steps");
    assert_eq!(fs::read_dir(&steps).map_or(0, Iterator::count), 0);
}

/// Processes whose whole command line is `needle`.
fn pids_with(needle: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for e in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if let Ok(cmd) = fs::read(e.path().join("cmdline"))
            && String::from_utf8_lossy(&cmd).replace('\0', " ").trim() == needle
        {
            out.push(pid);
        }
    }
    out
}

#[test]
fn sigterm_and_ctrl_c_stop_the_step_and_leave_no_process_mount_or_directory() {
    if !prerequisites() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let root = store_with_busybox(tmp.path());
    // Only mounts of this test's store count: other tests (a private dockerd's builds, say)
    // mount and unmount things on the host at the same time.
    let ours = |root: &std::path::Path| -> Vec<String> {
        let root = root.display().to_string();
        fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .filter(|l| l.contains(&root))
            .map(str::to_owned)
            .collect()
    };
    let mounts_before = ours(&root);
    for (signal, code, n) in [
        (rustix::process::Signal::TERM, 143, 1006),
        (rustix::process::Signal::INT, 130, 1008),
    ] {
        let (bg, fg) = (format!("sleep {n}"), format!("sleep {}", n + 1));
        let mut child = Command::new(env!("CARGO_BIN_EXE_kiln"))
            .arg("--root")
            .arg(&root)
            .args([
                "run",
                "bb:1",
                "sh",
                "-c",
                &format!("trap '' TERM INT; {bg} & {fg}; wait"),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut tries = 0;
        while pids_with(&fg).is_empty() && tries < 500 {
            std::thread::sleep(Duration::from_millis(10));
            tries += 1;
        }
        assert!(!pids_with(&fg).is_empty(), "the step never started");
        let pid = rustix::process::Pid::from_raw(i32::try_from(child.id()).unwrap()).unwrap();
        rustix::process::kill_process(pid, signal).unwrap();
        let status = child.wait().unwrap();
        let mut stderr = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        assert_eq!(status.code(), Some(code), "{signal:?}: {stderr}");
        let mut tries = 0;
        while !(pids_with(&bg).is_empty() && pids_with(&fg).is_empty()) && tries < 200 {
            std::thread::sleep(Duration::from_millis(10));
            tries += 1;
        }
        assert!(pids_with(&bg).is_empty() && pids_with(&fg).is_empty());
        assert_eq!(ours(&root), mounts_before, "no mount of the step is left");
        assert_eq!(
            fs::read_dir(root.join("steps")).map_or(0, Iterator::count),
            0
        );
    }
}

#[test]
fn tty_gives_the_command_a_terminal_of_the_callers_size() {
    if !prerequisites() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let root = store_with_busybox(tmp.path());
    // The caller's terminal: a pty this test holds the master side of.
    let pty = kiln_sandbox::pty::Pty::open(None).unwrap();
    pty.set_size(33, 99).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .arg("--root")
        .arg(&root)
        .args([
            "run",
            "-t",
            "bb:1",
            "sh",
            "-c",
            "test -t 0 && test -t 1 && echo is-a-tty; stty size",
        ])
        .stdin(Stdio::from(pty.slave.try_clone().unwrap()))
        .stdout(Stdio::from(pty.slave.try_clone().unwrap()))
        .stderr(Stdio::from(pty.slave.try_clone().unwrap()))
        .spawn()
        .unwrap();
    drop(pty.slave);
    let mut master = fs::File::from(pty.master);
    let mut out = Vec::new();
    let mut buf = [0u8; 1024];
    // EIO once kiln, the last holder of the slave side, is gone.
    while let Ok(n) = master.read(&mut buf) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    assert!(child.wait().unwrap().success());
    let out = String::from_utf8_lossy(&out).replace('\r', "");
    assert!(out.contains("is-a-tty\n33 99\n"), "{out:?}");
}
