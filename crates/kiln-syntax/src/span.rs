//! Byte ranges into the Dockerfile source, and their translation to lines and columns.

use std::fmt;

/// A half-open byte range `start..end` into the source text.
///
/// It is a logic error for `start` to be greater than `end`. Ranges are attached once, where
/// the parser sees the text, and turned into lines and columns only when rendered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TextRange {
    /// First byte of the range.
    pub start: usize,
    /// One past the last byte of the range.
    pub end: usize,
}

impl TextRange {
    /// A range from `start` to `end`.
    pub const fn new(start: usize, end: usize) -> Self {
        Self { start, end }
    }

    /// An empty range at `offset`, for errors that point between two characters.
    pub const fn empty(offset: usize) -> Self {
        Self {
            start: offset,
            end: offset,
        }
    }

    /// The number of bytes covered.
    pub const fn len(self) -> usize {
        self.end - self.start
    }

    /// Whether the range covers no byte.
    pub const fn is_empty(self) -> bool {
        self.start == self.end
    }

    /// The smallest range covering both `self` and `other`.
    #[must_use]
    pub fn cover(self, other: Self) -> Self {
        Self {
            start: self.start.min(other.start),
            end: self.end.max(other.end),
        }
    }
}

impl fmt::Display for TextRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}..{}", self.start, self.end)
    }
}

/// A 1-based line and column. The column counts characters, not bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct LineCol {
    /// 1-based line number.
    pub line: usize,
    /// 1-based column, in characters.
    pub col: usize,
}

impl fmt::Display for LineCol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.col)
    }
}

/// Where each line of a source text starts, to turn byte offsets into lines and columns.
#[derive(Clone, Debug)]
pub struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    /// Index the line starts of `source` (lines end at `\n`).
    pub fn new(source: &str) -> Self {
        let mut starts = vec![0];
        starts.extend(
            source
                .bytes()
                .enumerate()
                .filter(|&(_, b)| b == b'\n')
                .map(|(i, _)| i + 1),
        );
        Self { starts }
    }

    /// The line and column of byte `offset` in `source` (the text this index was built from).
    ///
    /// An offset inside a multi-byte character counts as that character.
    pub fn line_col(&self, source: &str, offset: usize) -> LineCol {
        let offset = offset.min(source.len());
        let line0 = self.starts.partition_point(|&s| s <= offset) - 1;
        let start = self.starts[line0];
        let col = source
            .get(start..offset)
            .map_or(offset - start, |s| s.chars().count());
        LineCol {
            line: line0 + 1,
            col: col + 1,
        }
    }

    /// The byte range of 1-based `line` without its line ending.
    pub fn line_range(&self, source: &str, line: usize) -> TextRange {
        let start = self.starts.get(line - 1).copied().unwrap_or(source.len());
        let mut end = self.starts.get(line).copied().unwrap_or(source.len());
        let bytes = source.as_bytes();
        while end > start && matches!(bytes[end - 1], b'\n' | b'\r') {
            end -= 1;
        }
        TextRange::new(start, end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_characters() {
        let src = "FROM a\nRUN ♥x\n";
        let idx = LineIndex::new(src);
        assert_eq!(idx.line_col(src, 0), LineCol { line: 1, col: 1 });
        assert_eq!(idx.line_col(src, 7), LineCol { line: 2, col: 1 });
        let x = src.find('x').unwrap();
        assert_eq!(idx.line_col(src, x), LineCol { line: 2, col: 6 });
        assert_eq!(idx.line_range(src, 2), TextRange::new(7, 15));
    }
}
