//! The real [`Prober`]: each probe re-executes kiln as `kiln __doctor-probe KIND MODE DIR`,
//! a child that enters fresh namespaces, tries one thing and exits, so nothing it did
//! (a namespace, a mount) outlives it. A failure comes back on the child's stderr as one
//! line: `step<TAB>errno<TAB>message`.

use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use nix::mount::{MsFlags, mount};
use nix::sched::{CloneFlags, unshare};

use super::host::{Probe, ProbeFailure, Prober};

/// The hidden first argument of the probe child.
pub(crate) const PROBE_ARG: &str = "__doctor-probe";

/// Run the probe child when this process is one; returns otherwise. Called first thing in
/// `main`, while the process is still single-threaded (`unshare(CLONE_NEWUSER)` requires it).
pub(crate) fn main_if_probe() {
    let args: Vec<OsString> = std::env::args_os().collect();
    if args.get(1).is_none_or(|a| a != PROBE_ARG) {
        return;
    }
    let code = match child(&args[2..]) {
        Ok(()) => 0,
        Err(f) => {
            eprintln!("{}\t{}\t{}", f.step, f.errno, f.message);
            1
        }
    };
    std::process::exit(code);
}

/// Probes by re-executing the kiln binary at `exe`.
pub(crate) struct Reexec {
    exe: PathBuf,
}

impl Reexec {
    /// Probes through this very binary.
    pub(crate) fn current() -> Self {
        Self {
            exe: std::env::current_exe().unwrap_or_else(|_| "/proc/self/exe".into()),
        }
    }

    fn run(&self, kind: &str, dir: &Path, rootless: bool) -> Probe {
        let out = Command::new(&self.exe)
            .arg(PROBE_ARG)
            .arg(kind)
            .arg(if rootless { "rootless" } else { "root" })
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .map_err(|e| ProbeFailure {
                step: format!("start `{}`", self.exe.display()),
                errno: e.raw_os_error().unwrap_or(0),
                message: e.to_string(),
            })?;
        if out.status.success() {
            return Ok(());
        }
        let text = String::from_utf8_lossy(&out.stderr);
        Err(parse_failure(&text).unwrap_or_else(|| ProbeFailure {
            step: kind.to_owned(),
            errno: 0,
            message: format!("the probe ended with {}: {}", out.status, text.trim()),
        }))
    }
}

/// The child's last `step<TAB>errno<TAB>message` line.
pub(crate) fn parse_failure(stderr: &str) -> Option<ProbeFailure> {
    let line = stderr
        .lines()
        .rev()
        .find(|l| l.matches('\t').count() >= 2)?;
    let mut parts = line.splitn(3, '\t');
    Some(ProbeFailure {
        step: parts.next()?.to_owned(),
        errno: parts.next()?.parse().ok()?,
        message: parts.next()?.to_owned(),
    })
}

impl Prober for Reexec {
    fn user_namespace(&self) -> Probe {
        self.run("userns", Path::new("/"), true)
    }

    fn mount_tmpfs(&self, dir: &Path, rootless: bool) -> Probe {
        self.run("tmpfs", dir, rootless)
    }

    fn overlay(&self, dir: &Path, rootless: bool) -> Probe {
        self.run("overlay", dir, rootless)
    }

    fn proc_mount(&self, dir: &Path, rootless: bool) -> Probe {
        self.run("proc", dir, rootless)
    }

    fn id_map(&self, helper: &Path, id: u32) -> Probe {
        use std::io::BufRead as _;
        let start = |e: &std::io::Error| io_failed(format!("start `{}`", self.exe.display()), e);
        // A child in a new user namespace that waits (for its stdin to close) while the
        // helper writes its map.
        let mut holder = Command::new(&self.exe)
            .args([PROBE_ARG, "userns-hold", "rootless", "/"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| start(&e))?;
        let mut ready = String::new();
        if let Some(out) = holder.stdout.take() {
            let _ = std::io::BufReader::new(out).read_line(&mut ready);
        }
        let result = if ready.trim() == "ready" {
            let name = helper
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            match Command::new(helper)
                .arg(holder.id().to_string())
                .args(["0", &id.to_string(), "1"])
                .stdin(Stdio::null())
                .output()
            {
                Ok(out) if out.status.success() => Ok(()),
                Ok(out) => Err(ProbeFailure {
                    step: name,
                    errno: 0,
                    message: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
                }),
                Err(e) => Err(io_failed(format!("start `{}`", helper.display()), &e)),
            }
        } else {
            Err(ProbeFailure {
                step: "unshare".into(),
                errno: 0,
                message: "the probe could not enter a user namespace".into(),
            })
        };
        drop(holder.stdin.take());
        let _ = holder.wait();
        result
    }
}

fn failed(step: impl Into<String>, errno: nix::errno::Errno) -> ProbeFailure {
    ProbeFailure {
        step: step.into(),
        errno: errno as i32,
        message: errno.desc().to_owned(),
    }
}

fn io_failed(step: impl Into<String>, e: &std::io::Error) -> ProbeFailure {
    ProbeFailure {
        step: step.into(),
        errno: e.raw_os_error().unwrap_or(0),
        message: e.to_string(),
    }
}

/// The probe child: `KIND MODE DIR`.
fn child(args: &[OsString]) -> Probe {
    let arg = |i: usize| args.get(i).cloned().unwrap_or_default();
    let kind = arg(0).to_string_lossy().into_owned();
    let rootless = arg(1) == "rootless";
    let dir = PathBuf::from(arg(2));
    match kind.as_str() {
        "userns" => enter(true, false, false),
        "userns-hold" => {
            use std::io::{Read as _, Write as _};
            let mut flags = CloneFlags::empty();
            flags.set(CloneFlags::CLONE_NEWUSER, true);
            unshare(flags).map_err(|e| failed("unshare", e))?;
            println!("ready");
            let _ = std::io::stdout().flush();
            let _ = std::io::stdin().read_to_end(&mut Vec::new());
            Ok(())
        }
        "tmpfs" => {
            enter(rootless, true, false)?;
            let target = made(&dir, "tmpfs")?;
            mount(
                Some("tmpfs"),
                &target,
                Some("tmpfs"),
                MsFlags::empty(),
                None::<&str>,
            )
            .map_err(|e| failed("mount tmpfs", e))
        }
        "overlay" => {
            enter(rootless, true, false)?;
            let base = made(&dir, "overlay")?;
            let [lower, upper, work, merged] =
                ["lower", "upper", "work", "merged"].map(|d| base.join(d));
            for d in [&lower, &upper, &work, &merged] {
                fs::create_dir_all(d)
                    .map_err(|e| io_failed(format!("mkdir {}", d.display()), &e))?;
            }
            let mut data = format!(
                "lowerdir={},upperdir={},workdir={}",
                lower.display(),
                upper.display(),
                work.display()
            );
            if rootless {
                data.push_str(",userxattr");
            }
            mount(
                Some("overlay"),
                &merged,
                Some("overlay"),
                MsFlags::empty(),
                Some(data.as_str()),
            )
            .map_err(|e| failed("mount overlay", e))
        }
        "proc" => {
            enter(rootless, true, true)?;
            // The new pid namespace takes the next child: it mounts proc as its pid 1.
            let exe = std::env::current_exe().unwrap_or_else(|_| "/proc/self/exe".into());
            let status = Command::new(exe)
                .arg(PROBE_ARG)
                .arg("proc-inner")
                .arg(arg(1))
                .arg(&dir)
                .status()
                .map_err(|e| io_failed("start the pid 1 of the new pid namespace", &e))?;
            if status.success() {
                Ok(())
            } else {
                // The inner child printed its own failure line.
                std::process::exit(1)
            }
        }
        "proc-inner" => {
            let target = made(&dir, "proc")?;
            mount(
                Some("proc"),
                &target,
                Some("proc"),
                MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
                None::<&str>,
            )
            .map_err(|e| failed("mount proc", e))
        }
        other => Err(ProbeFailure {
            step: format!("probe `{other}`"),
            errno: 0,
            message: "unknown probe".into(),
        }),
    }
}

/// `dir/name`, created.
fn made(dir: &Path, name: &str) -> Result<PathBuf, ProbeFailure> {
    let path = dir.join(name);
    fs::create_dir_all(&path).map_err(|e| io_failed(format!("mkdir {}", path.display()), &e))?;
    Ok(path)
}

/// Enter new namespaces: a user namespace mapping the caller to root (when `rootless`), a
/// mount namespace with `/` made private (when `mounts`), a pid namespace for the next child
/// (when `pid`).
fn enter(rootless: bool, mounts: bool, pid: bool) -> Probe {
    let uid = nix::unistd::getuid().as_raw();
    let gid = nix::unistd::getgid().as_raw();
    let mut flags = CloneFlags::empty();
    flags.set(CloneFlags::CLONE_NEWUSER, rootless);
    flags.set(CloneFlags::CLONE_NEWNS, mounts);
    flags.set(CloneFlags::CLONE_NEWPID, pid);
    unshare(flags).map_err(|e| failed("unshare", e))?;
    if rootless {
        for (file, text) in [
            ("setgroups", "deny".to_owned()),
            ("uid_map", format!("0 {uid} 1")),
            ("gid_map", format!("0 {gid} 1")),
        ] {
            fs::write(format!("/proc/self/{file}"), text)
                .map_err(|e| io_failed(format!("write /proc/self/{file}"), &e))?;
        }
    }
    if mounts {
        mount(
            None::<&str>,
            "/",
            None::<&str>,
            MsFlags::MS_REC | MsFlags::MS_PRIVATE,
            None::<&str>,
        )
        .map_err(|e| failed("make / private", e))?;
    }
    Ok(())
}

/// Remove a probe directory, first opening up what the overlay left unreadable
/// (`work/work` is mode 000).
pub(crate) fn remove_probe_dir(dir: &Path) {
    fn open_up(dir: &Path) {
        let _ = fs::set_permissions(dir, fs::Permissions::from_mode(0o700));
        if let Ok(entries) = fs::read_dir(dir) {
            for e in entries.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    open_up(&e.path());
                }
            }
        }
    }
    open_up(dir);
    let _ = fs::remove_dir_all(dir);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_childs_failure_line_is_parsed() {
        let f = parse_failure("noise\nunshare\t1\tOperation not permitted\n").unwrap();
        assert_eq!(f.step, "unshare");
        assert_eq!(f.errno, 1);
        assert!(f.denied());
        assert!(parse_failure("no tabs here").is_none());
    }
}
