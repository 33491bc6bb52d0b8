//! Parser directives (`# escape=`, `# syntax=`, `# check=`) in the leading comment block.

use crate::ast::Directive;
use crate::error::{ParseError, ParseErrorKind};
use crate::span::TextRange;

/// The directive names BuildKit recognises; any other `# key=value` ends the block.
const KNOWN: [&str; 3] = ["escape", "syntax", "check"];

/// Watches lines from the top of the file until the directive block ends.
#[derive(Debug, Default)]
pub(crate) struct DirectiveScanner {
    done: bool,
    pub(crate) found: Vec<Directive>,
}

impl DirectiveScanner {
    /// Feed one line (newline removed, leading whitespace removed). Returns the new escape
    /// character when the line is an `escape` directive.
    pub(crate) fn line(&mut self, line: &str, span: TextRange) -> Result<Option<char>, ParseError> {
        if self.done {
            return Ok(None);
        }
        let Some((name, value)) = split_directive(line) else {
            self.done = true;
            return Ok(None);
        };
        let name = name.to_ascii_lowercase();
        if !KNOWN.contains(&name.as_str()) {
            self.done = true;
            return Ok(None);
        }
        if self.found.iter().any(|d| d.name == name) {
            return Err(ParseError::new(
                ParseErrorKind::DuplicateDirective(name),
                span,
            ));
        }
        let escape = if name == "escape" {
            match value {
                "\\" => Some('\\'),
                "`" => Some('`'),
                other => {
                    return Err(ParseError::new(
                        ParseErrorKind::InvalidEscape(other.to_owned()),
                        span,
                    ));
                }
            }
        } else {
            None
        };
        self.found.push(Directive {
            name,
            value: value.to_owned(),
            span,
        });
        Ok(escape)
    }
}

/// Match `^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$` (RE2 `\s`: space, tab, CR, FF).
fn split_directive(line: &str) -> Option<(&str, &str)> {
    comment_directive(line.strip_prefix('#')?)
}

/// The `name=value` of a comment's text (without its `#`), as BuildKit's directive parser
/// reads a comment: `^\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$`. The name is returned as
/// written (directive names are case-insensitive).
///
/// BuildKit reads `# check=skip=Rule` comments directly above an instruction this way
/// (`Linter.WithMergedConfigFromComments`), wherever they are in the file.
pub fn comment_directive(comment: &str) -> Option<(&str, &str)> {
    let blank = |c: char| matches!(c, ' ' | '\t' | '\r' | '\u{c}');
    let rest = comment.trim_start_matches(blank);
    let name_len = rest
        .char_indices()
        .find(|&(i, c)| !(c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit())))
        .map_or(rest.len(), |(i, _)| i);
    if name_len == 0 {
        return None;
    }
    let (name, rest) = rest.split_at(name_len);
    let value = rest
        .trim_start_matches(blank)
        .strip_prefix('=')?
        .trim_matches(blank);
    if value.is_empty() {
        return None;
    }
    Some((name, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directive_syntax() {
        assert_eq!(split_directive("# escape=`"), Some(("escape", "`")));
        assert_eq!(
            split_directive("#syntax = a/b:1 "),
            Some(("syntax", "a/b:1"))
        );
        assert_eq!(split_directive("# escape ="), None);
        assert_eq!(split_directive("# 1a=b"), None);
        assert_eq!(split_directive("# a b=c"), None);
        assert_eq!(
            comment_directive("check=skip=all // local"),
            Some(("check", "skip=all // local"))
        );
        assert_eq!(comment_directive("just a comment"), None);
    }

    #[test]
    fn block_ends_at_first_non_directive() {
        let mut s = DirectiveScanner::default();
        let r = TextRange::default();
        assert_eq!(s.line("# syntax=x", r).unwrap(), None);
        assert_eq!(s.line("# hello", r).unwrap(), None);
        assert_eq!(s.line("# escape=`", r).unwrap(), None);
        assert_eq!(s.found.len(), 1);
        let mut s = DirectiveScanner::default();
        s.line("# check=skip=all", r).unwrap();
        let err = s.line("# CHECK=error=true", r).unwrap_err();
        assert_eq!(err.kind, ParseErrorKind::DuplicateDirective("check".into()));
    }
}
