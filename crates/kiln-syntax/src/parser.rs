//! The line loop: physical lines to logical instructions, as BuildKit's `parser.Parse`.
//!
//! BuildKit reads lines with a 64 KiB scanner, strips a BOM from the first, recognises
//! directives at the top, drops comment lines (also inside continuations), joins continuation
//! lines (keeping the indentation of every line but the first), skips whitespace-only lines
//! inside a continuation (with a warning), then reads heredoc bodies after the logical line.

use std::ops::Range;

use crate::ast::{Dockerfile, Heredoc, Instruction, Word};
use crate::diagnostic::Diagnostic;
use crate::directives::DirectiveScanner;
use crate::error::{ParseError, ParseErrorKind};
use crate::heredoc;
use crate::line_parsers::{ArgParser, extract_flags, is_split_space};
use crate::span::TextRange;

/// BuildKit's scanner refuses lines longer than this (excluding the newline).
const MAX_LINE: usize = 65535;

/// Parse Dockerfile bytes; text that is not UTF-8 is an error pointing at the first bad byte.
pub fn parse_bytes(source: &[u8]) -> Result<Dockerfile, ParseError> {
    match std::str::from_utf8(source) {
        Ok(text) => parse(text),
        Err(e) => Err(ParseError::new(
            ParseErrorKind::InvalidUtf8,
            TextRange::new(e.valid_up_to(), e.valid_up_to() + 1),
        )),
    }
}

/// Parse a Dockerfile.
pub fn parse(source: &str) -> Result<Dockerfile, ParseError> {
    Parser::new(source).run()
}

/// A physical line: where it starts, its text without the line ending, and its end (after
/// the line ending).
#[derive(Clone, Copy)]
struct PhysLine<'a> {
    start: usize,
    text: &'a str,
    next: usize,
}

/// The logical line being built, and where each piece of it came from.
#[derive(Default)]
struct Logical {
    text: String,
    /// (offset in `text`, offset in the source) for each piece, ascending.
    pieces: Vec<(usize, usize)>,
}

impl Logical {
    fn push(&mut self, piece: &str, source_offset: usize) {
        self.pieces.push((self.text.len(), source_offset));
        self.text.push_str(piece);
    }

    /// Source offset of logical offset `at`.
    fn source(&self, at: usize) -> usize {
        let i = self
            .pieces
            .partition_point(|&(l, _)| l <= at)
            .saturating_sub(1);
        self.pieces.get(i).map_or(at, |&(l, s)| s + (at - l))
    }

    /// Source range of the logical range `r`.
    fn range(&self, r: Range<usize>) -> TextRange {
        if r.is_empty() {
            return TextRange::empty(self.source(r.start));
        }
        TextRange::new(self.source(r.start), self.source(r.end - 1) + 1)
    }
}

struct Parser<'a> {
    source: &'a str,
    pos: usize,
    line_no: usize,
    escape: char,
    directives: DirectiveScanner,
}

impl<'a> Parser<'a> {
    fn new(source: &'a str) -> Self {
        Self {
            source,
            pos: 0,
            line_no: 0,
            escape: '\\',
            directives: DirectiveScanner::default(),
        }
    }

    /// The next physical line, or `None` at the end of the text.
    fn next_line(&mut self) -> Result<Option<PhysLine<'a>>, ParseError> {
        if self.pos >= self.source.len() {
            return Ok(None);
        }
        let mut start = self.pos;
        let rest = &self.source[start..];
        let (raw, next) = match rest.find('\n') {
            Some(i) => (&rest[..i], start + i + 1),
            None => (rest, self.source.len()),
        };
        let mut text = raw.trim_end_matches(['\r', '\n']);
        if text.len() > MAX_LINE {
            return Err(ParseError::new(
                ParseErrorKind::LineTooLong,
                TextRange::new(start + MAX_LINE, start + text.len()),
            ));
        }
        if self.line_no == 0
            && let Some(stripped) = text.strip_prefix('\u{feff}')
        {
            text = stripped;
            start += '\u{feff}'.len_utf8();
        }
        self.pos = next;
        self.line_no += 1;
        Ok(Some(PhysLine { start, text, next }))
    }

    fn run(mut self) -> Result<Dockerfile, ParseError> {
        let mut instructions = Vec::new();
        let mut warnings = Vec::new();
        let mut comments: Vec<String> = Vec::new();

        while let Some(line) = self.next_line()? {
            let trimmed = trim_leading_ws(line.text);
            let lead = line.text.len() - trimmed.len();
            let line_span = TextRange::new(line.start, line.start + line.text.len());
            let directives_before = self.directives.found.len();
            if let Some(esc) = self.directives.line(trimmed, line_span)? {
                self.escape = esc;
            }
            if let Some(comment) = trimmed.strip_prefix('#') {
                let comment = comment.trim();
                // A parser directive is not a comment of the instruction after it (BuildKit
                // strips it from `PrevComment`), so that `# check=` at the top of the file
                // is read once, as the file's setting.
                if self.directives.found.len() > directives_before {
                    continue;
                }
                if comment.is_empty() {
                    comments.clear();
                } else {
                    comments.push(comment.to_owned());
                }
                continue;
            }
            let start_line = self.line_no;
            let first_start = line.start + lead;
            let (piece, mut end_of_line) = trim_continuation(trimmed, self.escape);
            if end_of_line && piece.is_empty() {
                continue;
            }
            let mut logical = Logical::default();
            logical.push(piece, first_start);
            let mut last_end = line.start + line.text.len();
            let mut empty_continuation = false;
            while !end_of_line {
                let Some(next) = self.next_line()? else { break };
                let stripped = trim_leading_ws(next.text);
                self.directives.line(
                    next.text,
                    TextRange::new(next.start, next.start + next.text.len()),
                )?;
                if stripped.starts_with('#') {
                    continue;
                }
                if stripped.is_empty() {
                    empty_continuation = true;
                    continue;
                }
                let (piece, eol) = trim_continuation(next.text, self.escape);
                end_of_line = eol;
                logical.push(piece, next.start);
                last_end = next.start + next.text.len();
            }
            let span = TextRange::new(first_start, last_end);
            if empty_continuation {
                // BuildKit's parser warning, which its linter reports as this rule.
                warnings.push(
                    Diagnostic::warning(
                        "NoEmptyContinuation",
                        span,
                        format!("Empty continuation line found in: {}", logical.text),
                    )
                    .with_hint(
                        "empty continuation lines will become errors in a future release: remove the blank line"
                            .to_owned(),
                    )
                    .with_url("https://docs.docker.com/go/dockerfile/rule/no-empty-continuation/"),
                );
            }
            let mut inst = self.node_from_line(
                &logical,
                0..logical.text.len(),
                std::mem::take(&mut comments),
            )?;
            inst.span = span;
            inst.start_line = start_line;
            if inst.can_contain_heredoc() && logical.text.contains("<<") {
                let docs = heredoc::from_line(&logical.text)
                    .map_err(|(kind, r)| ParseError::new(kind, logical.range(r)))?;
                for doc in docs {
                    let body = self.read_heredoc(&doc, span)?;
                    inst.span = inst.span.cover(body.span);
                    inst.heredocs.push(body);
                }
            }
            inst.end_line = self.line_no;
            if let Some(t) = inst.trigger.as_deref_mut() {
                t.start_line = inst.start_line;
                t.end_line = inst.end_line;
                t.heredocs = std::mem::take(&mut inst.heredocs);
            }
            instructions.push(inst);
        }

        if instructions.is_empty() {
            return Err(ParseError::new(
                ParseErrorKind::NoInstructions,
                TextRange::empty(self.source.len()),
            ));
        }
        Ok(Dockerfile {
            directives: self.directives.found,
            escape: self.escape,
            instructions,
            warnings,
        })
    }

    /// Read the body of one heredoc, up to its terminator line.
    fn read_heredoc(
        &mut self,
        doc: &heredoc::Delimiter,
        inst_span: TextRange,
    ) -> Result<Heredoc, ParseError> {
        let body_start = self.pos;
        let mut content = String::new();
        while let Some(line) = self.next_line()? {
            let candidate = if doc.chomp {
                line.text.trim_start_matches('\t')
            } else {
                line.text
            };
            if candidate == doc.name {
                return Ok(Heredoc {
                    name: doc.name.clone(),
                    content: if doc.chomp {
                        heredoc::chomp(&content)
                    } else {
                        content
                    },
                    expand: doc.expand,
                    chomp: doc.chomp,
                    file_descriptor: doc.file_descriptor,
                    span: TextRange::new(body_start, line.start + line.text.len()),
                });
            }
            content.push_str(&self.source[line.start..line.next]);
        }
        Err(ParseError::new(
            ParseErrorKind::UnterminatedHeredoc(doc.name.clone()),
            inst_span,
        ))
    }

    /// BuildKit's `newNodeFromLine` over `logical.text[range]`.
    fn node_from_line(
        &self,
        logical: &Logical,
        range: Range<usize>,
        comments: Vec<String>,
    ) -> Result<Instruction, ParseError> {
        let line = &logical.text[range.clone()];
        let trimmed = line.trim();
        let base = range.start + (line.len() - line.trim_start().len());
        let kw_len = trimmed.find(is_split_space).unwrap_or(trimmed.len());
        let keyword = &trimmed[..kw_len];
        let keyword_word = Word::new(keyword, logical.range(base..base + kw_len));
        let after_kw = &trimmed[kw_len..];
        let args_base =
            base + kw_len + (after_kw.len() - after_kw.trim_start_matches(is_split_space).len());
        let after_kw = after_kw.trim_start_matches(is_split_space);
        let (flags, rest_at) = if trimmed.len() > kw_len {
            extract_flags(after_kw)
        } else {
            (vec![], 0)
        };
        let rest_raw = &after_kw[rest_at..];
        let rest = rest_raw.trim();
        let rest_base = args_base + rest_at + (rest_raw.len() - rest_raw.trim_start().len());
        let to_word = |(text, r): (String, Range<usize>), at: usize| {
            Word::new(text, logical.range(at + r.start..at + r.end))
        };
        let flags = flags.into_iter().map(|f| to_word(f, args_base)).collect();
        let lower = keyword.to_ascii_lowercase();
        let parser = ArgParser::for_keyword(&lower);
        let mut inst = Instruction {
            keyword: keyword_word,
            flags,
            args: vec![],
            json: false,
            trigger: None,
            heredocs: vec![],
            original: line.to_owned(),
            comments,
            span: logical.range(range.clone()),
            start_line: 0,
            end_line: 0,
        };
        if parser == ArgParser::SubCommand {
            if !rest.is_empty() {
                let sub =
                    self.node_from_line(logical, rest_base..rest_base + rest.len(), vec![])?;
                inst.trigger = Some(Box::new(sub));
            }
            return Ok(inst);
        }
        let parsed = parser.parse(rest, self.escape).map_err(|(kind, r)| {
            ParseError::new(kind, logical.range(rest_base + r.start..rest_base + r.end))
        })?;
        inst.json = parsed.json;
        inst.args = parsed
            .args
            .into_iter()
            .map(|w| to_word(w, rest_base))
            .collect();
        Ok(inst)
    }
}

impl Instruction {
    /// Whether heredocs after this instruction are read: RUN, COPY and ADD in shell form
    /// (also as an ONBUILD trigger).
    fn can_contain_heredoc(&self) -> bool {
        let node = match &self.trigger {
            Some(t) => t,
            None => self,
        };
        matches!(node.name().as_str(), "run" | "copy" | "add") && !node.json
    }
}

/// BuildKit's `trimLeadingWhitespace`: spaces and tabs.
fn trim_leading_ws(s: &str) -> &str {
    s.trim_start_matches([' ', '\t'])
}

/// BuildKit's continuation regex `([^E])E[ \t]*$|^E[ \t]*$` (E = the escape character):
/// returns the line without the escape and whether the logical line ends here.
fn trim_continuation(line: &str, escape: char) -> (&str, bool) {
    let t = line.trim_end_matches([' ', '\t']);
    if let Some(before) = t.strip_suffix(escape)
        && (before.is_empty() || !before.ends_with(escape))
    {
        return (before, false);
    }
    (line, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continuation_rules() {
        assert_eq!(trim_continuation("a \\", '\\'), ("a ", false));
        assert_eq!(trim_continuation("a \\  \t", '\\'), ("a ", false));
        assert_eq!(trim_continuation("\\", '\\'), ("", false));
        assert_eq!(trim_continuation("a\\\\", '\\'), ("a\\\\", true));
        assert_eq!(trim_continuation("a `", '`'), ("a ", false));
        assert_eq!(trim_continuation("a \\", '`'), ("a \\", true));
    }

    #[test]
    fn spans_point_into_the_source() {
        let src = "FROM x\nRUN --mount=type=cache,target=/c \\\n    echo hi\n";
        let df = parse(src).unwrap();
        let run = &df.instructions[1];
        assert_eq!(&src[run.keyword.span.start..run.keyword.span.end], "RUN");
        let flag = &run.flags[0];
        assert_eq!(
            &src[flag.span.start..flag.span.end],
            "--mount=type=cache,target=/c"
        );
        let arg = &run.args[0];
        assert_eq!(arg.text, "echo hi");
        assert_eq!(&src[arg.span.start..arg.span.end], "echo hi");
        assert_eq!((run.start_line, run.end_line), (2, 3));
    }

    #[test]
    fn crlf_and_bom() {
        let df = parse("\u{feff}FROM a\r\nRUN b \\\r\n c\r\n").unwrap();
        assert_eq!(df.instructions[1].args[0].text, "b  c");
    }

    #[test]
    fn long_line_is_an_error() {
        let src = format!("FROM a\nRUN {}\n", "x".repeat(70_000));
        let err = parse(&src).unwrap_err();
        assert_eq!(err.kind, ParseErrorKind::LineTooLong);
        let ok = format!("FROM a\nRUN {}\n", "x".repeat(65_000));
        assert!(parse(&ok).is_ok());
    }
}
