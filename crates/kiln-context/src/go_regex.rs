//! Translation of the Go regular expressions patternmatcher builds into `regex` crate syntax.
//!
//! patternmatcher turns a glob into a Go (RE2, Perl flags) regular expression and hands it to
//! `regexp.Compile`. The pieces it emits (`[^/]*`, `(.*/)?`, escaped metacharacters) mean the
//! same in both dialects, but user text passes through unchanged in two places where the
//! dialects differ: inside `[...]` (Go reads `[` and `&&` literally, Rust nests classes and
//! has set operators) and after `\` (Go's `\d`, `\s`, `\w`, `\b` are ASCII, Rust's are
//! Unicode; Go has `\Q...\E` and octal escapes). So rather than trusting the text to mean the
//! same thing, this module parses it the way Go's `regexp/syntax` does and re-emits every
//! literal in an unambiguous form (`\x{..}`).
//!
//! Only the constructs patternmatcher can emit are handled; anything else is reported as
//! invalid, as Go would for the same text. Known gaps (documented, not expected in practice):
//! Unicode class names are checked by the `regex` crate's tables, not Go's.

use std::fmt::Write as _;

/// Go's POSIX class names (`[[:alpha:]]`), the same set the `regex` crate accepts.
const POSIX_CLASSES: [&str; 14] = [
    "alnum", "alpha", "ascii", "blank", "cntrl", "digit", "graph", "lower", "print", "punct",
    "space", "upper", "word", "xdigit",
];

/// Translates `go`, a regular expression in Go syntax, into an equivalent one for the `regex`
/// crate. `None` when Go's `regexp.Compile` would reject it.
pub(crate) fn translate(go: &str) -> Option<String> {
    let chars: Vec<char> = go.chars().collect();
    let mut p = Parser {
        chars: &chars,
        i: 0,
        out: String::with_capacity(go.len() * 2),
    };
    while let Some(c) = p.bump() {
        match c {
            '\\' => p.escape_outside_class()?,
            '[' => p.class()?,
            '(' | ')' | '|' | '*' | '+' | '?' | '.' | '^' | '$' => p.out.push(c),
            _ => p.literal(c),
        }
    }
    Some(p.out)
}

struct Parser<'a> {
    chars: &'a [char],
    i: usize,
    out: String,
}

impl Parser<'_> {
    fn bump(&mut self) -> Option<char> {
        let c = self.chars.get(self.i).copied()?;
        self.i += 1;
        Some(c)
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.i).copied()
    }

    fn literal(&mut self, c: char) {
        write!(self.out, "\\x{{{:x}}}", u32::from(c)).expect("writing to a String cannot fail");
    }

    /// After a `\` outside a class: Go's `\A \z \b \B \Q \p \P`, Perl classes, then
    /// `parseEscape`.
    fn escape_outside_class(&mut self) -> Option<()> {
        match self.peek()? {
            'A' => self.simple(r"\A"),
            'z' => self.simple(r"\z"),
            'b' => self.simple(r"(?-u:\b)"),
            'B' => self.simple(r"(?-u:\B)"),
            'Q' => {
                self.i += 1;
                // Everything up to `\E` (or the end) is literal text.
                while let Some(c) = self.bump() {
                    if c == '\\' && self.peek() == Some('E') {
                        self.i += 1;
                        break;
                    }
                    self.literal(c);
                }
            }
            'p' | 'P' => {
                let class = self.unicode_class()?;
                self.out.push_str(&class);
            }
            'd' | 'D' | 's' | 'S' | 'w' | 'W' => {
                let c = self.bump()?;
                self.out.push('[');
                self.out.push_str(&perl_class(c));
                self.out.push(']');
            }
            _ => {
                let c = self.escaped_char()?;
                self.literal(c);
            }
        }
        Some(())
    }

    fn simple(&mut self, rust: &str) {
        self.i += 1;
        self.out.push_str(rust);
    }

    /// Go's `parseEscape`, positioned after the `\`: octal, hex, control and punctuation
    /// escapes. Returns the character they stand for.
    fn escaped_char(&mut self) -> Option<char> {
        let c = self.bump()?;
        match c {
            '1'..='7' | '0' => {
                // A single non-zero digit would be a backreference, which RE2 lacks.
                if c != '0' && !self.peek().is_some_and(|d| ('0'..='7').contains(&d)) {
                    return None;
                }
                let mut value = c.to_digit(8)?;
                for _ in 1..3 {
                    match self.peek().and_then(|d| d.to_digit(8)) {
                        Some(d) => {
                            value = value * 8 + d;
                            self.i += 1;
                        }
                        None => break,
                    }
                }
                char::from_u32(value)
            }
            'x' => {
                let first = self.bump()?;
                if first == '{' {
                    let mut value: u32 = 0;
                    let mut digits = 0;
                    loop {
                        let d = self.bump()?;
                        if d == '}' {
                            break;
                        }
                        value = value.checked_mul(16)?.checked_add(d.to_digit(16)?)?;
                        if value > 0x10_FFFF {
                            return None;
                        }
                        digits += 1;
                    }
                    if digits == 0 {
                        return None;
                    }
                    char::from_u32(value)
                } else {
                    let hi = first.to_digit(16)?;
                    let lo = self.bump()?.to_digit(16)?;
                    char::from_u32(hi * 16 + lo)
                }
            }
            'a' => Some('\x07'),
            'f' => Some('\x0c'),
            'n' => Some('\n'),
            'r' => Some('\r'),
            't' => Some('\t'),
            'v' => Some('\x0b'),
            c if c.is_ascii() && !c.is_ascii_alphanumeric() => Some(c),
            _ => None,
        }
    }

    /// Go's `parseUnicodeClass`, positioned at `p` or `P`: `\pL` or `\p{Name}`.
    fn unicode_class(&mut self) -> Option<String> {
        let sign = self.bump()?;
        let name = match self.bump()? {
            '{' => {
                let mut name = String::new();
                loop {
                    match self.bump()? {
                        '}' => break,
                        c => name.push(c),
                    }
                }
                name
            }
            c if "CLMNPSZ".contains(c) => c.to_string(),
            _ => return None,
        };
        let (negated, bare) = match name.strip_prefix('^') {
            Some(rest) => (sign == 'p', rest),
            None => (sign == 'P', name.as_str()),
        };
        if bare.is_empty() || !bare.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return None;
        }
        Some(format!("\\{}{{{bare}}}", if negated { 'P' } else { 'p' }))
    }

    /// Go's `parseClass`, positioned after `[`. Emits a Rust class in which every member is
    /// spelled out, so no character can take on a Rust-only meaning.
    fn class(&mut self) -> Option<()> {
        self.out.push('[');
        if self.peek() == Some('^') {
            self.i += 1;
            self.out.push('^');
        }
        let mut first = true;
        loop {
            let c = self.peek()?;
            if c == ']' && !first {
                self.i += 1;
                break;
            }
            first = false;
            if c == '['
                && self.chars.get(self.i + 1) == Some(&':')
                && let Some(end) = self.find_posix_end()
            {
                let name: String = self.chars[self.i + 2..end].iter().collect();
                let bare = name.strip_prefix('^').unwrap_or(&name);
                if !POSIX_CLASSES.contains(&bare) {
                    return None;
                }
                write!(self.out, "[:{name}:]").expect("writing to a String cannot fail");
                self.i = end + 2;
                continue;
            }
            if c == '\\' {
                match self.chars.get(self.i + 1) {
                    Some('p' | 'P') => {
                        self.i += 1;
                        let class = self.unicode_class()?;
                        self.out.push_str(&class);
                        continue;
                    }
                    Some(&k @ ('d' | 'D' | 's' | 'S' | 'w' | 'W')) => {
                        self.i += 2;
                        let class = perl_class(k);
                        if k.is_ascii_uppercase() {
                            write!(self.out, "[{class}]").expect("writing to a String cannot fail");
                        } else {
                            self.out.push_str(&class);
                        }
                        continue;
                    }
                    _ => {}
                }
            }
            let lo = self.class_char()?;
            let mut hi = lo;
            if self.peek() == Some('-') && self.chars.get(self.i + 1).is_some_and(|&n| n != ']') {
                self.i += 1;
                hi = self.class_char()?;
                if hi < lo {
                    return None;
                }
            }
            self.literal(lo);
            if hi != lo {
                self.out.push('-');
                self.literal(hi);
            }
        }
        self.out.push(']');
        Some(())
    }

    /// Where `:]` closes a `[:name:]` starting at the current index, searched like Go does
    /// (anywhere later in the expression).
    fn find_posix_end(&self) -> Option<usize> {
        (self.i + 2..self.chars.len().saturating_sub(1))
            .find(|&j| self.chars[j] == ':' && self.chars[j + 1] == ']')
    }

    /// Go's `parseClassChar`: one character or escape inside a class.
    fn class_char(&mut self) -> Option<char> {
        match self.bump()? {
            '\\' => self.escaped_char(),
            c => Some(c),
        }
    }
}

/// The ASCII-only meaning Go gives a Perl class escape, as the body of a Rust class. Upper-case
/// letters are negations.
fn perl_class(c: char) -> String {
    let body = match c.to_ascii_lowercase() {
        'd' => "0-9",
        's' => r"\t\n\x0C\r ",
        _ => "0-9A-Za-z_",
    };
    if c.is_ascii_uppercase() {
        format!("^{body}")
    } else {
        body.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::translate;

    fn is_match(go: &str, text: &str) -> bool {
        let rust = translate(go).unwrap_or_else(|| panic!("{go:?} must translate"));
        regex::Regex::new(&rust)
            .unwrap_or_else(|e| panic!("{rust:?} must compile: {e}"))
            .is_match(text)
    }

    #[test]
    fn class_brackets_are_literal_as_in_go() {
        // Go reads `[` inside a class literally; Rust would nest a class.
        assert!(is_match("^[[]$", "["));
        assert!(is_match("^[[^/]*]$", "^]"));
        assert!(!is_match("^[[^/]*]$", "x]"));
        assert!(is_match("^[a&&b]$", "&"));
    }

    #[test]
    fn perl_escapes_are_ascii() {
        assert!(is_match(r"^a\d$", "a1"));
        assert!(!is_match(r"^a\d$", "a٣"));
        assert!(is_match(r"^\w+$", "a_1"));
        assert!(!is_match(r"^\w$", "é"));
    }

    #[test]
    fn go_only_escapes() {
        assert!(is_match(r"^a\Qb.c$", "ab.c$"));
        assert!(is_match(r"^\101$", "A"));
        assert!(is_match(r"^\x41$", "A"));
        assert!(translate(r"^\1$").is_none());
        assert!(translate(r"^\q$").is_none());
        assert!(translate(r"^\x\{41\}$").is_none());
    }

    #[test]
    fn bad_ranges_are_rejected() {
        assert!(translate("^[Local-Only]$").is_none());
        assert!(translate("^[a-b-c]$").is_some());
        assert!(translate("^[[:nope:]]$").is_none());
        assert!(is_match("^[[:alpha:]]$", "q"));
    }
}
