//! Rendering of errors for people: the one place that draws source snippets and carets.
//!
//! Library crates return typed errors carrying byte ranges; commands wrap them in a
//! [`SourceError`] with the file's name and text, and [`print_error`] draws
//!
//! ```text
//! error: unknown flag: --form (did you mean --from?)
//!   --> Dockerfile:4:6
//!    |
//!  4 | COPY --form=x a b
//!    |      ^^^^^^^^
//!    = hint: ...
//! ```
//!
//! No colour is used, so the output reads the same with or without a terminal (and
//! `NO_COLOR` is honoured trivially).

use std::fmt;
use std::fmt::Write as _;
use std::path::PathBuf;

use kiln_syntax::{LineIndex, TextRange};

/// An error about a range of a source file.
#[derive(Debug)]
pub struct SourceError {
    /// The file, as the user named it.
    pub file: PathBuf,
    /// The file's text.
    pub source: String,
    /// The bytes the error is about.
    pub span: TextRange,
    /// The message (lowercase, no trailing period).
    pub message: String,
    /// What would be valid instead.
    pub hint: Option<String>,
}

impl fmt::Display for SourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let index = LineIndex::new(&self.source);
        let at = index.line_col(&self.source, self.span.start);
        write!(
            f,
            "{}:{}:{}: {}",
            self.file.display(),
            at.line,
            at.col,
            self.message
        )
    }
}

impl std::error::Error for SourceError {}

impl SourceError {
    /// Render the full diagnostic: message, location, the line with a caret, hint.
    pub fn render(&self) -> String {
        self.render_as("error")
    }

    /// Render with another severity word (`warning`).
    pub fn render_as(&self, severity: &str) -> String {
        let index = LineIndex::new(&self.source);
        let start = index.line_col(&self.source, self.span.start);
        let line_range = index.line_range(&self.source, start.line);
        let line = &self.source[line_range.start..line_range.end];
        let end_in_line = self.span.end.clamp(self.span.start, line_range.end);
        let width = self
            .source
            .get(self.span.start..end_in_line)
            .map_or(1, |s| s.chars().count())
            .max(1);
        let gutter = start.line.to_string().len();
        let pad = " ".repeat(gutter);
        let mut out = format!("{severity}: {}\n", self.message);
        let _ = writeln!(
            out,
            "{pad}--> {}:{}:{}",
            self.file.display(),
            start.line,
            start.col
        );
        let _ = writeln!(out, "{pad} |");
        let _ = writeln!(out, "{} | {}", start.line, line.replace('\t', " "));
        let _ = writeln!(
            out,
            "{pad} | {}{}",
            " ".repeat(start.col - 1),
            "^".repeat(width)
        );
        if let Some(hint) = &self.hint {
            let _ = writeln!(out, "{pad} = hint: {hint}");
        }
        out
    }
}

/// Print an error and its causes to stderr; source errors get a snippet.
pub fn print_error(err: &anyhow::Error) {
    if let Some(src) = err.downcast_ref::<SourceError>() {
        eprint!("{}", src.render());
        return;
    }
    eprintln!("error: {err}");
    for cause in err.chain().skip(1) {
        eprintln!("  caused by: {cause}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_a_caret_under_the_span() {
        let source = "FROM a\nCOPY --form=x a b\n".to_owned();
        let e = SourceError {
            file: "Dockerfile".into(),
            span: TextRange::new(12, 20),
            source,
            message: "unknown flag: --form".into(),
            hint: Some("did you mean --from?".into()),
        };
        assert_eq!(
            e.render(),
            "error: unknown flag: --form\n --> Dockerfile:2:6\n  |\n2 | COPY --form=x a b\n  |      ^^^^^^^^\n  = hint: did you mean --from?\n"
        );
        assert_eq!(e.to_string(), "Dockerfile:2:6: unknown flag: --form");
    }
}
