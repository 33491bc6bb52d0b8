//! The expansion pass: one left-to-right scan of a word, as BuildKit's `shellWord` does it.
//!
//! It produces, in the same pass, the expanded word and the word split into fields, and records
//! which variables were looked up.

use std::collections::BTreeSet;

use super::chars::{is_digit, is_letter, is_space, is_special_param};
use super::pattern::{self, Glob};
use super::{Env, Lexer, ShellError};

/// What one expansion produced.
pub(super) struct Output {
    pub(super) result: String,
    pub(super) words: Vec<String>,
    pub(super) matched: BTreeSet<String>,
    pub(super) unmatched: BTreeSet<String>,
}

/// Expand `word` with `lexer`'s options and `env`.
pub(super) fn expand(lexer: &Lexer, word: &str, env: &dyn Env) -> Result<Output, ShellError> {
    // Go's `text/scanner` skips a byte-order mark at the very start of its input.
    let start = if word.starts_with('\u{FEFF}') {
        '\u{FEFF}'.len_utf8()
    } else {
        0
    };
    let mut expander = Expander {
        lexer,
        env,
        src: word,
        pos: start,
        raw_escapes: lexer.raw_escapes,
        fields_buf: String::new(),
        matched: BTreeSet::new(),
        unmatched: BTreeSet::new(),
    };
    let (result, words) = expander.until(None, lexer.raw_escapes)?;
    Ok(Output {
        result,
        words,
        matched: expander.matched,
        unmatched: expander.unmatched,
    })
}

/// The scanning state of one expansion.
struct Expander<'a> {
    lexer: &'a Lexer,
    env: &'a dyn Env,
    src: &'a str,
    /// Byte offset of the next character.
    pos: usize,
    /// Whether escape characters are kept in the output; nested words switch it.
    raw_escapes: bool,
    /// The field being built by word splitting.
    ///
    /// Note to future maintainers: this buffer is shared by the nested scans of `${A:-word}`
    /// and friends, and each scan clears it when it starts, because BuildKit's
    /// `shellWord.wordsBuffer` behaves that way (since its 2024 allocation optimisation). So
    /// `ProcessWords("x${A:-y}z")` is `["yz"]` in BuildKit, not `["xyz"]`, and kiln must agree.
    /// The expanded string itself is not affected.
    fields_buf: String,
    matched: BTreeSet<String>,
    unmatched: BTreeSet<String>,
}

/// The fields finished so far in one scan, and whether a field is open.
#[derive(Default)]
struct Fields {
    done: Vec<String>,
    in_word: bool,
}

impl<'a> Expander<'a> {
    fn peek(&self) -> Option<char> {
        self.src[self.pos..].chars().next()
    }

    fn bump(&mut self) -> Option<char> {
        let ch = self.peek()?;
        self.pos += ch.len_utf8();
        Some(ch)
    }

    fn at_end(&self) -> bool {
        self.pos == self.src.len()
    }

    /// Look a variable up and record whether it was set.
    fn lookup(&mut self, name: &str) -> Option<&'a str> {
        let env: &'a dyn Env = self.env;
        let value = env.get(name);
        let seen = if value.is_some() {
            &mut self.matched
        } else {
            &mut self.unmatched
        };
        if !seen.contains(name) {
            seen.insert(name.to_owned());
        }
        value
    }

    /// A character that splits fields when it is whitespace.
    fn add_char(&mut self, fields: &mut Fields, ch: char) {
        if !is_space(ch) {
            self.add_raw_char(fields, ch);
        } else if fields.in_word && !self.fields_buf.is_empty() {
            fields.done.push(std::mem::take(&mut self.fields_buf));
            fields.in_word = false;
        }
    }

    /// A character that never splits fields (quoted or escaped).
    fn add_raw_char(&mut self, fields: &mut Fields, ch: char) {
        self.fields_buf.push(ch);
        fields.in_word = true;
    }

    fn add_raw_str(&mut self, fields: &mut Fields, s: &str) {
        self.fields_buf.push_str(s);
        fields.in_word = true;
    }

    fn finish_fields(&mut self, mut fields: Fields) -> Vec<String> {
        if !self.fields_buf.is_empty() {
            fields.done.push(std::mem::take(&mut self.fields_buf));
        }
        fields.done
    }

    /// Scan up to `stop` (consumed) or, with `None`, to the end of the word.
    ///
    /// `raw_escapes` applies to this scan only. Reaching the end before `stop` is an error that
    /// every caller replaces by its own (missing `}` or `/`), so its value here is a
    /// placeholder.
    fn until(
        &mut self,
        stop: Option<char>,
        raw_escapes: bool,
    ) -> Result<(String, Vec<String>), ShellError> {
        let saved = std::mem::replace(&mut self.raw_escapes, raw_escapes);
        let scanned = self.scan_until(stop);
        self.raw_escapes = saved;
        scanned
    }

    fn scan_until(&mut self, stop: Option<char>) -> Result<(String, Vec<String>), ShellError> {
        let mut result = String::new();
        self.fields_buf.clear();
        let mut fields = Fields::default();
        let quotes = !self.lexer.skip_process_quotes;
        while let Some(ch) = self.peek() {
            if Some(ch) == stop {
                self.bump();
                return Ok((result, self.finish_fields(fields)));
            }
            match ch {
                '$' => {
                    let value = self.dollar()?;
                    result.push_str(&value);
                    for ch in value.chars() {
                        self.add_char(&mut fields, ch);
                    }
                }
                '\'' | '"' if quotes => {
                    let value = if ch == '\'' {
                        self.single_quoted()?
                    } else {
                        self.double_quoted()?
                    };
                    result.push_str(&value);
                    self.add_raw_str(&mut fields, &value);
                }
                '<' => {
                    let value = self.possible_heredoc();
                    result.push_str(&value);
                    self.add_raw_str(&mut fields, &value);
                }
                _ => {
                    self.bump();
                    if ch == self.lexer.escape {
                        if self.raw_escapes {
                            self.add_raw_char(&mut fields, ch);
                            result.push(ch);
                        }
                        // An escape at the very end is dropped.
                        let Some(escaped) = self.bump() else { break };
                        self.add_raw_char(&mut fields, escaped);
                        result.push(escaped);
                    } else {
                        self.add_char(&mut fields, ch);
                        result.push(ch);
                    }
                }
            }
        }
        if stop.is_some() {
            return Err(ShellError::MissingBrace { offset: self.pos });
        }
        Ok((result, self.finish_fields(fields)))
    }

    /// `'...'`: everything is literal up to the next `'`; nothing escapes.
    fn single_quoted(&mut self) -> Result<String, ShellError> {
        let offset = self.pos;
        self.bump();
        let mut out = String::new();
        if self.lexer.raw_quotes {
            out.push('\'');
        }
        loop {
            match self.bump() {
                None => return Err(ShellError::UnterminatedSingleQuote { offset }),
                Some('\'') => {
                    if self.lexer.raw_quotes {
                        out.push('\'');
                    }
                    return Ok(out);
                }
                Some(ch) => out.push(ch),
            }
        }
    }

    /// `"..."`: `$` expands, and the escape character escapes only `"`, `$` and itself.
    fn double_quoted(&mut self) -> Result<String, ShellError> {
        let offset = self.pos;
        self.bump();
        let mut out = String::new();
        if self.lexer.raw_quotes {
            out.push('"');
        }
        loop {
            match self.peek() {
                None => return Err(ShellError::UnterminatedDoubleQuote { offset }),
                Some('"') => {
                    self.bump();
                    if self.lexer.raw_quotes {
                        out.push('"');
                    }
                    return Ok(out);
                }
                Some('$') => {
                    let value = self.dollar()?;
                    out.push_str(&value);
                }
                Some(mut ch) => {
                    self.bump();
                    let escape = self.lexer.escape;
                    if ch == escape {
                        if self.raw_escapes {
                            out.push(ch);
                        }
                        match self.peek() {
                            // An escape before the end is dropped; the quote is unterminated.
                            None => continue,
                            Some(next) if next == '"' || next == '$' || next == escape => {
                                self.bump();
                                ch = next;
                            }
                            // Any other escape is literal.
                            Some(_) => {}
                        }
                    }
                    out.push(ch);
                }
            }
        }
    }

    /// `<` or `<<` plus the blanks after it, which word splitting keeps with the heredoc
    /// operator (`<<  EOF` is one field).
    fn possible_heredoc(&mut self) -> String {
        self.bump();
        if self.peek() != Some('<') {
            return "<".to_owned();
        }
        self.bump();
        let mut out = "<<".to_owned();
        while let Some(ch @ (' ' | '\t' | '\r')) = self.peek() {
            self.bump();
            out.push(ch);
        }
        out
    }

    /// A variable name: a run of letters, digits and `_`; or a run of digits (a positional
    /// parameter); or one special parameter character. Empty if none of those follows.
    fn name(&mut self) -> String {
        let mut name = String::new();
        while let Some(ch) = self.peek() {
            if name.is_empty() && is_digit(ch) {
                while let Some(digit) = self.peek().filter(|&ch| is_digit(ch)) {
                    self.bump();
                    name.push(digit);
                }
                return name;
            }
            if name.is_empty() && is_special_param(ch) {
                self.bump();
                return ch.to_string();
            }
            if !is_letter(ch) && !is_digit(ch) && ch != '_' {
                break;
            }
            self.bump();
            name.push(ch);
        }
        name
    }

    /// `$NAME`, `${NAME}` or `${NAME<modifier>...}`, at a `$`.
    fn dollar(&mut self) -> Result<String, ShellError> {
        let offset = self.pos;
        self.bump();
        if self.peek() != Some('{') {
            let name = self.name();
            if name.is_empty() {
                return Ok("$".to_owned());
            }
            return Ok(match self.lookup(&name) {
                Some(value) => value.to_owned(),
                None if self.lexer.skip_unset_env => format!("${name}"),
                None => String::new(),
            });
        }
        self.bump();
        match self.peek() {
            None => return Err(ShellError::MissingBrace { offset }),
            Some('{' | '}' | ':') => return Err(ShellError::BadSubstitution { offset }),
            Some(_) => {}
        }
        let name = self.name();
        // BuildKit reports the end of the word right after the name as "unsupported modifier
        // (\u{fffd})"; kiln says what is wrong instead.
        let Some(modifier) = self.bump() else {
            return Err(ShellError::MissingBrace { offset });
        };
        match modifier {
            '}' => Ok(match self.lookup(&name) {
                Some(value) => value.to_owned(),
                None if self.lexer.skip_unset_env => format!("${{{name}}}"),
                None => String::new(),
            }),
            ':' => {
                // The end of the word here is a missing `}` (BuildKit scans the empty rest).
                let Some(op) = self.bump() else {
                    return Err(ShellError::MissingBrace { offset });
                };
                self.modifier(offset, &name, true, op)
            }
            '+' | '-' | '?' | '#' | '%' => self.modifier(offset, &name, false, modifier),
            '/' => self.replace(offset, &name),
            other => Err(ShellError::UnsupportedModifier {
                modifier: other.to_string(),
                offset,
            }),
        }
    }

    /// Scan the nested word of a modifier up to `stop`; reaching the end of the input, however
    /// it happened, is reported by `at_end`.
    fn nested(
        &mut self,
        stop: char,
        raw_escapes: bool,
        at_end: ShellError,
    ) -> Result<String, ShellError> {
        match self.until(Some(stop), raw_escapes) {
            Ok((word, _fields)) => Ok(word),
            Err(_) if self.at_end() => Err(at_end),
            Err(err) => Err(err),
        }
    }

    /// `${NAME[:]op word}` for `op` in `- + ? # %` (and any other `op` after `:`, an error).
    fn modifier(
        &mut self,
        offset: usize,
        name: &str,
        colon: bool,
        op: char,
    ) -> Result<String, ShellError> {
        let modifier = if colon {
            format!(":{op}")
        } else {
            op.to_string()
        };
        let pattern_op = op == '#' || op == '%';
        if colon && pattern_op {
            return Err(ShellError::UnsupportedModifier { modifier, offset });
        }
        let word = self.nested('}', pattern_op, ShellError::MissingBrace { offset })?;
        let value = self.lookup(name);
        if value.is_none() && self.lexer.skip_unset_env {
            return Ok(format!("${{{name}{modifier}{word}}}"));
        }
        // With `:`, a set but empty variable counts as unset.
        let usable = value.filter(|value| !(colon && value.is_empty()));
        match op {
            '-' => Ok(usable.map_or(word, str::to_owned)),
            '+' => Ok(if usable.is_some() {
                word
            } else {
                String::new()
            }),
            '?' => {
                let message = (!word.is_empty()).then_some(word);
                match value {
                    None => Err(ShellError::UnsetVariable {
                        name: name.to_owned(),
                        message,
                        offset,
                    }),
                    Some("") if colon => Err(ShellError::EmptyVariable {
                        name: name.to_owned(),
                        message,
                        offset,
                    }),
                    Some(value) => Ok(value.to_owned()),
                }
            }
            '#' | '%' => {
                let value = value.unwrap_or_default();
                // A doubled operator (`##`, `%%`) asks for the longest match. BuildKit checks
                // the expanded word, so `${A#$B}` with `B=#x` is greedy too.
                let (pattern, greedy) = match word.strip_prefix(op) {
                    Some(rest) => (rest, true),
                    None => (word.as_str(), false),
                };
                let trimmed = if op == '#' {
                    pattern::trim_prefix(pattern, value, greedy)
                } else {
                    pattern::trim_suffix(pattern, value, greedy)
                };
                trimmed.map_err(|escaped| ShellError::InvalidPatternEscape {
                    pattern: pattern.to_owned(),
                    escaped,
                    offset,
                })
            }
            _ => Err(ShellError::UnsupportedModifier { modifier, offset }),
        }
    }

    /// `${NAME/pattern/replacement}` and `${NAME//pattern/replacement}`, after the first `/`.
    fn replace(&mut self, offset: usize, name: &str) -> Result<String, ShellError> {
        let all = self.peek() == Some('/');
        if all {
            self.bump();
        }
        let pattern = self.nested('/', true, ShellError::MissingSlash { offset })?;
        let replacement = self.nested('}', true, ShellError::MissingBrace { offset })?;
        let value = self.lookup(name);
        if value.is_none() && self.lexer.skip_unset_env {
            // BuildKit writes a single `/` back even for `//`.
            return Ok(format!("${{{name}/{pattern}/{replacement}}}"));
        }
        let glob =
            Glob::parse(&pattern, true).map_err(|escaped| ShellError::InvalidPatternEscape {
                pattern: pattern.clone(),
                escaped,
                offset,
            })?;
        let value = value.unwrap_or_default();
        if all {
            pattern::replace_all(&glob, value, &replacement).ok_or(ShellError::TooLarge {
                limit: pattern::MAX_EXPANSION,
                offset,
            })
        } else {
            Ok(pattern::replace_first(&glob, value, &replacement))
        }
    }
}
