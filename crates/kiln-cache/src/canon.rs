//! The canonical text of an instruction, for the `instruction` field of a key
//! ([`crate::key`]): explicit field names and self-delimiting values, so that what enters a
//! key never depends on how a Rust type prints itself (`Debug`), and renaming a field of the
//! frontend's types changes no key.
//!
//! # Format
//!
//! The text opens with the instruction's keyword on a line of its own, then one line per
//! field, in the order the caller adds them: `NAME=VALUE` and a newline, where `VALUE` is
//!
//! | value | encoding |
//! |---|---|
//! | a string | `s` its length in bytes (decimal) `:` the bytes |
//! | absent | `-` |
//! | a boolean | `t` or `f` |
//! | a number | `n` the number (decimal) |
//! | a list | `l` its length (decimal), then each item as a string (`s` length `:` bytes) |
//!
//! A string's bytes may hold newlines and `=`: the length says where it ends. Field names are
//! the caller's constants; changing one, its value's encoding or the order of fields changes
//! keys, and so bumps [`crate::KEY_VERSION`].

use std::fmt::Write as _;

/// A canonical instruction text being written (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Canonical(String);

impl Canonical {
    /// A text for the instruction `keyword`.
    pub fn new(keyword: &str) -> Self {
        let mut s = String::new();
        push_str(&mut s, keyword);
        s.push('\n');
        Self(s)
    }

    /// Goes on writing `text`, a finished canonical text (to add fields after another
    /// writer's).
    pub fn extend(text: String) -> Self {
        Self(text)
    }

    fn name(&mut self, name: &str) {
        self.0.push_str(name);
        self.0.push('=');
    }

    /// A string field.
    #[must_use]
    pub fn str(mut self, name: &str, value: &str) -> Self {
        self.name(name);
        push_str(&mut self.0, value);
        self.0.push('\n');
        self
    }

    /// A string field that may be absent.
    #[must_use]
    pub fn opt(mut self, name: &str, value: Option<&str>) -> Self {
        self.name(name);
        match value {
            Some(v) => push_str(&mut self.0, v),
            None => self.0.push('-'),
        }
        self.0.push('\n');
        self
    }

    /// A boolean field.
    #[must_use]
    pub fn bool(mut self, name: &str, value: bool) -> Self {
        self.name(name);
        self.0.push(if value { 't' } else { 'f' });
        self.0.push('\n');
        self
    }

    /// A number field that may be absent.
    #[must_use]
    pub fn num(mut self, name: &str, value: Option<u64>) -> Self {
        self.name(name);
        match value {
            Some(n) => {
                let _ = write!(self.0, "n{n}");
            }
            None => self.0.push('-'),
        }
        self.0.push('\n');
        self
    }

    /// A list of strings.
    #[must_use]
    pub fn list<'a>(mut self, name: &str, items: impl IntoIterator<Item = &'a str>) -> Self {
        self.name(name);
        let items: Vec<&str> = items.into_iter().collect();
        let _ = write!(self.0, "l{}", items.len());
        for item in items {
            push_str(&mut self.0, item);
        }
        self.0.push('\n');
        self
    }

    /// The text.
    pub fn finish(self) -> String {
        self.0
    }
}

fn push_str(out: &mut String, s: &str) {
    let _ = write!(out, "s{}:{s}", s.len());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_delimits_itself() {
        let text = Canonical::new("RUN")
            .str("argv", "a\nb=c")
            .opt("from", None)
            .bool("link", true)
            .num("size", Some(42))
            .list("sources", ["x", ""])
            .finish();
        assert_eq!(
            text,
            "s3:RUN\nargv=s5:a\nb=c\nfrom=-\nlink=t\nsize=n42\nsources=l2s1:xs0:\n"
        );
        // A value holding what looks like the next field is still one value.
        let a = Canonical::new("X").str("a", "1\nb=s1:2").finish();
        let b = Canonical::new("X").str("a", "1").str("b", "2").finish();
        assert_ne!(a, b);
    }
}
