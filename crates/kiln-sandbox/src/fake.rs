//! A recording [`Syscall`] for tests: it keeps a small in-memory filesystem (paths and kinds,
//! file contents) and writes one line per call, so a test can assert the whole setup sequence
//! without privileges.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use rustix::thread::CapabilitySet;

use crate::sys::{Kind, MountOpts, Namespaces, Syscall};
use crate::user::User;

/// A fake kernel that records calls.
#[derive(Debug, Default)]
pub struct RecordingSyscall {
    calls: RefCell<Vec<String>>,
    fs: RefCell<BTreeMap<PathBuf, (Kind, Vec<u8>)>>,
    fail: RefCell<BTreeMap<String, io::ErrorKind>>,
    fail_once: RefCell<BTreeMap<String, i32>>,
    user_namespace: bool,
}

impl RecordingSyscall {
    /// An empty fake.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a directory (and its parents) to the fake filesystem.
    #[must_use]
    pub fn with_dir(self, path: &str) -> Self {
        let mut p = PathBuf::new();
        for c in Path::new(path).components() {
            p.push(c);
            self.fs
                .borrow_mut()
                .entry(p.clone())
                .or_insert((Kind::Dir, Vec::new()));
        }
        self
    }

    /// Adds a file with `content` (and its parent directories).
    #[must_use]
    pub fn with_file(self, path: &str, content: &str) -> Self {
        let me = match Path::new(path).parent() {
            Some(parent) => self.with_dir(&parent.to_string_lossy()),
            None => self,
        };
        me.fs.borrow_mut().insert(
            PathBuf::from(path),
            (Kind::File, content.as_bytes().to_vec()),
        );
        me
    }

    /// Adds a symlink.
    #[must_use]
    pub fn with_symlink(self, path: &str, target: &str) -> Self {
        self.fs.borrow_mut().insert(
            PathBuf::from(path),
            (Kind::Symlink, target.as_bytes().to_vec()),
        );
        self
    }

    /// A fake that runs in a user namespace of its own (rootless).
    #[must_use]
    pub fn rootless(mut self) -> Self {
        self.user_namespace = true;
        self
    }

    /// Makes every call whose recorded line starts with `prefix` fail with `kind`.
    #[must_use]
    pub fn failing(self, prefix: &str, kind: io::ErrorKind) -> Self {
        self.fail.borrow_mut().insert(prefix.to_owned(), kind);
        self
    }

    /// Makes the first call whose recorded line is exactly `line` fail with the OS error
    /// `errno`.
    #[must_use]
    pub fn failing_once(self, line: &str, errno: i32) -> Self {
        self.fail_once.borrow_mut().insert(line.to_owned(), errno);
        self
    }

    /// The calls made so far, one line each.
    pub fn calls(&self) -> Vec<String> {
        self.calls.borrow().clone()
    }

    /// Whether the fake filesystem has `path`.
    pub fn exists(&self, path: &str) -> bool {
        self.fs.borrow().contains_key(Path::new(path))
    }

    fn record(&self, line: String) -> io::Result<()> {
        if let Some(errno) = self.fail_once.borrow_mut().remove(&line) {
            self.calls.borrow_mut().push(line);
            return Err(io::Error::from_raw_os_error(errno));
        }
        let failure = self
            .fail
            .borrow()
            .iter()
            .find(|(p, _)| line.starts_with(p.as_str()))
            .map(|(_, k)| *k);
        self.calls.borrow_mut().push(line);
        match failure {
            Some(kind) => Err(kind.into()),
            None => Ok(()),
        }
    }

    fn add(&self, path: &Path, kind: Kind) -> io::Result<()> {
        let mut fs = self.fs.borrow_mut();
        if fs.contains_key(path) {
            return Err(io::ErrorKind::AlreadyExists.into());
        }
        fs.insert(path.to_owned(), (kind, Vec::new()));
        Ok(())
    }
}

fn opts(o: MountOpts) -> String {
    let mut v = Vec::new();
    for (on, name) in [
        (o.nosuid, "nosuid"),
        (o.nodev, "nodev"),
        (o.noexec, "noexec"),
        (o.rdonly, "ro"),
    ] {
        if on {
            v.push(name);
        }
    }
    if v.is_empty() {
        "-".to_owned()
    } else {
        v.join(",")
    }
}

impl Syscall for RecordingSyscall {
    fn unshare_thread_mounts(&self) -> io::Result<()> {
        self.record("unshare-thread mnt,fs".to_owned())
    }

    fn unshare(&self, ns: Namespaces) -> io::Result<()> {
        let mut v = Vec::new();
        if ns.pid {
            v.push("pid");
        }
        if ns.mount_ipc_uts {
            v.push("mnt,ipc,uts");
        }
        if ns.net {
            v.push("net");
        }
        self.record(format!("unshare {}", v.join(",")))
    }

    fn set_hostname(&self, name: &str) -> io::Result<()> {
        self.record(format!("sethostname {name}"))
    }

    fn make_rprivate(&self, target: &Path) -> io::Result<()> {
        self.record(format!("make-rprivate {}", target.display()))
    }

    fn mount(
        &self,
        source: &str,
        target: &Path,
        fstype: &str,
        o: MountOpts,
        data: &str,
    ) -> io::Result<()> {
        self.record(format!(
            "mount {fstype} {source} {} {} {data}",
            target.display(),
            opts(o)
        ))
    }

    fn bind(&self, source: &Path, target: &Path) -> io::Result<()> {
        self.record(format!("bind {} {}", source.display(), target.display()))
    }

    fn remount_readonly(&self, target: &Path) -> io::Result<()> {
        self.record(format!("remount-ro {}", target.display()))
    }

    fn unmount(&self, target: &Path) -> io::Result<()> {
        self.record(format!("umount {}", target.display()))
    }

    fn move_mount(&self, source: &Path, target: &Path) -> io::Result<()> {
        self.record(format!("move {} {}", source.display(), target.display()))
    }

    fn in_user_namespace(&self) -> bool {
        self.user_namespace
    }

    fn pivot_root(&self, new_root: &Path, put_old: &Path) -> io::Result<()> {
        self.record(format!(
            "pivot_root {} {}",
            new_root.display(),
            put_old.display()
        ))
    }

    fn chdir(&self, dir: &Path) -> io::Result<()> {
        self.record(format!("chdir {}", dir.display()))
    }

    fn kind(&self, path: &Path) -> Option<Kind> {
        self.fs.borrow().get(path).map(|(k, _)| *k)
    }

    fn read_link(&self, path: &Path) -> io::Result<PathBuf> {
        match self.fs.borrow().get(path) {
            Some((Kind::Symlink, t)) => Ok(PathBuf::from(String::from_utf8_lossy(t).as_ref())),
            _ => Err(io::ErrorKind::InvalidInput.into()),
        }
    }

    fn mtime(&self, _path: &Path) -> io::Result<(i64, i64)> {
        Ok((1, 0))
    }

    fn set_mtime(&self, path: &Path, mtime: (i64, i64)) -> io::Result<()> {
        self.record(format!("set-mtime {} {}", path.display(), mtime.0))
    }

    fn mkdir(&self, path: &Path, mode: u32) -> io::Result<()> {
        self.record(format!("mkdir {} {mode:o}", path.display()))?;
        self.add(path, Kind::Dir)
    }

    fn create_file(&self, path: &Path, mode: u32) -> io::Result<()> {
        self.record(format!("create {} {mode:o}", path.display()))?;
        self.add(path, Kind::File)
    }

    fn write_file(
        &self,
        path: &Path,
        content: &[u8],
        mode: u32,
        uid: u32,
        gid: u32,
    ) -> io::Result<()> {
        // The length, not the bytes: recordings must be safe to print, secrets included.
        self.record(format!(
            "write {} {}B {mode:o} {uid}:{gid}",
            path.display(),
            content.len()
        ))?;
        self.add(path, Kind::File)?;
        if let Some(entry) = self.fs.borrow_mut().get_mut(path) {
            entry.1 = content.to_vec();
        }
        Ok(())
    }

    fn mknod_char(&self, path: &Path, mode: u32, major: u32, minor: u32) -> io::Result<()> {
        self.record(format!(
            "mknod {} c {major} {minor} {mode:o}",
            path.display()
        ))?;
        self.add(path, Kind::Other)
    }

    fn symlink(&self, target: &str, link: &Path) -> io::Result<()> {
        self.record(format!("symlink {target} {}", link.display()))?;
        self.add(link, Kind::Symlink)
    }

    fn remove(&self, path: &Path, _dir: bool) -> io::Result<()> {
        self.record(format!("remove {}", path.display()))?;
        self.fs.borrow_mut().remove(path);
        Ok(())
    }

    fn read_file(&self, path: &Path) -> io::Result<Vec<u8>> {
        match self.fs.borrow().get(path) {
            Some((Kind::File, c)) => Ok(c.clone()),
            _ => Err(io::ErrorKind::NotFound.into()),
        }
    }

    fn set_ids(&self, user: &User) -> io::Result<()> {
        self.record(format!(
            "set-ids uid={} gid={} groups={:?}",
            user.uid, user.gid, user.groups
        ))
    }

    fn kill_with_parent(&self) -> io::Result<()> {
        self.record("pdeathsig-kill".to_owned())
    }

    fn limit_capabilities(&self, keep: CapabilitySet) -> io::Result<()> {
        self.record(format!("limit-caps {}", keep.bits().count_ones()))
    }

    fn loopback_up(&self) -> io::Result<()> {
        self.record("loopback-up".to_owned())
    }

    fn set_controlling_terminal(&self) -> io::Result<()> {
        self.record("setsid+tiocsctty".to_owned())
    }

    fn exec(&self, path: &Path, args: &[String], env: &[String]) -> io::Error {
        match self.record(format!("exec {} {args:?} {env:?}", path.display())) {
            Err(e) => e,
            Ok(()) => io::Error::other("the fake does not exec"),
        }
    }
}
