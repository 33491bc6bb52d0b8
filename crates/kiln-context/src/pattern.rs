//! One compiled pattern: how patternmatcher turns a cleaned glob into an exact, prefix, suffix
//! or regular-expression match.

use regex::Regex;

use crate::go_regex;

/// How a pattern is matched, chosen by scanning it as patternmatcher's `compile` does.
///
/// The shortcuts are not just optimisations: they change results. `**foo` is a suffix match
/// and so matches `xfoo`, and `dir/**` is a prefix match on `dir/` and so does not match
/// `dir`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchType {
    /// No glob characters: the path must equal the pattern.
    Exact,
    /// `<literal>**`: the path must start with the literal.
    Prefix,
    /// `**<literal>`: the path must end with the literal (`**/foo` also matches `foo`).
    Suffix,
    /// Anything else: an anchored regular expression.
    Regexp,
}

/// A single pattern of a [`PatternMatcher`](crate::PatternMatcher).
///
/// It holds the pattern after `filepath.Clean` and without its leading `!`, the way
/// upstream's `Pattern.String()` reports it.
#[derive(Debug, Clone)]
pub struct Pattern {
    cleaned: String,
    exclusion: bool,
    index: usize,
    depth: usize,
    match_type: MatchType,
    go_regexp: Option<String>,
    /// `None` when the pattern passed `New`'s syntax check but its regex does not compile:
    /// every match then fails, as upstream's lazily compiled pattern does.
    regex: Option<Regex>,
}

impl Pattern {
    /// Compiles `cleaned` (already checked with [`is_valid_glob`](crate::glob_syntax)).
    pub(crate) fn new(cleaned: String, exclusion: bool, index: usize) -> Self {
        let (match_type, go_regexp) = compile(&cleaned);
        let regex = go_regexp
            .as_deref()
            .and_then(go_regex::translate)
            .and_then(|rust| Regex::new(&rust).ok());
        let depth = cleaned.split('/').count();
        Self {
            cleaned,
            exclusion,
            index,
            depth,
            match_type,
            go_regexp,
            regex,
        }
    }

    /// The cleaned pattern without its leading `!`.
    pub fn as_str(&self) -> &str {
        &self.cleaned
    }

    /// Whether this is an exception (`!pattern`) that re-includes what earlier patterns
    /// excluded.
    pub fn is_exclusion(&self) -> bool {
        self.exclusion
    }

    /// Position of this pattern in the list given to
    /// [`PatternMatcher::new`](crate::PatternMatcher::new), counting blank entries.
    pub fn index(&self) -> usize {
        self.index
    }

    /// How this pattern is matched.
    pub fn match_type(&self) -> MatchType {
        self.match_type
    }

    /// The regular expression in Go syntax, exactly as upstream builds it, for
    /// [`MatchType::Regexp`] patterns. Shown in explanations and checked by the conformance
    /// tests; kiln matches with an equivalent translation of it.
    pub fn go_regexp(&self) -> Option<&str> {
        self.go_regexp.as_deref()
    }

    /// Number of `/`-separated elements, used by the single-parent legacy matcher.
    pub(crate) fn depth(&self) -> usize {
        self.depth
    }

    /// Whether `path` (slash-separated, relative) matches this pattern alone. `Err(())` for a
    /// pattern whose regex does not compile (upstream's `ErrBadPattern` at match time).
    pub(crate) fn is_match(&self, path: &str) -> Result<bool, ()> {
        let pattern = self.cleaned.as_bytes();
        let path_bytes = path.as_bytes();
        Ok(match self.match_type {
            MatchType::Exact => path == self.cleaned,
            MatchType::Prefix => path_bytes.starts_with(&pattern[..pattern.len() - 2]),
            MatchType::Suffix => {
                let suffix = &pattern[2..];
                path_bytes.ends_with(suffix)
                    || (suffix.first() == Some(&b'/') && path_bytes == &suffix[1..])
            }
            MatchType::Regexp => return self.regex.as_ref().map(|re| re.is_match(path)).ok_or(()),
        })
    }
}

/// Scans a cleaned pattern like patternmatcher's `compile` with the `/` separator and returns
/// its match type and, for [`MatchType::Regexp`], the Go regular expression.
///
/// Rules, in scan order: `**` (eating one following `/`) becomes `(.*/)?`, or at the end
/// either turns an exact pattern into a prefix match or appends `.*`; a `**` that is the first
/// token makes the pattern a suffix match until a later glob makes it a regexp; `*` becomes
/// `[^/]*`, `?` becomes `[^/]`; `.+()|{}$` are escaped without changing the type; `\x` is
/// copied as `\x` (a regexp); `[` and `]` are copied (a regexp).
fn compile(pattern: &str) -> (MatchType, Option<String>) {
    let mut re = String::from("^");
    let mut kind = MatchType::Exact;
    let mut chars = pattern.chars().peekable();
    // Go's text/scanner skips a byte order mark at the very start.
    if chars.peek() == Some(&'\u{feff}') {
        chars.next();
    }
    let mut token = 0;
    while let Some(ch) = chars.next() {
        match ch {
            '*' if chars.peek() == Some(&'*') => {
                chars.next();
                if chars.peek() == Some(&'/') {
                    chars.next();
                }
                if chars.peek().is_none() {
                    if kind == MatchType::Exact {
                        kind = MatchType::Prefix;
                    } else {
                        re.push_str(".*");
                        kind = MatchType::Regexp;
                    }
                } else {
                    re.push_str("(.*/)?");
                    kind = MatchType::Regexp;
                }
                if token == 0 {
                    kind = MatchType::Suffix;
                }
            }
            '*' => {
                re.push_str("[^/]*");
                kind = MatchType::Regexp;
            }
            '?' => {
                re.push_str("[^/]");
                kind = MatchType::Regexp;
            }
            '.' | '+' | '(' | ')' | '|' | '{' | '}' | '$' => {
                re.push('\\');
                re.push(ch);
            }
            '\\' => {
                re.push('\\');
                if let Some(next) = chars.next() {
                    re.push(next);
                    kind = MatchType::Regexp;
                }
            }
            '[' | ']' => {
                re.push(ch);
                kind = MatchType::Regexp;
            }
            _ => re.push(ch),
        }
        token += 1;
    }
    if kind == MatchType::Regexp {
        re.push('$');
        (kind, Some(re))
    } else {
        (kind, None)
    }
}

#[cfg(test)]
mod tests {
    use super::{MatchType, Pattern, compile};

    #[test]
    fn compile_types() {
        assert_eq!(compile("**"), (MatchType::Suffix, None));
        assert_eq!(compile("dir/**"), (MatchType::Prefix, None));
        assert_eq!(compile("a.b"), (MatchType::Exact, None));
        assert_eq!(
            compile("**/**"),
            (MatchType::Regexp, Some("^(.*/)?.*$".to_owned()))
        );
        assert_eq!(
            compile("a\\b"),
            (MatchType::Regexp, Some("^a\\b$".to_owned()))
        );
    }

    #[test]
    fn suffix_shortcut_is_not_anchored_at_a_slash() {
        // Upstream quirk: `**foo` is a plain suffix compare.
        let p = Pattern::new("**foo".to_owned(), false, 0);
        assert_eq!(p.is_match("xfoo"), Ok(true));
        let p = Pattern::new("**/foo".to_owned(), false, 0);
        assert_eq!(p.is_match("foo"), Ok(true));
        assert_eq!(p.is_match("xfoo"), Ok(false));
    }

    #[test]
    fn bad_regex_fails_at_match_time() {
        let p = Pattern::new("[Local-Only]".to_owned(), false, 0);
        assert_eq!(p.is_match("x"), Err(()));
    }
}
