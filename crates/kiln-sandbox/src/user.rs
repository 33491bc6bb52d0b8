//! `USER` resolution from the image's own `/etc/passwd` and `/etc/group`, as Docker does it.
//!
//! The forms are `name`, `uid`, `name:group`, `uid:gid` and the mixes (`name:gid`,
//! `uid:group`). A name must exist in the image's files; a number need not (an unknown uid runs
//! with gid 0 and `HOME=/`). Supplementary groups are the groups that list the user as a member,
//! and only when no group is given explicitly (runc's rule, which Docker and BuildKit share),
//! with the primary group first among them unless they hold it already (containerd's and
//! BuildKit's fix of CVE-2023-25173: a process must not shed its primary group by `setgroups`
//! semantics, so `id` as root in busybox says `groups=0(root),10(wheel)`).

use serde::{Deserialize, Serialize};

/// The ids and home a process runs with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// Supplementary groups: the primary gid first (unless listed already), then those whose
    /// member lists name the user (none with an explicit group).
    pub groups: Vec<u32>,
    /// The home directory from `/etc/passwd`; `/` for users not listed there. The process gets
    /// it as `HOME` unless its environment already has one.
    pub home: String,
}

/// Why a `USER` value cannot be resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserError {
    /// A user name not in the image's `/etc/passwd`.
    #[error("unable to find user `{name}`: no matching entries in passwd file")]
    NoSuchUser {
        /// The name.
        name: String,
    },
    /// A group name not in the image's `/etc/group`.
    #[error("unable to find group `{name}`: no matching entries in group file")]
    NoSuchGroup {
        /// The name.
        name: String,
    },
    /// A numeric id out of range.
    #[error("invalid id `{value}` in user `{user}`: ids are 0 to 2147483646")]
    BadId {
        /// The whole `USER` value.
        user: String,
        /// The id.
        value: String,
    },
}

struct PasswdEntry<'a> {
    name: &'a str,
    uid: u32,
    gid: u32,
    home: &'a str,
}

struct GroupEntry<'a> {
    name: &'a str,
    gid: u32,
    members: Vec<&'a str>,
}

fn passwd_entries(passwd: &str) -> impl Iterator<Item = PasswdEntry<'_>> {
    passwd.lines().filter_map(|line| {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            return None;
        }
        let f: Vec<&str> = line.split(':').collect();
        Some(PasswdEntry {
            name: f.first()?,
            uid: f.get(2)?.parse().ok()?,
            gid: f.get(3)?.parse().ok()?,
            home: f.get(5).copied().unwrap_or(""),
        })
    })
}

fn group_entries(group: &str) -> impl Iterator<Item = GroupEntry<'_>> {
    group.lines().filter_map(|line| {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            return None;
        }
        let f: Vec<&str> = line.split(':').collect();
        Some(GroupEntry {
            name: f.first()?,
            gid: f.get(2)?.parse().ok()?,
            members: f
                .get(3)
                .map(|m| {
                    m.split(',')
                        .map(str::trim)
                        .filter(|m| !m.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
        })
    })
}

fn numeric(user: &str, value: &str) -> Result<Option<u32>, UserError> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(None);
    }
    match value.parse::<u32>() {
        Ok(id) if id < 0x7fff_ffff => Ok(Some(id)),
        _ => Err(UserError::BadId {
            user: user.to_owned(),
            value: value.to_owned(),
        }),
    }
}

/// Resolves `spec` (a `USER` value; empty means root) against the contents of the image's
/// `/etc/passwd` and `/etc/group` (empty strings when the files are missing).
pub fn resolve(spec: &str, passwd: &str, group: &str) -> Result<User, UserError> {
    let (user_part, group_part) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let user_part = if user_part.is_empty() { "0" } else { user_part };
    let mut out = User {
        uid: 0,
        gid: 0,
        groups: Vec::new(),
        home: "/".to_owned(),
    };
    let mut name = None;
    if let Some(uid) = numeric(spec, user_part)? {
        out.uid = uid;
        if let Some(e) = passwd_entries(passwd).find(|e| e.uid == uid) {
            out.gid = e.gid;
            e.home.clone_into(&mut out.home);
            name = Some(e.name.to_owned());
        }
    } else {
        let e = passwd_entries(passwd)
            .find(|e| e.name == user_part)
            .ok_or_else(|| UserError::NoSuchUser {
                name: user_part.to_owned(),
            })?;
        out.uid = e.uid;
        out.gid = e.gid;
        e.home.clone_into(&mut out.home);
        name = Some(e.name.to_owned());
    }
    if out.home.is_empty() {
        "/".clone_into(&mut out.home);
    }
    if let Some(g) = group_part.filter(|g| !g.is_empty()) {
        out.gid = match numeric(spec, g)? {
            Some(gid) => gid,
            None => {
                group_entries(group)
                    .find(|e| e.name == g)
                    .ok_or_else(|| UserError::NoSuchGroup { name: g.to_owned() })?
                    .gid
            }
        };
        // runc (and so Docker and BuildKit): an explicit group means no supplementary groups.
        out.groups = Vec::new();
    } else {
        // runc: the groups whose member lists name the user.
        out.groups = Vec::new();
        if let Some(name) = &name {
            for e in group_entries(group) {
                if e.members.contains(&name.as_str()) && !out.groups.contains(&e.gid) {
                    out.groups.push(e.gid);
                }
            }
        }
    }
    if !out.groups.contains(&out.gid) {
        out.groups.insert(0, out.gid);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
        daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n\
        # a comment\n\
        app:x:1000:1000:App:/home/app:/bin/sh\n\
        nohome:x:1001:1001::\n";
    const GROUP: &str = "root:x:0:\n\
        daemon:x:1:app\n\
        app:x:1000:\n\
        staff:x:50:app,other\n\
        wheel:x:10:root\n";

    fn user(spec: &str) -> Result<User, UserError> {
        resolve(spec, PASSWD, GROUP)
    }

    #[test]
    fn empty_is_root_with_its_groups() {
        let u = user("").unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (0, 0, "/root"));
        assert_eq!(
            u.groups,
            vec![0, 10],
            "the primary gid, then those listing root"
        );
    }

    #[test]
    fn name_gets_the_groups_that_list_it() {
        let u = user("app").unwrap();
        assert_eq!((u.uid, u.gid), (1000, 1000));
        assert_eq!(u.home, "/home/app");
        assert_eq!(u.groups, vec![1000, 1, 50]);
    }

    #[test]
    fn uid_known_is_looked_up() {
        let u = user("1000").unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (1000, 1000, "/home/app"));
        assert_eq!(u.groups, vec![1000, 1, 50]);
    }

    #[test]
    fn uid_unknown_runs_with_gid_0_and_root_home() {
        let u = user("4242").unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (4242, 0, "/"));
        assert_eq!(
            u.groups,
            vec![0],
            "no name, so no group lists it: the primary only"
        );
    }

    #[test]
    fn explicit_group_drops_supplementary_groups() {
        let u = user("app:staff").unwrap();
        assert_eq!((u.uid, u.gid), (1000, 50));
        assert_eq!(
            u.groups,
            vec![50],
            "an explicit group means no other supplementary groups (runc)"
        );
        let u = user("1000:7").unwrap();
        assert_eq!((u.uid, u.gid), (1000, 7));
        let u = user("4242:4343").unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (4242, 4343, "/"));
        let u = user("0:wheel").unwrap();
        assert_eq!((u.uid, u.gid), (0, 10));
    }

    #[test]
    fn empty_home_is_root_dir() {
        assert_eq!(user("nohome").unwrap().home, "/");
    }

    #[test]
    fn unknown_names_are_errors() {
        assert_eq!(
            user("nobody").unwrap_err().to_string(),
            "unable to find user `nobody`: no matching entries in passwd file"
        );
        assert_eq!(
            user("app:nogroup").unwrap_err().to_string(),
            "unable to find group `nogroup`: no matching entries in group file"
        );
        assert!(matches!(user("99999999999"), Err(UserError::BadId { .. })));
    }

    #[test]
    fn missing_files_allow_numeric_ids_only() {
        let u = resolve("12:34", "", "").unwrap();
        assert_eq!((u.uid, u.gid, u.groups), (12, 34, vec![34]));
        assert!(resolve("root", "", "").is_err());
        assert_eq!(resolve("", "", "").unwrap().home, "/");
    }
}
