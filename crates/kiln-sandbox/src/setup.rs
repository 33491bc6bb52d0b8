//! The setup sequence inside the step's namespaces, written against [`Syscall`] so that tests can
//! record it: the rootfs mount, `/proc`, `/dev`, `/sys`, `/etc/hosts`, `/etc/resolv.conf`, the
//! extra mounts ([`crate::mounts`]), `pivot_root`, then (in the step's own process) ids, capabilities, working directory and
//! `execve`.
//!
//! Mount points missing from the image are created as *stubs* and removed again when the step
//! ends (with their parent's mtime restored), so they never reach the layer; BuildKit does the
//! same. Every path inside the rootfs is resolved with symlinks interpreted relative to the
//! rootfs, so a hostile image's `/etc/hosts -> /etc/shadow` cannot make kiln mount over a host
//! file.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::io;
use std::path::{Component, Path, PathBuf};

use crate::spec::{DEFAULT_PATH, Rootfs, Spec};
use crate::sys::{DEFAULT_CAPABILITIES, Kind, MountOpts, Namespaces, Syscall};
use crate::user::{User, UserError};

/// Errors of setting up or starting a step.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// A kernel call failed.
    #[error(transparent)]
    Io(#[from] kiln_io::IoError),
    /// A path inside the rootfs has a symlink loop or a file where a directory should be.
    #[error("cannot resolve `{path}` inside the rootfs: {reason}")]
    Resolve {
        /// The path, relative to the rootfs.
        path: PathBuf,
        /// Why.
        reason: &'static str,
    },
    /// `USER` does not resolve.
    #[error("cannot run as user `{user}`")]
    User {
        /// The `USER` value.
        user: String,
        /// The cause.
        #[source]
        source: UserError,
    },
    /// The process has no arguments.
    #[error("no command to run")]
    NoCommand,
    /// The program is not in the rootfs.
    #[error("executable `{program}` not found in $PATH")]
    NotFound {
        /// `args[0]`.
        program: String,
    },
    /// `USER` names ids that the user namespace kiln runs in does not map (rootless without
    /// subordinate ids).
    #[error(
        "user {uid}:{gid} does not exist in kiln's user namespace: without subordinate ids only your own id is mapped (as root)\nhint: give your user subordinate ids, e.g. `sudo usermod --add-subuids 100000-165535 --add-subgids 100000-165535 $USER`, and install `uidmap` (newuidmap, newgidmap)"
    )]
    Unmapped {
        /// The uid.
        uid: u32,
        /// The gid.
        gid: u32,
    },
    /// `execve` failed.
    #[error("cannot execute `{program}`")]
    Exec {
        /// The program.
        program: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
}

impl SetupError {
    /// The exit status a step reports for this error, as Docker does: 127 for a missing
    /// program, 126 for one that cannot be executed, 125 for anything else.
    pub fn exit_code(&self) -> i32 {
        match self {
            Self::NotFound { .. } => 127,
            Self::Exec { .. } => 126,
            _ => 125,
        }
    }
}

pub(crate) fn io_err<'a>(
    action: &'static str,
    path: &'a Path,
) -> impl FnOnce(io::Error) -> SetupError + 'a {
    let err = kiln_io::io_err(action, path);
    move |source| SetupError::Io(err(source))
}

/// A mount point the setup created because the image lacked it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stub {
    /// The path inside the rootfs (absolute, as seen after `pivot_root`).
    pub path: PathBuf,
    /// Whether it is a directory (else an empty file).
    pub dir: bool,
    /// Whether something was mounted on it.
    pub mounted: bool,
    /// The parent's mtime before the stub was made, when the parent is not a stub itself.
    pub parent_mtime: Option<(i64, i64)>,
}

const DEVICES: [(&str, u32, u32); 6] = [
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
];

/// Parts of `/proc` made read-only (Docker's list): a step cannot change the host's kernel
/// settings through them.
const PROC_READONLY: [&str; 5] = ["bus", "fs", "irq", "sys", "sysrq-trigger"];

/// Where a rootless step finds the host's `/proc` (bound in the `/dev` tmpfs, never in the
/// layer): the kernel mounts a fresh proc in a user namespace only while a proc it would
/// reveal is already visible, and when even that is refused (a container that masks parts of
/// its `/proc`) the step gets this one moved to `/proc`.
const HOST_PROC: &str = "/dev/.host-proc";

/// Files of `/proc` hidden behind `/dev/null` (Docker's list).
const PROC_MASKED: [&str; 5] = [
    "kcore",
    "keys",
    "latency_stats",
    "timer_list",
    "sched_debug",
];

/// The deepest directory that holds every path of `paths`.
pub(crate) fn common_ancestor(paths: &[PathBuf]) -> PathBuf {
    let mut it = paths.iter();
    let Some(first) = it.next() else {
        return PathBuf::from("/");
    };
    let mut base: PathBuf = first.parent().unwrap_or(first).to_owned();
    for p in it {
        while !p.starts_with(&base) {
            if !base.pop() {
                return PathBuf::from("/");
            }
        }
    }
    base
}

/// Resolves `rel` inside `root` (symlinks are followed as if `root` were `/`) and creates what
/// is missing: directories, and the final component as a file when `file`. Created entries are
/// appended to `stubs` when given.
pub(crate) fn ensure_in(
    sys: &dyn Syscall,
    root: &Path,
    rel: &Path,
    file: bool,
    stubs: Option<&mut Vec<Stub>>,
) -> Result<PathBuf, SetupError> {
    walk_in(sys, root, rel, Some((file, stubs)))
}

/// Resolves `rel` inside `root` as [`ensure_in`] does, but creates nothing: a missing
/// component is an error.
pub(crate) fn resolve_in(
    sys: &dyn Syscall,
    root: &Path,
    rel: &Path,
) -> Result<PathBuf, SetupError> {
    walk_in(sys, root, rel, None)
}

/// The walk of [`ensure_in`] and [`resolve_in`]: `create` is `None` to create nothing, or
/// whether the last component is a file and where to record created stubs.
fn walk_in(
    sys: &dyn Syscall,
    root: &Path,
    rel: &Path,
    create: Option<(bool, Option<&mut Vec<Stub>>)>,
) -> Result<PathBuf, SetupError> {
    let creating = create.is_some();
    let (file, mut stubs) = create.unwrap_or((false, None));
    let mut todo: VecDeque<OsString> = rel
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_owned()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect();
    let mut inside = PathBuf::from("/");
    let mut hops = 0;
    while let Some(name) = todo.pop_front() {
        if name == ".." {
            inside.pop();
            continue;
        }
        let last = todo.is_empty();
        let next_inside = inside.join(&name);
        let host = root.join(next_inside.strip_prefix("/").unwrap_or(&next_inside));
        match sys.kind(&host) {
            Some(Kind::Symlink) => {
                hops += 1;
                if hops > 40 {
                    return Err(SetupError::Resolve {
                        path: rel.to_owned(),
                        reason: "too many levels of symbolic links",
                    });
                }
                let target = sys
                    .read_link(&host)
                    .map_err(io_err("read the link", &host))?;
                if target.is_absolute() {
                    inside = PathBuf::from("/");
                }
                for c in target.components().rev() {
                    match c {
                        Component::Normal(n) => todo.push_front(n.to_owned()),
                        Component::ParentDir => todo.push_front("..".into()),
                        _ => {}
                    }
                }
            }
            Some(Kind::Dir) => inside = next_inside,
            Some(_) if last => inside = next_inside,
            Some(_) => {
                return Err(SetupError::Resolve {
                    path: rel.to_owned(),
                    reason: "a parent is not a directory",
                });
            }
            None if !creating => {
                return Err(SetupError::Resolve {
                    path: rel.to_owned(),
                    reason: "no such file or directory",
                });
            }
            None => {
                let dir = !(last && file);
                let parent_host = host.parent().unwrap_or(root);
                let parent_is_stub = stubs.as_ref().is_some_and(|s| {
                    s.iter()
                        .any(|s| Some(s.path.as_path()) == next_inside.parent())
                });
                let parent_mtime = if parent_is_stub || stubs.is_none() {
                    None
                } else {
                    sys.mtime(parent_host).ok()
                };
                let made = if dir {
                    sys.mkdir(&host, 0o755)
                } else {
                    sys.create_file(&host, 0o644)
                };
                match made {
                    Ok(()) => {}
                    // Made meanwhile by another step sharing this directory (a cache mount
                    // used by parallel stages): it is theirs, not a stub of this step.
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        todo.push_front(name);
                        continue;
                    }
                    Err(e) => {
                        let action = if dir {
                            "create the directory"
                        } else {
                            "create the file"
                        };
                        return Err(io_err(action, &host)(e));
                    }
                }
                if let Some(stubs) = stubs.as_deref_mut() {
                    stubs.push(Stub {
                        path: next_inside.clone(),
                        dir,
                        mounted: false,
                        parent_mtime,
                    });
                }
                inside = next_inside;
            }
        }
    }
    match inside.strip_prefix("/") {
        Ok(r) if !r.as_os_str().is_empty() => Ok(root.join(r)),
        _ => Ok(root.to_owned()),
    }
}

/// Marks the last stub as mounted when it is `path`.
pub(crate) fn mark_mounted(stubs: &mut [Stub], root: &Path, host: &Path) {
    if let Some(s) = stubs.last_mut()
        && root.join(s.path.strip_prefix("/").unwrap_or(&s.path)) == host
    {
        s.mounted = true;
    }
}

/// Builds the step's root filesystem at `spec.mountpoint` and makes it `/`, in fresh mount, ipc
/// and uts (and, for [`crate::Network::None`], net) namespaces. Runs in the init, before the
/// step's pid namespace exists (`/proc` is left to [`mount_proc`]). Returns the stubs to remove with
/// [`remove_stubs`] when the step ends.
pub fn build_rootfs(spec: &Spec, sys: &dyn Syscall) -> Result<Vec<Stub>, SetupError> {
    let root = spec.mountpoint.as_path();
    let slash = Path::new("/");
    sys.unshare(Namespaces {
        pid: false,
        mount_ipc_uts: true,
        net: spec.network == crate::spec::Network::None,
    })
    .map_err(io_err("unshare namespaces for", root))?;
    if spec.network == crate::spec::Network::None {
        sys.loopback_up()
            .map_err(io_err("bring up the loopback interface for", root))?;
    }
    sys.make_rprivate(slash)
        .map_err(io_err("make mounts private under", slash))?;
    sys.set_hostname(&spec.hostname)
        .map_err(io_err("set the hostname to", Path::new(&spec.hostname)))?;
    match &spec.rootfs {
        Rootfs::Overlay { lower, upper, work } => {
            let base = common_ancestor(lower);
            sys.chdir(&base).map_err(io_err("enter", &base))?;
            let data =
                Spec::overlay_options(lower, Some((upper, work)), &base, sys.in_user_namespace());
            // `volatile` (Linux 5.10+) skips syncing the upper dir's filesystem, notably the
            // whole-filesystem sync when the step's mount namespace goes away, which costs
            // seconds on a busy disk. The step's result is made durable when its layer is
            // committed, and a crashed step's upper dir is thrown away anyway.
            let volatile = format!("{data},volatile");
            if let Err(e) = sys.mount("overlay", root, "overlay", MountOpts::NONE, &volatile) {
                if e.raw_os_error() != Some(rustix::io::Errno::INVAL.raw_os_error()) {
                    return Err(io_err("mount the overlay at", root)(e));
                }
                sys.mount("overlay", root, "overlay", MountOpts::NONE, &data)
                    .map_err(io_err("mount the overlay at", root))?;
            }
        }
        Rootfs::Bind { dir } => {
            sys.bind(dir, root)
                .map_err(io_err("bind-mount the rootfs at", root))?;
        }
    }
    let mut stubs = Vec::new();

    // `/proc` is mounted by the step's process itself ([`mount_proc`]), the first process of
    // its pid namespace: a proc mounted here would show the namespace the init is in.
    let proc = ensure_in(sys, root, Path::new("proc"), false, Some(&mut stubs))?;
    if let Some(s) = stubs.last_mut()
        && root.join(s.path.strip_prefix("/").unwrap_or(&s.path)) == proc
    {
        s.mounted = true;
    }

    let dev = ensure_in(sys, root, Path::new("dev"), false, Some(&mut stubs))?;
    let dev_opts = MountOpts {
        nosuid: true,
        ..MountOpts::NONE
    };
    sys.mount("tmpfs", &dev, "tmpfs", dev_opts, "mode=755,size=65536k")
        .map_err(io_err("mount a tmpfs at", &dev))?;
    mark_mounted(&mut stubs, root, &dev);
    for (name, major, minor) in DEVICES {
        let p = dev.join(name);
        match sys.mknod_char(&p, 0o666, major, minor) {
            Ok(()) => {}
            // In a user namespace only whiteouts can be made: the host's device is bound on
            // an empty file instead, as rootless runtimes do.
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                let host = Path::new("/dev").join(name);
                sys.create_file(&p, 0o666)
                    .map_err(io_err("create the file", &p))?;
                sys.bind(&host, &p)
                    .map_err(io_err("bind-mount the host's device at", &p))?;
            }
            Err(e) => return Err(io_err("create the device", &p)(e)),
        }
    }
    if sys.in_user_namespace() {
        let host_proc = dev.join(HOST_PROC.trim_start_matches("/dev/"));
        sys.mkdir(&host_proc, 0o555)
            .map_err(io_err("create", &host_proc))?;
        sys.bind(Path::new("/proc"), &host_proc)
            .map_err(io_err("bind-mount the host's /proc at", &host_proc))?;
    }
    let pts = dev.join("pts");
    sys.mkdir(&pts, 0o755).map_err(io_err("create", &pts))?;
    let pts_opts = MountOpts {
        nosuid: true,
        noexec: true,
        ..MountOpts::NONE
    };
    sys.mount(
        "devpts",
        &pts,
        "devpts",
        pts_opts,
        "newinstance,ptmxmode=0666,mode=0620",
    )
    .map_err(io_err("mount devpts at", &pts))?;
    let shm = dev.join("shm");
    sys.mkdir(&shm, 0o1777).map_err(io_err("create", &shm))?;
    sys.mount(
        "shm",
        &shm,
        "tmpfs",
        MountOpts::RESTRICTED,
        "mode=1777,size=65536k",
    )
    .map_err(io_err("mount a tmpfs at", &shm))?;
    for (link, target) in [
        ("ptmx", "pts/ptmx"),
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        let p = dev.join(link);
        sys.symlink(target, &p)
            .map_err(io_err("create the link", &p))?;
    }

    let sysfs = ensure_in(sys, root, Path::new("sys"), false, Some(&mut stubs))?;
    let sys_opts = MountOpts {
        rdonly: true,
        ..MountOpts::RESTRICTED
    };
    match sys.mount("sysfs", &sysfs, "sysfs", sys_opts, "") {
        Ok(()) => {}
        // A user namespace may mount sysfs only for a network namespace it owns: with the
        // host's network a rootless step sees the host's `/sys`, read-only.
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
            let host = Path::new("/sys");
            sys.bind(host, &sysfs)
                .map_err(io_err("bind-mount the host's /sys at", &sysfs))?;
            sys.remount_readonly(&sysfs)
                .map_err(io_err("make read-only", &sysfs))?;
        }
        Err(e) => return Err(io_err("mount sysfs at", &sysfs)(e)),
    }
    mark_mounted(&mut stubs, root, &sysfs);

    for (rel, source) in [
        ("etc/hosts", &spec.hosts),
        ("etc/resolv.conf", &spec.resolv_conf),
    ] {
        let target = ensure_in(sys, root, Path::new(rel), true, Some(&mut stubs))?;
        sys.bind(source, &target)
            .map_err(io_err("bind-mount over", &target))?;
        mark_mounted(&mut stubs, root, &target);
    }

    crate::mounts::mount_extra(spec, sys, root, &dev, &mut stubs)?;

    sys.chdir(root).map_err(io_err("enter", root))?;
    let dot = Path::new(".");
    sys.pivot_root(dot, dot)
        .map_err(io_err("pivot_root to", root))?;
    // The old root is stacked on top of the new one: detach it (and the host with it).
    sys.unmount(dot)
        .map_err(io_err("detach the old root from", root))?;
    sys.chdir(slash).map_err(io_err("enter", slash))?;
    Ok(stubs)
}

/// Mounts `/proc` for the step's pid namespace, with Docker's read-only and masked parts. Run
/// by the step's process (pid 1 of that namespace) after [`build_rootfs`], before
/// [`exec_process`].
pub fn mount_proc(sys: &dyn Syscall) -> Result<(), SetupError> {
    let proc = Path::new("/proc");
    let host_proc = Path::new(HOST_PROC);
    let bound = sys.kind(host_proc).is_some();
    match sys.mount("proc", proc, "proc", MountOpts::RESTRICTED, "") {
        Ok(()) if bound => {
            sys.unmount(host_proc)
                .map_err(io_err("unmount", host_proc))?;
            sys.remove(host_proc, true)
                .map_err(io_err("remove", host_proc))?;
        }
        Ok(()) => {}
        // A container that masks parts of its `/proc` (Docker without
        // `--security-opt systempaths=unconfined`) lets no user namespace mount a new one: the
        // step gets the host's, whose masks came along, and sees the host's processes in it.
        Err(e) if bound && e.kind() == io::ErrorKind::PermissionDenied => {
            sys.move_mount(host_proc, proc)
                .map_err(io_err("move the host's /proc to", proc))?;
            sys.remove(host_proc, true)
                .map_err(io_err("remove", host_proc))?;
            return Ok(());
        }
        Err(e) => return Err(io_err("mount proc at", proc)(e)),
    }
    for name in PROC_READONLY {
        let p = proc.join(name);
        if sys.kind(&p).is_some() {
            sys.bind(&p, &p).map_err(io_err("bind-mount", &p))?;
            sys.remount_readonly(&p)
                .map_err(io_err("make read-only", &p))?;
        }
    }
    let null = Path::new("/dev/null");
    for name in PROC_MASKED {
        let p = proc.join(name);
        if sys.kind(&p).is_some() {
            sys.bind(null, &p).map_err(io_err("mask", &p))?;
        }
    }
    Ok(())
}

/// Resolves the process's user from the rootfs' own `/etc/passwd` and `/etc/group` (after
/// [`build_rootfs`]).
pub fn resolve_user(spec: &Spec, sys: &dyn Syscall) -> Result<User, SetupError> {
    let read = |p: &str| {
        sys.read_file(Path::new(p))
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    };
    crate::user::resolve(
        &spec.process.user,
        &read("/etc/passwd"),
        &read("/etc/group"),
    )
    .map_err(|source| SetupError::User {
        user: spec.process.user.clone(),
        source,
    })
}

/// The working directory, created (root-owned, 0755, part of the step's changes as in Docker)
/// when missing.
pub fn prepare_cwd(spec: &Spec, sys: &dyn Syscall) -> Result<PathBuf, SetupError> {
    let cwd = if spec.process.cwd.is_empty() {
        "/"
    } else {
        &spec.process.cwd
    };
    ensure_in(sys, Path::new("/"), Path::new(cwd), false, None)
}

/// The environment the process gets: the spec's, plus `PATH` and `HOME` when absent.
pub fn process_env(spec: &Spec, user: &User) -> Vec<String> {
    let mut env = spec.process.env.clone();
    let has = |env: &[String], k: &str| env.iter().any(|e| e.split('=').next() == Some(k));
    if !has(&env, "PATH") {
        env.push(format!("PATH={DEFAULT_PATH}"));
    }
    if !has(&env, "HOME") {
        env.push(format!("HOME={}", user.home));
    }
    env
}

/// In the step's process (pid 1 of its pid namespace): limits capabilities, takes the user's ids,
/// enters `cwd` and executes the program. Returns only on failure.
pub fn exec_process(spec: &Spec, user: &User, cwd: &Path, sys: &dyn Syscall) -> SetupError {
    let Some(program) = spec.process.args.first() else {
        return SetupError::NoCommand;
    };
    if spec.process.terminal
        && let Err(source) = sys.set_controlling_terminal()
    {
        return io_err("take the terminal for", Path::new(program))(source);
    }
    if let Err(source) = sys.limit_capabilities(DEFAULT_CAPABILITIES) {
        return io_err("limit the capabilities of", Path::new(program))(source);
    }
    if let Err(source) = sys.set_ids(user) {
        if source.raw_os_error() == Some(rustix::io::Errno::INVAL.raw_os_error())
            && sys.in_user_namespace()
        {
            return SetupError::Unmapped {
                uid: user.uid,
                gid: user.gid,
            };
        }
        return io_err("set the user ids for", Path::new(program))(source);
    }
    // The ids' change cleared the parent-death signal: the step must still die with its init.
    if let Err(source) = sys.kill_with_parent() {
        return io_err("set the parent-death signal of", Path::new(program))(source);
    }
    if let Err(source) = sys.chdir(cwd) {
        return io_err("enter", cwd)(source);
    }
    let env = process_env(spec, user);
    let path = if program.contains('/') {
        PathBuf::from(program)
    } else {
        let search = env
            .iter()
            .find_map(|e| e.strip_prefix("PATH="))
            .unwrap_or(DEFAULT_PATH);
        let found = search
            .split(':')
            .filter(|d| !d.is_empty())
            .map(|d| Path::new(d).join(program))
            .find(|p| matches!(sys.kind(p), Some(Kind::File | Kind::Symlink)));
        match found {
            Some(p) => p,
            None => {
                return SetupError::NotFound {
                    program: program.clone(),
                };
            }
        }
    };
    let source = sys.exec(&path, &spec.process.args, &env);
    if source.kind() == io::ErrorKind::NotFound {
        SetupError::NotFound {
            program: program.clone(),
        }
    } else {
        SetupError::Exec {
            program: program.clone(),
            source,
        }
    }
}

/// Removes the stubs [`build_rootfs`] made (newest first), unmounting what is on them and
/// restoring their parents' mtimes, so they never reach the layer. A stub the step filled
/// (a created `/etc` that now holds files) is kept.
pub fn remove_stubs(stubs: &[Stub], sys: &dyn Syscall) -> Result<(), SetupError> {
    for s in stubs.iter().rev() {
        if s.mounted {
            match sys.unmount(&s.path) {
                Ok(()) => {}
                // `/proc`, when the step's process failed before mounting it.
                Err(e) if e.raw_os_error() == Some(rustix::io::Errno::INVAL.raw_os_error()) => {}
                Err(e) => return Err(io_err("unmount", &s.path)(e)),
            }
        }
        match sys.remove(&s.path, s.dir) {
            Ok(()) => {
                if let (Some(mtime), Some(parent)) = (s.parent_mtime, s.path.parent()) {
                    sys.set_mtime(parent, mtime)
                        .map_err(io_err("restore the mtime of", parent))?;
                }
            }
            Err(e)
                if s.dir
                    && e.raw_os_error() == Some(rustix::io::Errno::NOTEMPTY.raw_os_error()) => {}
            Err(source) => {
                return Err(SetupError::Io(kiln_io::IoError {
                    action: "remove the mount point",
                    path: s.path.clone(),
                    source,
                }));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "setup_tests.rs"]
mod tests;
