//! Heredoc delimiters on an instruction line (`<<EOF`, `<<-EOF`, `<<"EOF"`, `3<<EOF`).
//!
//! As in BuildKit, the logical line is split into words with quotes and escapes kept raw, and
//! every word of the form `[fd]<<[-]word` opens a heredoc, read in order after the line. The
//! body is expanded later only if no part of the delimiter was quoted.

use std::ops::Range;

use crate::error::ParseErrorKind;
use crate::shell::Lexer;

/// A heredoc opener found on an instruction line or in an argument word.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delimiter {
    /// The delimiter, unquoted.
    pub name: String,
    /// Whether the body is expanded (no part of the delimiter was quoted).
    pub expand: bool,
    /// `<<-`: leading tabs are stripped.
    pub chomp: bool,
    /// The number before `<<`, 0 when none.
    pub file_descriptor: u32,
}

struct NoEnv;

impl crate::shell::Env for NoEnv {
    fn get(&self, _: &str) -> Option<&str> {
        None
    }
}

/// The heredoc openers on `line`, in order.
pub(crate) fn from_line(line: &str) -> Result<Vec<Delimiter>, (ParseErrorKind, Range<usize>)> {
    let lexer = Lexer::new('\\').raw_quotes(true).raw_escapes(true);
    // BuildKit ignores a lexing error here: such a line simply has no heredoc.
    let Ok(words) = lexer.process_words(line, &NoEnv) else {
        return Ok(vec![]);
    };
    let mut docs = Vec::new();
    for word in words {
        if let Some(doc) = parse_word(&word).map_err(|k| (k, 0..line.len()))? {
            docs.push(doc);
        }
    }
    Ok(docs)
}

/// Parse one word as `^(\d*)<<(-?)([^<]*)$`; `None` when it is not a heredoc opener.
///
/// The frontend uses it to tell heredoc sources (`COPY <<EOF /dst`) from paths.
pub fn parse_word(word: &str) -> Result<Option<Delimiter>, ParseErrorKind> {
    let digits = word.bytes().take_while(u8::is_ascii_digit).count();
    let Some(rest) = word[digits..].strip_prefix("<<") else {
        return Ok(None);
    };
    let (chomp, rest) = match rest.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, rest),
    };
    if rest.is_empty() || rest.contains('<') {
        return Ok(None);
    }
    // An fd too large for the type parses as 0, as Go's ignored ParseUint error does.
    let file_descriptor = word[..digits].parse().unwrap_or(0);
    let lexer = Lexer::new('\\').skip_unset_env(true);
    let words = lexer
        .process_words(rest, &NoEnv)
        .map_err(|e| ParseErrorKind::HeredocDelimiter(e.to_string()))?;
    if words.len() != 1 {
        return Ok(None);
    }
    let raw = lexer
        .raw_quotes(true)
        .process_words(rest, &NoEnv)
        .map_err(|e| ParseErrorKind::HeredocDelimiter(e.to_string()))?;
    if raw.len() != 1 {
        return Err(ParseErrorKind::HeredocDelimiter(format!(
            "internal lexing of heredoc produced inconsistent results: {rest}"
        )));
    }
    let quotes = |s: &str| s.matches(['\'', '"']).count();
    let expand = quotes(&words[0]) == quotes(&raw[0]);
    Ok(Some(Delimiter {
        name: words.into_iter().next().unwrap_or_default(),
        expand,
        chomp,
        file_descriptor,
    }))
}

/// Remove leading tabs from every line of `content` (`<<-`).
pub(crate) fn chomp(content: &str) -> String {
    content
        .split_inclusive('\n')
        .map(|l| l.trim_start_matches('\t'))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openers() {
        let d = parse_word("<<EOF").unwrap().unwrap();
        assert_eq!((d.name.as_str(), d.expand, d.chomp), ("EOF", true, false));
        let d = parse_word("<<-\"EOF\"").unwrap().unwrap();
        assert_eq!((d.name.as_str(), d.expand, d.chomp), ("EOF", false, true));
        let d = parse_word("3<<'E'OF").unwrap().unwrap();
        assert_eq!(
            (d.name.as_str(), d.expand, d.file_descriptor),
            ("EOF", false, 3)
        );
        assert_eq!(parse_word("<<").unwrap(), None);
        assert_eq!(parse_word("a<<EOF").unwrap(), None);
        assert_eq!(parse_word("<<<EOF").unwrap(), None);
    }

    #[test]
    fn chomp_strips_leading_tabs_per_line() {
        assert_eq!(chomp("\t\ta\n\tb\n c\n"), "a\nb\n c\n");
    }
}
