//! The glob patterns of `${VAR#p}`, `${VAR%p}` and `${VAR/p/r}`, matched as BuildKit does.
//!
//! BuildKit turns a pattern into a Go regular expression and lets `regexp` find the match.
//! This module does the same with the `regex` crate, whose semantics are RE2's like Go's
//! (leftmost-first matches, lazy and greedy stars, `.` not matching a newline) and whose
//! matching time is linear in the input, so no pattern can make an expansion slow:
//!
//! * `*` is any run of characters and `?` any one character, except that neither matches a
//!   newline (Go's `.` does not, and BuildKit does not set the `s` flag).
//! * `\*`, `\?` and `\\` are literal; `\}` and `\/` are a literal `}` and `/` (the `\` only
//!   kept them from ending the `${...}`). Any other escape is an error.
//! * There are no bracket expressions: `[a-z]` is matched literally, as BuildKit escapes
//!   `[` and `]` before compiling.
//! * A match is the leftmost-first one (Go's semantics): the leftmost start, then each `*` as
//!   long as possible when greedy or as short as possible when not, in order from the left.
//! * A leading U+FEFF of the pattern is dropped, as Go's `text/scanner` drops a byte-order
//!   mark.
//!
//! A suffix match (`%`) is, as in BuildKit, a prefix match of the reversed pattern on the
//! reversed value.

/// One element of a parsed pattern.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Token {
    /// Exactly this character.
    Literal(char),
    /// `?`: one character other than a newline.
    AnyChar,
    /// `*`: any number of characters other than a newline.
    Star,
}

/// A parsed pattern as a regular expression, compiled on first use (only one of the two
/// forms is needed by any one operation, and compiling is the expensive part).
#[derive(Clone, Debug)]
pub(super) struct Glob {
    source: String,
}

impl Glob {
    /// Parse `pattern`; on a bad escape, return the escaped character (`None` at the end).
    pub(super) fn parse(pattern: &str, greedy: bool) -> Result<Self, Option<char>> {
        let tokens = tokens(pattern)?;
        let mut re = String::with_capacity(tokens.len() * 2);
        for t in &tokens {
            match t {
                Token::Literal(c) => re.push_str(&regex::escape(c.encode_utf8(&mut [0; 4]))),
                Token::AnyChar => re.push('.'),
                Token::Star if greedy => re.push_str(".*"),
                Token::Star => re.push_str(".*?"),
            }
        }
        Ok(Self { source: re })
    }

    fn compile(src: &str) -> regex::Regex {
        regex::RegexBuilder::new(src)
            .size_limit(1 << 24)
            .build()
            // Escaped literals, `.` and stars always compile; only an absurdly long pattern can
            // exceed the size limit, and then nothing matches it.
            .unwrap_or_else(|_| regex::Regex::new("[^\\s\\S]").expect("a valid regex"))
    }

    /// Run matches of this pattern over `haystack`.
    fn matcher<'h>(&self, haystack: &'h str) -> Matcher<'_, 'h> {
        Matcher {
            glob: self,
            haystack,
            search: std::cell::OnceCell::new(),
        }
    }
}

/// The tokens of `pattern`; on a bad escape, the escaped character (`None` at the end).
fn tokens(pattern: &str) -> Result<Vec<Token>, Option<char>> {
    let pattern = pattern.strip_prefix('\u{FEFF}').unwrap_or(pattern);
    let mut chars = pattern.chars().peekable();
    let mut tokens = Vec::new();
    while let Some(ch) = chars.next() {
        let token = match ch {
            '*' => Token::Star,
            '?' => Token::AnyChar,
            '\\' => {
                if matches!(chars.peek(), Some('}' | '/')) {
                    continue;
                }
                match chars.next() {
                    Some(escaped @ ('*' | '?' | '\\')) => Token::Literal(escaped),
                    other => return Err(other),
                }
            }
            other => Token::Literal(other),
        };
        tokens.push(token);
    }
    Ok(tokens)
}

/// Matches of one pattern over one haystack.
struct Matcher<'g, 'h> {
    glob: &'g Glob,
    haystack: &'h str,
    search: std::cell::OnceCell<regex::Regex>,
}

impl Matcher<'_, '_> {
    /// End of the preferred match starting exactly at the beginning of the haystack.
    fn match_at_start(&self) -> Option<usize> {
        Glob::compile(&format!("^(?:{})", self.glob.source))
            .find(self.haystack)
            .map(|m| m.end())
    }

    /// The leftmost match starting at or after byte `from`, as a byte range.
    fn find_from(&self, from: usize) -> Option<(usize, usize)> {
        self.search
            .get_or_init(|| Glob::compile(&self.glob.source))
            .find_at(self.haystack, from)
            .map(|m| (m.start(), m.end()))
    }
}

/// `${VAR#pattern}` (`greedy` false) and `${VAR##pattern}` (`greedy` true).
pub(super) fn trim_prefix(
    pattern: &str,
    value: &str,
    greedy: bool,
) -> Result<String, Option<char>> {
    let glob = Glob::parse(pattern, greedy)?;
    let end = glob.matcher(value).match_at_start();
    Ok(end.map_or(value, |end| &value[end..]).to_owned())
}

/// `${VAR%pattern}` (`greedy` false) and `${VAR%%pattern}` (`greedy` true).
///
/// Like BuildKit, this reverses both the pattern and the value and trims a prefix, because a
/// leftmost-first matcher cannot find the shortest rightmost match directly.
pub(super) fn trim_suffix(
    pattern: &str,
    value: &str,
    greedy: bool,
) -> Result<String, Option<char>> {
    let reversed: String = value.chars().rev().collect();
    let trimmed = trim_prefix(&reverse_pattern(pattern), &reversed, greedy)?;
    Ok(trimmed.chars().rev().collect())
}

/// Reverse a pattern but keep each `\x` escape pair in order (`a\*c` becomes `c\*a`).
///
/// A lone `\` at the very end has nothing to pair with and simply moves to the front, where it
/// then escapes the first character, as in BuildKit.
fn reverse_pattern(pattern: &str) -> String {
    let mut units: Vec<&str> = Vec::new();
    let mut rest = pattern;
    while let Some(first) = rest.chars().next() {
        let mut len = first.len_utf8();
        if first == '\\' {
            len += rest[len..].chars().next().map_or(0, char::len_utf8);
        }
        units.push(&rest[..len]);
        rest = &rest[len..];
    }
    units.into_iter().rev().collect()
}

/// `${VAR/pattern/replacement}`: replace the leftmost (greedy) match, literally.
pub(super) fn replace_first(glob: &Glob, value: &str, replacement: &str) -> String {
    match glob.matcher(value).find_from(0) {
        Some((start, end)) => format!("{}{replacement}{}", &value[..start], &value[end..]),
        None => value.to_owned(),
    }
}

/// `${VAR//pattern/replacement}`: replace every match, as Go's `Regexp.ReplaceAllString`.
///
/// That means: matches do not overlap; an empty match right after a previous match is not
/// replaced; the search moves on by at least one character after each match; and
/// `replacement` is a Go template, in which `$0` or `${0}` is the matched text, `$$` is a `$`
/// and any other `$name` is empty (the pattern has no groups).
///
/// Nested replacements multiply sizes, so the result is capped at [`MAX_EXPANSION`] bytes:
/// `None` beyond that (BuildKit would run out of memory instead).
pub(super) fn replace_all(glob: &Glob, value: &str, replacement: &str) -> Option<String> {
    let matcher = glob.matcher(value);
    let mut out = String::with_capacity(value.len());
    let mut last_match_end = 0;
    let mut search = 0;
    while search <= value.len() {
        let Some((start, end)) = matcher.find_from(search) else {
            break;
        };
        out.push_str(&value[last_match_end..start]);
        if end > last_match_end || start == 0 {
            expand_template(&mut out, replacement, &value[start..end]);
        }
        if out.len() > MAX_EXPANSION {
            return None;
        }
        last_match_end = end;
        let width = value[search..].chars().next().map_or(0, char::len_utf8);
        search = if search + width > end {
            search + width
        } else if search + 1 > end {
            // Only at the end of the input, where there is no next character.
            search + 1
        } else {
            end
        };
    }
    out.push_str(&value[last_match_end..]);
    (out.len() <= MAX_EXPANSION).then_some(out)
}

/// The largest result of one `${VAR//p/r}`, in bytes.
pub(super) const MAX_EXPANSION: usize = 1 << 20;

/// Append `template` to `out` with Go's `Regexp.Expand` rules, for a regex whose only group is
/// the whole match.
fn expand_template(out: &mut String, template: &str, whole: &str) {
    let mut rest = template;
    while let Some(dollar) = rest.find('$') {
        out.push_str(&rest[..dollar]);
        rest = &rest[dollar + 1..];
        if let Some(after) = rest.strip_prefix('$') {
            out.push('$');
            rest = after;
            continue;
        }
        match template_reference(rest) {
            Some((name, after)) => {
                if name == "0" {
                    out.push_str(whole);
                }
                rest = after;
            }
            // Malformed: the `$` is kept as text.
            None => out.push('$'),
        }
    }
    out.push_str(rest);
}

/// Parse `name` or `{name}` at the start of `s` (Go's `extract`): the name and what follows.
fn template_reference(s: &str) -> Option<(&str, &str)> {
    let (braced, body) = match s.strip_prefix('{') {
        Some(body) => (true, body),
        None => (false, s),
    };
    let len = body
        .char_indices()
        .find(|&(_, ch)| !(super::chars::is_letter(ch) || super::chars::is_digit(ch) || ch == '_'))
        .map_or(body.len(), |(i, _)| i);
    if len == 0 {
        return None;
    }
    let (name, after) = body.split_at(len);
    if braced {
        return after.strip_prefix('}').map(|after| (name, after));
    }
    Some((name, after))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn glob(pattern: &str, greedy: bool) -> Glob {
        Glob::parse(pattern, greedy).expect("valid pattern")
    }

    #[test]
    fn parse_escapes_like_buildkit() {
        assert_eq!(
            tokens(r"(()[]{\}^$.\*\?|\\").unwrap(),
            "(()[]{}^$.*?|\\"
                .chars()
                .map(Token::Literal)
                .collect::<Vec<_>>()
        );
        assert_eq!(tokens("*?").unwrap(), [Token::Star, Token::AnyChar]);
        assert_eq!(tokens(r"\/").unwrap(), [Token::Literal('/')]);
        assert_eq!(Glob::parse("\\", true).unwrap_err(), None);
        assert_eq!(Glob::parse(r"\x", true).unwrap_err(), Some('x'));
        assert_eq!(Glob::parse(r"\\\", true).unwrap_err(), None);
    }

    #[test]
    fn leading_byte_order_mark_is_dropped() {
        assert_eq!(tokens("\u{FEFF}a").unwrap(), [Token::Literal('a')]);
        assert_eq!(
            tokens("a\u{FEFF}").unwrap(),
            [Token::Literal('a'), Token::Literal('\u{FEFF}')]
        );
    }

    #[test]
    fn reverse_pattern_keeps_escape_pairs() {
        for (pattern, reversed) in [
            (r"a\*c", r"c\*a"),
            (r"\\\ab", r"b\a\\"),
            ("ab\\", r"\ba"),
            ("👽\\🚀🖖", "🖖\\🚀👽"),
            (r"\\b", r"b\\"),
        ] {
            assert_eq!(reverse_pattern(pattern), reversed, "{pattern}");
        }
    }

    #[test]
    fn brackets_are_literal() {
        assert_eq!(trim_prefix("[ab]", "[ab]c", false).unwrap(), "c");
        assert_eq!(trim_prefix("[ab]", "ac", false).unwrap(), "ac");
    }

    #[test]
    fn stars_and_marks_do_not_cross_newlines() {
        assert_eq!(trim_prefix("*", "a\nb", true).unwrap(), "\nb");
        assert_eq!(trim_prefix("?", "\nb", true).unwrap(), "\nb");
        assert_eq!(trim_suffix("*", "a\nb", true).unwrap(), "a\n");
    }

    #[test]
    fn shortest_and_longest_prefix_and_suffix() {
        assert_eq!(trim_prefix("*/", "a/b/c", false).unwrap(), "b/c");
        assert_eq!(trim_prefix("*/", "a/b/c", true).unwrap(), "c");
        assert_eq!(trim_suffix("/*", "a/b/c", false).unwrap(), "a/b");
        assert_eq!(trim_suffix("/*", "a/b/c", true).unwrap(), "a");
        assert_eq!(trim_suffix("x", "a/b/c", true).unwrap(), "a/b/c");
    }

    #[test]
    fn replace_all_follows_go_empty_match_rules() {
        let empty = glob("", true);
        assert_eq!(replace_all(&empty, "ab", "-").unwrap(), "-a-b-");
        assert_eq!(replace_all(&empty, "", "-").unwrap(), "-");
        let star = glob("*", true);
        // `.*` matches "ab", then the empty match at the end abuts it and is skipped.
        assert_eq!(replace_all(&star, "ab", "-").unwrap(), "-");
        let a = glob("a", true);
        assert_eq!(replace_all(&a, "banana", "o").unwrap(), "bonono");
        assert_eq!(replace_first(&a, "banana", "o"), "bonana");
    }

    #[test]
    fn replace_all_expands_go_templates() {
        let a = glob("a", true);
        assert_eq!(replace_all(&a, "ab", "<$0>").unwrap(), "<a>b");
        assert_eq!(replace_all(&a, "ab", "<${0}>").unwrap(), "<a>b");
        assert_eq!(replace_all(&a, "ab", "$1$x${x}$$").unwrap(), "$b");
        assert_eq!(replace_all(&a, "ab", "$").unwrap(), "$b");
        assert_eq!(replace_all(&a, "ab", "${0").unwrap(), "${0b");
        assert_eq!(replace_all(&a, "ab", "$00").unwrap(), "b");
        // A single replacement is literal.
        assert_eq!(replace_first(&a, "ab", "$0"), "$0b");
    }
}
