//! Subordinate ids: the user's ranges in `/etc/subuid` and `/etc/subgid`, and the setuid
//! helpers (`newuidmap`, `newgidmap`) that map them into a user namespace.

use std::fs;
use std::os::unix::fs::MetadataExt as _;
use std::path::Path;

use super::finding::{Finding, Fix};
use super::host::Host;

/// The number of subordinate ids a user should have: 65536 covers every id a Debian or
/// Alpine image uses (`nobody` is 65534), as Podman and BuildKit rootless recommend.
pub(crate) const RECOMMENDED_IDS: u64 = 65536;

/// The fix for a missing or short range, for `user`.
pub(crate) fn usermod_fix(user: &str) -> Fix {
    let cmd = format!("usermod --add-subuids 100000-165535 --add-subgids 100000-165535 {user}");
    Fix::inside(cmd.clone(), format!("in the image, as root: {cmd}"))
}

/// The ids `/etc/subuid` (or subgid) text grants the user named `name` with id `id`: the sum
/// of the counts of its lines, which name the user by name or by number (`shadow`'s rule).
pub(crate) fn granted(text: &str, name: Option<&str>, id: u32) -> u64 {
    text.lines()
        .filter_map(|l| {
            let mut parts = l.trim().split(':');
            let who = parts.next()?;
            let _start: u64 = parts.next()?.trim().parse().ok()?;
            let count: u64 = parts.next()?.trim().parse().ok()?;
            let matches = Some(who) == name || who.parse::<u32>().ok() == Some(id);
            matches.then_some(count)
        })
        .sum()
}

/// `/etc/subuid` or `/etc/subgid` (`kind` is `subuid` or `subgid`) for the caller.
pub(crate) fn check_subids(host: &Host, kind: &'static str) -> Finding {
    let (path, id) = if kind == "subuid" {
        (&host.subuid, host.uid)
    } else {
        (&host.subgid, host.gid)
    };
    let user = host.user_label();
    if host.uid == 0 {
        return Finding::info(kind, "not needed as root");
    }
    // Not an error: a build still works, with one id mapped (kiln warns when it starts).
    let fallback = "kiln falls back to mapping only your own id: builds work, but RUN steps \
                    and images that use other ids (apt-get, chown, USER) fail";
    let Ok(text) = fs::read_to_string(path) else {
        return Finding::warn(
            kind,
            format!("`{}` does not exist; {fallback}", path.display()),
        )
        .with_fix(usermod_fix(&user));
    };
    let count = granted(&text, host.user.as_deref(), id);
    if count == 0 {
        Finding::warn(
            kind,
            format!("no entry for `{user}` in `{}`; {fallback}", path.display()),
        )
        .with_fix(usermod_fix(&user))
    } else if count < RECOMMENDED_IDS {
        Finding::warn(
            kind,
            format!(
                "`{user}` has {count} ids in `{}`, fewer than the {RECOMMENDED_IDS} images may use",
                path.display()
            ),
        )
        .with_fix(usermod_fix(&user))
    } else {
        Finding::ok(
            kind,
            format!("`{user}` has {count} ids in `{}`", path.display()),
        )
    }
}

/// The capability bits a `security.capability` xattr grants as permitted (its first 32 bits;
/// `CAP_SETUID` and `CAP_SETGID` are among them), or `None` when it is not one.
pub(crate) fn file_caps_permitted(xattr: &[u8]) -> Option<u32> {
    // vfs_cap_data: le32 magic_etc, then (permitted, inheritable) low words, then high words.
    let word = |i: usize| {
        xattr
            .get(i * 4..i * 4 + 4)
            .map(|b| u32::from_le_bytes(b.try_into().unwrap_or_default()))
    };
    let magic = word(0)? & 0xFF00_0000;
    // VFS_CAP_REVISION_1, _2, _3.
    if ![0x0100_0000, 0x0200_0000, 0x0300_0000].contains(&magic) {
        return None;
    }
    word(1)
}

/// `newuidmap` or `newgidmap` on `PATH`, setuid root or with `cap_setuid`/`cap_setgid`,
/// and, when a user namespace can be made (`userns`), seen writing a map for real.
///
/// The trial matters in containers: a setuid-root helper writes the map as root, and the
/// kernel then wants `CAP_SYS_ADMIN` over the new namespace, which a container without it
/// in its bounding set cannot have; a helper with file capabilities writes as the user, who
/// owns the namespace, and works.
pub(crate) fn check_helper(host: &Host, tool: &'static str, userns: bool) -> Finding {
    if host.uid == 0 {
        return Finding::info(tool, "not needed as root");
    }
    let fix = Fix::inside(
        "apt-get install uidmap",
        "in the image: apt-get install uidmap",
    );
    let Some(path) = host.which(tool) else {
        return Finding::warn(
            tool,
            format!(
                "`{tool}` is not on PATH; kiln falls back to mapping only your own id: builds \
                 work, but RUN steps that use other ids fail"
            ),
        )
        .with_fix(fix);
    };
    let (bit, cap, id) = if tool == "newuidmap" {
        (7, "cap_setuid", host.uid)
    } else {
        (6, "cap_setgid", host.gid)
    };
    let setuid_root = fs::metadata(&path).is_ok_and(|m| m.mode() & 0o4000 != 0 && m.uid() == 0);
    let has_cap = read_caps(&path).is_some_and(|c| c & (1 << bit) != 0);
    let to_caps = format!("chmod u-s {p} && setcap {cap}=ep {p}", p = path.display());
    if !setuid_root && !has_cap {
        return Finding::error(
            tool,
            format!(
                "`{}` is neither setuid root nor has {cap}, so it cannot map other ids",
                path.display()
            ),
        )
        .with_fix(Fix::inside(
            format!("setcap {cap}=ep {}", path.display()),
            format!(
                "in the image: setcap {cap}=ep {} (a COPY or a squash may have dropped its \
                 setuid bit or capabilities)",
                path.display()
            ),
        ));
    }
    let how = if has_cap { cap } else { "setuid root" };
    if !userns {
        return Finding::ok(
            tool,
            format!(
                "`{}` is {how} (not tried: no user namespace)",
                path.display()
            ),
        );
    }
    match host.prober.id_map(&path, id) {
        Ok(()) => Finding::ok(tool, format!("`{}` is {how} and maps ids", path.display())),
        Err(failure) => {
            let no_sys_admin = host.caps("CapBnd").is_some_and(|b| b & (1 << 21) == 0);
            if setuid_root && !has_cap && no_sys_admin {
                Finding::error(
                    tool,
                    format!(
                        "`{}` is setuid root but cannot write a map here ({failure}): as root \
                         it needs CAP_SYS_ADMIN, which this container lacks; with {cap} it \
                         writes as you and does not",
                        path.display()
                    ),
                )
                .with_fix(Fix::inside(
                    to_caps.clone(),
                    format!("in the image, as root: {to_caps}"),
                ))
            } else {
                Finding::error(
                    tool,
                    format!("`{}` cannot write a map here ({failure})", path.display()),
                )
            }
        }
    }
}

/// The permitted bits of a file's capabilities, if it has any.
fn read_caps(path: &Path) -> Option<u32> {
    let mut buf = [0u8; 32];
    let n = rustix::fs::getxattr(path, "security.capability", &mut buf).ok()?;
    file_caps_permitted(&buf[..n])
}

#[cfg(test)]
mod tests {
    use super::super::finding::Status;
    use super::super::tests::fake_host;
    use super::*;

    #[test]
    fn ranges_add_up_by_name_or_by_number() {
        let text = "alice:100000:65536\n1001:200000:1000\nbob:300000:5\n# x\n1001:400000:24\n";
        assert_eq!(granted(text, Some("alice"), 1000), 65536);
        assert_eq!(granted(text, Some("carol"), 1001), 1024);
        assert_eq!(granted(text, None, 1002), 0);
        assert_eq!(granted("garbage\nalice:x:1\n", Some("alice"), 1), 0);
    }

    #[test]
    fn a_user_without_an_entry_gets_the_usermod_fix() {
        let (_dir, host) = fake_host(|_| {});
        let f = check_subids(&host, "subuid");
        assert_eq!(f.status, Status::Warn);
        assert!(f.message.contains("no entry for `tester`"), "{}", f.message);
        assert_eq!(
            f.fix.unwrap().host.unwrap(),
            "usermod --add-subuids 100000-165535 --add-subgids 100000-165535 tester"
        );
    }

    #[test]
    fn a_short_range_is_a_warning_and_a_full_one_fine() {
        let (_dir, host) = fake_host(|root| {
            fs::write(root.join("etc/subuid"), "tester:100000:1000\n").unwrap();
            fs::write(root.join("etc/subgid"), "1000:100000:65536\n").unwrap();
        });
        assert_eq!(check_subids(&host, "subuid").status, Status::Warn);
        assert_eq!(check_subids(&host, "subgid").status, Status::Ok);
    }

    #[test]
    fn a_missing_file_is_a_warning() {
        let (dir, host) = fake_host(|_| {});
        fs::remove_file(dir.path().join("etc/subgid")).unwrap();
        let f = check_subids(&host, "subgid");
        assert_eq!(f.status, Status::Warn);
        assert!(f.message.contains("does not exist"), "{}", f.message);
    }

    #[test]
    fn helpers_must_exist_and_be_setuid() {
        let (dir, host) = fake_host(|_| {});
        // Missing: kiln maps one id, a warning.
        let f = check_helper(&host, "newuidmap", true);
        assert_eq!(f.status, Status::Warn);
        assert_eq!(f.fix.unwrap().host.unwrap(), "apt-get install uidmap");
        // Present but a plain file (not setuid, no capabilities).
        fs::write(dir.path().join("bin/newgidmap"), "").unwrap();
        let f = check_helper(&host, "newgidmap", true);
        assert_eq!(f.status, Status::Error);
        assert!(f.message.contains("neither setuid root"), "{}", f.message);
    }

    #[test]
    fn a_setuid_helper_without_cap_sys_admin_is_told_to_use_file_capabilities() {
        use std::os::unix::fs::PermissionsExt as _;
        let (dir, mut host) = fake_host(|_| {});
        let status = dir.path().join("proc/self/status");
        // Docker's default bounding set: no CAP_SYS_ADMIN.
        fs::write(
            &status,
            "Uid:\t1000\t1000\t1000\t1000\nCapEff:\t0\nCapBnd:\t00000000a80425fb\n",
        )
        .unwrap();
        let tool = dir.path().join("bin/newuidmap");
        fs::write(&tool, "").unwrap();
        fs::set_permissions(&tool, fs::Permissions::from_mode(0o4755)).unwrap();
        if fs::metadata(&tool).unwrap().uid() != 0 {
            // Only root makes a root-owned setuid file; the rule is the same otherwise.
            return;
        }
        host.prober = Box::new(super::super::tests::FakeProber {
            id_map: Some(super::super::tests::eperm("newuidmap")),
            ..Default::default()
        });
        host.place = super::super::host::Where::Docker;
        let f = check_helper(&host, "newuidmap", true);
        assert_eq!(f.status, Status::Error);
        assert!(f.message.contains("needs CAP_SYS_ADMIN"), "{}", f.message);
        let fix = f.fix.unwrap();
        assert_eq!(
            fix.host.unwrap(),
            format!(
                "chmod u-s {p} && setcap cap_setuid=ep {p}",
                p = tool.display()
            )
        );
    }

    #[test]
    fn file_capabilities_are_read_from_the_xattr() {
        // VFS_CAP_REVISION_2 with the effective flag, permitted = cap_setuid | cap_setgid.
        let mut x = Vec::new();
        for w in [0x0200_0001u32, (1 << 7) | (1 << 6), 0, 0, 0] {
            x.extend_from_slice(&w.to_le_bytes());
        }
        assert_eq!(file_caps_permitted(&x), Some(0xC0));
        assert_eq!(file_caps_permitted(&[1, 2]), None);
        assert_eq!(file_caps_permitted(&[0; 20]), None);
    }
}
