//! The one error type of the shell-word lexer.

/// Why a shell word could not be expanded.
///
/// Messages use BuildKit's wording so that users see the same text from kiln as from
/// `docker build`. BuildKit prefixes each of them with `failed to process "<word>": `; that
/// context belongs to the caller, which knows the instruction and the span of the word.
///
/// Every variant carries `offset`, the byte offset within the processed word of the construct
/// that failed: the opening quote of an unterminated quote, or the `$` of the `${...}` whose
/// expansion failed. It is always on a `char` boundary of the word, so a caller can point a
/// caret at it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ShellError {
    /// `${}`, `${:...}`, `${{...}` or `${}...`: nothing usable follows `${`.
    #[error("syntax error: bad substitution")]
    BadSubstitution {
        /// Offset of the `$`.
        offset: usize,
    },
    /// The word ended inside `${...`.
    ///
    /// This also covers an error in the nested word of a modifier that ran to the end of the
    /// input (an unterminated quote in `${A:-'x}` is reported as a missing `}`, as BuildKit
    /// does).
    #[error("syntax error: missing '}}'")]
    MissingBrace {
        /// Offset of the `$`.
        offset: usize,
    },
    /// The word ended inside the pattern of `${VAR/pattern/replacement}`.
    #[error("syntax error: missing '/' in ${{}}")]
    MissingSlash {
        /// Offset of the `$`.
        offset: usize,
    },
    /// A `'` was never closed.
    #[error("unexpected end of statement while looking for matching single-quote")]
    UnterminatedSingleQuote {
        /// Offset of the opening `'`.
        offset: usize,
    },
    /// A `"` was never closed.
    #[error("unexpected end of statement while looking for matching double-quote")]
    UnterminatedDoubleQuote {
        /// Offset of the opening `"`.
        offset: usize,
    },
    /// A modifier BuildKit does not implement, such as `${A=x}`, `${A:=x}`, `${A:#x}` or
    /// `${A.}`.
    #[error("unsupported modifier ({modifier}) in substitution")]
    UnsupportedModifier {
        /// The modifier as written, with its `:` when it had one (`=`, `:=`, `:#`, `.`).
        modifier: String,
        /// Offset of the `$`.
        offset: usize,
    },
    /// `${VAR//p/r}` produced more than the limit (nested replacements multiply sizes).
    #[error("expansion larger than {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: usize,
        /// Offset of the `$`.
        offset: usize,
    },
    /// `${VAR?msg}` or `${VAR:?msg}` met an unset variable.
    #[error("{name}: {}", message.as_deref().unwrap_or("is not allowed to be unset"))]
    UnsetVariable {
        /// The variable's name.
        name: String,
        /// The expanded message after `?`; `None` when it was empty.
        message: Option<String>,
        /// Offset of the `$`.
        offset: usize,
    },
    /// `${VAR:?msg}` met a variable that is set but empty.
    #[error("{name}: {}", message.as_deref().unwrap_or("is not allowed to be empty"))]
    EmptyVariable {
        /// The variable's name.
        name: String,
        /// The expanded message after `:?`; `None` when it was empty.
        message: Option<String>,
        /// Offset of the `$`.
        offset: usize,
    },
    /// A pattern of `#`, `%` or `/` holds a `\` that escapes neither `*`, `?`, `\`, `}` nor
    /// `/`.
    #[error(
        "invalid pattern ({pattern}) in substitution: invalid escape '\\{}'",
        escaped.unwrap_or(char::REPLACEMENT_CHARACTER)
    )]
    InvalidPatternEscape {
        /// The pattern after expansion (without the doubled `#`/`%` of a greedy match), as
        /// written. (For `%`, BuildKit shows the pattern reversed, an artefact of how it
        /// matches suffixes; kiln shows it as the user wrote it.)
        pattern: String,
        /// The character after the `\`; `None` when the pattern ended there (shown as `�`,
        /// as Go prints its end-of-input rune).
        escaped: Option<char>,
        /// Offset of the `$`.
        offset: usize,
    },
}

impl ShellError {
    /// The byte offset within the word of the construct that failed.
    pub fn offset(&self) -> usize {
        match self {
            Self::BadSubstitution { offset }
            | Self::MissingBrace { offset }
            | Self::MissingSlash { offset }
            | Self::UnterminatedSingleQuote { offset }
            | Self::UnterminatedDoubleQuote { offset }
            | Self::UnsupportedModifier { offset, .. }
            | Self::UnsetVariable { offset, .. }
            | Self::EmptyVariable { offset, .. }
            | Self::InvalidPatternEscape { offset, .. }
            | Self::TooLarge { offset, .. } => *offset,
        }
    }
}
