//! STOPSIGNAL values, as moby's `signal.ParseSignal`: a number, or a name with or without
//! `SIG` (case-insensitive), including `RTMIN+n` / `RTMAX-n`.

const SIGNALS: [(&str, u32); 31] = [
    ("ABRT", 6),
    ("ALRM", 14),
    ("BUS", 7),
    ("CHLD", 17),
    ("CLD", 17),
    ("CONT", 18),
    ("FPE", 8),
    ("HUP", 1),
    ("ILL", 4),
    ("INT", 2),
    ("IO", 29),
    ("IOT", 6),
    ("KILL", 9),
    ("PIPE", 13),
    ("POLL", 29),
    ("PROF", 27),
    ("PWR", 30),
    ("QUIT", 3),
    ("SEGV", 11),
    ("STKFLT", 16),
    ("STOP", 19),
    ("SYS", 31),
    ("TERM", 15),
    ("TRAP", 5),
    ("TSTP", 20),
    ("TTIN", 21),
    ("TTOU", 22),
    ("URG", 23),
    ("USR1", 10),
    ("USR2", 12),
    ("VTALRM", 26),
];

/// A STOPSIGNAL that names no signal (moby's message).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid signal: {0}")]
pub struct SignalError(pub String);

/// Parse a signal; the error is moby's message.
pub(crate) fn parse_signal(s: &str) -> Result<u32, SignalError> {
    if let Ok(n) = s.parse::<u32>() {
        if n == 0 {
            return Err(SignalError(s.to_owned()));
        }
        return Ok(n);
    }
    let upper = s.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    if let Some((_, n)) = SIGNALS.iter().find(|(k, _)| *k == name) {
        return Ok(*n);
    }
    let rt = |base: u32, rest: &str, plus: bool| -> Option<u32> {
        if rest.is_empty() {
            return Some(base);
        }
        let n: u32 = rest.get(1..)?.parse().ok()?;
        let v = if plus {
            base.checked_add(n)?
        } else {
            base.checked_sub(n)?
        };
        (34..=64).contains(&v).then_some(v)
    };
    let parsed = if let Some(rest) = name.strip_prefix("RTMIN") {
        rest.strip_prefix('+').map_or_else(
            || if rest.is_empty() { Some(34) } else { None },
            |_| rt(34, rest, true),
        )
    } else if let Some(rest) = name.strip_prefix("RTMAX") {
        rest.strip_prefix('-').map_or_else(
            || if rest.is_empty() { Some(64) } else { None },
            |_| rt(64, rest, false),
        )
    } else {
        None
    };
    parsed.ok_or_else(|| SignalError(s.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::parse_signal;

    #[test]
    fn signals() {
        assert_eq!(parse_signal("SIGTERM"), Ok(15));
        assert_eq!(parse_signal("quit"), Ok(3));
        assert_eq!(parse_signal("9"), Ok(9));
        assert_eq!(parse_signal("SIGRTMIN+3"), Ok(37));
        assert_eq!(parse_signal("RTMAX-1"), Ok(63));
        assert_eq!(
            parse_signal("SIGFOO").unwrap_err().to_string(),
            "invalid signal: SIGFOO"
        );
        assert!(parse_signal("0").is_err());
        assert!(parse_signal("SIGRTMIN+4294967295").is_err());
    }
}
