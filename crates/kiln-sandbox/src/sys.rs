//! The narrow door to the kernel: every call the sandbox setup makes goes through [`Syscall`],
//! so the setup sequence can be recorded and checked without privileges
//! (`fake::RecordingSyscall`, with the `fake` feature) and run for real by [`LinuxSyscall`].
//!
//! `fork` and `waitpid` stay outside: they shape the process tree, not the sandbox's contents,
//! and a fake of them would test nothing.

use std::ffi::CString;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use rustix::mount::{MountFlags, MountPropagationFlags, UnmountFlags};
use rustix::thread::{CapabilitySet, CapabilitySets, UnshareFlags};

use crate::user::User;

/// Namespaces to unshare.
///
/// The mount, ipc, uts (and net) namespaces are unshared by the init, not by its outer process,
/// so that `pivot_root` (which moves every process of a mount namespace) never moves the outer
/// process, which still writes into the host's filesystem; the pid namespace by the init after
/// the pivot (it only applies to children), so that the step's process is its pid 1.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Namespaces {
    /// `CLONE_NEWPID`.
    pub pid: bool,
    /// `CLONE_NEWNS`, `CLONE_NEWIPC` and `CLONE_NEWUTS`.
    pub mount_ipc_uts: bool,
    /// `CLONE_NEWNET` (`--network=none`).
    pub net: bool,
}

/// Options of [`Syscall::mount`], a small closed set so recordings stay readable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MountOpts {
    /// `MS_NOSUID`.
    pub nosuid: bool,
    /// `MS_NODEV`.
    pub nodev: bool,
    /// `MS_NOEXEC`.
    pub noexec: bool,
    /// `MS_RDONLY`.
    pub rdonly: bool,
}

impl MountOpts {
    /// No flags.
    pub const NONE: Self = Self {
        nosuid: false,
        nodev: false,
        noexec: false,
        rdonly: false,
    };
    /// `nosuid,nodev,noexec`, for `/proc`, `/sys` and `/dev/shm`.
    pub const RESTRICTED: Self = Self {
        nosuid: true,
        nodev: true,
        noexec: true,
        rdonly: false,
    };

    fn flags(self) -> MountFlags {
        let mut f = MountFlags::empty();
        f.set(MountFlags::NOSUID, self.nosuid);
        f.set(MountFlags::NODEV, self.nodev);
        f.set(MountFlags::NOEXEC, self.noexec);
        f.set(MountFlags::RDONLY, self.rdonly);
        f
    }
}

/// What a path is, without following a final symlink.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A directory.
    Dir,
    /// A regular file.
    File,
    /// A symbolic link.
    Symlink,
    /// Anything else (devices, fifos, sockets).
    Other,
}

/// Docker's default capabilities: what a step's process keeps when it runs as root. Everything
/// else (notably `CAP_SYS_ADMIN`, so no remounting `/proc/sys` read-write) is dropped from the
/// bounding set, and a non-root user has none at all.
pub const DEFAULT_CAPABILITIES: CapabilitySet = CapabilitySet::CHOWN
    .union(CapabilitySet::DAC_OVERRIDE)
    .union(CapabilitySet::FSETID)
    .union(CapabilitySet::FOWNER)
    .union(CapabilitySet::MKNOD)
    .union(CapabilitySet::NET_RAW)
    .union(CapabilitySet::SETGID)
    .union(CapabilitySet::SETUID)
    .union(CapabilitySet::SETFCAP)
    .union(CapabilitySet::SETPCAP)
    .union(CapabilitySet::NET_BIND_SERVICE)
    .union(CapabilitySet::SYS_CHROOT)
    .union(CapabilitySet::KILL)
    .union(CapabilitySet::AUDIT_WRITE);

/// The kernel calls of the sandbox setup. Paths are absolute or relative to the current
/// directory, exactly as the kernel would see them.
pub trait Syscall {
    /// `unshare` of the namespaces in `ns`.
    fn unshare(&self, ns: Namespaces) -> io::Result<()>;
    /// `unshare(CLONE_NEWNS | CLONE_FS)` for the calling thread alone: from then on its
    /// mounts, working directory and root are its own, and its mounts vanish with it.
    fn unshare_thread_mounts(&self) -> io::Result<()>;
    /// `sethostname`.
    fn set_hostname(&self, name: &str) -> io::Result<()>;
    /// `mount --make-rprivate target`: nothing mounted later propagates back to the host.
    fn make_rprivate(&self, target: &Path) -> io::Result<()>;
    /// `mount(source, target, fstype, opts, data)`.
    fn mount(
        &self,
        source: &str,
        target: &Path,
        fstype: &str,
        opts: MountOpts,
        data: &str,
    ) -> io::Result<()>;
    /// `mount --rbind source target`.
    fn bind(&self, source: &Path, target: &Path) -> io::Result<()>;
    /// Remounts the bind mount at `target` read-only.
    fn remount_readonly(&self, target: &Path) -> io::Result<()>;
    /// `umount2(target, MNT_DETACH)`: the mount and everything under it.
    fn unmount(&self, target: &Path) -> io::Result<()>;
    /// `mount --move source target`: the mount at `source` (and what is under it) moves.
    fn move_mount(&self, source: &Path, target: &Path) -> io::Result<()>;
    /// Whether this process runs in a user namespace of its own (rootless): there device
    /// nodes cannot be made, sysfs and proc mounts need namespaces this process owns, and
    /// overlayfs is mounted with `userxattr`.
    fn in_user_namespace(&self) -> bool;
    /// `pivot_root(new_root, put_old)`.
    fn pivot_root(&self, new_root: &Path, put_old: &Path) -> io::Result<()>;
    /// `chdir`.
    fn chdir(&self, dir: &Path) -> io::Result<()>;
    /// `lstat`'s file type, `None` when the path does not exist.
    fn kind(&self, path: &Path) -> Option<Kind>;
    /// `readlink`.
    fn read_link(&self, path: &Path) -> io::Result<PathBuf>;
    /// A directory's mtime (seconds, nanoseconds), following symlinks.
    fn mtime(&self, path: &Path) -> io::Result<(i64, i64)>;
    /// Sets a directory's atime and mtime.
    fn set_mtime(&self, path: &Path, mtime: (i64, i64)) -> io::Result<()>;
    /// `mkdir` with `mode` (before the umask).
    fn mkdir(&self, path: &Path, mode: u32) -> io::Result<()>;
    /// Creates an empty file (a mount point for a file bind mount).
    fn create_file(&self, path: &Path, mode: u32) -> io::Result<()>;
    /// Creates a new file (never following a final symlink, never over an existing entry)
    /// holding `content`, owned by `uid`:`gid` with exactly `mode` (umask ignored).
    fn write_file(
        &self,
        path: &Path,
        content: &[u8],
        mode: u32,
        uid: u32,
        gid: u32,
    ) -> io::Result<()>;
    /// `mknod` of a character device.
    fn mknod_char(&self, path: &Path, mode: u32, major: u32, minor: u32) -> io::Result<()>;
    /// `symlink(target, link)`.
    fn symlink(&self, target: &str, link: &Path) -> io::Result<()>;
    /// `rmdir` or `unlink`.
    fn remove(&self, path: &Path, dir: bool) -> io::Result<()>;
    /// Reads a whole file.
    fn read_file(&self, path: &Path) -> io::Result<Vec<u8>>;
    /// `setgroups`, `setresgid`, `setresuid`, in that order.
    fn set_ids(&self, user: &User) -> io::Result<()>;
    /// Drops every capability outside `keep` from the bounding set and from the effective,
    /// permitted and inheritable sets.
    fn limit_capabilities(&self, keep: CapabilitySet) -> io::Result<()>;
    /// Brings the loopback interface of the current network namespace up (a fresh one has
    /// it down), as Docker does for `--network=none`.
    fn loopback_up(&self) -> io::Result<()>;
    /// `setsid` and `TIOCSCTTY` on stdin: the process leads a session whose terminal is stdin.
    fn set_controlling_terminal(&self) -> io::Result<()>;
    /// Asks for SIGKILL when the parent dies (`PR_SET_PDEATHSIG`); a change of ids clears it,
    /// so the step's process sets it again after [`Syscall::set_ids`].
    fn kill_with_parent(&self) -> io::Result<()>;
    /// `execve`; returns only on failure.
    fn exec(&self, path: &Path, args: &[String], env: &[String]) -> io::Error;
}

/// The real kernel.
#[derive(Debug, Clone, Copy, Default)]
pub struct LinuxSyscall;

fn cstrings(items: &[String]) -> io::Result<Vec<CString>> {
    items
        .iter()
        .map(|s| {
            CString::new(s.as_bytes()).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
        })
        .collect()
}

impl Syscall for LinuxSyscall {
    fn unshare(&self, ns: Namespaces) -> io::Result<()> {
        let mut flags = UnshareFlags::empty();
        flags.set(UnshareFlags::NEWPID, ns.pid);
        flags.set(
            UnshareFlags::NEWNS | UnshareFlags::NEWIPC | UnshareFlags::NEWUTS,
            ns.mount_ipc_uts,
        );
        flags.set(UnshareFlags::NEWNET, ns.net);
        // SAFETY: the init is single-threaded when it unshares (it is a freshly exec'd
        // process that has started no threads), so no other thread's view of the process's
        // namespaces, files or cwd can be invalidated.
        unsafe { rustix::thread::unshare_unsafe(flags) }?;
        Ok(())
    }

    fn unshare_thread_mounts(&self) -> io::Result<()> {
        // SAFETY: only the mount namespace and the filesystem attributes (cwd, root, umask)
        // are unshared, and only for the calling thread: no file descriptor another thread
        // holds changes meaning (CLONE_FILES, the reason rustix calls this unsafe, is not
        // among the flags).
        unsafe { rustix::thread::unshare_unsafe(UnshareFlags::NEWNS | UnshareFlags::FS) }?;
        Ok(())
    }

    fn set_hostname(&self, name: &str) -> io::Result<()> {
        Ok(rustix::system::sethostname(name.as_bytes())?)
    }

    fn make_rprivate(&self, target: &Path) -> io::Result<()> {
        Ok(rustix::mount::mount_change(
            target,
            MountPropagationFlags::PRIVATE | MountPropagationFlags::REC,
        )?)
    }

    fn mount(
        &self,
        source: &str,
        target: &Path,
        fstype: &str,
        opts: MountOpts,
        data: &str,
    ) -> io::Result<()> {
        let data = CString::new(data).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        Ok(rustix::mount::mount(
            source,
            target,
            fstype,
            opts.flags(),
            Some(data.as_c_str()),
        )?)
    }

    fn bind(&self, source: &Path, target: &Path) -> io::Result<()> {
        Ok(rustix::mount::mount_bind_recursive(source, target)?)
    }

    fn remount_readonly(&self, target: &Path) -> io::Result<()> {
        // A mount a user namespace got from its parent keeps its flags locked: `noexec`
        // (of a bound host `/sys`, say) must be asked for again or the remount is refused.
        let mut flags =
            MountFlags::BIND | MountFlags::RDONLY | MountFlags::NOSUID | MountFlags::NODEV;
        if rustix::fs::statvfs(target)
            .is_ok_and(|v| v.f_flag.contains(rustix::fs::StatVfsMountFlags::NOEXEC))
        {
            flags |= MountFlags::NOEXEC;
        }
        Ok(rustix::mount::mount_remount(target, flags, "")?)
    }

    fn unmount(&self, target: &Path) -> io::Result<()> {
        Ok(rustix::mount::unmount(target, UnmountFlags::DETACH)?)
    }

    fn move_mount(&self, source: &Path, target: &Path) -> io::Result<()> {
        Ok(rustix::mount::mount_move(source, target)?)
    }

    fn in_user_namespace(&self) -> bool {
        kiln_io::in_user_namespace()
    }

    fn pivot_root(&self, new_root: &Path, put_old: &Path) -> io::Result<()> {
        Ok(rustix::process::pivot_root(new_root, put_old)?)
    }

    fn chdir(&self, dir: &Path) -> io::Result<()> {
        Ok(rustix::process::chdir(dir)?)
    }

    fn kind(&self, path: &Path) -> Option<Kind> {
        let ft = fs::symlink_metadata(path).ok()?.file_type();
        Some(if ft.is_dir() {
            Kind::Dir
        } else if ft.is_file() {
            Kind::File
        } else if ft.is_symlink() {
            Kind::Symlink
        } else {
            Kind::Other
        })
    }

    fn read_link(&self, path: &Path) -> io::Result<PathBuf> {
        fs::read_link(path)
    }

    fn mtime(&self, path: &Path) -> io::Result<(i64, i64)> {
        let m = fs::metadata(path)?;
        Ok((m.mtime(), m.mtime_nsec()))
    }

    fn set_mtime(&self, path: &Path, mtime: (i64, i64)) -> io::Result<()> {
        let ts = rustix::fs::Timespec {
            tv_sec: mtime.0,
            tv_nsec: mtime.1,
        };
        Ok(rustix::fs::utimensat(
            rustix::fs::CWD,
            path,
            &rustix::fs::Timestamps {
                last_access: ts,
                last_modification: ts,
            },
            rustix::fs::AtFlags::empty(),
        )?)
    }

    fn mkdir(&self, path: &Path, mode: u32) -> io::Result<()> {
        fs::DirBuilder::new().mode(mode).create(path)
    }

    fn create_file(&self, path: &Path, mode: u32) -> io::Result<()> {
        fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits().cast_signed())
            .open(path)
            .map(drop)
    }

    fn write_file(
        &self,
        path: &Path,
        content: &[u8],
        mode: u32,
        uid: u32,
        gid: u32,
    ) -> io::Result<()> {
        use std::io::Write as _;
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits().cast_signed())
            .open(path)?;
        f.write_all(content)?;
        rustix::fs::fchown(
            &f,
            Some(rustix::process::Uid::from_raw(uid)),
            Some(rustix::process::Gid::from_raw(gid)),
        )?;
        // After the chown, which clears set-id bits.
        rustix::fs::fchmod(&f, rustix::fs::Mode::from_raw_mode(mode))?;
        Ok(())
    }

    fn mknod_char(&self, path: &Path, mode: u32, major: u32, minor: u32) -> io::Result<()> {
        rustix::fs::mknodat(
            rustix::fs::CWD,
            path,
            rustix::fs::FileType::CharacterDevice,
            rustix::fs::Mode::from_raw_mode(mode),
            rustix::fs::makedev(major, minor),
        )?;
        // mknod honours the umask; device nodes must be exactly `mode`.
        Ok(rustix::fs::chmod(
            path,
            rustix::fs::Mode::from_raw_mode(mode),
        )?)
    }

    fn symlink(&self, target: &str, link: &Path) -> io::Result<()> {
        std::os::unix::fs::symlink(target, link)
    }

    fn remove(&self, path: &Path, dir: bool) -> io::Result<()> {
        if dir {
            fs::remove_dir(path)
        } else {
            fs::remove_file(path)
        }
    }

    fn read_file(&self, path: &Path) -> io::Result<Vec<u8>> {
        fs::read(path)
    }

    fn kill_with_parent(&self) -> io::Result<()> {
        rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))?;
        Ok(())
    }

    fn set_ids(&self, user: &User) -> io::Result<()> {
        let groups: Vec<rustix::process::Gid> = user
            .groups
            .iter()
            .map(|&g| rustix::process::Gid::from_raw(g))
            .collect();
        match rustix::thread::set_thread_groups(&groups) {
            // A user namespace mapping one id denies setgroups(2): the step keeps the groups
            // kiln had, which it sees as the overflow group.
            Err(rustix::io::Errno::PERM) if kiln_io::in_user_namespace() => {}
            r => r?,
        }
        let gid = rustix::process::Gid::from_raw(user.gid);
        rustix::thread::set_thread_res_gid(gid, gid, gid)?;
        let uid = rustix::process::Uid::from_raw(user.uid);
        rustix::thread::set_thread_res_uid(uid, uid, uid)?;
        Ok(())
    }

    fn limit_capabilities(&self, keep: CapabilitySet) -> io::Result<()> {
        for bit in 0..64u32 {
            let cap = CapabilitySet::from_bits_retain(1 << bit);
            if keep.contains(cap) || CapabilitySet::all().intersection(cap).is_empty() {
                continue;
            }
            match rustix::thread::remove_capability_from_bounding_set(cap) {
                // Capabilities this kernel does not know are not in the bounding set.
                Ok(()) | Err(rustix::io::Errno::INVAL) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let current = rustix::thread::capabilities(None)?;
        let permitted = current.permitted & keep;
        rustix::thread::set_capabilities(
            None,
            CapabilitySets {
                effective: current.effective & permitted,
                permitted,
                inheritable: CapabilitySet::empty(),
            },
        )?;
        Ok(())
    }

    fn loopback_up(&self) -> io::Result<()> {
        /// `struct ifreq` with the `ifr_flags` member of its union (40 bytes on Linux).
        #[repr(C)]
        struct IfReq {
            name: [u8; 16],
            flags: i16,
            pad: [u8; 22],
        }
        const SIOCGIFFLAGS: rustix::ioctl::Opcode = 0x8913;
        const SIOCSIFFLAGS: rustix::ioctl::Opcode = 0x8914;
        const IFF_UP: i16 = 1;
        let sock = rustix::net::socket(
            rustix::net::AddressFamily::INET,
            rustix::net::SocketType::DGRAM,
            None,
        )?;
        let mut req = IfReq {
            name: [0; 16],
            flags: 0,
            pad: [0; 22],
        };
        req.name[..2].copy_from_slice(b"lo");
        // SAFETY: SIOCGIFFLAGS reads and writes a `struct ifreq`, which `IfReq` lays out
        // (name, then the flags member of the union, padded to the union's size).
        unsafe {
            rustix::ioctl::ioctl(
                &sock,
                rustix::ioctl::Updater::<SIOCGIFFLAGS, IfReq>::new(&mut req),
            )?;
        }
        req.flags |= IFF_UP;
        // SAFETY: as above, for SIOCSIFFLAGS.
        unsafe {
            rustix::ioctl::ioctl(
                &sock,
                rustix::ioctl::Updater::<SIOCSIFFLAGS, IfReq>::new(&mut req),
            )?;
        }
        Ok(())
    }

    fn set_controlling_terminal(&self) -> io::Result<()> {
        rustix::process::setsid()?;
        Ok(rustix::process::ioctl_tiocsctty(rustix::stdio::stdin())?)
    }

    fn exec(&self, path: &Path, args: &[String], env: &[String]) -> io::Error {
        let run = || -> io::Result<std::convert::Infallible> {
            let path = CString::new(path.as_os_str().as_bytes())
                .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
            let args = cstrings(args)?;
            let env = cstrings(env)?;
            Ok(nix::unistd::execve(&path, &args, &env)?)
        };
        match run() {
            Err(e) => e,
        }
    }
}
