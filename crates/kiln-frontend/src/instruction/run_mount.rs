//! `RUN --mount=...`: the five mount types and their keys, as BuildKit's `runmount.go`.
//!
//! A spec is parsed twice: once when the instruction is parsed (no expander: values holding
//! variables are checked later, only `from=$X` is refused at once), and again at dispatch
//! with the stage's variables.

use crate::error::ErrorKind;
use crate::flags::suggest_as_buildkit;
use crate::instruction::run::parse_go_bool;

/// A mount type.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MountType {
    /// A directory or file from the context, a stage or an image (the default).
    #[default]
    Bind,
    /// A persistent cache directory.
    Cache,
    /// An empty in-memory filesystem.
    Tmpfs,
    /// A secret file.
    Secret,
    /// An SSH agent socket.
    Ssh,
}

impl MountType {
    /// The name as written in the spec.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Bind => "bind",
            Self::Cache => "cache",
            Self::Tmpfs => "tmpfs",
            Self::Secret => "secret",
            Self::Ssh => "ssh",
        }
    }
}

/// Cache mount sharing mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sharing {
    /// Several builds use the cache at once (the default).
    Shared,
    /// Each concurrent writer gets its own copy.
    Private,
    /// Writers wait for each other.
    Locked,
}

/// One parsed `--mount`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Mount {
    /// The type.
    pub typ: MountType,
    /// `from=`: a stage, an image, or the context when empty.
    pub from: Option<String>,
    /// `source=` / `src=`: a path in `from`, or a secret/ssh id source.
    pub source: Option<String>,
    /// `target=` / `dst=` / `destination=`.
    pub target: Option<String>,
    /// Read-only (defaults: bind, secret and ssh read-only; cache and tmpfs writable).
    pub read_only: bool,
    /// `id=`.
    pub id: Option<String>,
    /// `sharing=` (cache only).
    pub sharing: Option<Sharing>,
    /// `required` (secret and ssh only).
    pub required: bool,
    /// `size=` in bytes (tmpfs only).
    pub size: Option<u64>,
    /// `mode=` (octal), for cache, secret and ssh.
    pub mode: Option<u32>,
    /// `uid=`.
    pub uid: Option<u32>,
    /// `gid=`.
    pub gid: Option<u32>,
    /// `env=` (secret only): expose the secret as this environment variable.
    pub env: Option<String>,
}

const ALL_KEYS: [&str; 19] = [
    "type",
    "from",
    "source",
    "target",
    "readonly",
    "id",
    "sharing",
    "required",
    "size",
    "mode",
    "uid",
    "gid",
    "src",
    "dst",
    "destination",
    "ro",
    "rw",
    "readwrite",
    "env",
];

/// Expands one mount field value with the stage's variables.
pub type Expander<'a> = &'a dyn Fn(&str) -> Result<String, ErrorKind>;

/// Parse one `--mount` value. With no `expand`, values are taken as written.
pub fn parse_mount(spec: &str, expand: Option<Expander<'_>>) -> Result<Mount, ErrorKind> {
    let fields = split_csv(spec)?;
    // `type=$VAR` is only known once the stage's variables expand it (as BuildKit expands
    // every field but `from`): before that, only `from` matters (the stage graph), and the
    // type-dependent checks wait for the expanded parse.
    let type_later = expand.is_none()
        && fields.iter().any(|f| {
            f.split_once('=')
                .is_some_and(|(k, v)| k.eq_ignore_ascii_case("type") && v.contains('$'))
        });
    if type_later {
        let mut m = Mount::default();
        for (key, value) in fields.iter().filter_map(|f| f.split_once('=')) {
            if key.eq_ignore_ascii_case("from") {
                if value.contains('$') {
                    return Err(ErrorKind::MountFromExpansion("from".into()));
                }
                m.from = Some(value.to_owned());
            }
        }
        return Ok(m);
    }
    let mut m = Mount::default();
    let mut ro_auto = true;
    for field in &fields {
        let Some((key, value)) = field
            .split_once('=')
            .map(|(k, v)| (k.to_ascii_lowercase(), v.to_owned()))
        else {
            {
                let key = field.to_ascii_lowercase();
                match key.as_str() {
                    "readonly" | "ro" => {
                        m.read_only = true;
                        ro_auto = false;
                    }
                    "readwrite" | "rw" => {
                        m.read_only = false;
                        ro_auto = false;
                    }
                    "required" if matches!(m.typ, MountType::Secret | MountType::Ssh) => {
                        m.required = true;
                    }
                    "required" => {
                        return Err(ErrorKind::MountKeyForType {
                            key,
                            typ: m.typ.as_str().into(),
                        });
                    }
                    _ => return Err(ErrorKind::MountField(field.clone())),
                }
                continue;
            }
        };
        if key == "from" && expand.is_none() && value.contains('$') {
            return Err(ErrorKind::MountFromExpansion(key));
        }
        let value = match expand {
            Some(f) if key != "from" => f(&value)?,
            _ => value,
        };
        let bad = |key: &str, value: &str| ErrorKind::MountValue {
            key: key.into(),
            value: value.into(),
        };
        match key.as_str() {
            "type" => {
                m.typ = match value.to_ascii_lowercase().as_str() {
                    "bind" => MountType::Bind,
                    "cache" => MountType::Cache,
                    "tmpfs" => MountType::Tmpfs,
                    "secret" => MountType::Secret,
                    "ssh" => MountType::Ssh,
                    _ => {
                        return Err(ErrorKind::MountType {
                            suggestion: suggest_as_buildkit(
                                &value,
                                &["bind", "cache", "tmpfs", "secret", "ssh"],
                            ),
                            typ: value,
                        });
                    }
                };
            }
            "from" => m.from = Some(value),
            "source" | "src" => m.source = Some(value),
            "target" | "dst" | "destination" => m.target = Some(value),
            "readonly" | "ro" => {
                m.read_only = parse_go_bool(&value).ok_or_else(|| bad(&key, &value))?;
                ro_auto = false;
            }
            "readwrite" | "rw" => {
                m.read_only = !parse_go_bool(&value).ok_or_else(|| bad(&key, &value))?;
                ro_auto = false;
            }
            "required" => {
                if !matches!(m.typ, MountType::Secret | MountType::Ssh) {
                    return Err(ErrorKind::MountKeyForType {
                        key,
                        typ: m.typ.as_str().into(),
                    });
                }
                m.required = parse_go_bool(&value).ok_or_else(|| bad(&key, &value))?;
            }
            "size" => {
                if m.typ != MountType::Tmpfs {
                    return Err(ErrorKind::MountKeyForType {
                        key,
                        typ: m.typ.as_str().into(),
                    });
                }
                m.size = Some(ram_in_bytes(&value).ok_or_else(|| bad(&key, &value))?);
            }
            "id" => m.id = Some(value),
            "sharing" => {
                m.sharing = Some(match value.to_ascii_lowercase().as_str() {
                    "shared" => Sharing::Shared,
                    "private" => Sharing::Private,
                    "locked" => Sharing::Locked,
                    _ => return Err(ErrorKind::MountSharing(value)),
                });
            }
            "mode" => {
                m.mode =
                    Some(
                        u32::from_str_radix(&value, 8).map_err(|_| ErrorKind::MountNumber {
                            key: "mode",
                            value: value.clone(),
                        })?,
                    );
            }
            "uid" | "gid" => {
                let k = if key == "uid" { "uid" } else { "gid" };
                let n = value.parse::<u32>().map_err(|_| ErrorKind::MountNumber {
                    key: k,
                    value: value.clone(),
                })?;
                if k == "uid" {
                    m.uid = Some(n);
                } else {
                    m.gid = Some(n);
                }
            }
            "env" => m.env = Some(value),
            _ => {
                return Err(ErrorKind::MountUnknownKey {
                    suggestion: suggest_as_buildkit(&key, &ALL_KEYS),
                    key,
                    field: field.clone(),
                });
            }
        }
    }
    validate(&mut m, ro_auto)?;
    Ok(m)
}

fn validate(m: &mut Mount, ro_auto: bool) -> Result<(), ErrorKind> {
    let typ = m.typ.as_str().to_owned();
    if !matches!(m.typ, MountType::Secret | MountType::Ssh | MountType::Cache) {
        for (key, set) in [
            ("mode", m.mode.is_some()),
            ("uid", m.uid.is_some()),
            ("gid", m.gid.is_some()),
        ] {
            if set {
                return Err(ErrorKind::MountFileInfo { key, typ });
            }
        }
    }
    if ro_auto {
        m.read_only = !matches!(m.typ, MountType::Cache | MountType::Tmpfs);
    }
    if m.sharing.is_some() && m.typ != MountType::Cache {
        if m.typ == MountType::Secret {
            return Err(ErrorKind::SecretSharing);
        }
        return Err(ErrorKind::MountSharingType(typ));
    }
    if m.typ == MountType::Secret {
        if m.from.is_some() {
            return Err(ErrorKind::SecretFrom);
        }
        if m.source.is_none() && m.target.is_none() && m.id.is_none() && m.env.is_none() {
            return Err(ErrorKind::SecretNoTarget);
        }
        if m.source.is_some() && m.id.is_some() {
            return Err(ErrorKind::SecretSourceAndId);
        }
    }
    Ok(())
}

/// Split one CSV record as Go's `encoding/csv` does: commas separate fields, a field that
/// starts with `"` is quoted and `""` inside it is a quote.
fn split_csv(s: &str) -> Result<Vec<String>, ErrorKind> {
    let mut fields = Vec::new();
    let mut rest = s;
    loop {
        if let Some(q) = rest.strip_prefix('"') {
            let mut field = String::new();
            let mut chars = q.char_indices();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                if c == '"' {
                    if q[i + 1..].starts_with('"') {
                        field.push('"');
                        chars.next();
                    } else {
                        end = Some(i + 1);
                        break;
                    }
                } else {
                    field.push(c);
                }
            }
            let Some(end) = end else {
                return Err(ErrorKind::MountCsv(
                    "extraneous or missing \" in quoted-field".into(),
                ));
            };
            fields.push(field);
            rest = &q[end..];
            match rest.strip_prefix(',') {
                Some(r) => rest = r,
                None if rest.is_empty() => break,
                None => {
                    return Err(ErrorKind::MountCsv(
                        "extraneous or missing \" in quoted-field".into(),
                    ));
                }
            }
        } else {
            let (field, next) = rest
                .split_once(',')
                .map_or((rest, None), |(f, n)| (f, Some(n)));
            if field.contains('"') {
                return Err(ErrorKind::MountCsv("bare \" in non-quoted-field".into()));
            }
            fields.push(field.to_owned());
            match next {
                Some(n) => rest = n,
                None => break,
            }
        }
    }
    Ok(fields)
}

/// docker/go-units `RAMInBytes`: `64m`, `1g`, `512k`, `100` (binary multiples).
fn ram_in_bytes(s: &str) -> Option<u64> {
    let s = s.trim();
    let num_end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(num_end);
    let n: f64 = num.parse().ok()?;
    let unit = unit.trim().to_ascii_lowercase();
    let unit = unit
        .strip_suffix("ib")
        .or_else(|| unit.strip_suffix('b'))
        .unwrap_or(&unit);
    let mult: u64 = match unit {
        "" => 1,
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        "t" => 1 << 40,
        "p" => 1 << 50,
        _ => return None,
    };
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    Some((n * mult as f64) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(spec: &str) -> String {
        parse_mount(spec, None).unwrap_err().to_string()
    }

    #[test]
    fn defaults_per_type() {
        let m = parse_mount("target=/x", None).unwrap();
        assert_eq!((m.typ, m.read_only), (MountType::Bind, true));
        let m = parse_mount("type=cache,target=/c,sharing=locked,mode=0700,uid=1", None).unwrap();
        assert_eq!(
            (m.typ, m.read_only, m.sharing, m.mode, m.uid),
            (
                MountType::Cache,
                false,
                Some(Sharing::Locked),
                Some(0o700),
                Some(1)
            )
        );
        let m = parse_mount("type=tmpfs,target=/t,size=64m", None).unwrap();
        assert_eq!(m.size, Some(64 << 20));
        let m = parse_mount("type=secret,id=tok,required", None).unwrap();
        assert!(m.required && m.read_only);
        let m = parse_mount("type=bind,from=build,source=/out,target=/in,rw", None).unwrap();
        assert!(!m.read_only);
        let m = parse_mount("\"type=bind\",\"target=/a,b\"", None).unwrap();
        assert_eq!(m.target.as_deref(), Some("/a,b"));
    }

    #[test]
    fn errors_match_buildkit() {
        assert_eq!(
            err("type=bind,required"),
            "unexpected key 'required' for mount type 'bind'"
        );
        assert_eq!(
            err("type=bind,foo"),
            "invalid field 'foo' must be a key=value pair"
        );
        assert_eq!(
            err("from=$X"),
            "'from' doesn't support variable expansion, define alias stage instead"
        );
        assert_eq!(
            err("type=cahce"),
            "unsupported mount type \"cahce\" (did you mean cache?)"
        );
        assert_eq!(err("type=bind,ro=maybe"), "invalid value for ro: maybe");
        assert_eq!(
            err("type=cache,sharing=all"),
            "unsupported sharing value \"all\""
        );
        assert_eq!(err("type=cache,mode=9"), "invalid value 9 for mode");
        assert_eq!(err("type=cache,uid=x"), "invalid value x for uid");
        assert_eq!(
            err("type=bind,target=/x,targte=/y"),
            "unexpected key 'targte' in 'targte=/y' (did you mean target?)"
        );
        assert_eq!(
            err("type=bind,mode=0700"),
            "mode not allowed for \"bind\" type mounts"
        );
        assert_eq!(
            err("type=tmpfs,sharing=shared"),
            "invalid cache sharing set for tmpfs mount"
        );
        assert_eq!(
            err("type=secret,id=a,from=x"),
            "secret mount should not have a from"
        );
        assert_eq!(
            err("type=secret,id=a,sharing=shared"),
            "secret mount should not define sharing"
        );
        assert_eq!(
            err("type=secret"),
            "invalid secret mount. one of source, target required"
        );
        assert_eq!(
            err("type=secret,source=a,id=b"),
            "both source and id can't be set"
        );
        assert_eq!(
            err("type=bind,size=1"),
            "unexpected key 'size' for mount type 'bind'"
        );
    }

    #[test]
    fn expansion_applies_to_values_but_not_from() {
        let f = |s: &str| Ok(s.replace("$T", "/cache"));
        let m = parse_mount("type=cache,target=$T,from=a", Some(&f)).unwrap();
        assert_eq!(m.target.as_deref(), Some("/cache"));
    }
}
