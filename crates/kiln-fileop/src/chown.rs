//! `--chown=user[:group]`: parsed as BuildKit's `llb.WithUser` does and resolved against the
//! target's `/etc/passwd` and `/etc/group`.
//!
//! Rules (BuildKit's `readUser`):
//! - each part is an id when it parses as a 32-bit integer (or is `root`), else a name;
//! - a numeric user alone sets both uid and gid to that number (`--chown=1000` is `1000:1000`);
//! - a user name alone uses that user's primary gid from `/etc/passwd`;
//! - a group part always wins over the user's gid; an empty group (`user:`) is gid 0, as
//!   BuildKit does today.
//!
//! Deviation: BuildKit silently uses id 0 for a name it cannot find (or when the file is
//! missing); kiln refuses with [`FileOpError::UnknownUser`]/[`FileOpError::UnknownGroup`]
//! naming the file it read, because a silent root-owned file is never what was meant.

use std::path::Path;

use crate::error::FileOpError;
use crate::view::{Kind, LowerView, resolve};

/// One side of `--chown`: an id or a name to look up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdOrName {
    /// A numeric id (`root` counts as 0).
    Id(u32),
    /// A name for `/etc/passwd` or `/etc/group`.
    Name(String),
}

impl IdOrName {
    fn parse(s: &str) -> Self {
        if s == "root" {
            return Self::Id(0);
        }
        match s.parse::<i32>() {
            Ok(n) if n >= 0 => Self::Id(n.cast_unsigned()),
            _ => Self::Name(s.to_owned()),
        }
    }
}

/// A parsed `--chown` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChownSpec {
    /// The user part.
    pub user: IdOrName,
    /// The group part, when a `:` was given.
    pub group: Option<IdOrName>,
}

impl ChownSpec {
    /// Parses `user[:group]` (the text after variable expansion).
    pub fn parse(s: &str) -> Self {
        match s.split_once(':') {
            Some((u, "")) => Self {
                user: IdOrName::parse(u),
                group: Some(IdOrName::Id(0)),
            },
            Some((u, g)) => Self {
                user: IdOrName::parse(u),
                group: Some(IdOrName::parse(g)),
            },
            None => Self {
                user: IdOrName::parse(s),
                group: None,
            },
        }
    }

    /// The numeric `(uid, gid)`, reading `/etc/passwd` and `/etc/group` of `target` only when
    /// a name needs it.
    pub fn resolve(&self, target: &dyn LowerView) -> Result<(u64, u64), FileOpError> {
        let (uid, mut gid) = match &self.user {
            IdOrName::Id(id) => (u64::from(*id), u64::from(*id)),
            IdOrName::Name(name) => {
                lookup(target, "/etc/passwd", name, 2, 3).ok_or_else(|| {
                    FileOpError::UnknownUser {
                        name: name.clone(),
                        file: "/etc/passwd".to_owned(),
                    }
                })??
            }
        };
        match &self.group {
            None => {}
            Some(IdOrName::Id(id)) => gid = u64::from(*id),
            Some(IdOrName::Name(name)) => {
                gid = lookup(target, "/etc/group", name, 2, 2)
                    .ok_or_else(|| FileOpError::UnknownGroup {
                        name: name.clone(),
                        file: "/etc/group".to_owned(),
                    })??
                    .0;
            }
        }
        Ok((uid, gid))
    }
}

/// Finds `name` in the colon-separated database `file` of `target` and returns fields `a`
/// and `b` as numbers. `None` when the file or the name is missing; lines that do not parse
/// are skipped, as moby/sys/user does.
fn lookup(
    target: &dyn LowerView,
    file: &str,
    name: &str,
    a: usize,
    b: usize,
) -> Option<Result<(u64, u64), FileOpError>> {
    let data = match read_db(target, file) {
        Ok(Some(d)) => d,
        Ok(None) => return None,
        Err(e) => return Some(Err(e)),
    };
    let text = String::from_utf8_lossy(&data);
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            if fields.first() != Some(&name) {
                return None;
            }
            let x = fields.get(a)?.parse().ok()?;
            let y = fields.get(b)?.parse().ok()?;
            Some(Ok((x, y)))
        })
}

fn read_db(target: &dyn LowerView, file: &str) -> Result<Option<Vec<u8>>, FileOpError> {
    let resolved = resolve(
        Path::new(file.trim_start_matches('/')),
        true,
        &mut |p| target.lstat(p),
        &mut |p| target.read_link(p),
    )?;
    match target.lstat(&resolved)? {
        Some(stat) if stat.kind == Kind::File => target.read_file(&resolved),
        Some(_) => Err(FileOpError::UserDb {
            file: file.to_owned(),
            source: std::io::Error::other("not a regular file"),
        }),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::view::{DirView, EmptyView};

    #[test]
    fn parse_follows_llb_with_user() {
        assert_eq!(
            ChownSpec::parse("1000"),
            ChownSpec {
                user: IdOrName::Id(1000),
                group: None
            }
        );
        assert_eq!(ChownSpec::parse("root:staff").user, IdOrName::Id(0));
        assert_eq!(
            ChownSpec::parse("app:").group,
            Some(IdOrName::Id(0)),
            "an empty group is gid 0, as BuildKit"
        );
        assert_eq!(ChownSpec::parse("-1").user, IdOrName::Name("-1".into()));
    }

    #[test]
    fn numeric_user_alone_sets_both_ids() {
        assert_eq!(
            ChownSpec::parse("1000").resolve(&EmptyView).unwrap(),
            (1000, 1000)
        );
        assert_eq!(
            ChownSpec::parse("1000:5").resolve(&EmptyView).unwrap(),
            (1000, 5)
        );
    }

    #[test]
    fn names_come_from_the_target() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir(t.path().join("etc")).unwrap();
        std::fs::write(
            t.path().join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\n# comment\nbroken\napp:x:1001:1002::/home/app:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(t.path().join("etc/group"), "root:x:0:\nstaff:x:50:app\n").unwrap();
        let view = DirView::new(t.path());
        assert_eq!(
            ChownSpec::parse("app").resolve(&view).unwrap(),
            (1001, 1002)
        );
        assert_eq!(
            ChownSpec::parse("app:staff").resolve(&view).unwrap(),
            (1001, 50)
        );
        assert_eq!(ChownSpec::parse("7:staff").resolve(&view).unwrap(), (7, 50));
        let err = ChownSpec::parse("nobody").resolve(&view).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown user `nobody` in `--chown`: not found in `/etc/passwd`"
        );
        let err = ChownSpec::parse("app:wheel").resolve(&view).unwrap_err();
        assert!(matches!(err, FileOpError::UnknownGroup { .. }));
        assert!(matches!(
            ChownSpec::parse("app").resolve(&EmptyView).unwrap_err(),
            FileOpError::UnknownUser { .. }
        ));
    }
}
