//! HEALTHCHECK: `NONE`, or `CMD` with interval, timeout, start period, start interval and
//! retries.

use std::time::Duration;

use super::{CommandLine, Request};
use crate::error::{ErrorKind, InstructionError};
use crate::flags::FlagKind;

/// A HEALTHCHECK instruction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Healthcheck {
    /// `HEALTHCHECK NONE`: disable any check inherited from the base image.
    None,
    /// `HEALTHCHECK [options] CMD ...`.
    Cmd {
        /// The test: exec form words, or one shell string (`CMD-SHELL`).
        command: CommandLine,
        /// `--interval` (zero: the default).
        interval: Duration,
        /// `--timeout`.
        timeout: Duration,
        /// `--start-period`.
        start_period: Duration,
        /// `--start-interval`.
        start_interval: Duration,
        /// `--retries` (zero: the default).
        retries: u32,
    },
}

impl Healthcheck {
    /// The `Test` array as Docker stores it: `["NONE"]`, `["CMD", ...]` or
    /// `["CMD-SHELL", "..."]`.
    pub fn test(&self) -> Vec<String> {
        match self {
            Self::None => vec!["NONE".into()],
            Self::Cmd { command, .. } => {
                let kind = if command.prepend_shell {
                    "CMD-SHELL"
                } else {
                    "CMD"
                };
                std::iter::once(kind.to_owned())
                    .chain(command.args.iter().cloned())
                    .collect()
            }
        }
    }
}

pub(crate) fn parse(
    req: &Request<'_>,
) -> Result<(Healthcheck, Vec<&'static str>), InstructionError> {
    req.at_least_one("HEALTHCHECK")?;
    let typ = req.args[0].text.to_ascii_uppercase();
    let rest = &req.args[1..];
    if typ == "NONE" {
        if !rest.is_empty() {
            return Err(req.err(ErrorKind::HealthcheckNoneArgs));
        }
        let used = req.flags(&[])?.used();
        return Ok((Healthcheck::None, used));
    }
    let flags = req.flags(&[
        ("interval", FlagKind::String),
        ("timeout", FlagKind::String),
        ("start-period", FlagKind::String),
        ("start-interval", FlagKind::String),
        ("retries", FlagKind::String),
    ])?;
    if typ != "CMD" {
        return Err(InstructionError::new(
            ErrorKind::HealthcheckType(req.args[0].text.clone()),
            req.args[0].span,
        ));
    }
    let sub = Request {
        inst: req.inst,
        args: rest,
    };
    let mut command = sub.command_line();
    command.files.clear();
    if command.args.is_empty() {
        return Err(req.err(ErrorKind::HealthcheckMissingCommand));
    }
    let interval = |name: &'static str| -> Result<Duration, InstructionError> {
        let Some((v, span)) = flags.string(name) else {
            return Ok(Duration::ZERO);
        };
        opt_interval(name, &v).map_err(|k| InstructionError::new(k, span))
    };
    let retries = match flags.string("retries") {
        None => 0,
        Some((v, span)) if v.is_empty() => {
            let _ = span;
            0
        }
        Some((v, span)) => {
            let n: i64 = v
                .parse()
                .ok()
                .filter(|n| i32::try_from(*n).is_ok())
                .ok_or_else(|| InstructionError::new(ErrorKind::InvalidRetries(v.clone()), span))?;
            if n < 0 {
                return Err(InstructionError::new(ErrorKind::NegativeRetries(n), span));
            }
            u32::try_from(n).unwrap_or(0)
        }
    };
    Ok((
        Healthcheck::Cmd {
            command,
            interval: interval("interval")?,
            timeout: interval("timeout")?,
            start_period: interval("start-period")?,
            start_interval: interval("start-interval")?,
            retries,
        },
        flags.used(),
    ))
}

/// BuildKit's `parseOptInterval`: empty or zero means the default; otherwise at least 1ms.
fn opt_interval(name: &str, value: &str) -> Result<Duration, ErrorKind> {
    if value.is_empty() {
        return Ok(Duration::ZERO);
    }
    let (negative, d) =
        parse_go_duration(value).ok_or_else(|| ErrorKind::InvalidDuration(value.into()))?;
    if negative && !d.is_zero() {
        return Err(ErrorKind::IntervalNegative(name.into()));
    }
    if d.is_zero() {
        return Ok(d);
    }
    if d < Duration::from_millis(1) {
        return Err(ErrorKind::IntervalTooShort(name.into()));
    }
    Ok(d)
}

/// Go's `time.ParseDuration`: `[-+]` then one or more `<decimal><unit>` with units ns, us,
/// µs, ms, s, m, h; `0` alone is allowed. Returns (negative, magnitude).
pub fn parse_go_duration(s: &str) -> Option<(bool, Duration)> {
    let (negative, mut rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Some((negative, Duration::ZERO));
    }
    if rest.is_empty() {
        return None;
    }
    let mut total_ns: f64 = 0.0;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 || rest[..num_len] == *"." {
            return None;
        }
        let n: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let mult = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total_ns += n * mult;
    }
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    Some((negative, Duration::from_nanos(total_ns as u64)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(
            parse_go_duration("5s"),
            Some((false, Duration::from_secs(5)))
        );
        assert_eq!(
            parse_go_duration("1h2m3.5s"),
            Some((false, Duration::from_millis(3_723_500)))
        );
        assert_eq!(parse_go_duration("0"), Some((false, Duration::ZERO)));
        assert_eq!(parse_go_duration("10"), None);
        assert_eq!(
            parse_go_duration("-1ms"),
            Some((true, Duration::from_millis(1)))
        );
    }

    #[test]
    fn intervals() {
        assert_eq!(opt_interval("interval", "0ms").unwrap(), Duration::ZERO);
        assert_eq!(
            opt_interval("interval", "1ms").unwrap(),
            Duration::from_millis(1)
        );
        assert_eq!(
            opt_interval("interval", "50ns").unwrap_err().to_string(),
            "Interval \"interval\" cannot be less than 1ms"
        );
    }
}
