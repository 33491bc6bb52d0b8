//! What one sandboxed step runs and over which filesystem: the document the caller hands to the
//! re-executed init (serialized as JSON into the step's state directory).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The root filesystem of a step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Rootfs {
    /// An overlay mount: read-only `lower` dirs under a writable `upper` dir.
    Overlay {
        /// Lower dirs, topmost first (the order of overlay's `lowerdir=` option). May be empty
        /// (a step over `scratch`); an empty directory is then used as the only lower dir.
        lower: Vec<PathBuf>,
        /// The writable layer: what the step changed, in overlay's format (whiteouts are 0/0
        /// character devices, replaced directories carry `trusted.overlay.opaque=y`).
        upper: PathBuf,
        /// Overlay's scratch directory, on the same filesystem as `upper`.
        work: PathBuf,
    },
    /// A plain directory bind-mounted as the root: the fallback when overlayfs cannot be used.
    /// The step writes into it directly.
    Bind {
        /// The directory.
        dir: PathBuf,
    },
}

/// Network isolation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Network {
    /// Share the host's network namespace (the default, as for builds here).
    #[default]
    Host,
    /// A fresh network namespace with only a loopback interface (down).
    None,
}

/// The process a step runs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Process {
    /// The program and its arguments; `args[0]` is looked up in `PATH` of `env` when it has no
    /// `/`. Shell form is the caller's business: pass `["/bin/sh", "-c", "..."]`.
    pub args: Vec<String>,
    /// `KEY=VALUE` pairs, exactly what the process gets. `HOME` is added when absent (see
    /// [`crate::user::User::home`]), and `PATH` when absent gets Docker's default.
    pub env: Vec<String>,
    /// Absolute working directory inside the rootfs; created (root-owned, 0755) when missing.
    /// The default, empty, means `/`.
    pub cwd: String,
    /// `USER` as the image or the caller gives it: `name`, `uid`, `name:group`, `uid:gid`
    /// (any mix). Empty means root.
    pub user: String,
    /// Whether stdin is a terminal the process should own: it becomes the session leader with
    /// stdin as its controlling terminal (for `kiln run -t`).
    #[serde(default)]
    pub terminal: bool,
}

/// Everything the init needs to run one step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Spec {
    /// The root filesystem.
    pub rootfs: Rootfs,
    /// Where the rootfs is assembled (an empty directory the caller owns; a mount point only
    /// inside the step's mount namespace, so the host never sees a mount there).
    pub mountpoint: PathBuf,
    /// The file bind-mounted at `/etc/hosts`: the caller's copy, so writes never reach the
    /// host's file nor the layer.
    pub hosts: PathBuf,
    /// The file bind-mounted at `/etc/resolv.conf` (a copy, as for `hosts`).
    pub resolv_conf: PathBuf,
    /// The hostname in the step's UTS namespace.
    pub hostname: String,
    /// Network isolation.
    pub network: Network,
    /// The process.
    pub process: Process,
}

impl Spec {
    /// The overlay mount options for `lower`/`upper`/`work`, with lower dirs relative to `base`
    /// when they live under it. Mount options must fit in one page (4096 bytes with the final
    /// NUL): with snapshots named by short ids under one directory and the init `chdir`ed
    /// there, 100+ layers fit.
    pub fn overlay_options(lower: &[PathBuf], upper: &Path, work: &Path, base: &Path) -> String {
        let lowers: Vec<String> = lower
            .iter()
            .map(|l| {
                l.strip_prefix(base)
                    .ok()
                    .filter(|r| !r.as_os_str().is_empty())
                    .unwrap_or(l)
                    .display()
                    .to_string()
            })
            .collect();
        format!(
            "lowerdir={},upperdir={},workdir={}",
            lowers.join(":"),
            upper.display(),
            work.display()
        )
    }
}

impl Process {
    /// The arguments of a shell-form command: `shell` (the image's `SHELL`; the default,
    /// empty, is `/bin/sh -c`) followed by `command` as one argument, as Docker runs
    /// `RUN command`. Exec form needs no help: its words are the arguments.
    pub fn shell_form(shell: &[String], command: &str) -> Vec<String> {
        let mut args: Vec<String> = if shell.is_empty() {
            vec!["/bin/sh".to_owned(), "-c".to_owned()]
        } else {
            shell.to_vec()
        };
        args.push(command.to_owned());
        args
    }
}

/// Docker's default `PATH`, given to processes whose environment has none.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlay_options_are_relative_under_base() {
        let opts = Spec::overlay_options(
            &[
                PathBuf::from("/store/snapshots/abc/fs"),
                PathBuf::from("/elsewhere/x"),
            ],
            Path::new("/t/upper"),
            Path::new("/t/work"),
            Path::new("/store/snapshots"),
        );
        assert_eq!(
            opts,
            "lowerdir=abc/fs:/elsewhere/x,upperdir=/t/upper,workdir=/t/work"
        );
    }

    #[test]
    fn shell_form_uses_the_given_shell_or_sh_c() {
        assert_eq!(
            Process::shell_form(&[], "echo $A"),
            ["/bin/sh", "-c", "echo $A"]
        );
        let pwsh = vec!["pwsh".to_owned(), "-Command".to_owned()];
        assert_eq!(
            Process::shell_form(&pwsh, "dir"),
            ["pwsh", "-Command", "dir"]
        );
    }

    #[test]
    fn spec_round_trips_through_json() {
        let spec = Spec {
            rootfs: Rootfs::Bind {
                dir: PathBuf::from("/r"),
            },
            mountpoint: PathBuf::from("/m"),
            hosts: PathBuf::from("/h"),
            resolv_conf: PathBuf::from("/rc"),
            hostname: "kiln".into(),
            network: Network::None,
            process: Process {
                args: vec!["true".into()],
                ..Process::default()
            },
        };
        let json = serde_json::to_vec(&spec).unwrap();
        assert_eq!(serde_json::from_slice::<Spec>(&json).unwrap(), spec);
    }
}
