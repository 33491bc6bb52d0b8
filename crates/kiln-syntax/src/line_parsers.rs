//! How each instruction's argument text is split into words, following BuildKit's
//! `line_parsers.go` rule for rule (the conformance corpus checks every one).
//!
//! All ranges here are byte ranges relative to the string the function was given.

use std::ops::Range;

use crate::error::ParseErrorKind;

/// A word and where it sits in the input string.
pub(crate) type RawWord = (String, Range<usize>);

/// The result of an argument parser.
#[derive(Debug, Default)]
pub(crate) struct Parsed {
    pub args: Vec<RawWord>,
    pub json: bool,
}

/// Which argument parser an instruction uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ArgParser {
    /// ADD, COPY, VOLUME: JSON array, else whitespace split.
    MaybeJsonToList,
    /// RUN, CMD, ENTRYPOINT, SHELL: JSON array, else the rest as one string.
    MaybeJson,
    /// FROM, EXPOSE: whitespace split.
    Whitespace,
    /// ENV, LABEL: key/value/separator triples.
    NameVal(&'static str),
    /// ARG: shell-like words, quotes kept.
    NameOrNameVal,
    /// HEALTHCHECK: type word then `MaybeJson`.
    Health,
    /// MAINTAINER, USER, WORKDIR, STOPSIGNAL: the rest as one string.
    String,
    /// ONBUILD: a nested instruction (handled by the caller).
    SubCommand,
    /// Anything unknown: one empty word.
    Ignore,
}

impl ArgParser {
    /// The parser for a lowercased keyword.
    pub(crate) fn for_keyword(keyword: &str) -> Self {
        match keyword {
            "add" | "copy" | "volume" => Self::MaybeJsonToList,
            "run" | "cmd" | "entrypoint" | "shell" => Self::MaybeJson,
            "from" | "expose" => Self::Whitespace,
            "env" => Self::NameVal("ENV"),
            "label" => Self::NameVal("LABEL"),
            "arg" => Self::NameOrNameVal,
            "healthcheck" => Self::Health,
            "maintainer" | "user" | "workdir" | "stopsignal" => Self::String,
            "onbuild" => Self::SubCommand,
            _ => Self::Ignore,
        }
    }

    /// Split `rest` (already trimmed) into words.
    pub(crate) fn parse(
        self,
        rest: &str,
        escape: char,
    ) -> Result<Parsed, (ParseErrorKind, Range<usize>)> {
        match self {
            Self::MaybeJsonToList => maybe_json_to_list(rest),
            Self::MaybeJson => maybe_json(rest),
            Self::Whitespace => Ok(Parsed {
                args: whitespace_delimited(rest),
                json: false,
            }),
            Self::NameVal(key) => {
                name_val(rest, key, escape).map(|args| Parsed { args, json: false })
            }
            Self::NameOrNameVal => Ok(Parsed {
                args: shell_words(rest, escape),
                json: false,
            }),
            Self::Health => health(rest),
            Self::String => Ok(Parsed {
                args: if rest.is_empty() {
                    vec![]
                } else {
                    vec![(rest.to_owned(), 0..rest.len())]
                },
                json: false,
            }),
            Self::SubCommand => unreachable!("ONBUILD is parsed by the caller"),
            Self::Ignore => Ok(Parsed {
                args: vec![(String::new(), 0..0)],
                json: false,
            }),
        }
    }
}

/// BuildKit's `reWhitespace`: `[\t\v\f\r ]+`.
pub(crate) fn is_split_space(c: char) -> bool {
    matches!(c, '\t' | '\u{b}' | '\u{c}' | '\r' | ' ')
}

/// Split at runs of `[\t\v\f\r ]`, keeping empty leading/trailing pieces the way Go's
/// `regexp.Split(s, -1)` does not produce them for trimmed input.
pub(crate) fn whitespace_delimited(rest: &str) -> Vec<RawWord> {
    if rest.is_empty() {
        return vec![];
    }
    let mut out = Vec::new();
    let mut start = 0;
    let mut in_space = false;
    for (i, c) in rest.char_indices() {
        if is_split_space(c) {
            if !in_space {
                out.push((rest[start..i].to_owned(), start..i));
                in_space = true;
            }
        } else if in_space {
            start = i;
            in_space = false;
        }
    }
    if in_space {
        // Go's Split leaves an empty last piece after trailing separators.
        out.push((String::new(), rest.len()..rest.len()));
    } else {
        out.push((rest[start..].to_owned(), start..rest.len()));
    }
    out
}

/// Why a text is not a JSON string array.
enum JsonFailure {
    /// Not JSON at all: fall back to the shell form.
    NotJson,
    /// Valid JSON, but not all strings: a hard error.
    NotStrings,
}

fn parse_json(rest: &str) -> Result<Vec<RawWord>, JsonFailure> {
    let trimmed = rest.trim_start();
    let lead = rest.len() - trimmed.len();
    if !trimmed.starts_with('[') {
        return Err(JsonFailure::NotJson);
    }
    let values: Vec<serde_json::Value> =
        serde_json::from_str(trimmed).map_err(|_| JsonFailure::NotJson)?;
    let range = lead..rest.len();
    values
        .into_iter()
        .map(|v| match v {
            serde_json::Value::String(s) => Ok((s, range.clone())),
            _ => Err(JsonFailure::NotStrings),
        })
        .collect()
}

fn maybe_json(rest: &str) -> Result<Parsed, (ParseErrorKind, Range<usize>)> {
    if rest.is_empty() {
        return Ok(Parsed::default());
    }
    match parse_json(rest) {
        Ok(args) => Ok(Parsed { args, json: true }),
        Err(JsonFailure::NotStrings) => Err((ParseErrorKind::NotStringArray, 0..rest.len())),
        Err(JsonFailure::NotJson) => Ok(Parsed {
            args: vec![(rest.to_owned(), 0..rest.len())],
            json: false,
        }),
    }
}

fn maybe_json_to_list(rest: &str) -> Result<Parsed, (ParseErrorKind, Range<usize>)> {
    match parse_json(rest) {
        Ok(args) => Ok(Parsed { args, json: true }),
        Err(JsonFailure::NotStrings) => Err((ParseErrorKind::NotStringArray, 0..rest.len())),
        Err(JsonFailure::NotJson) => Ok(Parsed {
            args: whitespace_delimited(rest),
            json: false,
        }),
    }
}

fn health(rest: &str) -> Result<Parsed, (ParseErrorKind, Range<usize>)> {
    // BuildKit scans bytes with unicode.IsSpace(rune(byte)): ASCII whitespace plus 0x85 and
    // 0xA0, which in UTF-8 text only occur inside multi-byte characters. ASCII is what matters.
    let is_space = |b: u8| matches!(b, b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r' | b' ');
    let bytes = rest.as_bytes();
    let sep = bytes
        .iter()
        .position(|&b| is_space(b))
        .unwrap_or(bytes.len());
    if sep == 0 {
        return Ok(Parsed::default());
    }
    let next = bytes[sep..]
        .iter()
        .position(|&b| !is_space(b))
        .map_or(bytes.len(), |p| sep + p);
    let mut parsed =
        maybe_json(&rest[next..]).map_err(|(k, r)| (k, r.start + next..r.end + next))?;
    for (_, r) in &mut parsed.args {
        *r = r.start + next..r.end + next;
    }
    parsed.args.insert(0, (rest[..sep].to_owned(), 0..sep));
    Ok(parsed)
}

/// BuildKit's `parseWords`: shell-like words where quotes and escapes are kept raw; only
/// unquoted whitespace separates words.
pub(crate) fn shell_words(rest: &str, escape: char) -> Vec<RawWord> {
    #[derive(PartialEq)]
    enum Phase {
        Spaces,
        Word,
        Quote(char),
    }
    let mut words = Vec::new();
    let mut phase = Phase::Spaces;
    let mut word = String::new();
    let mut start = 0;
    let mut blank_ok = false;
    let mut chars = rest.char_indices().peekable();
    while let Some((pos, ch)) = chars.next() {
        match phase {
            Phase::Spaces => {
                if ch.is_whitespace() {
                    continue;
                }
                start = pos;
                phase = Phase::Word;
            }
            Phase::Word | Phase::Quote(_) => {}
        }
        match phase {
            Phase::Spaces => unreachable!(),
            Phase::Word => {
                if ch.is_whitespace() {
                    if blank_ok || !word.is_empty() {
                        words.push((std::mem::take(&mut word), start..pos));
                    }
                    word.clear();
                    blank_ok = false;
                    phase = Phase::Spaces;
                    continue;
                }
                if ch == '\'' || ch == '"' {
                    phase = Phase::Quote(ch);
                    blank_ok = true;
                }
                if ch == escape {
                    let Some(&(_, next)) = chars.peek() else {
                        continue; // an escape at the very end is dropped
                    };
                    chars.next();
                    word.push(ch);
                    word.push(next);
                    continue;
                }
                word.push(ch);
            }
            Phase::Quote(quote) => {
                if ch == quote {
                    phase = Phase::Word;
                }
                if ch == escape && quote != '\'' {
                    let Some(&(_, next)) = chars.peek() else {
                        phase = Phase::Word;
                        continue;
                    };
                    chars.next();
                    word.push(ch);
                    word.push(next);
                    continue;
                }
                word.push(ch);
            }
        }
    }
    if phase != Phase::Spaces && (blank_ok || !word.is_empty()) {
        words.push((word, start..rest.len()));
    }
    words
}

fn name_val(
    rest: &str,
    key: &'static str,
    escape: char,
) -> Result<Vec<RawWord>, (ParseErrorKind, Range<usize>)> {
    let words = shell_words(rest, escape);
    if words.is_empty() {
        return Ok(vec![]);
    }
    if !words[0].0.contains('=') {
        // Legacy form `KEY name value...`: the value is the raw rest after the first space run.
        let Some(split) = rest.find(is_split_space) else {
            return Err((ParseErrorKind::MissingValue(key), 0..rest.len()));
        };
        let value_start = rest[split..]
            .find(|c: char| !is_split_space(c))
            .map_or(rest.len(), |p| split + p);
        let end = rest.len();
        return Ok(vec![
            (rest[..split].to_owned(), 0..split),
            (rest[value_start..].to_owned(), value_start..end),
            (String::new(), end..end),
        ]);
    }
    let mut out = Vec::with_capacity(words.len() * 3);
    for (word, range) in words {
        let Some(eq) = word.find('=') else {
            return Err((ParseErrorKind::MissingEquals(word), range));
        };
        let eq_at = range.start + eq;
        out.push((word[..eq].to_owned(), range.start..eq_at));
        out.push((word[eq + 1..].to_owned(), eq_at + 1..range.end));
        out.push(("=".to_owned(), eq_at..eq_at + 1));
    }
    Ok(out)
}

/// BuildKit's `extractBuilderFlags`: take leading `--flag` words off `line`.
///
/// Returns the flags (quotes removed, `\` escapes applied, a lone `--` dropped) with their
/// ranges, and the offset where the remaining arguments start.
pub(crate) fn extract_flags(line: &str) -> (Vec<RawWord>, usize) {
    #[derive(PartialEq)]
    enum Phase {
        Spaces,
        Word,
        Quote(u8),
    }
    let bytes = line.as_bytes();
    let mut flags = Vec::new();
    let mut phase = Phase::Spaces;
    let mut word: Vec<u8> = Vec::new();
    let mut start = 0;
    let mut blank_ok = false;
    let mut pos = 0;
    let finish = |word: &mut Vec<u8>| String::from_utf8_lossy(&std::mem::take(word)).into_owned();
    while pos < bytes.len() {
        let mut ch = bytes[pos];
        if phase == Phase::Spaces {
            if ch.is_ascii_whitespace() || ch == b'\x0b' {
                pos += 1;
                continue;
            }
            if ch != b'-' || bytes.get(pos + 1) != Some(&b'-') {
                return (flags, pos);
            }
            start = pos;
            phase = Phase::Word;
        }
        match phase {
            Phase::Spaces => unreachable!(),
            Phase::Word => {
                if ch.is_ascii_whitespace() || ch == b'\x0b' {
                    phase = Phase::Spaces;
                    if word == b"--" {
                        return (flags, pos);
                    }
                    if blank_ok || !word.is_empty() {
                        flags.push((finish(&mut word), start..pos));
                    }
                    word.clear();
                    blank_ok = false;
                    pos += 1;
                    continue;
                }
                if ch == b'\'' || ch == b'"' {
                    phase = Phase::Quote(ch);
                    blank_ok = true;
                    pos += 1;
                    continue;
                }
                if ch == b'\\' {
                    if pos + 1 == bytes.len() {
                        pos += 1;
                        continue;
                    }
                    pos += 1;
                    ch = bytes[pos];
                }
                word.push(ch);
            }
            Phase::Quote(quote) => {
                if ch == quote {
                    phase = Phase::Word;
                    pos += 1;
                    continue;
                }
                if ch == b'\\' {
                    if pos + 1 == bytes.len() {
                        phase = Phase::Word;
                        pos += 1;
                        continue;
                    }
                    pos += 1;
                    ch = bytes[pos];
                }
                word.push(ch);
            }
        }
        pos += 1;
    }
    if phase != Phase::Spaces && word != b"--" && (blank_ok || !word.is_empty()) {
        flags.push((finish(&mut word), start..bytes.len()));
    }
    (flags, bytes.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(words: &[RawWord]) -> Vec<&str> {
        words.iter().map(|(w, _)| w.as_str()).collect()
    }

    #[test]
    fn flags_stop_at_first_non_flag_and_double_dash() {
        let (flags, rest) = extract_flags("--a=b --c foo bar");
        assert_eq!(texts(&flags), ["--a=b", "--c"]);
        assert_eq!(rest, 10);
        let (flags, rest) = extract_flags("--x -- --y");
        assert_eq!(texts(&flags), ["--x"]);
        assert_eq!(&"--x -- --y"[rest..], " --y");
        let (flags, _) = extract_flags("--m=\"a b\" x");
        assert_eq!(texts(&flags), ["--m=a b"]);
    }

    #[test]
    fn words_keep_quotes_raw() {
        let w = shell_words(r#"abc="123 456" def"#, '\\');
        assert_eq!(texts(&w), [r#"abc="123 456""#, "def"]);
        assert_eq!(w[1].1, 14..17);
    }

    #[test]
    fn name_val_forms() {
        let w = name_val("a=1 b=\"x y\"", "ENV", '\\').unwrap();
        assert_eq!(texts(&w), ["a", "1", "=", "b", "\"x y\"", "="]);
        let w = name_val("PATH  /usr/bin  x", "ENV", '\\').unwrap();
        assert_eq!(texts(&w), ["PATH", "/usr/bin  x", ""]);
        assert!(matches!(
            name_val("PATH", "ENV", '\\'),
            Err((ParseErrorKind::MissingValue("ENV"), _))
        ));
        assert!(matches!(
            name_val("a=1 b", "LABEL", '\\'),
            Err((ParseErrorKind::MissingEquals(_), _))
        ));
    }

    #[test]
    fn json_detection() {
        assert!(maybe_json("[\"a\", \"b\"]").unwrap().json);
        assert!(!maybe_json("[\"a\", 'b']").unwrap().json);
        assert!(matches!(
            maybe_json("[1]"),
            Err((ParseErrorKind::NotStringArray, _))
        ));
    }
}
