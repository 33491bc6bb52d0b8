//! BuildKit's `Node.Dump()`, for the parser conformance corpus and `kiln debug dump`.

use std::fmt::Write as _;

use crate::ast::{Dockerfile, Instruction};

/// Dump the file as BuildKit's `result.AST.Dump()` does, one line per instruction.
pub fn dump(df: &Dockerfile) -> String {
    let mut out = String::new();
    for inst in &df.instructions {
        out.push('(');
        out.push_str(&dump_instruction(inst));
        out.push_str(")\n");
    }
    // The root node's dump is TrimSpace'd: the last newline goes (the caller adds one back).
    out.truncate(out.trim_end().len());
    out
}

fn dump_instruction(inst: &Instruction) -> String {
    let mut s = inst.keyword.text.to_lowercase();
    if !inst.flags.is_empty() {
        s.push_str(" [");
        for (i, f) in inst.flags.iter().enumerate() {
            if i > 0 {
                s.push(' ');
            }
            s.push_str(&go_quote(&f.text));
        }
        s.push(']');
    }
    if let Some(trigger) = &inst.trigger {
        // ONBUILD's Next node has the trigger as its only child.
        let _ = write!(s, " ({})", dump_instruction(trigger));
    }
    for arg in &inst.args {
        s.push(' ');
        s.push_str(&go_quote(&arg.text));
    }
    s.trim_matches(char::is_whitespace).to_owned()
}

/// Go's `strconv.Quote`.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if is_go_printable(c) => out.push(c),
            c if (c as u32) < 0x10000 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\U{:08x}", c as u32);
            }
        }
    }
    out.push('"');
    out
}

/// An approximation of Go's `strconv.IsPrint` for non-ASCII: letters, marks, numbers,
/// punctuation, symbols and U+0020 are printable; other spaces, controls, format characters,
/// private use and unassigned code points are not.
fn is_go_printable(c: char) -> bool {
    let u = c as u32;
    if u < 0x80 {
        return (0x20..0x7f).contains(&u);
    }
    if c.is_whitespace() || c.is_control() {
        return false;
    }
    !matches!(u,
        0xad | 0x600..=0x605 | 0x61c | 0x6dd | 0x70f | 0x180e | 0x200b..=0x200f
        | 0x202a..=0x202e | 0x2060..=0x206f | 0xd800..=0xdfff | 0xe000..=0xf8ff
        | 0xfeff | 0xfff9..=0xfffb | 0xfffe | 0xffff | 0xf_0000..=0x10_ffff)
}

#[cfg(test)]
mod tests {
    use super::go_quote;

    #[test]
    fn quotes_like_go() {
        assert_eq!(go_quote("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(go_quote("\u{0}\u{7f}\n"), r#""\x00\x7f\n""#);
        assert_eq!(go_quote("♥☃"), "\"♥☃\"");
        assert_eq!(go_quote("\u{200b}"), r#""\u200b""#);
    }
}
