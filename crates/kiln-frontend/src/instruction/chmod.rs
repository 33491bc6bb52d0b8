//! `COPY/ADD --chmod`: an octal mode (`0755`) or, since Dockerfile 1.14, a symbolic one as
//! chmod(1) writes it (`u+x`, `go=rx`, `a-w,u+s`), applied to each copied file's own mode.

/// A parsed `--chmod` value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Chmod {
    /// An absolute mode up to `0o7777`.
    Octal(u32),
    /// Symbolic clauses, applied in order to the file's mode.
    Symbolic(Vec<Clause>),
}

/// One `who op perms` clause of a symbolic mode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Clause {
    /// Mask of the permission classes affected (user, group, other bits); `a` or none
    /// selects all three.
    who: u32,
    /// The operations, in order.
    ops: Vec<(char, Perms)>,
}

/// What an operation sets.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Perms {
    /// Letters among `rwxXst`.
    Letters(String),
    /// Copy another class's bits (`g=u`).
    Copy(char),
}

impl Chmod {
    /// Parse an octal or symbolic mode; `None` when it is neither.
    pub fn parse(s: &str) -> Option<Self> {
        if !s.is_empty() && s.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
            return u32::from_str_radix(s, 8)
                .ok()
                .filter(|m| *m <= 0o7777)
                .map(Self::Octal);
        }
        s.split(',')
            .map(parse_clause)
            .collect::<Option<Vec<_>>>()
            .map(Self::Symbolic)
    }

    /// The mode a file of mode `mode` (permission bits) gets; `is_dir` matters for `X`.
    pub fn apply(&self, mode: u32, is_dir: bool) -> u32 {
        let clauses = match self {
            Self::Octal(m) => return *m,
            Self::Symbolic(c) => c,
        };
        let mut mode = mode & 0o7777;
        for clause in clauses {
            for (op, perms) in &clause.ops {
                let bits = match perms {
                    Perms::Letters(l) => letters(l, clause.who, mode, is_dir),
                    Perms::Copy(from) => {
                        let shift = match from {
                            'u' => 6,
                            'g' => 3,
                            _ => 0,
                        };
                        let rwx = (mode >> shift) & 0o7;
                        (rwx << 6 | rwx << 3 | rwx) & clause.who
                    }
                };
                mode = match op {
                    '+' => mode | bits,
                    '-' => mode & !bits,
                    _ => {
                        let clear = clause.who | special_mask(clause.who);
                        (mode & !clear) | bits
                    }
                };
            }
        }
        mode
    }
}

fn parse_clause(s: &str) -> Option<Clause> {
    let who_len = s.find(['+', '-', '=']).unwrap_or(s.len());
    let (who_s, mut rest) = s.split_at(who_len);
    let mut who = 0;
    for c in who_s.chars() {
        who |= match c {
            'u' => 0o700,
            'g' => 0o070,
            'o' => 0o007,
            'a' => 0o777,
            _ => return None,
        };
    }
    if who == 0 {
        who = 0o777;
    }
    let mut ops = Vec::new();
    while let Some(op) = rest.chars().next() {
        if !matches!(op, '+' | '-' | '=') {
            return None;
        }
        rest = &rest[1..];
        let end = rest.find(['+', '-', '=']).unwrap_or(rest.len());
        let (perms, tail) = rest.split_at(end);
        rest = tail;
        let perms = match perms {
            "u" | "g" | "o" => Perms::Copy(perms.chars().next()?),
            p if p.chars().all(|c| "rwxXst".contains(c)) => Perms::Letters(p.to_owned()),
            _ => return None,
        };
        ops.push((op, perms));
    }
    if ops.is_empty() {
        return None;
    }
    Some(Clause { who, ops })
}

/// The bits `letters` stand for within the classes `who`.
fn letters(l: &str, who: u32, mode: u32, is_dir: bool) -> u32 {
    let mut bits = 0;
    for c in l.chars() {
        bits |= match c {
            'r' => 0o444 & who,
            'w' => 0o222 & who,
            'x' => 0o111 & who,
            'X' if is_dir || mode & 0o111 != 0 => 0o111 & who,
            's' => special_mask(who) & 0o6000,
            't' => 0o1000,
            _ => 0,
        };
    }
    bits
}

/// setuid for `u`, setgid for `g`.
fn special_mask(who: u32) -> u32 {
    let mut m = 0;
    if who & 0o700 != 0 {
        m |= 0o4000;
    }
    if who & 0o070 != 0 {
        m |= 0o2000;
    }
    m
}

#[cfg(test)]
mod tests {
    use super::Chmod;

    fn sym(s: &str, mode: u32, dir: bool) -> u32 {
        Chmod::parse(s).unwrap().apply(mode, dir)
    }

    #[test]
    fn octal() {
        assert_eq!(Chmod::parse("0755"), Some(Chmod::Octal(0o755)));
        assert_eq!(Chmod::parse("7777"), Some(Chmod::Octal(0o7777)));
        assert_eq!(Chmod::parse("17777"), None);
        assert_eq!(Chmod::parse("0999"), None);
    }

    #[test]
    fn symbolic() {
        assert_eq!(sym("u+x", 0o644, false), 0o744);
        assert_eq!(sym("+x", 0o644, false), 0o755);
        assert_eq!(sym("go-w", 0o666, false), 0o644);
        assert_eq!(sym("u=rwx,go=rx", 0o600, false), 0o755);
        assert_eq!(sym("a=r", 0o777, false), 0o444);
        assert_eq!(sym("a+X", 0o644, false), 0o644);
        assert_eq!(sym("a+X", 0o644, true), 0o755);
        assert_eq!(sym("a+X", 0o744, false), 0o755);
        assert_eq!(sym("g=u", 0o750, false), 0o770);
        assert_eq!(sym("u+s,+t", 0o755, false), 0o5755);
        assert_eq!(sym("u=rw", 0o4755, false), 0o655);
        for bad in ["", "z+x", "u", "u+q", "u+x,", "u+x y", "rwx"] {
            assert_eq!(Chmod::parse(bad), None, "{bad}");
        }
    }
}
