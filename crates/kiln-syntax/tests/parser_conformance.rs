//! BuildKit's parser corpus: every `testfiles/` case dumps byte for byte to its `result`,
//! every `testfiles-negative/` case is an error, and `testfile-line` has the expected lines.

use std::fs;
use std::path::Path;

use kiln_syntax::{ParseErrorKind, dump, parse_bytes};

fn corpus() -> Option<std::path::PathBuf> {
    kiln_test_support::conformance_dir().map(|d| d.join("buildkit-parser"))
}

fn cases(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut cases: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    cases
}

#[test]
fn every_positive_case_dumps_exactly() {
    let Some(root) = corpus() else { return };
    let cases = cases(&root.join("testfiles"));
    assert_eq!(cases.len(), 33, "the corpus has 33 positive cases");
    let mut failures = Vec::new();
    for case in &cases {
        let src = fs::read(case.join("Dockerfile")).unwrap();
        let expected = fs::read_to_string(case.join("result")).unwrap();
        match parse_bytes(&src) {
            Ok(df) => {
                let got = dump(&df) + "\n";
                if got != expected {
                    failures.push(format!(
                        "{}:\n--- expected\n{expected}--- got\n{got}",
                        case.display()
                    ));
                }
            }
            Err(e) => failures.push(format!("{}: unexpected error: {e}", case.display())),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_negative_case_is_an_error() {
    let Some(root) = corpus() else { return };
    let cases = cases(&root.join("testfiles-negative"));
    assert_eq!(cases.len(), 4);
    for case in &cases {
        let src = fs::read(case.join("Dockerfile")).unwrap();
        let err = parse_bytes(&src).expect_err(&case.display().to_string());
        let name = case.file_name().unwrap().to_str().unwrap();
        let expected = match name {
            "empty_dockerfile" | "only_comments" => ParseErrorKind::NoInstructions,
            "env_no_value" => ParseErrorKind::MissingValue("ENV"),
            "shykes-nested-json" => ParseErrorKind::NotStringArray,
            other => panic!("unknown negative case {other}"),
        };
        assert_eq!(err.kind, expected, "{name}");
    }
}

#[test]
fn line_numbers_match() {
    let Some(root) = corpus() else { return };
    let src = fs::read(root.join("testfile-line/Dockerfile")).unwrap();
    let df = parse_bytes(&src).unwrap();
    let lines: Vec<_> = df
        .instructions
        .iter()
        .map(|i| (i.start_line, i.end_line))
        .collect();
    assert_eq!(lines, [(5, 5), (11, 12), (17, 31)]);
}
