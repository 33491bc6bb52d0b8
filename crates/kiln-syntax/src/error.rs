//! Parse errors. Each carries the byte range it is about; the binary renders the snippet.

use crate::diagnostic::Diagnostic;
use crate::span::TextRange;

/// Why a Dockerfile could not be parsed. Messages follow BuildKit's wording.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseErrorKind {
    /// The file holds no instruction (empty, or only comments and blank lines).
    #[error("file with no instructions")]
    NoInstructions,
    /// A physical line is longer than BuildKit's scanner accepts.
    #[error("dockerfile line greater than max allowed size of 65535")]
    LineTooLong,
    /// The text is not UTF-8.
    #[error("dockerfile is not valid UTF-8")]
    InvalidUtf8,
    /// A parser directive appears twice.
    #[error("only one {0} parser directive can be used")]
    DuplicateDirective(String),
    /// `# escape=` with something other than `\` or `` ` ``.
    #[error("invalid escape token '{0}' does not match ` or \\")]
    InvalidEscape(String),
    /// `ENV key` / `LABEL key` with no value.
    #[error("{0} must have two arguments")]
    MissingValue(&'static str),
    /// `ENV a=1 b` / `LABEL a=1 b`: a word without `=` in the `name=value` form.
    #[error("Syntax error - can't find = in {0:?}. Must be of the form: name=value")]
    MissingEquals(String),
    /// JSON form whose array holds something other than strings.
    #[error("when using JSON array syntax, arrays must be comprised of strings only")]
    NotStringArray,
    /// A heredoc whose terminator never came.
    #[error("unterminated heredoc `{0}`")]
    UnterminatedHeredoc(String),
    /// The heredoc delimiter word could not be lexed.
    #[error("invalid heredoc delimiter: {0}")]
    HeredocDelimiter(String),
}

/// A parse error with its location.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{kind}")]
pub struct ParseError {
    /// What went wrong.
    pub kind: ParseErrorKind,
    /// The bytes it is about (an empty range points between two characters).
    pub span: TextRange,
    /// What would be valid instead, when there is something useful to say.
    pub hint: Option<String>,
}

impl ParseError {
    pub(crate) fn new(kind: ParseErrorKind, span: TextRange) -> Self {
        let hint = match &kind {
            ParseErrorKind::NoInstructions => {
                Some("a Dockerfile needs at least one instruction, such as `FROM scratch`".into())
            }
            ParseErrorKind::InvalidEscape(_) => {
                Some("use `# escape=\\` (the default) or `# escape=``".into())
            }
            ParseErrorKind::MissingValue(kw) => Some(format!("write `{kw} name=value`")),
            ParseErrorKind::MissingEquals(_) => {
                Some("each word must be `name=value`; quote values that contain spaces".into())
            }
            ParseErrorKind::NotStringArray => {
                Some("write every element as a JSON string, e.g. `[\"a\", \"b\"]`".into())
            }
            ParseErrorKind::UnterminatedHeredoc(name) => {
                Some(format!("end the heredoc with a line holding only `{name}`"))
            }
            ParseErrorKind::LineTooLong => {
                Some("split the line with a continuation (`\\` at the end of a line)".into())
            }
            ParseErrorKind::DuplicateDirective(_) => Some("remove the repeated directive".into()),
            ParseErrorKind::InvalidUtf8 => Some("save the Dockerfile as UTF-8".into()),
            ParseErrorKind::HeredocDelimiter(_) => {
                Some("write a delimiter such as `<<EOF`, `<<-EOF`, `<<\"EOF\"` or `<<'EOF'`".into())
            }
        };
        Self { kind, span, hint }
    }

    /// This error as a [`Diagnostic`] (rule `SyntaxError`), for rendering.
    pub fn to_diagnostic(&self) -> Diagnostic {
        Diagnostic::error("SyntaxError", self.span, self.kind.to_string())
            .with_hint(self.hint.clone())
    }
}

impl From<&ParseError> for Diagnostic {
    fn from(e: &ParseError) -> Self {
        e.to_diagnostic()
    }
}
