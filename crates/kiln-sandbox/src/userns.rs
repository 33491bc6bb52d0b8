//! Rootless kiln: the whole process enters a user namespace of its own in which the caller is
//! root, before it starts any thread.
//!
//! There every command works as it does for root: layers unpack with their owners (`fchown`
//! to ids the namespace maps), overlayfs mounts with `userxattr`, RUN steps start their own
//! namespaces, and files keep the ids the container sees, so a rootless build makes the same
//! layers as a root one. On the host the files belong to the caller (for id 0) and to the
//! caller's subordinate ids (for the rest).
//!
//! The mapping is, as podman and BuildKit rootless make it:
//! - with entries for the user in `/etc/subuid` and `/etc/subgid` and the setuid helpers
//!   `newuidmap` / `newgidmap` (Debian's `uidmap`): id 0 is the caller, ids 1 to N are the
//!   subordinate range ([`Mapping::Subordinate`]). The helpers must run outside the
//!   namespace, so a child of kiln ([`MAP_IDS_ARG`], started before the unshare) runs them
//!   for it;
//! - without them, id 0 alone ([`Mapping::Single`]): steps that use other ids fail with
//!   [`crate::SetupError::Unmapped`], which says how to add subordinate ids.

use std::ffi::OsStr;
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The argument that makes kiln the id-mapping helper: `SELF __map-ids PID NEWUIDMAP
/// NEWGIDMAP UID GID UID_START UID_COUNT GID_START GID_COUNT`.
pub const MAP_IDS_ARG: &str = "__map-ids";

/// A range of subordinate ids from `/etc/subuid` or `/etc/subgid`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdRange {
    /// The first host id.
    pub start: u32,
    /// How many.
    pub count: u32,
}

/// How the namespace maps ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mapping {
    /// 0 is the caller, 1..=count the subordinate ranges.
    Subordinate {
        /// The uids.
        uids: IdRange,
        /// The gids.
        gids: IdRange,
    },
    /// 0 is the caller, nothing else; `why` says what was missing.
    Single {
        /// What was missing (no subuid entry, no newuidmap).
        why: String,
    },
}

/// What [`enter`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entered {
    /// The caller's uid on the host.
    pub uid: u32,
    /// The caller's gid on the host.
    pub gid: u32,
    /// The caller's user name (`/etc/passwd`), or its uid.
    pub user: String,
    /// The mapping.
    pub mapping: Mapping,
}

/// Why kiln could not enter its user namespace.
#[derive(Debug, thiserror::Error)]
pub enum UsernsError {
    /// `unshare(CLONE_NEWUSER)` was refused.
    #[error(
        "cannot create a user namespace for rootless kiln\nhint: run `kiln doctor`: user namespaces may be disabled (`sysctl user.max_user_namespaces`, `kernel.unprivileged_userns_clone`, `kernel.apparmor_restrict_unprivileged_userns`) or blocked by seccomp (in Docker: `--security-opt seccomp=unconfined`)"
    )]
    Unshare(#[source] io::Error),
    /// `newuidmap` or `newgidmap` failed.
    #[error(
        "`{program}` could not map the subordinate ids of `{user}`: {message}\nhint: check the entries for `{user}` in /etc/subuid and /etc/subgid, and that `{program}` is setuid root (`apt-get install uidmap`); `kiln doctor` checks both"
    )]
    Map {
        /// The helper program.
        program: String,
        /// The user.
        user: String,
        /// What it printed.
        message: String,
    },
    /// The mapping helper could not be started or a map file could not be written.
    #[error(transparent)]
    Io(#[from] kiln_io::IoError),
}

/// The first range of `user` (by name or uid) in the text of `/etc/subuid` or `/etc/subgid`.
pub fn subordinate_range(text: &str, user: &str, uid: u32) -> Option<IdRange> {
    let uid = uid.to_string();
    text.lines().find_map(|line| {
        let mut f = line.trim().split(':');
        let (who, start, count) = (f.next()?, f.next()?, f.next()?);
        if who != user && who != uid {
            return None;
        }
        let range = IdRange {
            start: start.trim().parse().ok()?,
            count: count.trim().parse().ok()?,
        };
        (range.count > 0).then_some(range)
    })
}

/// The user name of `uid` in the text of `/etc/passwd`.
pub fn user_name(passwd: &str, uid: u32) -> Option<String> {
    let uid = uid.to_string();
    passwd.lines().find_map(|line| {
        let mut f = line.split(':');
        let name = f.next()?;
        (f.nth(1)? == uid).then(|| name.to_owned())
    })
}

/// `program` in `search` (a `PATH` value) and the usual system directories, which a user's
/// `PATH` may lack.
pub fn find_program(program: &str, search: &OsStr) -> Option<PathBuf> {
    std::env::split_paths(search)
        .chain(["/usr/bin", "/usr/sbin", "/bin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

/// Enters a new user and mount namespace in which the caller is root; `exe` is this binary
/// (it must call [`main_if_map_ids`] first thing in `main`). Call it while the process has
/// one thread. `search` is the `PATH` in which to look for `newuidmap` and `newgidmap`.
pub fn enter(exe: &Path, search: &OsStr) -> Result<Entered, UsernsError> {
    let uid = rustix::process::getuid().as_raw();
    let gid = rustix::process::getgid().as_raw();
    let user = fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|p| user_name(&p, uid))
        .unwrap_or_else(|| uid.to_string());
    let (mapping, tools) = choose_mapping(&user, uid, search);
    let helper = match (&mapping, tools) {
        (Mapping::Subordinate { uids, gids }, Some((uid_tool, gid_tool))) => {
            let pid = rustix::process::getpid().as_raw_nonzero().get();
            let child = Command::new(exe)
                .arg(MAP_IDS_ARG)
                .arg(pid.to_string())
                .arg(&uid_tool)
                .arg(&gid_tool)
                .args(
                    [uid, gid, uids.start, uids.count, gids.start, gids.count]
                        .map(|n| n.to_string()),
                )
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .map_err(kiln_io::io_err("start the id-mapping helper", exe))?;
            Some(child)
        }
        _ => None,
    };
    // SAFETY: the caller promises one thread: no other thread's view of the process's
    // credentials, namespaces or files can be invalidated.
    if let Err(e) = unsafe {
        rustix::thread::unshare_unsafe(
            rustix::thread::UnshareFlags::NEWUSER | rustix::thread::UnshareFlags::NEWNS,
        )
    } {
        if let Some(mut child) = helper {
            let _ = child.kill();
            let _ = child.wait();
        }
        return Err(UsernsError::Unshare(e.into()));
    }
    match helper {
        Some(mut child) => {
            // One byte says the namespace exists; the helper maps it and exits.
            if let Some(mut stdin) = child.stdin.take() {
                let _ = stdin.write_all(b"1");
            }
            let out = child
                .wait_with_output()
                .map_err(kiln_io::io_err("wait for the id-mapping helper", exe))?;
            if !out.status.success() {
                let text = String::from_utf8_lossy(&out.stderr).trim().to_owned();
                let (program, message) = text
                    .split_once('\t')
                    .map_or(("newuidmap".to_owned(), text.clone()), |(p, m)| {
                        (p.to_owned(), m.to_owned())
                    });
                return Err(UsernsError::Map {
                    program,
                    user,
                    message,
                });
            }
            // The host's supplementary groups mean nothing here.
            let _ = rustix::thread::set_thread_groups(&[]);
        }
        None => {
            for (file, text) in [
                ("/proc/self/setgroups", "deny".to_owned()),
                ("/proc/self/uid_map", format!("0 {uid} 1")),
                ("/proc/self/gid_map", format!("0 {gid} 1")),
            ] {
                fs::write(file, text).map_err(kiln_io::io_err("write", file))?;
            }
        }
    }
    // Nothing kiln mounts (overlays of build threads) propagates anywhere.
    rustix::mount::mount_change(
        "/",
        rustix::mount::MountPropagationFlags::PRIVATE | rustix::mount::MountPropagationFlags::REC,
    )
    .map_err(|e| kiln_io::io_err("make private the mounts under", "/")(e.into()))?;
    Ok(Entered {
        uid,
        gid,
        user,
        mapping,
    })
}

/// The mapping `user` can have, with the helper programs that make it: subordinate ranges
/// when both files have one and both programs exist, else one id with the reason.
fn choose_mapping(user: &str, uid: u32, search: &OsStr) -> (Mapping, Option<(PathBuf, PathBuf)>) {
    let range = |file: &str| {
        fs::read_to_string(file)
            .ok()
            .and_then(|t| subordinate_range(&t, user, uid))
    };
    let single = |why: String| (Mapping::Single { why }, None);
    let (Some(uids), Some(gids)) = (range("/etc/subuid"), range("/etc/subgid")) else {
        return single(format!(
            "no subordinate ids for `{user}` in /etc/subuid and /etc/subgid"
        ));
    };
    match (
        find_program("newuidmap", search),
        find_program("newgidmap", search),
    ) {
        (Some(u), Some(g)) => (Mapping::Subordinate { uids, gids }, Some((u, g))),
        (None, _) => single("`newuidmap` is not installed (Debian's `uidmap`)".to_owned()),
        (_, None) => single("`newgidmap` is not installed (Debian's `uidmap`)".to_owned()),
    }
}

/// When this process is the id-mapping helper (`SELF __map-ids ...`): waits for the parent's
/// byte, runs `newuidmap` and `newgidmap` for it and exits. Call first thing in `main`.
pub fn main_if_map_ids() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) != Some(MAP_IDS_ARG) {
        return;
    }
    let code = match map_ids(&args[2..]) {
        Ok(()) => 0,
        Err((program, message)) => {
            // `program TAB message`: the parent splits it back.
            let _ = writeln!(io::stderr(), "{program}\t{message}");
            1
        }
    };
    std::process::exit(code)
}

fn map_ids(args: &[String]) -> Result<(), (String, String)> {
    let [pid, uid_tool, gid_tool, uid, gid, us, uc, gs, gc] = args else {
        return Err(("kiln".into(), format!("bad arguments {args:?}")));
    };
    let mut byte = [0u8; 1];
    if !matches!(io::stdin().read(&mut byte), Ok(1)) {
        // The parent could not unshare: nothing to map.
        return Ok(());
    }
    for (program, host_id, start, count) in [(uid_tool, uid, us, uc), (gid_tool, gid, gs, gc)] {
        let out = Command::new(program)
            .args([pid, "0", host_id, "1", "1", start, count])
            .output()
            .map_err(|e| (program.clone(), e.to_string()))?;
        if !out.status.success() {
            let message = String::from_utf8_lossy(&out.stderr)
                .trim()
                .replace('\n', " ");
            return Err((program.clone(), message));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_users_range_is_found_by_name_or_uid() {
        let text = "alice:100000:65536\n1001:200000:1000\nbob:300000:0\n";
        assert_eq!(
            subordinate_range(text, "alice", 1000),
            Some(IdRange {
                start: 100_000,
                count: 65536
            })
        );
        assert_eq!(
            subordinate_range(text, "carol", 1001),
            Some(IdRange {
                start: 200_000,
                count: 1000
            })
        );
        // An empty range maps nothing.
        assert_eq!(subordinate_range(text, "bob", 1002), None);
        assert_eq!(subordinate_range(text, "dave", 1003), None);
    }

    #[test]
    fn a_uid_has_its_passwd_name() {
        let passwd = "root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n";
        assert_eq!(user_name(passwd, 1000).as_deref(), Some("alice"));
        assert_eq!(user_name(passwd, 7), None);
    }
}
