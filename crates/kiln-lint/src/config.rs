//! Which rules run, and whether their warnings fail the build: BuildKit's check options.
//!
//! The file's setting is the `# check=` parser directive, or, replacing it (not merged), the
//! build arg `BUILDKIT_DOCKERFILE_CHECK`. A `# check=` comment directly above an instruction
//! adds to the file's setting for that instruction only (its skip and experimental lists;
//! never `error`), as BuildKit's `WithMergedConfigFromComments` does.

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

    /// Whether `rule` runs: an experimental rule when enabled (skip lists do not apply to it),
    /// any other unless skipped.
    pub fn runs(&self, rule: &Rule) -> bool {
        self.allows(rule.name, rule.experimental)
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
        out
    }

    /// The setting for an instruction whose comment lines (BuildKit's `PrevComment`) are
    /// `comments`: the first `check=` comment among them, up to its first space, merged in. A
    /// comment that does not parse changes nothing (BuildKit ignores it there).
    pub(crate) fn with_comments(&self, comments: &[String]) -> Cow<'_, Self> {
        for comment in comments {
            let Some((name, value)) = kiln_syntax::comment_directive(comment) else {
                continue;
            };
            if !name.eq_ignore_ascii_case("check") {
                continue;
            }
            let value = value.split(' ').next().unwrap_or_default();
            return match Self::parse(value) {
                Ok(other) => Cow::Owned(self.merged(&other)),
                Err(_) => Cow::Borrowed(self),
            };
        }
        Cow::Borrowed(self)
    }
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
}
