//! Shared helpers of the real-namespace tests: a busybox rootfs, a step runner, checks.

#![allow(dead_code)]

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use kiln_sandbox::{Launcher, Network, Process, Rootfs, SandboxError, Spec};

/// Whether real-namespace tests can run here (root and overlayfs); says so loudly otherwise,
/// and fails under `CI=true`.
pub(crate) fn privileged() -> bool {
    if !kiln_sandbox::overlay_available() {
        kiln_test_support::missing("root and overlayfs are needed for real-namespace tests");
        return false;
    }
    if busybox().is_none() {
        kiln_test_support::missing(
            "a static busybox is needed (Debian package busybox-static, /bin/busybox)",
        );
        return false;
    }
    true
}

/// The static busybox from Debian's busybox-static package.
pub(crate) fn busybox() -> Option<PathBuf> {
    ["/bin/busybox", "/usr/bin/busybox"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

/// Writes a busybox rootfs into `dir`: `/bin/busybox` with its applets as hard links,
/// `/etc/passwd`, `/etc/group`, `/tmp`, and nothing else (no `/proc`, `/dev`, `/sys`,
/// `/etc/hosts`: the sandbox must cope).
pub(crate) fn busybox_rootfs(dir: &Path) {
    let bb = busybox().expect("busybox");
    fs::create_dir_all(dir.join("bin")).unwrap();
    fs::create_dir_all(dir.join("etc")).unwrap();
    fs::create_dir_all(dir.join("tmp")).unwrap();
    let target = dir.join("bin/busybox");
    fs::copy(&bb, &target).unwrap();
    let list = std::process::Command::new(&bb)
        .arg("--list")
        .output()
        .unwrap();
    for applet in String::from_utf8(list.stdout).unwrap().lines() {
        if applet != "busybox" {
            let _ = fs::hard_link(&target, dir.join("bin").join(applet));
        }
    }
    fs::write(
        dir.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\n\
         app:x:1000:1000:App:/home/app:/bin/sh\n\
         nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    )
    .unwrap();
    fs::write(
        dir.join("etc/group"),
        "root:x:0:\napp:x:1000:\nstaff:x:50:app\nwheel:x:10:app,root\nnogroup:x:65534:\n",
    )
    .unwrap();
}

/// A step's directories under one temporary directory.
pub(crate) struct StepDirs {
    pub tmp: tempfile::TempDir,
    pub state: PathBuf,
    pub upper: PathBuf,
    pub work: PathBuf,
    pub mountpoint: PathBuf,
}

impl StepDirs {
    pub(crate) fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let state = tmp.path().join("state");
        let upper = tmp.path().join("upper");
        let work = tmp.path().join("work");
        let mountpoint = tmp.path().join("rootfs");
        for d in [&state, &upper, &work, &mountpoint] {
            fs::create_dir(d).unwrap();
        }
        Self {
            tmp,
            state,
            upper,
            work,
            mountpoint,
        }
    }

    pub(crate) fn spec(&self, lower: &[PathBuf], process: Process) -> Spec {
        let (hosts, resolv_conf) = kiln_sandbox::write_etc_files(&self.state, "kiln").unwrap();
        Spec {
            rootfs: Rootfs::Overlay {
                lower: lower.to_vec(),
                upper: self.upper.clone(),
                work: self.work.clone(),
            },
            mountpoint: self.mountpoint.clone(),
            hosts,
            resolv_conf,
            hostname: "kiln".into(),
            network: Network::Host,
            process,
            mounts: Vec::new(),
        }
    }
}

pub(crate) fn launcher() -> Launcher {
    Launcher::program(env!("CARGO_BIN_EXE_kiln-sandbox-init"))
}

/// Runs `spec`, returning (exit code or error, stdout, stderr).
pub(crate) fn run(spec: &Spec, state: &Path) -> (Result<i32, SandboxError>, String, String) {
    let mut running = launcher()
        .spawn(spec, state, [Stdio::null(), Stdio::piped(), Stdio::piped()])
        .unwrap();
    let mut out = running.child_mut().stdout.take().unwrap();
    let mut err = running.child_mut().stderr.take().unwrap();
    let t = std::thread::spawn(move || {
        let mut s = String::new();
        err.read_to_string(&mut s).unwrap();
        s
    });
    let mut stdout = String::new();
    out.read_to_string(&mut stdout).unwrap();
    let stderr = t.join().unwrap();
    (running.wait(), stdout, stderr)
}

pub(crate) fn sh(script: &str) -> Process {
    Process {
        args: vec!["/bin/sh".into(), "-c".into(), script.into()],
        ..Process::default()
    }
}

/// The mount points of this process's mount namespace.
pub(crate) fn mounts() -> Vec<String> {
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .map(|l| l.split_whitespace().nth(4).unwrap_or("").to_owned())
        .collect()
}

/// Every pid of the host whose whole command line is `needle`.
pub(crate) fn pids_with(needle: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for e in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if let Ok(cmd) = fs::read(e.path().join("cmdline")) {
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            if cmd.trim() == needle {
                out.push(pid);
            }
        }
    }
    out
}
