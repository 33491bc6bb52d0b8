//! Walking a build context with the ignore rules applied, as fsutil's filtered walk does when
//! BuildKit syncs a local context.

use std::fs::{self, FileType, Metadata};
use std::io;
use std::path::{Path, PathBuf};

use crate::error::ContextError;
use crate::ignore_file::IgnoreRules;
use crate::matcher::MatchInfo;

/// Characters that make an exception pattern too complex for the "could anything below this
/// directory be re-included?" shortcut (fsutil's `patternChars`, Unix flavour).
const PATTERN_CHARS: &[char] = &['*', '[', ']', '?', '^', '\\'];

/// One file, directory, symlink or special file of the build context that survived the rules.
#[derive(Debug, Clone)]
pub struct ContextEntry {
    /// Path relative to the context root, with `/` separators: the form patterns match.
    ///
    /// Names that are not valid UTF-8 are converted lossily here; use
    /// [`relative`](Self::relative) to open the file.
    pub path: String,
    /// The same path as the operating system spells it, relative to the context root.
    pub relative: PathBuf,
    /// The type of the entry itself: symlinks are reported as symlinks and never followed.
    pub file_type: FileType,
    /// `lstat` metadata (for the stat cache: size, mtime, ctime, inode, mode, link count).
    pub metadata: Metadata,
}

/// Walks `root` and returns every entry the rules keep, in walk order.
///
/// See [`walk_each`] for the order and the rules.
pub fn walk(root: &Path, rules: &IgnoreRules) -> Result<Vec<ContextEntry>, ContextError> {
    let mut entries = Vec::new();
    walk_each(root, rules, |entry| {
        entries.push(entry);
        Ok(())
    })?;
    Ok(entries)
}

/// Walks `root`, calling `visit` for every entry the rules keep; an error from `visit` stops
/// the walk and is returned.
///
/// Order: depth first, each directory before its contents, names within a directory sorted
/// by their bytes. This is the order of Go's `filepath.WalkDir`, which fsutil uses and which
/// BuildKit's receiving side checks, so it is the same on every machine and run.
///
/// Rules, as in fsutil's filtered walk:
/// * Each path is matched with its parent directory's per-pattern results
///   ([`PatternMatcher::matches_using_parent_results`](crate::PatternMatcher::matches_using_parent_results)).
/// * An excluded directory is skipped entirely, unless an exception pattern could re-include
///   something below it: one whose text, minus a trailing `/**` or `/*`, starts with the
///   directory's path plus `/`. When any exception contains a glob character
///   (`*[]?^\`), this shortcut is off and every excluded directory is walked.
/// * A walked but excluded directory is not reported by itself, but it is reported (before its
///   contents) as soon as something inside it is kept, so every kept entry has its parents.
/// * Symlinks are reported, never followed. Entries that vanish during the walk are skipped.
///   Unreadable excluded directories are skipped; unreadable kept ones are an error.
/// * The root itself is not reported (it must exist), and the Dockerfile and ignore file get no special
///   treatment: if the rules exclude them, they are left out.
pub fn walk_each<F>(root: &Path, rules: &IgnoreRules, mut visit: F) -> Result<(), ContextError>
where
    F: FnMut(ContextEntry) -> Result<(), ContextError>,
{
    // Entries that vanish mid-walk are skipped, but a missing root is the caller's mistake.
    if let Err(source) = fs::metadata(root) {
        return Err(ContextError::Walk {
            path: root.to_owned(),
            source,
        });
    }
    let matcher = rules.matcher();
    let reinclude = if matcher.is_empty() {
        Reinclude::Nothing
    } else {
        let exceptions: Vec<String> = matcher
            .patterns()
            .iter()
            .filter(|p| p.is_exclusion())
            .map(|p| without_trailing_glob(p.as_str()).to_owned())
            .collect();
        if exceptions.iter().any(|p| p.contains(PATTERN_CHARS)) {
            Reinclude::Anywhere
        } else {
            Reinclude::Below(exceptions)
        }
    };
    let mut walker = Walker {
        root,
        rules,
        reinclude,
        pending: Vec::new(),
        visit: &mut visit,
    };
    walker.dir(Path::new(""), "", &MatchInfo::default())
}

/// fsutil's `patternWithoutTrailingGlob`.
fn without_trailing_glob(pattern: &str) -> &str {
    let pattern = pattern.strip_suffix("/**").unwrap_or(pattern);
    pattern.strip_suffix("/*").unwrap_or(pattern)
}

/// Which excluded directories an exception pattern could reach into.
enum Reinclude {
    /// No patterns at all (so nothing is excluded either).
    Nothing,
    /// Some exception has glob characters: every excluded directory must be walked.
    Anywhere,
    /// Only directories that are a prefix of one of these exception paths (fsutil's
    /// `onlyPrefixExcludeExceptions`); empty when there are no exceptions.
    Below(Vec<String>),
}

struct Walker<'a, F> {
    root: &'a Path,
    rules: &'a IgnoreRules,
    reinclude: Reinclude,
    /// Excluded directories being walked whose entry has not been reported yet, outermost
    /// first. `None` once reported.
    pending: Vec<Option<ContextEntry>>,
    visit: &'a mut F,
}

impl<F> Walker<'_, F>
where
    F: FnMut(ContextEntry) -> Result<(), ContextError>,
{
    /// Walks the directory at `relative` (slash form `path`), whose match results are `info`.
    /// Returns `Ok` without walking when it cannot be read but `excluded` allows skipping.
    fn dir(&mut self, relative: &Path, path: &str, info: &MatchInfo) -> Result<(), ContextError> {
        let full = self.root.join(relative);
        let excluded = self.pending.last().is_some_and(Option::is_some);
        let read = match fs::read_dir(&full) {
            Ok(read) => read,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) if excluded && e.kind() == io::ErrorKind::PermissionDenied => return Ok(()),
            Err(source) => return Err(ContextError::Walk { path: full, source }),
        };
        let mut names = Vec::new();
        for entry in read {
            let entry = entry.map_err(|source| ContextError::Walk {
                path: full.clone(),
                source,
            })?;
            names.push(entry.file_name());
        }
        names.sort_unstable_by(|a, b| a.as_encoded_bytes().cmp(b.as_encoded_bytes()));

        for name in names {
            let child_relative = relative.join(&name);
            let name = name.to_string_lossy();
            let child_path = if path.is_empty() {
                name.into_owned()
            } else {
                format!("{path}/{name}")
            };
            let child_full = self.root.join(&child_relative);
            let metadata = match fs::symlink_metadata(&child_full) {
                Ok(metadata) => metadata,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(source) => {
                    return Err(ContextError::Walk {
                        path: child_full,
                        source,
                    });
                }
            };
            let entry = ContextEntry {
                path: child_path,
                relative: child_relative,
                file_type: metadata.file_type(),
                metadata,
            };
            self.entry(entry, info)?;
        }
        Ok(())
    }

    fn entry(&mut self, entry: ContextEntry, parent: &MatchInfo) -> Result<(), ContextError> {
        let is_dir = entry.file_type.is_dir();
        let (excluded, info) = if matches!(self.reinclude, Reinclude::Nothing) {
            (false, MatchInfo::default())
        } else {
            self.rules
                .matcher()
                .matches_using_parent_results(&entry.path, parent)
                .map_err(|e| self.rules.pattern_error(e, Some(&entry.path)))?
        };

        if excluded {
            if is_dir && self.may_reinclude_below(&entry.path) {
                let (relative, path) = (entry.relative.clone(), entry.path.clone());
                self.pending.push(Some(entry));
                let result = self.dir(&relative, &path, &info);
                self.pending.pop();
                result?;
            }
            return Ok(());
        }

        for parent in &mut self.pending {
            if let Some(parent) = parent.take() {
                (self.visit)(parent)?;
            }
        }
        if is_dir {
            let (relative, path) = (entry.relative.clone(), entry.path.clone());
            (self.visit)(entry)?;
            self.pending.push(None);
            let result = self.dir(&relative, &path, &info);
            self.pending.pop();
            result
        } else {
            (self.visit)(entry)
        }
    }

    /// Whether an exception pattern could match something inside the excluded directory
    /// `path`.
    fn may_reinclude_below(&self, path: &str) -> bool {
        match &self.reinclude {
            Reinclude::Below(prefixes) => {
                let dir = format!("{path}/");
                prefixes.iter().any(|p| format!("{p}/").starts_with(&dir))
            }
            Reinclude::Anywhere => true,
            Reinclude::Nothing => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::without_trailing_glob;

    #[test]
    fn trailing_globs_are_trimmed_once_each() {
        assert_eq!(without_trailing_glob("a/b/**"), "a/b");
        assert_eq!(without_trailing_glob("a/b/*"), "a/b");
        assert_eq!(without_trailing_glob("a/*/**"), "a");
        assert_eq!(without_trailing_glob("a/**/*"), "a/**");
        assert_eq!(without_trailing_glob("**"), "**");
    }
}
