//! Which rules run, and whether their warnings fail the build: BuildKit's check options.
//!
//! The file's setting is the `# check=` parser directive, or, replacing it (not merged), the
//! build arg `BUILDKIT_DOCKERFILE_CHECK`. A `# check=` comment directly above an instruction
//! adds to the file's setting for that instruction only (its skip and experimental lists;
//! never `error`), as BuildKit's `WithMergedConfigFromComments` does.
//!
//! kiln adds suppression comments for its own rules, in hadolint's syntax: `# hadolint
//! ignore=DL3006,DL3008` or `# kiln ignore=KL001,RunCd` on a comment line directly above an
//! instruction suppresses, for that instruction, the findings of the rules named (by kiln code,
//! rule name, or the hadolint code a rule stands in for), and `# hadolint global ignore=...` (or
//! `# kiln global ignore=...`) on any comment line does so for the whole file. `skip=` lists
//! accept kiln's codes as well as rule names.

use std::borrow::Cow;

use kiln_syntax::{Diagnostic, Dockerfile, TextRange};

use crate::Rule;

/// The build arg that replaces the `# check=` directive.
pub const CHECK_BUILD_ARG: &str = "BUILDKIT_DOCKERFILE_CHECK";

/// Parsed check options (BuildKit's `linter.Config`).
///
/// The default runs every rule that is not experimental and never fails the build.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CheckConfig {
    /// `skip=all`: no rule runs but the experimental ones enabled.
    pub skip_all: bool,
    /// `skip=A,B`: these rules do not run.
    pub skip: Vec<String>,
    /// `experimental=all`: every experimental rule runs.
    pub experimental_all: bool,
    /// `experimental=A,B`: these experimental rules run.
    pub experimental: Vec<String>,
    /// `error=true`: a warning fails the build after the checks.
    pub error: bool,
    /// What `# hadolint ignore=` and `# kiln ignore=` comments suppress here: rule names, kiln
    /// codes and hadolint codes, as written.
    pub ignore: Vec<String>,
}

/// A check option that does not parse; messages are BuildKit's.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CheckOptionError {
    /// A part without `=`, or a key other than `skip`, `experimental` and `error`.
    #[error("invalid check option {}", kiln_syntax::go_quote(.0))]
    Invalid(String),
    /// `error=` with something other than a Go boolean.
    #[error(
        "failed to parse check option {}: strconv.ParseBool: parsing {}: invalid syntax",
        kiln_syntax::go_quote(part),
        kiln_syntax::go_quote(value)
    )]
    Bool {
        /// The whole `error=...` part.
        part: String,
        /// The value.
        value: String,
    },
}

/// Where bad check options came from.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The `# check=` directive.
    #[error("invalid `# check=` directive")]
    Directive {
        /// The directive line.
        span: TextRange,
        /// What is wrong with it.
        #[source]
        source: CheckOptionError,
    },
    /// `--build-arg BUILDKIT_DOCKERFILE_CHECK=...`.
    #[error("invalid `--build-arg {CHECK_BUILD_ARG}={value}`")]
    BuildArg {
        /// The build arg's value.
        value: String,
        /// What is wrong with it.
        #[source]
        source: CheckOptionError,
    },
}

const GRAMMAR: &str = "write `skip=<rules>|all;error=true|false;experimental=<rules>|all`, e.g. `# check=skip=JSONArgsRecommended;error=true`";

impl ConfigError {
    /// This error about the Dockerfile, when it is about the directive (rule `CheckOptions`).
    pub fn to_diagnostic(&self) -> Option<Diagnostic> {
        match self {
            Self::Directive { span, source } => Some(
                Diagnostic::error("CheckOptions", *span, source.to_string())
                    .with_hint(GRAMMAR.to_owned()),
            ),
            Self::BuildArg { .. } => None,
        }
    }

    /// What would be valid.
    pub fn hint(&self) -> &'static str {
        GRAMMAR
    }
}

impl CheckConfig {
    /// Parse `skip=...;error=...;experimental=...` (BuildKit's `ParseLintOptions`): at most
    /// three `;`-separated parts (a fourth stays inside the third), keys trimmed, rule names
    /// trimmed; empty text is the default.
    pub fn parse(text: &str) -> Result<Self, CheckOptionError> {
        let text = text.trim();
        let mut config = Self::default();
        if text.is_empty() {
            return Ok(config);
        }
        for part in text.splitn(3, ';') {
            let Some((key, value)) = part.split_once('=') else {
                return Err(CheckOptionError::Invalid(part.to_owned()));
            };
            let list = |v: &str| -> (bool, Vec<String>) {
                let v = v.trim();
                if v == "all" {
                    (true, Vec::new())
                } else {
                    (false, v.split(',').map(|r| r.trim().to_owned()).collect())
                }
            };
            match key.trim() {
                "skip" => (config.skip_all, config.skip) = list(value),
                "experimental" => (config.experimental_all, config.experimental) = list(value),
                "error" => {
                    config.error = go_bool(value.trim()).ok_or_else(|| CheckOptionError::Bool {
                        part: part.to_owned(),
                        value: value.trim().to_owned(),
                    })?;
                }
                other => return Err(CheckOptionError::Invalid(other.to_owned())),
            }
        }
        Ok(config)
    }

    /// The file's setting: the build arg [`CHECK_BUILD_ARG`] when given (the last one wins),
    /// else the `# check=` directive's value up to its first space.
    pub fn for_build(
        df: &Dockerfile,
        build_args: &[(String, String)],
    ) -> Result<Self, ConfigError> {
        if let Some((_, value)) = build_args.iter().rev().find(|(k, _)| k == CHECK_BUILD_ARG) {
            return Self::parse(value).map_err(|source| ConfigError::BuildArg {
                value: value.clone(),
                source,
            });
        }
        match df.directive("check") {
            Some(d) => {
                let value = d.value.split(' ').next().unwrap_or_default();
                Self::parse(value).map_err(|source| ConfigError::Directive {
                    span: d.span,
                    source,
                })
            }
            None => Ok(Self::default()),
        }
    }

    /// Add the file-wide `# hadolint global ignore=...` (or `# kiln global ignore=...`)
    /// comments of `source`: every line whose first non-blank character is `#`. A heredoc line
    /// of that shape counts too (the parser keeps no other comments).
    pub fn add_global_ignores(&mut self, source: &str) {
        for line in source.lines() {
            let Some(comment) = line.trim_start().strip_prefix('#') else {
                continue;
            };
            if let Some(list) = ignore_list(comment, true) {
                self.ignore.extend(list);
            }
        }
    }

    /// Whether `rule` runs: an experimental rule when enabled (skip lists do not apply to it),
    /// any other unless skipped (by name, or for kiln's rules by code).
    pub fn runs(&self, rule: &Rule) -> bool {
        if rule.experimental {
            return self.allows(rule.name, true);
        }
        !(self.skip_all || self.skip.iter().any(|r| rule.is_named(r)))
    }

    /// Whether an ignore comment suppresses a finding of `rule` whose own hadolint code is
    /// `alias` (for a rule that stands in for several, the one this finding matches; `None`
    /// means any of the rule's).
    pub fn suppresses(&self, rule: &Rule, alias: Option<&str>) -> bool {
        self.ignore.iter().any(|id| {
            rule.is_named(id)
                || match alias {
                    Some(a) => a == id,
                    None => rule.hadolint.contains(&id.as_str()),
                }
        })
    }

    /// [`runs`](Self::runs) for a rule known by name only (kiln's own rules are not
    /// experimental).
    pub fn allows(&self, name: &str, experimental: bool) -> bool {
        if experimental {
            self.experimental_all || self.experimental.iter().any(|r| r == name)
        } else {
            !(self.skip_all || self.skip.iter().any(|r| r == name))
        }
    }

    /// This setting with `other`'s skip and experimental lists added (`error` stays).
    fn merged(&self, other: &Self) -> Self {
        let mut out = self.clone();
        out.skip_all |= other.skip_all;
        out.experimental_all |= other.experimental_all;
        out.skip.extend(other.skip.iter().cloned());
        out.experimental.extend(other.experimental.iter().cloned());
        out.ignore.extend(other.ignore.iter().cloned());
        out
    }

    /// The setting for an instruction whose comment lines (BuildKit's `PrevComment`) are
    /// `comments`: the first `check=` comment among them, up to its first space, merged in (a
    /// comment that does not parse changes nothing: BuildKit ignores it there), and every
    /// `hadolint ignore=` and `kiln ignore=` list added.
    pub(crate) fn with_comments(&self, comments: &[String]) -> Cow<'_, Self> {
        let mut out = Cow::Borrowed(self);
        let mut checked = false;
        for comment in comments {
            if let Some(list) = ignore_list(comment, false) {
                out.to_mut().ignore.extend(list);
                continue;
            }
            let Some((name, value)) = kiln_syntax::comment_directive(comment) else {
                continue;
            };
            if checked || !name.eq_ignore_ascii_case("check") {
                continue;
            }
            checked = true;
            let value = value.split(' ').next().unwrap_or_default();
            if let Ok(other) = Self::parse(value) {
                out = Cow::Owned(out.merged(&other));
            }
        }
        out
    }
}

/// The codes of an ignore comment (`#` already removed): ` hadolint ignore=DL3006, DL3008` or
/// ` kiln ignore=KL001` (with `global` after the tool's name when `global`), split at commas
/// and trimmed; `None` for any other comment.
fn ignore_list(comment: &str, global: bool) -> Option<Vec<String>> {
    let rest = comment.trim_start();
    let rest = rest
        .strip_prefix("hadolint")
        .or_else(|| rest.strip_prefix("kiln"))?;
    let mut rest = rest.strip_prefix([' ', '\t'])?.trim_start();
    if global {
        rest = rest
            .strip_prefix("global")?
            .strip_prefix([' ', '\t'])?
            .trim_start();
    }
    let list = rest
        .strip_prefix("ignore")?
        .trim_start()
        .strip_prefix('=')?;
    // The list ends at the first blank that does not follow a comma (a reason may follow).
    let mut codes = Vec::new();
    for part in list.split(',') {
        let part = part.trim_start();
        let code = part.split_whitespace().next().unwrap_or_default();
        if !code.is_empty() {
            codes.push(code.to_owned());
        }
        if code.len() < part.trim_end().len() {
            break;
        }
    }
    Some(codes)
}

/// Go's `strconv.ParseBool`.
fn go_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_buildkits_grammar() {
        let c = CheckConfig::parse(" skip = A, B ;error=true;experimental=all").unwrap();
        assert_eq!(c.skip, ["A", "B"]);
        assert!(c.error && c.experimental_all && !c.skip_all);
        assert_eq!(CheckConfig::parse("").unwrap(), CheckConfig::default());
        assert!(CheckConfig::parse("skip=all").unwrap().skip_all);
        assert_eq!(
            CheckConfig::parse("foo=bar").unwrap_err().to_string(),
            "invalid check option \"foo\""
        );
        assert_eq!(
            CheckConfig::parse("skip").unwrap_err().to_string(),
            "invalid check option \"skip\""
        );
        assert_eq!(
            CheckConfig::parse("error=maybe").unwrap_err().to_string(),
            "failed to parse check option \"error=maybe\": strconv.ParseBool: parsing \"maybe\": invalid syntax"
        );
        // A fourth part stays in the third, whose value then holds a `;`.
        let c = CheckConfig::parse("skip=A;error=false;experimental=B;skip=C").unwrap();
        assert_eq!(c.experimental, ["B;skip=C"]);
    }

    #[test]
    fn experimental_rules_ignore_skip() {
        let c = CheckConfig::parse("skip=all;experimental=X").unwrap();
        assert!(c.allows("X", true));
        assert!(!c.allows("Y", true));
        assert!(!c.allows("A", false));
        assert!(CheckConfig::default().allows("A", false));
    }

    #[test]
    fn comments_add_to_the_setting() {
        let base = CheckConfig::parse("skip=A;error=true").unwrap();
        let c = base.with_comments(&[
            "some words".into(),
            "check=skip=B // why".into(),
            "check=skip=C".into(),
        ]);
        assert_eq!(c.skip, ["A", "B"]);
        assert!(c.error);
        let bad = base.with_comments(&["check=nonsense".into()]);
        assert_eq!(*bad, base);
    }

    #[test]
    fn ignore_comments_add_to_the_ignore_list() {
        let base = CheckConfig::default();
        let c = base.with_comments(&[
            " hadolint ignore=DL3006, DL3008".into(),
            " kiln ignore=KL009 because".into(),
            " hadolint global ignore=DL3003".into(),
            " hadolintignore=DL1".into(),
        ]);
        assert_eq!(c.ignore, ["DL3006", "DL3008", "KL009"]);
        let mut file = CheckConfig::default();
        file.add_global_ignores("# hadolint global ignore=DL3003,KL007\nFROM a\n  # kiln global ignore=X\n# hadolint ignore=DL1\n");
        assert_eq!(file.ignore, ["DL3003", "KL007", "X"]);
    }
}
