//! What `kiln doctor` reads about the machine, in one struct whose every input can be
//! swapped: the paths of `/proc`, `/sys`, `/etc/subuid`..., the `PATH` to look tools up in,
//! the caller's ids, where kiln runs (host, Docker, Kubernetes), and the [`Prober`] that
//! tries namespaces and mounts for real. Unit tests point it at a temp dir that holds a
//! broken setup and a fake prober.

use std::fs;
use std::path::{Path, PathBuf};

/// Where kiln runs, which decides which form of a fix doctor prints: a host command, a
/// `docker run` flag or a Kubernetes field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Where {
    /// A machine or VM (fixes are commands to run on it).
    Host,
    /// A Docker (or Podman) container (fixes are `docker run` flags).
    Docker,
    /// A Kubernetes pod (fixes are fields of the pod spec).
    Kubernetes,
}

/// How an active probe (a namespace or a mount, tried in a child process) failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ProbeFailure {
    /// The call that failed: `unshare`, `uid_map`, `mount overlay`...
    pub step: String,
    /// The OS error number, 0 when the probe could not even start.
    pub errno: i32,
    /// The OS's words for it.
    pub message: String,
}

impl ProbeFailure {
    /// `EPERM` or `EACCES`: something forbade the call (seccomp, AppArmor, a sysctl).
    pub(crate) fn denied(&self) -> bool {
        self.errno == nix::libc::EPERM || self.errno == nix::libc::EACCES
    }
}

impl std::fmt::Display for ProbeFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.step, self.message)
    }
}

/// The result of one active probe.
pub(crate) type Probe = Result<(), ProbeFailure>;

/// The active probes: each is tried in a fresh child so that nothing of it stays behind.
///
/// `rootless` says whether the probe first enters a user namespace of its own (mapping only
/// the caller's ids, as `unshare --user --map-root-user` does); root probes only take the
/// mount and pid namespaces.
pub(crate) trait Prober {
    /// A new user namespace, with the caller's uid and gid mapped to root in it.
    fn user_namespace(&self) -> Probe;
    /// A tmpfs mounted on a directory under `dir` in a new mount namespace.
    fn mount_tmpfs(&self, dir: &Path, rootless: bool) -> Probe;
    /// An overlay (with `userxattr` when rootless) over directories under `dir`.
    fn overlay(&self, dir: &Path, rootless: bool) -> Probe;
    /// A fresh `proc` mounted on a directory under `dir` from a new pid namespace.
    fn proc_mount(&self, dir: &Path, rootless: bool) -> Probe;
    /// `helper` (`newuidmap` or `newgidmap`) writing the map of a new user namespace: the
    /// caller's own `id` to root, the one mapping every user may write. It fails where the
    /// helper runs as root without `CAP_SYS_ADMIN` (a setuid helper in a container).
    fn id_map(&self, helper: &Path, id: u32) -> Probe;
}

/// Everything doctor looks at.
pub(crate) struct Host {
    /// `/proc` (its `self/status`, `sys/...`, `self/attr/current`, `self/mountinfo`...).
    pub proc_root: PathBuf,
    /// `/sys` (for `fs/cgroup`).
    pub sys_root: PathBuf,
    /// `/etc/subuid`.
    pub subuid: PathBuf,
    /// `/etc/subgid`.
    pub subgid: PathBuf,
    /// The directories of `PATH`, in order.
    pub path: Vec<PathBuf>,
    /// The caller's real uid and gid.
    pub uid: u32,
    /// The caller's gid.
    pub gid: u32,
    /// The caller's user name, when `/etc/passwd` knows it.
    pub user: Option<String>,
    /// The store root kiln would use.
    pub store: PathBuf,
    /// Where kiln runs.
    pub place: Where,
    /// The active probes.
    pub prober: Box<dyn Prober>,
}

impl Host {
    /// The real machine, for a store at `store`.
    pub(crate) fn real(store: &Path, prober: Box<dyn Prober>) -> Self {
        let uid = nix::unistd::getuid().as_raw();
        let gid = nix::unistd::getgid().as_raw();
        let user = nix::unistd::User::from_uid(uid.into())
            .ok()
            .flatten()
            .map(|u| u.name);
        let path = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).collect())
            .unwrap_or_default();
        let place = detect_place(
            Path::new("/"),
            std::env::var_os("KUBERNETES_SERVICE_HOST").is_some(),
        );
        Self {
            proc_root: "/proc".into(),
            sys_root: "/sys".into(),
            subuid: "/etc/subuid".into(),
            subgid: "/etc/subgid".into(),
            path,
            uid,
            gid,
            user,
            store: store.to_owned(),
            place,
            prober,
        }
    }

    /// A file under the proc root, as text (`None` when absent or unreadable).
    pub(crate) fn proc(&self, rel: &str) -> Option<String> {
        fs::read_to_string(self.proc_root.join(rel)).ok()
    }

    /// A number from a file under the proc root (a sysctl).
    pub(crate) fn proc_number(&self, rel: &str) -> Option<i64> {
        self.proc(rel)?.trim().parse().ok()
    }

    /// A field of `/proc/self/status` (`Seccomp`, `CapEff`...), trimmed.
    pub(crate) fn status_field(&self, name: &str) -> Option<String> {
        let status = self.proc("self/status")?;
        status.lines().find_map(|l| {
            l.strip_prefix(name)
                .and_then(|r| r.strip_prefix(':'))
                .map(|v| v.trim().to_owned())
        })
    }

    /// Whether this process holds `CAP_SYS_ADMIN` (bit 21 of `CapEff`).
    pub(crate) fn has_sys_admin(&self) -> bool {
        self.caps("CapEff")
            .is_some_and(|caps| caps & (1 << 21) != 0)
    }

    /// A capability set of `/proc/self/status` (`CapEff`, `CapBnd`...).
    pub(crate) fn caps(&self, field: &str) -> Option<u64> {
        self.status_field(field)
            .and_then(|v| u64::from_str_radix(&v, 16).ok())
    }

    /// The first `name` on `PATH`.
    pub(crate) fn which(&self, name: &str) -> Option<PathBuf> {
        self.path.iter().map(|d| d.join(name)).find(|p| p.is_file())
    }

    /// How the user is named in messages and fixes: the name, else the uid.
    pub(crate) fn user_label(&self) -> String {
        self.user.clone().unwrap_or_else(|| self.uid.to_string())
    }
}

/// Where kiln runs, from marks the container engines leave: Kubernetes sets
/// `KUBERNETES_SERVICE_HOST` in every pod, Docker writes `/.dockerenv`, Podman
/// `/run/.containerenv`.
pub(crate) fn detect_place(root: &Path, kubernetes_env: bool) -> Where {
    if kubernetes_env || root.join("var/run/secrets/kubernetes.io").exists() {
        Where::Kubernetes
    } else if root.join(".dockerenv").exists() || root.join("run/.containerenv").exists() {
        Where::Docker
    } else {
        Where::Host
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn place_follows_the_engines_marks() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(detect_place(dir.path(), false), Where::Host);
        fs::write(dir.path().join(".dockerenv"), "").unwrap();
        assert_eq!(detect_place(dir.path(), false), Where::Docker);
        assert_eq!(detect_place(dir.path(), true), Where::Kubernetes);
    }
}
