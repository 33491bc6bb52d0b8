//! Finding and reading the ignore file, as BuildKit's `dockerui` and
//! `patternmatcher/ignorefile.ReadAll` do, and the resulting [`IgnoreRules`].

use std::io;
use std::path::{Path, PathBuf};

use crate::error::{ContextError, IgnoreSource, PatternError, PatternLocation};
use crate::gopath;
use crate::matcher::PatternMatcher;

/// The ignore file name at the root of the build context.
pub const DOCKERIGNORE: &str = ".dockerignore";

/// Go's `bufio.Scanner` refuses lines of this many bytes or more.
const MAX_LINE: usize = 64 * 1024;

/// One pattern read from an ignore file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IgnoreLine {
    /// 1-based line number in the file (or position among `--exclude` patterns).
    pub line: usize,
    /// The pattern as `ReadAll` emits it: trimmed, cleaned, leading `/` removed, `!` kept.
    pub pattern: String,
}

/// A line of an ignore file is too long for Go's line scanner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineTooLong {
    /// 1-based line number.
    pub line: usize,
}

/// Splits ignore-file contents into patterns exactly as `ignorefile.ReadAll` does.
///
/// Per line (split at `\n`, one trailing `\r` dropped): a UTF-8 byte order mark is removed
/// from line 1; a line whose first byte is `#` is a comment (`  #x` is a pattern); the rest is
/// trimmed and skipped when empty; a leading `!` marks an exception and the text after it is
/// trimmed again; a non-empty body is cleaned with Go's `filepath.Clean` and loses one leading
/// `/` unless it is just `/`; the `!` is put back. A bare `!` survives here and is rejected by
/// [`PatternMatcher::new`].
///
/// Invalid UTF-8 is replaced with U+FFFD (Go keeps the raw bytes; such patterns could only
/// match equally invalid file names).
pub fn read_ignore_lines(data: &[u8]) -> Result<Vec<IgnoreLine>, LineTooLong> {
    let mut lines = Vec::new();
    let mut rest = data;
    let mut line = 0;
    while !rest.is_empty() {
        let (raw, tail) = match rest.iter().position(|&b| b == b'\n') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, &rest[rest.len()..]),
        };
        rest = tail;
        line += 1;
        if raw.len() >= MAX_LINE {
            return Err(LineTooLong { line });
        }
        let mut raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        if line == 1 {
            raw = raw.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(raw);
        }
        if raw.first() == Some(&b'#') {
            continue;
        }
        let text = String::from_utf8_lossy(raw);
        let text = text.trim();
        if text.is_empty() {
            continue;
        }
        let (invert, body) = match text.strip_prefix('!') {
            Some(body) => (true, body.trim()),
            None => (false, text),
        };
        let mut pattern = String::new();
        if invert {
            pattern.push('!');
        }
        if !body.is_empty() {
            let cleaned = gopath::clean(body);
            let cleaned = match cleaned.strip_prefix('/') {
                Some(relative) if !relative.is_empty() => relative,
                _ => cleaned.as_str(),
            };
            pattern.push_str(cleaned);
        }
        lines.push(IgnoreLine { line, pattern });
    }
    Ok(lines)
}

/// The exclusion rules of a build context (or of one `COPY --exclude`), with their origin.
///
/// Knows which file the patterns came from and on which lines, so that every error and
/// explanation can point at the line to fix.
#[derive(Debug, Clone)]
pub struct IgnoreRules {
    source: IgnoreSource,
    lines: Vec<IgnoreLine>,
    matcher: PatternMatcher,
}

impl IgnoreRules {
    /// Rules that exclude nothing.
    pub fn empty() -> Self {
        Self {
            source: IgnoreSource::NoFile,
            lines: Vec::new(),
            matcher: PatternMatcher::default(),
        }
    }

    /// Finds and reads the ignore file for a build, as BuildKit's `dockerui` does.
    ///
    /// `<Dockerfile-name>.dockerignore` beside the Dockerfile (`build/app.Dockerfile` →
    /// `build/app.Dockerfile.dockerignore`) wins when it exists, even when empty; otherwise
    /// `.dockerignore` at the root of `context_dir` is used; otherwise nothing is excluded.
    /// A path that is missing or is a directory counts as absent (BuildKit ignores read
    /// errors there); any other read error is reported rather than silently ignored.
    ///
    /// The Dockerfile and the ignore file themselves may well be excluded by the rules;
    /// they are read for the build regardless.
    pub fn for_build(context_dir: &Path, dockerfile: &Path) -> Result<Self, ContextError> {
        if let Some(name) = dockerfile.file_name() {
            let mut specific = name.to_os_string();
            specific.push(".dockerignore");
            let specific = dockerfile.with_file_name(specific);
            if let Some(rules) = Self::read_if_present(&specific)? {
                return Ok(rules);
            }
        }
        Ok(Self::read_if_present(&context_dir.join(DOCKERIGNORE))?.unwrap_or_else(Self::empty))
    }

    /// Parses ignore-file contents that were read from `path` (used for messages only).
    pub fn parse(data: &[u8], path: PathBuf) -> Result<Self, ContextError> {
        let lines = read_ignore_lines(data).map_err(|LineTooLong { line }| {
            ContextError::IgnoreLineTooLong {
                path: path.clone(),
                line,
            }
        })?;
        Self::build(IgnoreSource::File(path), lines)
    }

    /// Rules from patterns given directly, such as `COPY --exclude` flags.
    ///
    /// These go straight to the matcher, as in BuildKit: no comment handling, no removal of a
    /// leading `/`.
    pub fn from_patterns<S: AsRef<str>>(patterns: &[S]) -> Result<Self, ContextError> {
        let lines = patterns
            .iter()
            .enumerate()
            .map(|(i, p)| IgnoreLine {
                line: i + 1,
                pattern: p.as_ref().to_owned(),
            })
            .collect();
        Self::build(IgnoreSource::Exclude, lines)
    }

    fn read_if_present(path: &Path) -> Result<Option<Self>, ContextError> {
        match std::fs::read(path) {
            Ok(data) => Self::parse(&data, path.to_owned()).map(Some),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::IsADirectory
                ) =>
            {
                Ok(None)
            }
            Err(source) => Err(ContextError::ReadIgnoreFile {
                path: path.to_owned(),
                source,
            }),
        }
    }

    fn build(source: IgnoreSource, lines: Vec<IgnoreLine>) -> Result<Self, ContextError> {
        match PatternMatcher::new(lines.iter().map(|l| l.pattern.as_str())) {
            Ok(matcher) => Ok(Self {
                source,
                lines,
                matcher,
            }),
            Err(error) => {
                let rules = Self {
                    source,
                    lines,
                    matcher: PatternMatcher::default(),
                };
                Err(rules.pattern_error(error, None))
            }
        }
    }

    /// Where the rules came from.
    pub fn source(&self) -> &IgnoreSource {
        &self.source
    }

    /// The patterns with their line numbers, in file order.
    pub fn lines(&self) -> &[IgnoreLine] {
        &self.lines
    }

    /// The compiled matcher; its pattern indexes are indexes into [`lines`](Self::lines).
    pub fn matcher(&self) -> &PatternMatcher {
        &self.matcher
    }

    /// The line a pattern of [`matcher`](Self::matcher) came from, by its
    /// [`index`](crate::Pattern::index).
    pub fn location(&self, index: usize) -> PatternLocation {
        let line = self.lines.get(index).map_or(index + 1, |l| l.line);
        PatternLocation {
            source: self.source.clone(),
            line,
        }
    }

    /// Whether `path` (relative, slash-separated) is excluded, checking its ancestors too:
    /// what BuildKit does when a single file is opened from the context.
    pub fn is_excluded(&self, path: &str) -> Result<bool, ContextError> {
        self.matcher
            .matches(path)
            .map_err(|e| self.pattern_error(e, Some(path)))
    }

    /// Attaches the file, line and pattern to a matcher error; `path` is the path being
    /// matched, if any.
    pub(crate) fn pattern_error(&self, source: PatternError, path: Option<&str>) -> ContextError {
        let index = source.index().unwrap_or(0);
        let location = self.location(index);
        let pattern = self
            .lines
            .get(index)
            .map(|l| l.pattern.clone())
            .unwrap_or_default();
        match path {
            Some(path) => ContextError::MatchFailed {
                path: path.to_owned(),
                location,
                pattern,
                source,
            },
            None => ContextError::InvalidPattern {
                location,
                pattern,
                source,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{IgnoreLine, LineTooLong, read_ignore_lines};

    fn patterns(text: &str) -> Vec<String> {
        read_ignore_lines(text.as_bytes())
            .unwrap()
            .into_iter()
            .map(|l| l.pattern)
            .collect()
    }

    #[test]
    fn keeps_line_numbers() {
        let lines = read_ignore_lines(b"# c\n\nfoo\r\n  bar/ \n").unwrap();
        assert_eq!(
            lines,
            vec![
                IgnoreLine {
                    line: 3,
                    pattern: "foo".into()
                },
                IgnoreLine {
                    line: 4,
                    pattern: "bar".into()
                }
            ]
        );
    }

    #[test]
    fn bom_only_on_first_line() {
        assert_eq!(patterns("\u{feff}#c\n\u{feff}x"), vec!["\u{feff}x"]);
    }

    #[test]
    fn indented_hash_is_a_pattern() {
        assert_eq!(patterns("  #x\n#y"), vec!["#x"]);
    }

    #[test]
    fn exclusion_forms() {
        assert_eq!(
            patterns("!\n! \n! /a/../b/\n!!x\n/\n./\n"),
            vec!["!", "!", "!b", "!!x", "/", "."]
        );
    }

    #[test]
    fn long_lines_are_refused() {
        let mut data = vec![b'a'; 65_535];
        assert!(read_ignore_lines(&data).is_ok());
        data.push(b'a');
        assert_eq!(read_ignore_lines(&data), Err(LineTooLong { line: 1 }));
    }
}
