//! The checks that try things: a user namespace, a mount, an overlay and a fresh `/proc` in
//! new namespaces (through the [`Prober`](super::host::Prober)), and, when one fails, which
//! setting is to blame and what lifts it.

use std::path::Path;

use super::finding::{Finding, Fix};
use super::host::{Host, ProbeFailure, Where};

/// The probes' verdict on the user namespace, kept for the checks that depend on it.
pub(crate) struct Userns {
    /// The finding to print.
    pub finding: Finding,
    /// Whether one could be created (the mount probes need it when rootless).
    pub works: bool,
}

/// The seccomp fix (Docker's and Kubernetes' default profiles refuse `unshare` and `clone`
/// of namespaces without `CAP_SYS_ADMIN`).
fn seccomp_fix() -> Fix {
    Fix {
        host: Some(
            "start kiln outside the seccomp filter that refuses unshare (a systemd unit's \
             RestrictNamespaces=, a sandbox)"
                .into(),
        ),
        docker: Some("--security-opt seccomp=unconfined".into()),
        kubernetes: Some("securityContext.seccompProfile.type: Unconfined".into()),
    }
}

/// The AppArmor fix (Docker's `docker-default` profile refuses every mount).
fn apparmor_fix() -> Fix {
    Fix {
        host: Some("run kiln unconfined: aa-exec -p unconfined -- kiln ...".into()),
        docker: Some("--security-opt apparmor=unconfined".into()),
        kubernetes: Some("securityContext.appArmorProfile.type: Unconfined".into()),
    }
}

/// The AppArmor profile confining this process, when one does (`docker-default (enforce)`
/// gives `docker-default`; `unconfined` and an absent AppArmor give `None`).
pub(crate) fn apparmor_profile(host: &Host) -> Option<String> {
    let text = host
        .proc("self/attr/apparmor/current")
        .or_else(|| host.proc("self/attr/current"))?;
    let name = text.trim().trim_end_matches('\0');
    let name = name.split(" (").next().unwrap_or(name).trim();
    (!name.is_empty() && name != "unconfined").then(|| name.to_owned())
}

/// Whether a seccomp filter is on this process (`Seccomp: 2`).
pub(crate) fn seccomp_filtered(host: &Host) -> bool {
    host.status_field("Seccomp").as_deref() == Some("2")
}

/// A user namespace: the probe, and when it fails, the sysctl, LSM or filter to blame.
pub(crate) fn check_userns(host: &Host, rootless: bool) -> Userns {
    if !rootless {
        return Userns {
            finding: Finding::info(
                "userns",
                "not needed: root with CAP_SYS_ADMIN enters the other namespaces directly",
            ),
            works: true,
        };
    }
    match host.prober.user_namespace() {
        Ok(()) => Userns {
            finding: Finding::ok("userns", "a user namespace can be created"),
            works: true,
        },
        Err(failure) => Userns {
            finding: userns_cause(host, &failure),
            works: false,
        },
    }
}

/// Why a user namespace could not be made, most specific cause first.
pub(crate) fn userns_cause(host: &Host, failure: &ProbeFailure) -> Finding {
    let said = format!("a user namespace cannot be created ({failure})");
    if host.proc_number("sys/user/max_user_namespaces") == Some(0) {
        return Finding::error("userns", format!("{said}: user.max_user_namespaces is 0"))
            .with_fix(Fix::everywhere("sysctl -w user.max_user_namespaces=15000"));
    }
    if host.uid != 0 && host.proc_number("sys/kernel/unprivileged_userns_clone") == Some(0) {
        return Finding::error(
            "userns",
            format!("{said}: kernel.unprivileged_userns_clone is 0"),
        )
        .with_fix(Fix::everywhere(
            "sysctl -w kernel.unprivileged_userns_clone=1",
        ));
    }
    if failure.denied() && seccomp_filtered(host) && failure.step == "unshare" {
        return Finding::error(
            "userns",
            format!("{said}: a seccomp filter refuses unshare"),
        )
        .with_fix(seccomp_fix());
    }
    if failure.denied()
        && host.proc_number("sys/kernel/apparmor_restrict_unprivileged_userns") == Some(1)
    {
        return Finding::error(
            "userns",
            format!("{said}: kernel.apparmor_restrict_unprivileged_userns is 1"),
        )
        .with_fix(Fix::everywhere(
            "sysctl -w kernel.apparmor_restrict_unprivileged_userns=0",
        ));
    }
    if failure.errno == nix::libc::ENOSPC {
        return Finding::error(
            "userns",
            format!("{said}: the limit user.max_user_namespaces is reached"),
        )
        .with_fix(Fix::everywhere("sysctl -w user.max_user_namespaces=15000"));
    }
    Finding::error("userns", said)
}

/// A mount in a new mount namespace: the seam every RUN step goes through. AppArmor's
/// `docker-default` refuses it even inside a user namespace.
pub(crate) fn check_mount(host: &Host, dir: &Path, rootless: bool) -> Finding {
    match host.prober.mount_tmpfs(dir, rootless) {
        Ok(()) => Finding::ok("mount", "mounts work in a new mount namespace"),
        Err(failure) => {
            let said = format!("cannot mount in a new mount namespace ({failure})");
            if let Some(profile) = apparmor_profile(host).filter(|_| failure.denied()) {
                Finding::error(
                    "mount",
                    format!("{said}: the AppArmor profile `{profile}` refuses mounts"),
                )
                .with_fix(apparmor_fix())
            } else if failure.denied() && !rootless {
                Finding::error("mount", format!("{said}: CAP_SYS_ADMIN is missing"))
                    .with_fix(Fix {
                        host: None,
                        docker: Some("run kiln as a non-root user (rootless needs no capabilities)".into()),
                        kubernetes: Some("securityContext.runAsNonRoot: true with runAsUser (rootless needs no capabilities)".into()),
                    })
            } else {
                Finding::error("mount", said)
            }
        }
    }
}

/// The kernel release (`6.1.0-18-amd64`) as (major, minor).
pub(crate) fn kernel_version(host: &Host) -> Option<(u32, u32)> {
    let release = host.proc("sys/kernel/osrelease")?;
    let mut parts = release.trim().split(['.', '-']);
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// The overlay snapshotter: an overlay mount over directories in the store (with
/// `userxattr` in a user namespace). Without it kiln copies layers: slower, still correct.
pub(crate) fn check_overlay(
    host: &Host,
    dir: &Path,
    rootless: bool,
    store_on_overlay: bool,
) -> Finding {
    match host.prober.overlay(dir, rootless) {
        Ok(()) => Finding::ok(
            "overlay",
            if rootless {
                "overlay mounts in a user namespace (userxattr): RUN steps use the overlay snapshotter"
            } else {
                "overlay mounts: RUN steps use the overlay snapshotter"
            },
        ),
        Err(failure) => {
            let said = format!(
                "no overlay in the store ({failure}): kiln uses the copying snapshotter (slower RUN steps)"
            );
            let finding = Finding::warn("overlay", said.clone());
            if store_on_overlay {
                let volume = host
                    .store
                    .parent()
                    .unwrap_or(&host.store)
                    .display()
                    .to_string();
                Finding::warn(
                    "overlay",
                    format!("{said}; the store is itself on overlayfs"),
                )
                .with_fix(Fix {
                    host: Some(
                        "kiln --root DIR on a filesystem that is not overlayfs (ext4, xfs, btrfs)"
                            .into(),
                    ),
                    docker: Some(format!("-v kiln-data:{volume}")),
                    kubernetes: Some(format!(
                        "volumes: an emptyDir mounted at {volume} (volumeMounts.mountPath)"
                    )),
                })
            } else if rootless && kernel_version(host).is_some_and(|v| v < (5, 11)) {
                finding.with_fix(Fix::everywhere(
                    "a kernel >= 5.11 (overlay in user namespaces, userxattr)",
                ))
            } else if apparmor_profile(host).is_some() && failure.denied() {
                finding.with_fix(apparmor_fix())
            } else {
                finding
            }
        }
    }
}

/// Whether `/proc` has paths masked by bind mounts over them (Docker's `/proc/kcore`,
/// `/proc/keys`..., Kubernetes' default `procMount`): the kernel then refuses a fresh proc
/// mount in a new user namespace, since it would reveal them.
pub(crate) fn proc_masked(host: &Host) -> bool {
    host.proc("self/mountinfo").is_some_and(|m| {
        m.lines().any(|l| {
            l.split_whitespace()
                .nth(4)
                .is_some_and(|point| point.starts_with("/proc/"))
        })
    })
}

/// A fresh `/proc` from a new pid namespace, as RUN steps get it.
pub(crate) fn check_proc(host: &Host, dir: &Path, rootless: bool) -> Finding {
    match host.prober.proc_mount(dir, rootless) {
        Ok(()) => Finding::ok("proc", "a fresh /proc mounts in a new pid namespace"),
        Err(failure) => {
            let said =
                format!("a fresh /proc cannot be mounted in a new pid namespace ({failure})");
            if proc_masked(host) {
                Finding::warn(
                    "proc",
                    format!(
                        "{said}: paths under /proc are masked; RUN steps fall back to the \
                         container's /proc"
                    ),
                )
                .with_fix(Fix {
                    host: None,
                    docker: Some("--security-opt systempaths=unconfined".into()),
                    kubernetes: Some(
                        "securityContext.procMount: Unmasked (with hostUsers: false)".into(),
                    ),
                })
            } else if let Some(profile) = apparmor_profile(host).filter(|_| failure.denied()) {
                Finding::error(
                    "proc",
                    format!("{said}: the AppArmor profile `{profile}` refuses it"),
                )
                .with_fix(apparmor_fix())
            } else {
                Finding::error("proc", said)
            }
        }
    }
}

/// A finding for a probe that was not tried, and why.
pub(crate) fn not_tried(check: &'static str, why: &str) -> Finding {
    Finding::info(check, format!("not tried: {why}"))
}

/// The place's name in the summary line.
pub(crate) fn place_name(place: Where) -> &'static str {
    match place {
        Where::Host => "on a host",
        Where::Docker => "in a container",
        Where::Kubernetes => "in a Kubernetes pod",
    }
}
