//! Shell-word expansion exactly as BuildKit's `shell.Lex` performs it: quotes, escapes,
//! `$VAR`, `${VAR}` and the `${VAR<modifier>...}` forms, and the splitting of a word into
//! fields after expansion.
//!
//! This is not a shell. It runs no commands (`` `cmd` `` and `$(cmd)` stay text), knows no
//! arithmetic, positional parameters or special parameters (`$1`, `$@`, `$?` ... look up a
//! variable of that name, which is normally unset, so they expand to nothing), and does not
//! support `${VAR=x}` or `${VAR:=x}` (errors). It supports `${VAR:-x}` `${VAR-x}` `${VAR:+x}`
//! `${VAR+x}` `${VAR:?msg}` `${VAR?msg}` `${VAR#p}` `${VAR##p}` `${VAR%p}` `${VAR%%p}`
//! `${VAR/p/r}` and `${VAR//p/r}`, with the glob patterns described in BuildKit's
//! `convertShellPatternToRegex` (`*`, `?` and `\` escapes; no bracket expressions).
//!
//! Where BuildKit's behaviour is odd, kiln copies it on purpose, because a Dockerfile must mean
//! the same in both. The ones worth knowing are documented where they live: a nested
//! `${A:-x}` discards the fields split before it (see the note in `expand.rs`), `${A//p/r}`
//! treats `$0` in `r` as the match, and a leading byte-order mark of a word is dropped.
//!
//! Unicode: names may hold any letters and digits (`$한국어` is a variable). Environment
//! lookups are case-sensitive, as BuildKit's are on every platform but Windows.

mod chars;
mod error;
mod expand;
mod pattern;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::BuildHasher;

pub use error::ShellError;

/// A source of variables for expansion.
///
/// Implemented for maps, for `(name, value)` lists and for BuildKit-style `"NAME=value"`
/// lists. In lists, the last entry for a name wins, and an entry without `=` sets the name
/// to the empty string, as BuildKit's `EnvsFromSlice` does.
pub trait Env {
    /// The value of `name`, or `None` when it is unset (which is not the same as empty).
    fn get(&self, name: &str) -> Option<&str>;
}

impl<E: Env + ?Sized> Env for &E {
    fn get(&self, name: &str) -> Option<&str> {
        (**self).get(name)
    }
}

impl Env for BTreeMap<String, String> {
    fn get(&self, name: &str) -> Option<&str> {
        BTreeMap::get(self, name).map(String::as_str)
    }
}

impl<S: BuildHasher> Env for HashMap<String, String, S> {
    fn get(&self, name: &str) -> Option<&str> {
        HashMap::get(self, name).map(String::as_str)
    }
}

impl Env for [(String, String)] {
    fn get(&self, name: &str) -> Option<&str> {
        self.iter()
            .rev()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

impl Env for [(&str, &str)] {
    fn get(&self, name: &str) -> Option<&str> {
        self.iter()
            .rev()
            .find(|(key, _)| *key == name)
            .map(|&(_, value)| value)
    }
}

/// The value of `name` in a list of `"NAME=value"` entries, the last one winning.
fn get_from_assignments<'a>(
    entries: impl DoubleEndedIterator<Item = &'a str>,
    name: &str,
) -> Option<&'a str> {
    entries.rev().find_map(|entry| {
        let (key, value) = entry.split_once('=').unwrap_or((entry, ""));
        (key == name).then_some(value)
    })
}

impl Env for [&str] {
    fn get(&self, name: &str) -> Option<&str> {
        get_from_assignments(self.iter().copied(), name)
    }
}

impl Env for [String] {
    fn get(&self, name: &str) -> Option<&str> {
        get_from_assignments(self.iter().map(String::as_str), name)
    }
}

impl<T> Env for Vec<T>
where
    [T]: Env,
{
    fn get(&self, name: &str) -> Option<&str> {
        Env::get(self.as_slice(), name)
    }
}

impl<T, const N: usize> Env for [T; N]
where
    [T]: Env,
{
    fn get(&self, name: &str) -> Option<&str> {
        Env::get(self.as_slice(), name)
    }
}

/// The shell-word lexer: an escape character plus BuildKit's four options.
///
/// All options default to off, which is how BuildKit expands instruction arguments: quotes
/// are removed, escapes are applied and unset variables expand to nothing. The Dockerfile
/// parser and frontend turn options on for particular jobs (heredoc names, `RUN` commands
/// kept for the shell, `ONBUILD` triggers...), exactly where BuildKit does.
///
/// A `Lexer` holds no state between calls, so unlike BuildKit's `Lex` it may be shared
/// between threads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lexer {
    escape: char,
    raw_quotes: bool,
    raw_escapes: bool,
    skip_unset_env: bool,
    skip_process_quotes: bool,
}

impl Default for Lexer {
    /// A lexer with the default escape character `\` and every option off.
    fn default() -> Self {
        Self::new('\\')
    }
}

impl Lexer {
    /// A lexer whose escape character is `escape` (`\`, or `` ` `` after an
    /// `# escape=`` ` directive), with every option off.
    pub fn new(escape: char) -> Self {
        Self {
            escape,
            raw_quotes: false,
            raw_escapes: false,
            skip_unset_env: false,
            skip_process_quotes: false,
        }
    }

    /// Keep quote characters in the output (BuildKit's `RawQuotes`).
    ///
    /// Quotes still group characters and still stop `$` from splitting fields; only their
    /// removal is skipped: `'a b'` expands to `'a b'`. Default: off.
    #[must_use]
    pub fn raw_quotes(mut self, on: bool) -> Self {
        self.raw_quotes = on;
        self
    }

    /// Keep escape characters in the output (BuildKit's `RawEscapes`).
    ///
    /// The escaped character is still taken literally: `\$A` expands to `\$A`. Default: off.
    /// The words of `${A:-word}`, `${A:+word}` and `${A:?word}` are always scanned without it,
    /// and the patterns of `#`, `%` and `/` always with it, as in BuildKit.
    #[must_use]
    pub fn raw_escapes(mut self, on: bool) -> Self {
        self.raw_escapes = on;
        self
    }

    /// Leave references to unset variables as written (BuildKit's `SkipUnsetEnv`).
    ///
    /// `$A` stays `$A` and `${A:-x}` stays `${A:-x}` when `A` is unset (their nested words
    /// are still expanded). A `${A/p/r}` is written back with a single `/` even if it had two,
    /// as BuildKit does. Default: off, so an unset variable expands to nothing.
    #[must_use]
    pub fn skip_unset_env(mut self, on: bool) -> Self {
        self.skip_unset_env = on;
        self
    }

    /// Treat `'` and `"` as ordinary characters (BuildKit's `SkipProcessQuotes`).
    ///
    /// Default: off.
    #[must_use]
    pub fn skip_process_quotes(mut self, on: bool) -> Self {
        self.skip_process_quotes = on;
        self
    }

    /// The escape character.
    pub fn escape(&self) -> char {
        self.escape
    }

    /// Expand `word` to one string; whitespace in it, quoted or not, is kept.
    pub fn process_word(&self, word: &str, env: &dyn Env) -> Result<String, ShellError> {
        expand::expand(self, word, env).map(|out| out.result)
    }

    /// Expand `word` and split the result into fields at unquoted whitespace.
    ///
    /// Splitting happens after expansion, so a variable's value splits unless it is quoted:
    /// with `A="x  y"`, `$A` gives two fields and `"$A"` one.
    pub fn process_words(&self, word: &str, env: &dyn Env) -> Result<Vec<String>, ShellError> {
        expand::expand(self, word, env).map(|out| out.words)
    }

    /// Expand `word` and also report which variables it referred to.
    pub fn process_word_with_matches(
        &self,
        word: &str,
        env: &dyn Env,
    ) -> Result<Expansion, ShellError> {
        expand::expand(self, word, env).map(|out| Expansion {
            result: out.result,
            words: out.words,
            matched: out.matched,
            unmatched: out.unmatched,
        })
    }
}

/// Everything one expansion produced.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Expansion {
    /// The expanded word, as [`Lexer::process_word`] returns it.
    pub result: String,
    /// The fields, as [`Lexer::process_words`] returns them.
    pub words: Vec<String>,
    /// Names that were looked up and set (possibly to the empty string).
    ///
    /// BuildKit uses this to learn which build arguments a step depends on. A name counts even
    /// if its value ended up unused, as `A` in `${A:+x}`.
    pub matched: BTreeSet<String>,
    /// Names that were looked up and unset, including positional and special parameters
    /// (`$1`, `$@`). A name can be in both sets only if the env changes between lookups,
    /// which the provided implementations never do.
    pub unmatched: BTreeSet<String>,
}
