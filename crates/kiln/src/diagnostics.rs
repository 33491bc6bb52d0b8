//! Rendering of diagnostics: the one place that draws source snippets and carets, and the one
//! place that says what a diagnostic looks like in JSON.
//!
//! Library crates report a [`Diagnostic`] (or a typed error that becomes one) carrying a byte
//! range; commands pair it with the file's name and text ([`SourceError`] for errors that
//! travel through `anyhow`), and [`render_text`] draws
//!
//! ```text
//! error: unknown flag: --form (did you mean --from?)
//!   --> Dockerfile:4:6
//!    |
//!  4 | COPY --form=x a b
//!    |      ^^^^^^^^
//!    = hint: ...
//! ```
//!
//! while [`to_json`] gives `{"rule", "severity", "file", "line", "column", "end_line",
//! "end_column", "message", "hint", "url"}` (lines and columns 1-based, columns in characters;
//! the end is exclusive, as the span is), and [`to_sarif`] a SARIF 2.1.0 log of several.
//!
//! No colour is used, so the output reads the same with or without a terminal (and
//! `NO_COLOR` is honoured trivially).

use std::fmt;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use kiln_syntax::{Diagnostic, LineIndex};

/// A diagnostic about a source file, as an error that travels through `anyhow` to
/// [`print_error`].
#[derive(Debug)]
pub(crate) struct SourceError {
    /// The file, as the user named it.
    pub file: PathBuf,
    /// The file's text.
    pub source: String,
    /// What is wrong, and where.
    pub diagnostic: Diagnostic,
}

impl SourceError {
    /// `diagnostic` about `file`, whose text is `source`.
    pub(crate) fn new(file: &Path, source: &str, diagnostic: Diagnostic) -> Self {
        Self {
            file: file.to_owned(),
            source: source.to_owned(),
            diagnostic,
        }
    }

    /// Render the full diagnostic: message, location, the line with a caret, hint.
    pub(crate) fn render(&self) -> String {
        render_text(&self.file, &self.source, &self.diagnostic)
    }
}

impl fmt::Display for SourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let index = LineIndex::new(&self.source);
        let at = index.line_col(&self.source, self.diagnostic.span.start);
        write!(
            f,
            "{}:{}:{}: {}",
            self.file.display(),
            at.line,
            at.col,
            self.diagnostic.message
        )
    }
}

impl std::error::Error for SourceError {}

/// Draw `diag` about `file` (whose text is `source`): severity and message, location, the
/// first line of the span with carets under it, and the hint.
pub(crate) fn render_text(file: &Path, source: &str, diag: &Diagnostic) -> String {
    let index = LineIndex::new(source);
    let start = index.line_col(source, diag.span.start);
    let line_range = index.line_range(source, start.line);
    let line = &source[line_range.start..line_range.end];
    let end_in_line = diag.span.end.clamp(diag.span.start, line_range.end);
    let width = source
        .get(diag.span.start..end_in_line)
        .map_or(1, |s| s.chars().count())
        .max(1);
    let gutter = start.line.to_string().len();
    let pad = " ".repeat(gutter);
    let mut out = format!("{}: {}\n", diag.severity, diag.message);
    let _ = writeln!(
        out,
        "{pad}--> {}:{}:{}",
        file.display(),
        start.line,
        start.col
    );
    let _ = writeln!(out, "{pad} |");
    let _ = writeln!(out, "{} | {}", start.line, line.replace('\t', " "));
    let _ = writeln!(
        out,
        "{pad} | {}{}",
        " ".repeat(start.col - 1),
        "^".repeat(width)
    );
    if let Some(hint) = &diag.hint {
        let _ = writeln!(out, "{pad} = hint: {hint}");
    }
    if let Some(url) = &diag.url {
        let _ = writeln!(out, "{pad} = see: {url}");
    }
    out
}

/// `diag` about `file` (whose text is `source`) as one JSON object: `rule`, `severity`,
/// `file`, `line`, `column`, `end_line`, `end_column`, `message`, `hint` and `url` (the last
/// two `null` when absent).
pub(crate) fn to_json(file: &Path, source: &str, diag: &Diagnostic) -> serde_json::Value {
    let index = LineIndex::new(source);
    let start = index.line_col(source, diag.span.start);
    let end = index.line_col(source, diag.span.end);
    serde_json::json!({
        "rule": diag.rule,
        "severity": diag.severity.as_str(),
        "file": file.display().to_string(),
        "line": start.line,
        "column": start.col,
        "end_line": end.line,
        "end_column": end.col,
        "message": diag.message,
        "hint": diag.hint,
        "url": diag.url,
    })
}

/// `diagnostics` about `file` (whose text is `source`) as a SARIF 2.1.0 log with one run of
/// the tool `kiln`.
///
/// The driver lists every build check, BuildKit's then kiln's (`id` the rule's name,
/// `shortDescription` from its description, `helpUri`, the rule's documentation as `help`, and
/// for kiln's rules their code and hadolint aliases under `properties`; kiln's `helpUri` is the
/// repository-relative path of the rule's page, `docs/lint/KL001.md`), then any other rule a
/// result names (the planner's, or an error class such as `SyntaxError`) by id alone. Each result has its
/// `ruleId` and `ruleIndex`, `level` (`warning` or `error`), `message` (with the hint as a
/// second paragraph) and one physical location: the file as a relative or absolute URI
/// reference, and the region's 1-based lines and columns (columns count Unicode code points,
/// as the run's `columnKind` says; `endColumn` is exclusive).
pub(crate) fn to_sarif(
    file: &Path,
    source: &str,
    diagnostics: &[&Diagnostic],
) -> serde_json::Value {
    let mut rules: Vec<serde_json::Value> = kiln_lint::all_rules()
        .map(|r| {
            let mut rule = serde_json::json!({
                "id": r.name,
                "shortDescription": { "text": r.description },
                "help": { "text": r.documentation(), "markdown": r.documentation() },
                "properties": { "experimental": r.experimental },
            });
            if let Some(code) = r.code {
                rule["properties"]["code"] = code.into();
                rule["properties"]["hadolint"] = r.hadolint.into();
            }
            if let Some(url) = r.url {
                rule["helpUri"] = url.into();
            }
            rule
        })
        .collect();
    let mut ids: Vec<&str> = kiln_lint::all_rules().map(|r| r.name).collect();
    let index = LineIndex::new(source);
    let uri = uri_reference(file);
    let results: Vec<serde_json::Value> = diagnostics
        .iter()
        .map(|d| {
            let rule_index = ids.iter().position(|id| *id == d.rule).unwrap_or_else(|| {
                ids.push(d.rule);
                rules.push(serde_json::json!({ "id": d.rule }));
                ids.len() - 1
            });
            let start = index.line_col(source, d.span.start);
            let end = index.line_col(source, d.span.end);
            let text = match &d.hint {
                Some(hint) => format!("{}\n\nhint: {hint}", d.message),
                None => d.message.clone(),
            };
            serde_json::json!({
                "ruleId": d.rule,
                "ruleIndex": rule_index,
                "level": d.severity.as_str(),
                "message": { "text": text },
                "locations": [{
                    "physicalLocation": {
                        "artifactLocation": { "uri": uri },
                        "region": {
                            "startLine": start.line,
                            "startColumn": start.col,
                            "endLine": end.line,
                            "endColumn": end.col,
                        },
                    },
                }],
            })
        })
        .collect();
    serde_json::json!({
        "$schema": "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {
                "driver": {
                    "name": "kiln",
                    "version": env!("CARGO_PKG_VERSION"),
                    "rules": rules,
                },
            },
            "columnKind": "unicodeCodePoints",
            "results": results,
        }],
    })
}

/// A path as a URI reference: `/` separated, with bytes other than unreserved characters and
/// `/` percent-encoded (a space is `%20`).
fn uri_reference(path: &Path) -> String {
    let mut out = String::new();
    for b in path.to_string_lossy().bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// Print warnings to stderr, each as a snippet.
pub(crate) fn print_warnings(file: &Path, source: &str, warnings: &[Diagnostic]) {
    for w in warnings {
        eprint!("{}", render_text(file, source, w));
    }
}

/// Print an error and its causes to stderr; source errors get a snippet.
pub(crate) fn print_error(err: &anyhow::Error) {
    if let Some(src) = err.downcast_ref::<SourceError>() {
        eprint!("{}", src.render());
        return;
    }
    eprintln!("error: {err}");
    for cause in err.chain().skip(1) {
        eprintln!("  caused by: {cause}");
    }
}

#[cfg(test)]
mod tests {
    use kiln_syntax::TextRange;

    use super::*;

    #[test]
    fn renders_a_caret_under_the_span() {
        let source = "FROM a\nCOPY --form=x a b\n".to_owned();
        let e = SourceError {
            file: "Dockerfile".into(),
            source,
            diagnostic: Diagnostic::error(
                "InstructionError",
                TextRange::new(12, 20),
                "unknown flag: --form",
            )
            .with_hint("did you mean --from?".to_owned()),
        };
        assert_eq!(
            e.render(),
            "error: unknown flag: --form\n --> Dockerfile:2:6\n  |\n2 | COPY --form=x a b\n  |      ^^^^^^^^\n  = hint: did you mean --from?\n"
        );
        assert_eq!(e.to_string(), "Dockerfile:2:6: unknown flag: --form");
    }

    #[test]
    fn renders_a_warning_with_its_url() {
        let source = "FROM a\nRUN a \\\n\n b\n";
        let w = Diagnostic::warning(
            "NoEmptyContinuation",
            TextRange::new(7, 18),
            "Empty continuation line found in: RUN a  b",
        )
        .with_url("https://docs.docker.com/go/dockerfile/rule/no-empty-continuation/");
        assert_eq!(
            render_text(Path::new("Dockerfile"), source, &w),
            "warning: Empty continuation line found in: RUN a  b\n --> Dockerfile:2:1\n  |\n2 | RUN a \\\n  | ^^^^^^^\n  = see: https://docs.docker.com/go/dockerfile/rule/no-empty-continuation/\n"
        );
    }

    #[test]
    fn sarif_points_at_the_region_and_names_every_rule() {
        let source = "FROM a AS B\nCOPY x y\n";
        let w = Diagnostic::warning(
            "StageNameCasing",
            TextRange::new(0, 11),
            "Stage name 'B' should be lowercase",
        )
        .with_url("https://docs.docker.com/go/dockerfile/rule/stage-name-casing/");
        let own = Diagnostic::warning("StageNameTypo", TextRange::new(12, 16), "typo")
            .with_hint("did you mean it?".to_owned());
        let doc = to_sarif(Path::new("dir/my Dockerfile"), source, &[&w, &own]);
        let run = &doc["runs"][0];
        assert_eq!(doc["version"], "2.1.0");
        assert_eq!(run["tool"]["driver"]["name"], "kiln");
        let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
        // BuildKit's 22 checks, kiln's own rules, and the planner's rule of the second one.
        assert_eq!(rules.len(), kiln_lint::all_rules().count() + 1);
        assert!(kiln_lint::all_rules().count() >= 22 + 11);
        assert_eq!(rules[0]["id"], "StageNameCasing");
        assert_eq!(
            rules[0]["shortDescription"]["text"],
            "Stage names should be lowercase"
        );
        assert_eq!(
            rules[0]["helpUri"],
            "https://docs.docker.com/go/dockerfile/rule/stage-name-casing/"
        );
        let typo = kiln_lint::all_rules().count();
        assert_eq!(rules[typo], serde_json::json!({ "id": "StageNameTypo" }));
        let results = run["results"].as_array().unwrap();
        assert_eq!(results[0]["ruleIndex"], 0);
        assert_eq!(results[0]["level"], "warning");
        let location = &results[0]["locations"][0]["physicalLocation"];
        assert_eq!(location["artifactLocation"]["uri"], "dir/my%20Dockerfile");
        assert_eq!(
            location["region"],
            serde_json::json!({ "startLine": 1, "startColumn": 1, "endLine": 1, "endColumn": 12 })
        );
        assert_eq!(results[1]["ruleIndex"], typo);
        assert_eq!(
            results[1]["message"]["text"],
            "typo\n\nhint: did you mean it?"
        );
    }

    #[test]
    fn json_has_every_field_with_one_based_positions() {
        let source = "FROM a AS b\nCOPY --from=bb /x /y\n";
        let w = Diagnostic::warning("StageNameTypo", TextRange::new(17, 26), "not a stage")
            .with_hint("did you mean the stage `b`?".to_owned());
        assert_eq!(
            to_json(Path::new("dir/Dockerfile"), source, &w),
            serde_json::json!({
                "rule": "StageNameTypo",
                "severity": "warning",
                "file": "dir/Dockerfile",
                "line": 2,
                "column": 6,
                "end_line": 2,
                "end_column": 15,
                "message": "not a stage",
                "hint": "did you mean the stage `b`?",
                "url": null,
            })
        );
    }
}
