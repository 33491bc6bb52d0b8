//! The generic `--flag` parser every instruction uses (BuildKit's `BFlags`).
//!
//! Flags are declared per instruction with a kind (bool, string, repeatable strings); any
//! other flag is an error, with a suggestion when the name is close to a declared one.

use kiln_syntax::{TextRange, Word};

use crate::error::{ErrorKind, InstructionError};

/// What a flag holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FlagKind {
    /// `--x` or `--x=true|false` (any case).
    Bool,
    /// `--x=value`, at most once.
    String,
    /// `--x=value`, any number of times (`--mount`, `--exclude`).
    Strings,
}

/// A flag as given on the instruction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct GivenFlag {
    pub name: &'static str,
    pub value: Option<String>,
    pub span: TextRange,
}

/// The parsed flags of one instruction.
#[derive(Debug, Default)]
pub(crate) struct Flags {
    given: Vec<GivenFlag>,
}

impl Flags {
    /// Parse `words` against the declared `(name, kind)` list.
    pub(crate) fn parse(
        words: &[Word],
        declared: &[(&'static str, FlagKind)],
    ) -> Result<Self, InstructionError> {
        let mut given: Vec<GivenFlag> = Vec::new();
        for word in words {
            let err = |kind| InstructionError::new(kind, word.span);
            let Some(body) = word.text.strip_prefix("--") else {
                return Err(err(ErrorKind::FlagNoDashes(word.text.clone())));
            };
            if body.is_empty() {
                // A lone `--` ends the flags; the parser already dropped it.
                continue;
            }
            let (name, value) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (body, None),
            };
            let Some(&(decl_name, kind)) = declared.iter().find(|(n, _)| *n == name) else {
                let names: Vec<&str> = declared.iter().map(|(n, _)| *n).collect();
                return Err(err(ErrorKind::UnknownFlag {
                    flag: name.to_owned(),
                    suggestion: suggest_as_buildkit(name, &names),
                }));
            };
            if kind != FlagKind::Strings && given.iter().any(|g| g.name == decl_name) {
                return Err(err(ErrorKind::DuplicateFlag(name.to_owned())));
            }
            let value = match (kind, value) {
                (FlagKind::Bool, None) => Some("true".to_owned()),
                (FlagKind::Bool, Some("")) => {
                    return Err(err(ErrorKind::FlagMissingValue(name.to_owned())));
                }
                (FlagKind::Bool, Some(v)) => {
                    if v.eq_ignore_ascii_case("true") || v.eq_ignore_ascii_case("false") {
                        Some(v.to_ascii_lowercase())
                    } else {
                        return Err(err(ErrorKind::FlagNotBool {
                            flag: name.to_owned(),
                            value: v.to_owned(),
                        }));
                    }
                }
                (_, None) => return Err(err(ErrorKind::FlagMissingValue(name.to_owned()))),
                (_, Some(v)) => Some(v.to_owned()),
            };
            given.push(GivenFlag {
                name: decl_name,
                value,
                span: word.span,
            });
        }
        Ok(Self { given })
    }

    /// The value of a string flag, with its span.
    pub(crate) fn string(&self, name: &str) -> Option<(String, TextRange)> {
        self.given
            .iter()
            .find(|g| g.name == name)
            .and_then(|g| g.value.clone().map(|v| (v, g.span)))
    }

    /// Whether a bool flag is set to true.
    pub(crate) fn bool(&self, name: &str) -> bool {
        self.given
            .iter()
            .any(|g| g.name == name && g.value.as_deref() == Some("true"))
    }

    /// Every value of a repeatable flag, in order, with spans.
    pub(crate) fn strings(&self, name: &str) -> Vec<(String, TextRange)> {
        self.given
            .iter()
            .filter(|g| g.name == name)
            .filter_map(|g| g.value.clone().map(|v| (v, g.span)))
            .collect()
    }

    /// The names of the flags that were given, even when set to their default
    /// (BuildKit's `FlagsUsed`).
    pub(crate) fn used(&self) -> Vec<&'static str> {
        let mut names: Vec<_> = self.given.iter().map(|g| g.name).collect();
        names.dedup();
        names
    }
}

/// The closest of `candidates` to `word`, if it is close enough to be a likely typo.
pub(crate) fn suggest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let len = word.chars().count();
    let max = if len <= 3 { 1 } else { (len / 3).max(2) };
    candidates
        .iter()
        .map(|c| (crate::suggest::levenshtein(&word.to_lowercase(), c), *c))
        .filter(|&(d, _)| d <= max)
        .min_by_key(|&(d, _)| d)
        .map(|(_, c)| c)
}

/// BuildKit's `suggest.Search` without case: the closest of `candidates` (lowercase) at a
/// Levenshtein distance under 3, in the case of `word` when it is all upper or all lower case;
/// `None` for an exact match (the error is about something else) or nothing close.
pub(crate) fn suggest_as_buildkit(word: &str, candidates: &[&str]) -> Option<String> {
    crate::suggest::search(word, candidates, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(list: &[&str]) -> Vec<Word> {
        list.iter()
            .map(|w| Word::new(*w, TextRange::default()))
            .collect()
    }

    fn kind(r: Result<Flags, InstructionError>) -> ErrorKind {
        r.unwrap_err().kind
    }

    #[test]
    fn bflags_table() {
        use FlagKind::{Bool, String};
        let s = [("str1", String)];
        let b = [("bool1", Bool)];
        assert!(Flags::parse(&words(&[]), &[]).is_ok());
        assert_eq!(
            kind(Flags::parse(&words(&["--str1"]), &s)).to_string(),
            "missing a value on flag: --str1"
        );
        assert_eq!(
            Flags::parse(&words(&["--str1="]), &s)
                .unwrap()
                .string("str1")
                .unwrap()
                .0,
            ""
        );
        assert!(
            Flags::parse(&words(&["--bool1"]), &b)
                .unwrap()
                .bool("bool1")
        );
        assert!(
            Flags::parse(&words(&["--bool1=TRUE"]), &b)
                .unwrap()
                .bool("bool1")
        );
        assert!(
            !Flags::parse(&words(&["--bool1=false"]), &b)
                .unwrap()
                .bool("bool1")
        );
        assert_eq!(
            kind(Flags::parse(&words(&["--bool1=false1"]), &b)).to_string(),
            "expecting boolean value for flag --bool1, not: false1"
        );
        assert_eq!(
            kind(Flags::parse(&words(&["--bool2"]), &b)).to_string(),
            "unknown flag: --bool2 (did you mean --bool1?)"
        );
        assert_eq!(
            kind(Flags::parse(&words(&["--bool1", "--bool1"]), &b)).to_string(),
            "duplicate flag specified: --bool1"
        );
        assert_eq!(
            kind(Flags::parse(&words(&["--bool1="]), &b)).to_string(),
            "missing a value on flag: --bool1"
        );
        let m = [("mount", FlagKind::Strings)];
        let f = Flags::parse(&words(&["--mount=a", "--mount=b"]), &m).unwrap();
        assert_eq!(f.strings("mount").len(), 2);
        assert_eq!(f.used(), ["mount"]);
    }
}
