//! The checks that only read: the caller, seccomp, cgroups, `binfmt_misc` and the store.

use std::fs;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

use super::finding::{Finding, Fix};
use super::host::{Host, Where};

/// Who runs kiln, and so which mode it builds in.
pub(crate) fn check_user(host: &Host, rootless: bool) -> Finding {
    let who = format!("uid {} (`{}`)", host.uid, host.user_label());
    if !rootless {
        Finding::ok(
            "user",
            format!("{who} with CAP_SYS_ADMIN: kiln builds as root"),
        )
    } else if host.uid == 0 {
        Finding::info(
            "user",
            format!(
                "{who} without CAP_SYS_ADMIN (an unprivileged container): kiln builds rootless"
            ),
        )
    } else {
        Finding::ok(
            "user",
            format!("{who}: kiln builds rootless, in a user namespace"),
        )
    }
}

/// The seccomp mode, for the record (the userns check blames the filter when it matters).
pub(crate) fn check_seccomp(host: &Host) -> Finding {
    match host.status_field("Seccomp").as_deref() {
        Some("0") => Finding::ok("seccomp", "no seccomp filter"),
        Some("2") => Finding::info(
            "seccomp",
            "a seccomp filter is on (fine as long as the namespace probes pass)",
        ),
        Some(mode) => Finding::info("seccomp", format!("seccomp mode {mode}")),
        None => Finding::info(
            "seccomp",
            "seccomp mode unknown (no Seccomp: in /proc/self/status)",
        ),
    }
}

/// cgroup v1 or v2 and whether the caller's cgroup is delegated to it. kiln sets no limits
/// on RUN steps, so this is information only.
pub(crate) fn check_cgroup(host: &Host) -> Finding {
    let cgroup = host.sys_root.join("fs/cgroup");
    if !cgroup.join("cgroup.controllers").exists() {
        return Finding::info(
            "cgroup",
            "cgroup v1 (or none): kiln does not use cgroups, nothing to do",
        );
    }
    let own = host
        .proc("self/cgroup")
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("0::").map(str::to_owned))
        })
        .unwrap_or_default();
    let dir = cgroup.join(own.trim().trim_start_matches('/'));
    let delegated = fs::metadata(&dir).is_ok_and(|m| m.uid() == host.uid);
    Finding::info(
        "cgroup",
        format!(
            "cgroup v2, `{}` {}: kiln does not use cgroups, nothing to do",
            own.trim(),
            if delegated {
                "delegated to you"
            } else {
                "not delegated"
            }
        ),
    )
}

/// The OCI platform a `binfmt_misc` entry's name stands for (`qemu-aarch64` -> `linux/arm64`).
pub(crate) fn binfmt_platform(name: &str) -> Option<&'static str> {
    let arch = name.strip_prefix("qemu-").unwrap_or(name);
    Some(match arch {
        "aarch64" => "linux/arm64",
        "arm" => "linux/arm/v7",
        "x86_64" => "linux/amd64",
        "i386" => "linux/386",
        "riscv64" => "linux/riscv64",
        "ppc64le" => "linux/ppc64le",
        "s390x" => "linux/s390x",
        "mips64el" => "linux/mips64le",
        "loongarch64" => "linux/loong64",
        _ => return None,
    })
}

/// `binfmt_misc`: which other platforms' RUN steps this kernel can run, through which
/// emulators. An entry needs the `F` flag (the interpreter opened at registration) to work
/// inside a build's root filesystem, which does not hold the interpreter.
pub(crate) fn check_binfmt(host: &Host) -> Finding {
    let fix = Fix::inside(
        "apt-get install qemu-user-static binfmt-support",
        "on the Docker host: apt-get install qemu-user-static binfmt-support (binfmt_misc is the host kernel's)",
    );
    let fix = Fix {
        kubernetes: Some("on the node: apt-get install qemu-user-static binfmt-support".into()),
        ..fix
    };
    let dir = host.proc_root.join("sys/fs/binfmt_misc");
    let Ok(entries) = fs::read_dir(&dir) else {
        return Finding::info(
            "binfmt",
            "binfmt_misc is not mounted: RUN steps run for this machine's platform only",
        )
        .with_fix(fix);
    };
    let mut usable = Vec::new();
    let mut without_f = Vec::new();
    let mut names: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    names.sort();
    for path in names {
        let name = path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        if name == "register" || name == "status" {
            continue;
        }
        let Some(platform) = binfmt_platform(&name) else {
            continue;
        };
        let Ok(text) = fs::read_to_string(&path) else {
            continue;
        };
        if text.lines().next().is_none_or(|l| l.trim() != "enabled") {
            continue;
        }
        let fixed = text
            .lines()
            .find_map(|l| l.strip_prefix("flags:"))
            .is_some_and(|f| f.contains('F'));
        if fixed {
            usable.push(platform);
        } else {
            without_f.push(platform);
        }
    }
    if !without_f.is_empty() {
        return Finding::warn(
            "binfmt",
            format!(
                "binfmt_misc entries without the F flag: {} (their emulator would have to be \
                 inside each image){}",
                without_f.join(", "),
                if usable.is_empty() {
                    String::new()
                } else {
                    format!("; usable: {}", usable.join(", "))
                }
            ),
        )
        .with_fix(fix);
    }
    if usable.is_empty() {
        Finding::info(
            "binfmt",
            "no emulators registered: RUN steps run for this machine's platform only",
        )
        .with_fix(fix)
    } else {
        Finding::ok(
            "binfmt",
            format!("RUN steps can also run for {}", usable.join(", ")),
        )
    }
}

/// The store: writable, or creatable under its nearest existing parent.
pub(crate) fn check_store(host: &Host) -> Finding {
    let store = &host.store;
    let mut probe: &Path = store;
    while !probe.exists() {
        match probe.parent() {
            Some(p) => probe = p,
            None => break,
        }
    }
    let writable =
        probe.is_dir() && nix::unistd::access(probe, nix::unistd::AccessFlags::W_OK).is_ok();
    if writable {
        let how = if probe == store.as_path() {
            "is writable".to_owned()
        } else {
            format!("will be created in `{}`", probe.display())
        };
        return Finding::ok("store", format!("the store `{}` {how}", store.display()));
    }
    let user = host.user_label();
    let fix = match host.place {
        Where::Host => Fix {
            host: Some(format!(
                "install -d -o {user} {}  (as root), or kiln --root DIR",
                store.display()
            )),
            ..Fix::default()
        },
        Where::Docker | Where::Kubernetes => {
            let volume = store.parent().unwrap_or(store).display().to_string();
            Fix {
                host: None,
                docker: Some(format!(
                    "-v kiln-data:{volume} (a volume the user {user} can write)"
                )),
                kubernetes: Some(format!(
                    "an emptyDir volume at {volume} and securityContext.fsGroup: {}",
                    host.gid
                )),
            }
        }
    };
    Finding::error(
        "store",
        format!(
            "the store `{}` is not writable by uid {} (`{}` refuses)",
            store.display(),
            host.uid,
            probe.display()
        ),
    )
    .with_fix(fix)
}

/// Whether `path` (or its nearest existing parent) lies on overlayfs, where the overlay
/// snapshotter cannot put its upper directories.
pub(crate) fn on_overlayfs(path: &Path) -> bool {
    let mut probe = path;
    while !probe.exists() {
        match probe.parent() {
            Some(p) => probe = p,
            None => return false,
        }
    }
    nix::sys::statfs::statfs(probe)
        .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::OVERLAYFS_SUPER_MAGIC)
}
