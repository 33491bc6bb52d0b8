//! One shape for everything kiln says about a Dockerfile: parse warnings, planner warnings
//! and errors alike, as BuildKit's `linter.LinterRule` warnings carry a rule name, a
//! description, a URL and a location.
//!
//! A [`Diagnostic`] holds a byte range, never a line or a file name: the binary, which knows
//! the file, turns it into a snippet or a JSON object at the edge. This crate knows no
//! serialization format, so the JSON shape lives in the binary too.

use std::fmt;

use crate::span::TextRange;

/// How bad a [`Diagnostic`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Severity {
    /// The file is accepted, but something in it is deprecated or probably a mistake.
    Warning,
    /// The file (or the step) cannot be built.
    Error,
}

impl Severity {
    /// The lowercase word used in rendered output: `warning` or `error`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Warning => "warning",
            Self::Error => "error",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Something to tell the user about a range of a Dockerfile.
///
/// `rule` is a stable code that tools may match on. Where BuildKit has a linter rule for the
/// same finding, it is BuildKit's name (`NoEmptyContinuation`), so that a `# check=skip=`
/// list written for BuildKit means the same to kiln; kiln's own findings and error classes
/// use names of the same form (`StageNameTypo`, `SyntaxError`). A rule's name never changes
/// once released; its message may.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// The stable rule (for warnings) or error class (for errors) name, in `UpperCamelCase`.
    pub rule: &'static str,
    /// Warning or error.
    pub severity: Severity,
    /// The bytes it is about; an empty range points between two characters.
    pub span: TextRange,
    /// What is wrong, in one sentence (BuildKit's wording where BuildKit says the same).
    pub message: String,
    /// What to do about it, when something useful can be said.
    pub hint: Option<String>,
    /// Where to read more (the rule's documentation).
    pub url: Option<String>,
}

impl Diagnostic {
    /// A warning about `span`, without hint or URL.
    pub fn warning(rule: &'static str, span: TextRange, message: impl Into<String>) -> Self {
        Self::new(rule, Severity::Warning, span, message)
    }

    /// An error about `span`, without hint or URL.
    pub fn error(rule: &'static str, span: TextRange, message: impl Into<String>) -> Self {
        Self::new(rule, Severity::Error, span, message)
    }

    /// A diagnostic of any severity, without hint or URL.
    pub fn new(
        rule: &'static str,
        severity: Severity,
        span: TextRange,
        message: impl Into<String>,
    ) -> Self {
        Self {
            rule,
            severity,
            span,
            message: message.into(),
            hint: None,
            url: None,
        }
    }

    /// With a hint; `None` leaves it without one.
    #[must_use]
    pub fn with_hint(mut self, hint: impl Into<Option<String>>) -> Self {
        self.hint = hint.into();
        self
    }

    /// With a documentation URL.
    #[must_use]
    pub fn with_url(mut self, url: impl Into<String>) -> Self {
        self.url = Some(url.into());
        self
    }
}

/// `severity: message`, as a one-line summary (the binary draws the full snippet).
impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.severity, self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builders_fill_every_field() {
        let d = Diagnostic::warning("NoEmptyContinuation", TextRange::new(3, 9), "empty line")
            .with_hint(Some("remove it".to_owned()))
            .with_url("https://example.com/rule");
        assert_eq!(d.rule, "NoEmptyContinuation");
        assert_eq!(d.severity, Severity::Warning);
        assert_eq!(d.span, TextRange::new(3, 9));
        assert_eq!(d.message, "empty line");
        assert_eq!(d.hint.as_deref(), Some("remove it"));
        assert_eq!(d.url.as_deref(), Some("https://example.com/rule"));
        assert_eq!(d.to_string(), "warning: empty line");
    }

    #[test]
    fn errors_have_no_hint_until_given_one() {
        let d = Diagnostic::error("SyntaxError", TextRange::empty(0), "bad").with_hint(None);
        assert_eq!(d.severity, Severity::Error);
        assert_eq!(d.hint, None);
        assert_eq!(d.url, None);
        assert_eq!(Severity::Error.as_str(), "error");
        assert!(Severity::Warning < Severity::Error);
    }
}
