//! Dockerfile text to an AST with byte spans, exactly as BuildKit's parser reads it, plus the
//! shell-word lexer that expands `$VAR`, `${VAR:-x}` and friends.
//!
//! This crate knows text only: lines, continuations, comments, parser directives, heredocs,
//! `--flag` words, JSON versus shell form. It does not know what an instruction *means*
//! (that is `kiln-frontend`), nor files, images or processes.
//!
//! Every node keeps the byte range it came from ([`TextRange`]); [`LineIndex`] turns ranges
//! into lines and columns when an error is rendered. Warnings and errors alike become a
//! [`Diagnostic`] (rule, severity, range, message, hint, URL), the one shape every layer
//! reports in and the binary renders.

#![forbid(unsafe_code)]

mod ast;
pub mod diagnostic;
mod directives;
mod dump;
mod error;
mod heredoc;
mod line_parsers;
mod parser;
pub mod shell;
mod span;

pub use ast::{Directive, Dockerfile, Heredoc, Instruction, Word};
pub use diagnostic::{Diagnostic, Severity};
pub use directives::comment_directive;
pub use dump::{dump, go_quote};
pub use error::{ParseError, ParseErrorKind};
pub use heredoc::{Delimiter as HeredocDelimiter, parse_word as parse_heredoc_word};
pub use parser::{parse, parse_bytes};
pub use span::{LineCol, LineIndex, TextRange};
