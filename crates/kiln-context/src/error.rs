//! The errors of this crate: [`PatternError`] for a pattern list on its own, and
//! [`ContextError`] once a pattern is tied to the file and line it came from.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// A pattern list that patternmatcher would reject, either when it is built
/// ([`PatternMatcher::new`](crate::PatternMatcher::new)) or when a path is matched.
///
/// `index` is the position of the offending pattern in the list given to `new` (counting
/// blank entries), so that callers can map it back to a line or a `--exclude` flag.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    /// A pattern that is only `!`. Upstream's message is kept word for word.
    #[error("illegal exclusion pattern: \"!\"")]
    IllegalExclusion {
        /// Position of the pattern in the input list.
        index: usize,
    },
    /// A pattern Go's `filepath.Match` or `regexp.Compile` rejects (Go's `ErrBadPattern`).
    ///
    /// Some of these (`[Local-Only]`) pass the check in `new` and only fail when a path is
    /// matched, on every call, as upstream does.
    #[error("syntax error in pattern `{pattern}`")]
    BadPattern {
        /// Position of the pattern in the input list.
        index: usize,
        /// The pattern after cleaning, without its leading `!`.
        pattern: String,
    },
    /// A [`MatchInfo`](crate::MatchInfo) from a different matcher was passed in.
    #[error("parent match results hold {got} values but the matcher has {expected} patterns")]
    MatchInfoMismatch {
        /// Number of patterns in the matcher.
        expected: usize,
        /// Number of values in the match info.
        got: usize,
    },
}

impl PatternError {
    /// Position of the offending pattern in the input list, when there is one.
    pub fn index(&self) -> Option<usize> {
        match self {
            Self::IllegalExclusion { index } | Self::BadPattern { index, .. } => Some(*index),
            Self::MatchInfoMismatch { .. } => None,
        }
    }
}

/// Where a set of ignore patterns came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IgnoreSource {
    /// No ignore file exists: nothing is excluded.
    NoFile,
    /// An ignore file (`<Dockerfile>.dockerignore` or `.dockerignore`), as a full path.
    File(PathBuf),
    /// Patterns given directly, such as `COPY --exclude` flags, in order.
    Exclude,
}

impl fmt::Display for IgnoreSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoFile => f.write_str("no ignore file"),
            Self::File(path) => write!(f, "`{}`", path.display()),
            Self::Exclude => f.write_str("`--exclude`"),
        }
    }
}

/// The place a pattern came from: its source and 1-based line (or position among the
/// `--exclude` flags).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternLocation {
    /// The ignore file, or [`IgnoreSource::Exclude`].
    pub source: IgnoreSource,
    /// 1-based line number in the file, or 1-based position among the patterns given directly.
    pub line: usize,
}

impl fmt::Display for PatternLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.source {
            IgnoreSource::Exclude => write!(f, "`--exclude` pattern {}", self.line),
            source => write!(f, "{source} line {}", self.line),
        }
    }
}

/// Everything that can fail while finding, reading and applying build context rules.
#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    /// An ignore file exists but cannot be read.
    #[error("failed to read ignore file `{}`", path.display())]
    ReadIgnoreFile {
        /// The ignore file.
        path: PathBuf,
        /// The I/O failure.
        #[source]
        source: io::Error,
    },
    /// A line of an ignore file is 64 KiB or longer, which Go's line scanner refuses.
    #[error("line {line} of ignore file `{}` is too long (64 KiB or more)", path.display())]
    IgnoreLineTooLong {
        /// The ignore file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
    },
    /// A pattern is rejected when the rules are built.
    #[error("invalid pattern `{pattern}` at {location}")]
    InvalidPattern {
        /// Where the pattern came from.
        location: PatternLocation,
        /// The pattern as written after ignore-file normalisation (with its `!`).
        pattern: String,
        /// What is wrong with it.
        #[source]
        source: PatternError,
    },
    /// A pattern that was accepted fails when a path is matched against it.
    #[error("pattern `{pattern}` at {location} cannot be matched against `{path}`")]
    MatchFailed {
        /// The context-relative path being matched.
        path: String,
        /// Where the pattern came from.
        location: PatternLocation,
        /// The pattern as written after ignore-file normalisation.
        pattern: String,
        /// What is wrong with it.
        #[source]
        source: PatternError,
    },
    /// Reading the context directory failed.
    #[error("failed to read `{}` in the build context", path.display())]
    Walk {
        /// The file or directory (a full path).
        path: PathBuf,
        /// The I/O failure.
        #[source]
        source: io::Error,
    },
}

impl ContextError {
    /// A short suggestion to print on a `hint:` line after the error, when there is one.
    pub fn hint(&self) -> Option<&'static str> {
        let pattern_error = match self {
            Self::InvalidPattern { source, .. } | Self::MatchFailed { source, .. } => source,
            Self::IgnoreLineTooLong { .. } => {
                return Some("split the line; each pattern needs its own line");
            }
            _ => return None,
        };
        match pattern_error {
            PatternError::IllegalExclusion { .. } => Some(
                "a `!` must be followed by the path to re-include; remove the line or complete it",
            ),
            PatternError::BadPattern { .. } => Some(
                "patterns use Go `filepath.Match` syntax: close every `[`, do not start a class with `]` or `-`, \
                 complete every range `a-z`, and escape a trailing `\\`",
            ),
            PatternError::MatchInfoMismatch { .. } => None,
        }
    }
}
