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
    /// Extra mounts (RUN `--mount`s, a `#!` heredoc's script), set up after the rootfs and
    /// before `pivot_root`, parents before children (by the depth of `target`, stable). The
    /// default, empty, mounts nothing more.
    #[serde(default)]
    pub mounts: Vec<MountSpec>,
}

/// One extra mount of a step.
///
/// Nothing of a mount reaches the step's upper dir: a target missing from the image is created
/// as a stub (an empty directory, or an empty file when the source is a file) and removed
/// when the step ends, like the `/etc/hosts` stubs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountSpec {
    /// Absolute path inside the rootfs. Symlinks in it are resolved inside the rootfs (an
    /// absolute link target restarts at the rootfs, `..` stops at it), never on the host.
    pub target: String,
    /// What is mounted there.
    pub kind: MountKind,
}

/// What a [`MountSpec`] mounts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MountKind {
    /// `path` inside the host directory `root` (resolved with symlinks kept inside `root`;
    /// empty or `/` is `root` itself), a file or a directory, bind-mounted recursively.
    Bind {
        /// The host directory that confines `path`.
        root: PathBuf,
        /// The path inside `root`.
        path: String,
        /// Remounted read-only after binding.
        read_only: bool,
    },
    /// An overlay of host directories mounted at `mountpoint` (a caller-owned empty directory,
    /// a mount point only inside the step's namespace), then `path` inside it bind-mounted at
    /// the target, as for [`MountKind::Bind`]. Without `upper` the overlay is read-only; with
    /// one lower dir and no upper, the lower dir is simply bound.
    Overlay {
        /// Lower dirs, topmost first; at least one.
        lower: Vec<PathBuf>,
        /// A writable upper dir and its work dir (same filesystem), thrown away by the caller.
        upper: Option<(PathBuf, PathBuf)>,
        /// Where the overlay is assembled.
        mountpoint: PathBuf,
        /// The path inside the overlay.
        path: String,
        /// Remounted read-only after binding.
        read_only: bool,
    },
    /// A fresh tmpfs (`nosuid,nodev`, mode 1777). `size` in bytes; `None` is the kernel's
    /// default (half the RAM).
    Tmpfs {
        /// Size limit in bytes.
        size: Option<u64>,
    },
    /// A file created on the step's private `/dev` tmpfs and bound read-only at the target
    /// (or created in place when the target is inside `/dev`): secrets and scripts, which
    /// must never touch the rootfs.
    File {
        /// Its content.
        content: FileContent,
        /// Permission bits.
        mode: u32,
        /// Owner.
        uid: u32,
        /// Group.
        gid: u32,
    },
}

/// Where a [`MountKind::File`] gets its bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum FileContent {
    /// The bytes themselves (they travel in the spec file, which the init deletes as soon as
    /// it has read it).
    Inline(Vec<u8>),
    /// A host file, read by the init before `pivot_root`: nothing is copied to disk.
    Host(PathBuf),
}

impl Spec {
    /// The overlay mount options for `lower` (and, for a writable mount, the upper and work
    /// dirs), with lower dirs relative to `base` when they live under it, and `userxattr` in a
    /// user namespace (`userxattr`: the caller's [`crate::sys::Syscall::in_user_namespace`]). Mount options must fit in one page (4096 bytes with the final
    /// NUL): with snapshots named by short ids under one directory and the init `chdir`ed
    /// there, 100+ layers fit.
    pub fn overlay_options(
        lower: &[PathBuf],
        upper_work: Option<(&Path, &Path)>,
        base: &Path,
        userxattr: bool,
    ) -> String {
        use std::fmt::Write as _;
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
        let mut data = format!("lowerdir={}", lowers.join(":"));
        if let Some((upper, work)) = upper_work {
            let _ = write!(
                data,
                ",upperdir={},workdir={}",
                upper.display(),
                work.display()
            );
        }
        // In a user namespace of its own (rootless) overlayfs may only use `user.overlay.*`
        // xattrs: kiln's snapshots carry their opaque marks there
        // (`kiln_layer::overlay::opaque_xattr`).
        if userxattr {
            data.push_str(",userxattr");
        }
        data
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
            Some((Path::new("/t/upper"), Path::new("/t/work"))),
            Path::new("/store/snapshots"),
            false,
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
            mounts: vec![MountSpec {
                target: "/run/secrets/a".into(),
                kind: MountKind::File {
                    content: FileContent::Inline(b"s".to_vec()),
                    mode: 0o400,
                    uid: 0,
                    gid: 0,
                },
            }],
        };
        let json = serde_json::to_vec(&spec).unwrap();
        assert_eq!(serde_json::from_slice::<Spec>(&json).unwrap(), spec);
    }
}
