//! dive's CI rules, under dive's names, so a `.dive-ci` file carries over, plus kiln's own
//! `maxSize`.
//!
//! | rule | fails when | dive's default |
//! |---|---|---|
//! | `lowestEfficiency` | efficiency < value (a ratio 0-1) | `0.9` |
//! | `highestWastedBytes` | wasted bytes > value (`20MB`, `1.5 GiB`, plain bytes) | disabled |
//! | `highestUserWastedPercent` | wasted / user bytes > value (a ratio 0-1) | `0.1` |
//! | `maxSize` (kiln's) | the image's content size > value | disabled |
//!
//! A value of `disabled`, `off`, `false` or empty disables a rule, as in dive. The
//! `.dive-ci` file is YAML; kiln reads the subset dive's files use (a `rules:` mapping of
//! scalars, comments, quotes) by hand and names the line of anything else. dive's newer
//! kebab-case keys (`lowest-efficiency` ...) are read too.

use std::fmt;

use crate::analysis::DiveMetrics;

/// A rule's name as dive spells it (`lowestEfficiency` ...), or kiln's `maxSize`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum RuleName {
    /// `lowestEfficiency`.
    LowestEfficiency,
    /// `highestWastedBytes`.
    HighestWastedBytes,
    /// `highestUserWastedPercent`.
    HighestUserWastedPercent,
    /// `maxSize` (kiln's own).
    MaxSize,
}

impl RuleName {
    /// Every rule, in the order dive reports them (sorted by name), then kiln's.
    pub const ALL: [Self; 4] = [
        Self::HighestUserWastedPercent,
        Self::HighestWastedBytes,
        Self::LowestEfficiency,
        Self::MaxSize,
    ];

    /// dive's key.
    pub fn key(self) -> &'static str {
        match self {
            Self::LowestEfficiency => "lowestEfficiency",
            Self::HighestWastedBytes => "highestWastedBytes",
            Self::HighestUserWastedPercent => "highestUserWastedPercent",
            Self::MaxSize => "maxSize",
        }
    }

    /// The rule a `.dive-ci` key names (camelCase or dive's kebab-case).
    pub fn from_key(key: &str) -> Option<Self> {
        Some(match key {
            "lowestEfficiency" | "lowest-efficiency" => Self::LowestEfficiency,
            "highestWastedBytes" | "highest-wasted-bytes" => Self::HighestWastedBytes,
            "highestUserWastedPercent" | "highest-user-wasted-percent" => {
                Self::HighestUserWastedPercent
            }
            "maxSize" | "max-size" => Self::MaxSize,
            _ => return None,
        })
    }
}

/// A rule's threshold.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Threshold {
    /// The rule is off.
    Disabled,
    /// A ratio, 0 to 1.
    Ratio(f64),
    /// A number of bytes.
    Bytes(u64),
}

/// Why a rule's value is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleValueError {
    /// Not a number, or out of 0-1.
    #[error(
        "invalid {rule} value `{value}`: expected a ratio between 0 and 1 (such as `0.9`), or `disabled`"
    )]
    Ratio {
        /// The rule's key.
        rule: &'static str,
        /// What was given.
        value: String,
    },
    /// Not a size.
    #[error(
        "invalid {rule} value `{value}`: expected a size such as `20MB`, `1.5GiB` or `1000`, or `disabled`"
    )]
    Bytes {
        /// The rule's key.
        rule: &'static str,
        /// What was given.
        value: String,
    },
}

/// Parses `value` as `rule`'s threshold, as dive does.
pub fn parse_threshold(rule: RuleName, value: &str) -> Result<Threshold, RuleValueError> {
    let v = value.trim();
    if matches!(
        v.to_ascii_lowercase().as_str(),
        "" | "disabled" | "off" | "false"
    ) {
        return Ok(Threshold::Disabled);
    }
    match rule {
        RuleName::LowestEfficiency | RuleName::HighestUserWastedPercent => v
            .parse::<f64>()
            .ok()
            .filter(|r| (0.0..=1.0).contains(r))
            .map(Threshold::Ratio)
            .ok_or_else(|| RuleValueError::Ratio {
                rule: rule.key(),
                value: value.to_owned(),
            }),
        RuleName::HighestWastedBytes | RuleName::MaxSize => parse_bytes(v)
            .map(Threshold::Bytes)
            .ok_or_else(|| RuleValueError::Bytes {
                rule: rule.key(),
                value: value.to_owned(),
            }),
    }
}

/// The thresholds of every rule.
#[derive(Clone, Debug, PartialEq)]
pub struct Rules {
    /// Per rule, in [`RuleName::ALL`]'s order: the threshold and the value it was read from.
    thresholds: [(RuleName, Threshold, String); 4],
}

impl Default for Rules {
    /// dive's defaults: `lowestEfficiency` 0.9, `highestUserWastedPercent` 0.1, the others
    /// disabled.
    fn default() -> Self {
        Self {
            thresholds: [
                (
                    RuleName::HighestUserWastedPercent,
                    Threshold::Ratio(0.1),
                    "0.1".into(),
                ),
                (
                    RuleName::HighestWastedBytes,
                    Threshold::Disabled,
                    "disabled".into(),
                ),
                (
                    RuleName::LowestEfficiency,
                    Threshold::Ratio(0.9),
                    "0.9".into(),
                ),
                (RuleName::MaxSize, Threshold::Disabled, "disabled".into()),
            ],
        }
    }
}

/// How a rule came out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Within its threshold.
    Pass,
    /// Beyond it.
    Fail,
    /// Disabled.
    Skip,
}

/// One rule's result, with dive's message.
#[derive(Clone, Debug, PartialEq)]
pub struct RuleResult {
    /// The rule.
    pub rule: RuleName,
    /// How it came out.
    pub status: Status,
    /// dive's message (`image efficiency is too low (...)`), or the configured value.
    pub message: String,
}

impl Rules {
    /// Sets `rule`'s threshold from its text (`0.9`, `20MB`, `disabled`).
    pub fn set(&mut self, rule: RuleName, value: &str) -> Result<(), RuleValueError> {
        let threshold = parse_threshold(rule, value)?;
        for t in &mut self.thresholds {
            if t.0 == rule {
                t.1 = threshold;
                value.trim().clone_into(&mut t.2);
            }
        }
        Ok(())
    }

    /// `rule`'s threshold.
    pub fn get(&self, rule: RuleName) -> Threshold {
        self.thresholds
            .iter()
            .find(|t| t.0 == rule)
            .map_or(Threshold::Disabled, |t| t.1)
    }

    /// Evaluates every rule on `metrics` and the image's content size `image_size`.
    pub fn evaluate(&self, metrics: &DiveMetrics, image_size: u64) -> Vec<RuleResult> {
        self.thresholds
            .iter()
            .map(|(rule, threshold, raw)| {
                let (rule, threshold) = (*rule, *threshold);
                let (status, message) = match (rule, threshold) {
                    (_, Threshold::Disabled) => (Status::Skip, "disabled".to_owned()),
                    (RuleName::LowestEfficiency, Threshold::Ratio(t)) => {
                        if t > metrics.efficiency {
                            (
                                Status::Fail,
                                format!(
                                    "image efficiency is too low (efficiency={:.2} < threshold={})",
                                    metrics.efficiency,
                                    go_float(t)
                                ),
                            )
                        } else {
                            (Status::Pass, raw.clone())
                        }
                    }
                    (RuleName::HighestUserWastedPercent, Threshold::Ratio(t)) => {
                        if metrics.wasted_user_percent > t {
                            (
                                Status::Fail,
                                format!(
                                    "too many bytes wasted, relative to the user bytes added (%-user-wasted-bytes={:.2} > threshold={})",
                                    metrics.wasted_user_percent,
                                    go_float(t)
                                ),
                            )
                        } else {
                            (Status::Pass, raw.clone())
                        }
                    }
                    (RuleName::HighestWastedBytes, Threshold::Bytes(t)) => {
                        if metrics.wasted_bytes > t {
                            (
                                Status::Fail,
                                format!(
                                    "too many bytes wasted (wasted-bytes={} > threshold={t})",
                                    metrics.wasted_bytes
                                ),
                            )
                        } else {
                            (Status::Pass, raw.clone())
                        }
                    }
                    (RuleName::MaxSize, Threshold::Bytes(t)) => {
                        if image_size > t {
                            (
                                Status::Fail,
                                format!(
                                    "image is too big (size={image_size} > threshold={t})"
                                ),
                            )
                        } else {
                            (Status::Pass, raw.clone())
                        }
                    }
                    // `parse_threshold` gives ratios to ratio rules and bytes to byte rules.
                    (_, t) => (Status::Skip, format!("misconfigured: {t:?}")),
                };
                RuleResult {
                    rule,
                    status,
                    message,
                }
            })
            .collect()
    }
}

/// Go's `%v` of a float64: the shortest text that reads back (`0.9`, `1`).
fn go_float(f: f64) -> String {
    format!("{f}")
}

/// A `.dive-ci` file that kiln cannot read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct CiConfigError {
    /// 1-based line.
    pub line: usize,
    /// What is wrong there.
    pub message: String,
}

/// The rules a `.dive-ci` file sets: `(rule, value, line)`, in file order.
///
/// dive's file is YAML: `rules:` then indented `key: value` lines; `#` comments; values
/// optionally quoted. Other top-level keys (dive's newer config sections) are skipped
/// with their indented bodies.
pub fn parse_dive_ci(text: &str) -> Result<Vec<(RuleName, String, usize)>, CiConfigError> {
    let mut out = Vec::new();
    let mut in_rules = false;
    let mut rules_indent = None;
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let content = strip_comment(raw);
        if content.trim().is_empty() || content.trim() == "---" {
            continue;
        }
        let indent = content.len() - content.trim_start().len();
        if content[..indent].contains('\t') {
            return Err(CiConfigError {
                line,
                message: "a tab in the indentation (YAML indents with spaces)".into(),
            });
        }
        let Some((key, value)) = content.trim().split_once(':') else {
            return Err(CiConfigError {
                line,
                message: format!("expected `key: value`, found `{}`", content.trim()),
            });
        };
        let key = unquote(key.trim());
        let value = value.trim();
        if indent == 0 {
            in_rules = key == "rules";
            rules_indent = None;
            if in_rules && !value.is_empty() {
                return Err(CiConfigError {
                    line,
                    message: "`rules:` takes indented `key: value` lines, not a value".into(),
                });
            }
            continue;
        }
        if !in_rules {
            continue;
        }
        match rules_indent {
            None => rules_indent = Some(indent),
            Some(n) if n == indent => {}
            Some(n) => {
                return Err(CiConfigError {
                    line,
                    message: format!(
                        "indented by {indent} spaces where the rules above are indented by {n}"
                    ),
                });
            }
        }
        let Some(rule) = RuleName::from_key(key) else {
            return Err(CiConfigError {
                line,
                message: format!(
                    "unknown rule `{key}`; the rules are `lowestEfficiency`, `highestWastedBytes`, `highestUserWastedPercent` and `maxSize`"
                ),
            });
        };
        let value = unquote(value);
        parse_threshold(rule, value).map_err(|e| CiConfigError {
            line,
            message: e.to_string(),
        })?;
        out.push((rule, value.to_owned(), line));
    }
    Ok(out)
}

/// The line without a `#` comment (a `#` outside quotes that starts the line or follows a
/// space, as YAML has it).
fn strip_comment(line: &str) -> &str {
    let mut quote = None;
    let mut prev = ' ';
    for (i, c) in line.char_indices() {
        match quote {
            Some(q) if c == q => quote = None,
            None if c == '"' || c == '\'' => quote = Some(c),
            None if c == '#' && prev.is_whitespace() => return &line[..i],
            _ => {}
        }
        prev = c;
    }
    line
}

fn unquote(s: &str) -> &str {
    for q in ['"', '\''] {
        if let Some(inner) = s.strip_prefix(q).and_then(|s| s.strip_suffix(q)) {
            return inner;
        }
    }
    s
}

/// A size as dive (go-humanize's `ParseBytes`) reads it: a number, optional space, and an
/// optional unit, case-insensitive: `B`; `k`/`kB` = 1000, `ki`/`KiB` = 1024, and so on up to
/// `E`/`EiB`. Commas in the number are ignored.
pub fn parse_bytes(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == ','))
        .unwrap_or(s.len());
    let number: f64 = s[..split].replace(',', "").parse().ok()?;
    let unit = s[split..].trim().to_ascii_lowercase();
    let (prefix, binary) = match unit.strip_suffix('b').unwrap_or(&unit) {
        u if u.ends_with('i') => (&u[..u.len() - 1], true),
        u => (u, false),
    };
    let power = ["", "k", "m", "g", "t", "p", "e"]
        .iter()
        .position(|p| *p == prefix)?;
    if prefix.is_empty() && binary {
        return None;
    }
    let base: f64 = if binary { 1024.0 } else { 1000.0 };
    let value = number * base.powi(i32::try_from(power).ok()?);
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    (0.0..1.8e19).contains(&value).then_some(value as u64)
}

/// A size as dive prints it (go-humanize's `Bytes`): SI units, `512 B`, `1.2 kB`, `24 MB`.
pub fn format_bytes(n: u64) -> String {
    if n < 10 {
        return format!("{n} B");
    }
    let units = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    #[allow(clippy::cast_precision_loss)]
    let f = n as f64;
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let e = (f.ln() / 1000f64.ln()).floor() as usize;
    let e = e.min(units.len() - 1);
    let val = (f / 1000f64.powi(i32::try_from(e).unwrap_or(0)) * 10.0 + 0.5).floor() / 10.0;
    if val < 10.0 {
        format!("{val:.1} {}", units[e])
    } else {
        format!("{val:.0} {}", units[e])
    }
}

impl fmt::Display for RuleName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_and_print_as_go_humanize_does() {
        assert_eq!(parse_bytes("20MB"), Some(20_000_000));
        assert_eq!(parse_bytes("20 mib"), Some(20 * 1024 * 1024));
        assert_eq!(parse_bytes("1.5GiB"), Some(1_610_612_736));
        assert_eq!(parse_bytes("1,000"), Some(1000));
        assert_eq!(parse_bytes("42"), Some(42));
        assert_eq!(parse_bytes("3k"), Some(3000));
        assert_eq!(parse_bytes("MB"), None);
        assert_eq!(parse_bytes("12 parsecs"), None);
        assert_eq!(format_bytes(5), "5 B");
        assert_eq!(format_bytes(999), "999 B");
        assert_eq!(format_bytes(1234), "1.2 kB");
        assert_eq!(format_bytes(24_000_000), "24 MB");
    }

    #[test]
    fn dive_ci_files_carry_over_and_bad_ones_name_their_line() {
        let text = "# dive's own example\nrules:\n  # ratio\n  lowestEfficiency: 0.95\n  highestWastedBytes: \"20MB\" # bytes\n  highest-user-wasted-percent: 0.20\n";
        let rules = parse_dive_ci(text).unwrap();
        assert_eq!(
            rules,
            vec![
                (RuleName::LowestEfficiency, "0.95".into(), 4),
                (RuleName::HighestWastedBytes, "20MB".into(), 5),
                (RuleName::HighestUserWastedPercent, "0.20".into(), 6),
            ]
        );
        let err = parse_dive_ci("rules:\n  lowestEfficiency: 1.5\n").unwrap_err();
        assert_eq!(err.line, 2);
        assert!(err.message.contains("between 0 and 1"), "{err}");
        let err = parse_dive_ci("rules:\n  lowestEficiency: 0.5\n").unwrap_err();
        assert_eq!(err.line, 2);
        assert!(
            err.message.contains("unknown rule `lowestEficiency`"),
            "{err}"
        );
        let err = parse_dive_ci("rules:\n  lowestEfficiency 0.5\n").unwrap_err();
        assert!(err.message.contains("expected `key: value`"), "{err}");
        // Other sections are skipped.
        assert_eq!(parse_dive_ci("log:\n  level: debug\n").unwrap(), vec![]);
    }

    #[test]
    fn rules_fail_beyond_their_thresholds_with_dives_messages() {
        let m = DiveMetrics {
            efficiency: 0.85,
            size_bytes: 1000,
            user_size_bytes: 500,
            wasted_bytes: 100,
            wasted_user_percent: 0.2,
            inefficiencies: Vec::new(),
        };
        let mut rules = Rules::default();
        let r = rules.evaluate(&m, 1000);
        let status = |r: &[RuleResult], n| r.iter().find(|x| x.rule == n).unwrap().status;
        assert_eq!(status(&r, RuleName::LowestEfficiency), Status::Fail);
        assert_eq!(status(&r, RuleName::HighestUserWastedPercent), Status::Fail);
        assert_eq!(status(&r, RuleName::HighestWastedBytes), Status::Skip);
        let msg = &r
            .iter()
            .find(|x| x.rule == RuleName::LowestEfficiency)
            .unwrap()
            .message;
        assert_eq!(
            msg,
            "image efficiency is too low (efficiency=0.85 < threshold=0.9)"
        );
        rules.set(RuleName::LowestEfficiency, "0.8").unwrap();
        rules
            .set(RuleName::HighestUserWastedPercent, "off")
            .unwrap();
        rules.set(RuleName::HighestWastedBytes, "100B").unwrap();
        rules.set(RuleName::MaxSize, "999").unwrap();
        assert!(rules.set(RuleName::MaxSize, "huge").is_err());
        let r = rules.evaluate(&m, 1000);
        assert_eq!(status(&r, RuleName::LowestEfficiency), Status::Pass);
        assert_eq!(
            status(&r, RuleName::HighestWastedBytes),
            Status::Pass,
            "not more than"
        );
        assert_eq!(status(&r, RuleName::HighestUserWastedPercent), Status::Skip);
        assert_eq!(status(&r, RuleName::MaxSize), Status::Fail);
        assert!(parse_threshold(RuleName::MaxSize, "big").is_err());
        assert_eq!(
            parse_threshold(RuleName::MaxSize, "off"),
            Ok(Threshold::Disabled)
        );
    }
}
