//! The parsed Dockerfile: directives, instructions in source order, and parse warnings.
//!
//! The shape follows BuildKit's `parser.Node` closely enough that `dump` reproduces
//! `Node.Dump()` byte for byte, but it is flattened: an instruction's `Next` chain is the `args`
//! vector, and ONBUILD's child node is `trigger`.

use crate::diagnostic::Diagnostic;
use crate::span::TextRange;

/// A parsed Dockerfile.
#[derive(Clone, Debug)]
pub struct Dockerfile {
    /// The parser directives found in the leading comment block (`escape`, `syntax`, `check`).
    pub directives: Vec<Directive>,
    /// The escape character in force: `\` unless `# escape=` chose `` ` ``.
    pub escape: char,
    /// The instructions in source order.
    pub instructions: Vec<Instruction>,
    /// Things that parse but are deprecated, such as empty continuation lines (warnings
    /// named after BuildKit's linter rules).
    pub warnings: Vec<Diagnostic>,
}

impl Dockerfile {
    /// The value of directive `name` (lowercase), if the file sets it.
    pub fn directive(&self, name: &str) -> Option<&Directive> {
        self.directives.iter().find(|d| d.name == name)
    }
}

/// A parser directive such as `# escape=\`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Directive {
    /// The lowercased name: `escape`, `syntax` or `check`.
    pub name: String,
    /// The value, trimmed.
    pub value: String,
    /// The whole directive line.
    pub span: TextRange,
}

/// A piece of text with the source range it came from.
///
/// Words produced from several physical lines (continuations) span from the first to the last
/// byte they cover; words decoded from JSON span the whole JSON array.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Word {
    /// The text, after whatever processing the instruction's argument parser does.
    pub text: String,
    /// Where it came from.
    pub span: TextRange,
}

impl Word {
    /// A word with its text and range.
    pub fn new(text: impl Into<String>, span: TextRange) -> Self {
        Self {
            text: text.into(),
            span,
        }
    }
}

/// One instruction (one logical line, plus any heredoc bodies that follow it).
#[derive(Clone, Debug)]
pub struct Instruction {
    /// The keyword as written (`from`, `FROM`, `From` ...).
    pub keyword: Word,
    /// The leading `--flag` words, with quotes removed and escapes applied; a `--` ending the
    /// flags is dropped.
    pub flags: Vec<Word>,
    /// The arguments, as BuildKit's per-instruction parser splits them (see `line_parsers`).
    /// ENV and LABEL hold triples (key, value, separator) where the separator is `=` or "".
    pub args: Vec<Word>,
    /// Whether the arguments were written in JSON (exec) form.
    pub json: bool,
    /// ONBUILD's trigger instruction.
    pub trigger: Option<Box<Instruction>>,
    /// Heredoc bodies, in the order their `<<` words appear.
    pub heredocs: Vec<Heredoc>,
    /// The logical line (continuations joined, comments removed), as BuildKit's `Original`.
    pub original: String,
    /// The comment lines directly before the instruction, without `#` (BuildKit's PrevComment).
    pub comments: Vec<String>,
    /// From the keyword to the end of the last line (heredoc terminators included).
    pub span: TextRange,
    /// 1-based first line.
    pub start_line: usize,
    /// 1-based last line, heredoc terminators included.
    pub end_line: usize,
}

impl Instruction {
    /// The lowercased keyword (`run`, `copy` ...), as BuildKit dispatches on it.
    pub fn name(&self) -> String {
        self.keyword.text.to_ascii_lowercase()
    }

    /// The argument texts.
    pub fn arg_texts(&self) -> Vec<&str> {
        self.args.iter().map(|w| w.text.as_str()).collect()
    }
}

/// A heredoc attached to an instruction: `<<EOF` ... `EOF`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Heredoc {
    /// The delimiter word, unquoted (`EOF` for `<<"EOF"`).
    pub name: String,
    /// The body: every line up to the terminator, line endings kept, with leading tabs
    /// already removed when `chomp` is set.
    pub content: String,
    /// Whether variables in the body are expanded (no part of the delimiter was quoted).
    pub expand: bool,
    /// `<<-`: leading tabs are stripped from body lines and the terminator.
    pub chomp: bool,
    /// The file descriptor number written before `<<` (`3<<EOF`); 0 when none.
    pub file_descriptor: u32,
    /// The body and its terminator line.
    pub span: TextRange,
}
