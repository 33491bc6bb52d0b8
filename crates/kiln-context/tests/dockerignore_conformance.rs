//! The shared `.dockerignore` corpus (`conformance/dockerignore`): matching, compiling and
//! ignore-file reading, row by row, against moby/patternmatcher's recorded behaviour.

use std::fs;
use std::path::PathBuf;

use kiln_context::{
    MatchInfo, MatchType, PatternError, PatternMatcher, legacy_matches, read_ignore_lines,
};

fn corpus() -> Option<PathBuf> {
    kiln_test_support::conformance_dir().map(|dir| dir.join("dockerignore"))
}

/// Rows of a TSV file (header skipped), each split at tabs.
fn rows(name: &str) -> Option<Vec<Vec<String>>> {
    let text = fs::read_to_string(corpus()?.join(name)).expect("corpus file is readable");
    Some(
        text.lines()
            .skip(1)
            .filter(|l| !l.is_empty())
            .map(|l| l.split('\t').map(str::to_owned).collect())
            .collect(),
    )
}

/// What a row expects: `Some(bool)` for a result, `None` for an error.
fn expected(cell: &str) -> Option<bool> {
    match cell {
        "true" => Some(true),
        "false" => Some(false),
        "error" => None,
        other => panic!("unknown expectation `{other}`"),
    }
}

/// `MatchesUsingParentResults` as a walker calls it: each ancestor first, passing results down.
fn using_parent_chain(pm: &PatternMatcher, path: &str) -> Result<bool, PatternError> {
    let mut info = MatchInfo::default();
    if let Some((parent, _)) = path.rsplit_once('/') {
        let parent = parent.trim_end_matches('/');
        if !parent.is_empty() {
            let mut prefix = String::new();
            for part in parent.split('/') {
                if !prefix.is_empty() {
                    prefix.push('/');
                }
                prefix.push_str(part);
                info = pm.matches_using_parent_results(&prefix, &info)?.1;
            }
        }
    }
    Ok(pm.matches_using_parent_results(path, &info)?.0)
}

#[test]
fn cases_tsv() {
    let Some(rows) = rows("cases.tsv") else {
        return;
    };
    assert_eq!(rows.len(), 142, "corpus row count changed");
    let mut checked = 0;
    for row in &rows {
        let [source, method, patterns, path, want, platform, ..] = row.as_slice() else {
            panic!("malformed row {row:?}");
        };
        if platform != "all" && platform != "unix" {
            continue;
        }
        let patterns: Vec<String> =
            serde_json::from_str(patterns).expect("patterns are a JSON array");
        let want = expected(want);
        let context = format!("{source} {method} {patterns:?} {path:?}");

        if method == "Matches(deprecated)" {
            assert_eq!(legacy_matches(path, &patterns).ok(), want, "{context}");
            checked += 1;
            continue;
        }
        let pm = match PatternMatcher::new(&patterns) {
            Ok(pm) => pm,
            Err(e) => {
                assert_eq!(want, None, "{context}: unexpected error {e}");
                checked += 1;
                continue;
            }
        };
        // Upstream asserts that a bad pattern keeps failing on repeated calls.
        for _ in 0..2 {
            assert_eq!(
                pm.matches(path).ok(),
                want,
                "{context} (MatchesOrParentMatches)"
            );
        }
        if method.contains("MatchesUsingParentResults") {
            let no_context = pm
                .matches_using_parent_results(path, &MatchInfo::default())
                .map(|(m, _)| m);
            assert_eq!(
                no_context.ok(),
                want,
                "{context} (MatchesUsingParentResultsNoContext)"
            );
            assert_eq!(
                using_parent_chain(&pm, path).ok(),
                want,
                "{context} (MatchesUsingParentResults)"
            );
        }
        checked += 1;
    }
    assert_eq!(checked, 142, "every all/unix row must be checked");
}

#[test]
fn compile_tsv() {
    let Some(rows) = rows("compile.tsv") else {
        return;
    };
    assert_eq!(rows.len(), 21, "corpus row count changed");
    for row in &rows {
        let [pattern, kind, regexp_slash, ..] = row.as_slice() else {
            panic!("malformed row {row:?}")
        };
        let pm = PatternMatcher::new([pattern]).expect("corpus patterns are valid");
        let compiled = &pm.patterns()[0];
        let want = match kind.as_str() {
            "exactMatch" => MatchType::Exact,
            "prefixMatch" => MatchType::Prefix,
            "suffixMatch" => MatchType::Suffix,
            "regexpMatch" => MatchType::Regexp,
            other => panic!("unknown match type `{other}`"),
        };
        assert_eq!(compiled.match_type(), want, "{pattern:?}");
        let want_regexp = (want == MatchType::Regexp).then_some(regexp_slash.as_str());
        assert_eq!(compiled.go_regexp(), want_regexp, "{pattern:?}");
    }
}

#[test]
fn ignorefile_readall_tsv() {
    let Some(rows) = rows("ignorefile_readall.tsv") else {
        return;
    };
    assert_eq!(rows.len(), 9, "corpus row count changed");
    let mut whole_file = String::new();
    let mut whole_expected = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        let [input, output, ..] = row.as_slice() else {
            panic!("malformed row {row:?}")
        };
        let got: Vec<String> = read_ignore_lines(input.as_bytes())
            .expect("short lines are fine")
            .into_iter()
            .map(|l| l.pattern)
            .collect();
        let want: Vec<String> = if output.is_empty() {
            vec![]
        } else {
            vec![output.clone()]
        };
        assert_eq!(got, want, "line {input:?}");

        // The same lines as one file keep their order and their 1-based line numbers.
        whole_file.push_str(input);
        whole_file.push('\n');
        if !output.is_empty() {
            whole_expected.push((i + 1, output.clone()));
        }
    }
    let got: Vec<(usize, String)> = read_ignore_lines(whole_file.as_bytes())
        .expect("short lines are fine")
        .into_iter()
        .map(|l| (l.line, l.pattern))
        .collect();
    assert_eq!(got, whole_expected);
}

#[test]
fn bare_bang_from_an_ignore_file_fails_with_its_line() {
    let err = kiln_context::IgnoreRules::parse(b"foo\n\n! \n", PathBuf::from("ctx/.dockerignore"))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid pattern `!` at `ctx/.dockerignore` line 3",
        "message names the file, line and pattern"
    );
    assert_eq!(
        std::error::Error::source(&err).unwrap().to_string(),
        "illegal exclusion pattern: \"!\""
    );
    assert!(err.hint().is_some());
}
