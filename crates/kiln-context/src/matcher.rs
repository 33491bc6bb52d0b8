//! The pattern list matcher, with patternmatcher's evaluation order and parent-directory rules.

use crate::error::PatternError;
use crate::glob_syntax::is_valid_glob;
use crate::gopath;
use crate::pattern::Pattern;

/// An ordered list of `.dockerignore`-style patterns, matched as moby/patternmatcher does.
///
/// This is the matcher BuildKit uses for `.dockerignore`, `COPY --exclude` and `ADD
/// --exclude`. Paths are slash-separated and relative to the context root (`dir/file`, no
/// leading `./`); they are not cleaned for you, exactly as upstream's methods do not clean
/// them.
///
/// Evaluation: patterns run in order and the last one that applies wins. An ordinary pattern
/// is only tried while the path is not (yet) matched, and an exception (`!pattern`) only while
/// it is. A pattern applies when it matches the path itself or one of its ancestor
/// directories, so `docs` matches `docs/README.md`.
#[derive(Debug, Clone, Default)]
pub struct PatternMatcher {
    patterns: Vec<Pattern>,
    exclusions: bool,
}

/// Per-pattern results for a directory, handed to its children so that they need not re-match
/// the ancestors (upstream's `MatchInfo`).
///
/// The default value carries no information; matching with it falls back to trying every
/// ancestor.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MatchInfo {
    parent_matched: Vec<bool>,
}

impl PatternMatcher {
    /// Builds a matcher the way `patternmatcher.New` does.
    ///
    /// Each pattern is trimmed (blank ones are skipped), passed through Go's `filepath.Clean`
    /// (before its `!` is removed, so `!foo/` becomes `!foo`), split into exclusion flag and
    /// body, and syntax-checked as `filepath.Match` would. A bare `!` is
    /// [`PatternError::IllegalExclusion`]. Patterns whose regular expression turns out to be
    /// invalid are accepted here and fail on every match, as upstream.
    pub fn new<I, S>(patterns: I) -> Result<Self, PatternError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut matcher = Self::default();
        for (index, raw) in patterns.into_iter().enumerate() {
            let trimmed = raw.as_ref().trim();
            if trimmed.is_empty() {
                continue;
            }
            let cleaned = gopath::clean(trimmed);
            let (exclusion, body) = match cleaned.strip_prefix('!') {
                Some("") => return Err(PatternError::IllegalExclusion { index }),
                Some(body) => (true, body),
                None => (false, cleaned.as_str()),
            };
            if !is_valid_glob(body) {
                return Err(PatternError::BadPattern {
                    index,
                    pattern: body.to_owned(),
                });
            }
            matcher.exclusions |= exclusion;
            matcher
                .patterns
                .push(Pattern::new(body.to_owned(), exclusion, index));
        }
        Ok(matcher)
    }

    /// The patterns that were kept, in order.
    pub fn patterns(&self) -> &[Pattern] {
        &self.patterns
    }

    /// Whether there are no patterns (nothing is ever matched).
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Whether any pattern is an exception (`!pattern`).
    pub fn has_exclusions(&self) -> bool {
        self.exclusions
    }

    /// Whether `path` is matched (excluded), trying the path and every ancestor directory
    /// against each pattern: upstream's `MatchesOrParentMatches`, used for single lookups.
    pub fn matches(&self, path: &str) -> Result<bool, PatternError> {
        let parent = gopath::dir(path);
        let mut matched = false;
        for pattern in &self.patterns {
            if pattern.is_exclusion() != matched {
                continue;
            }
            let hit = Self::try_match(pattern, path)?
                || (parent != "." && any_ancestor_matches(pattern, &parent));
            if hit {
                matched = !pattern.is_exclusion();
            }
        }
        Ok(matched)
    }

    /// Like [`matches`](Self::matches), but reusing the per-pattern results of the parent
    /// directory: upstream's `MatchesUsingParentResults`, which the context walker uses.
    ///
    /// Returns the result and the info to pass when matching this path's children. With a
    /// default (empty) `parent`, every ancestor is tried instead. A pattern the parent matched
    /// counts as matching the child, whatever the current state; one that was skipped for the
    /// parent is re-evaluated against the child alone.
    pub fn matches_using_parent_results(
        &self,
        path: &str,
        parent: &MatchInfo,
    ) -> Result<(bool, MatchInfo), PatternError> {
        let parent_matched = &parent.parent_matched;
        if !parent_matched.is_empty() && parent_matched.len() != self.patterns.len() {
            return Err(PatternError::MatchInfoMismatch {
                expected: self.patterns.len(),
                got: parent_matched.len(),
            });
        }
        let mut matched = false;
        let mut info = MatchInfo {
            parent_matched: vec![false; self.patterns.len()],
        };
        for (i, pattern) in self.patterns.iter().enumerate() {
            let mut hit = parent_matched.get(i).copied().unwrap_or(false);
            if !hit {
                if pattern.is_exclusion() != matched {
                    continue;
                }
                hit = Self::try_match(pattern, path)?;
                if !hit && parent_matched.is_empty() {
                    let parent_path = gopath::dir(path);
                    hit = parent_path != "." && any_ancestor_matches(pattern, &parent_path);
                }
            }
            info.parent_matched[i] = hit;
            if hit {
                matched = !pattern.is_exclusion();
            }
        }
        Ok((matched, info))
    }

    /// Upstream's deprecated `PatternMatcher.Matches`: like [`matches`](Self::matches) but it
    /// tries only the one ancestor with as many elements as the pattern.
    ///
    /// Kept because upstream's `TestMatch` corpus is written against it; kiln itself never
    /// uses it.
    pub fn matches_single_parent(&self, path: &str) -> Result<bool, PatternError> {
        let parent = gopath::dir(path);
        let parent_dirs: Vec<&str> = parent.split('/').collect();
        let mut matched = false;
        for pattern in &self.patterns {
            if pattern.is_exclusion() != matched {
                continue;
            }
            let mut hit = Self::try_match(pattern, path)?;
            if !hit && parent != "." && pattern.depth() <= parent_dirs.len() {
                hit = pattern
                    .is_match(&parent_dirs[..pattern.depth()].join("/"))
                    .unwrap_or(false);
            }
            if hit {
                matched = !pattern.is_exclusion();
            }
        }
        Ok(matched)
    }

    fn try_match(pattern: &Pattern, path: &str) -> Result<bool, PatternError> {
        pattern
            .is_match(path)
            .map_err(|()| PatternError::BadPattern {
                index: pattern.index(),
                pattern: pattern.as_str().to_owned(),
            })
    }
}

/// Whether `pattern` matches one of the ancestors `a`, `a/b`, ... spelled by `parent`. Errors
/// are ignored here, as upstream does: the path itself was matched first and would have failed.
fn any_ancestor_matches(pattern: &Pattern, parent: &str) -> bool {
    let mut end = 0;
    loop {
        let next = parent[end..].find('/').map(|i| end + i);
        let prefix = &parent[..next.unwrap_or(parent.len())];
        if pattern.is_match(prefix).unwrap_or(false) {
            return true;
        }
        match next {
            Some(i) => end = i + 1,
            None => return false,
        }
    }
}

/// Upstream's deprecated package-level `patternmatcher.Matches(file, patterns)`: builds a
/// matcher, cleans `file`, never matches `.`, and uses the single-parent rule.
///
/// Only for conformance with upstream's `TestMatch` corpus.
pub fn legacy_matches<S: AsRef<str>>(file: &str, patterns: &[S]) -> Result<bool, PatternError> {
    let matcher = PatternMatcher::new(patterns)?;
    let file = gopath::clean(file);
    if file == "." {
        return Ok(false);
    }
    matcher.matches_single_parent(&file)
}

#[cfg(test)]
mod tests {
    use super::{MatchInfo, PatternMatcher};
    use crate::error::PatternError;

    fn m(patterns: &[&str], path: &str) -> bool {
        PatternMatcher::new(patterns)
            .unwrap()
            .matches(path)
            .unwrap()
    }

    #[test]
    fn last_match_wins() {
        assert!(!m(&["*.go", "!fileutils.go"], "fileutils.go"));
        assert!(m(&["!fileutils.go", "*.go"], "fileutils.go"));
        assert!(!m(&["docs", "!docs/README.md"], "docs/README.md"));
        assert!(m(&["docs", "!docs/README.md"], "docs/other"));
    }

    #[test]
    fn bare_bang_is_illegal() {
        assert_eq!(
            PatternMatcher::new(["a", " ! "]).unwrap_err(),
            PatternError::IllegalExclusion { index: 1 }
        );
    }

    #[test]
    fn bad_pattern_reports_its_index() {
        let err = PatternMatcher::new(["", "ok", "[x-]"]).unwrap_err();
        assert_eq!(
            err,
            PatternError::BadPattern {
                index: 2,
                pattern: "[x-]".to_owned()
            }
        );
    }

    #[test]
    fn parent_results_agree_with_full_matching() {
        let pm = PatternMatcher::new(["foo", "!foo/bar", "foo/bar/baz", "!foo/bar/baz/x"]).unwrap();
        let (foo, ia) = pm
            .matches_using_parent_results("foo", &MatchInfo::default())
            .unwrap();
        let (bar, ib) = pm.matches_using_parent_results("foo/bar", &ia).unwrap();
        let (baz, ic) = pm.matches_using_parent_results("foo/bar/baz", &ib).unwrap();
        let (baz_x, _) = pm
            .matches_using_parent_results("foo/bar/baz/x", &ic)
            .unwrap();
        let (baz_y, _) = pm
            .matches_using_parent_results("foo/bar/baz/y", &ic)
            .unwrap();
        assert_eq!(
            (foo, bar, baz, baz_x, baz_y),
            (true, false, true, false, true)
        );
    }

    #[test]
    fn foreign_match_info_is_rejected() {
        let one = PatternMatcher::new(["a"]).unwrap();
        let two = PatternMatcher::new(["a", "b"]).unwrap();
        let (_, info) = two
            .matches_using_parent_results("a", &MatchInfo::default())
            .unwrap();
        assert!(matches!(
            one.matches_using_parent_results("a/b", &info),
            Err(PatternError::MatchInfoMismatch {
                expected: 1,
                got: 2
            })
        ));
    }
}
