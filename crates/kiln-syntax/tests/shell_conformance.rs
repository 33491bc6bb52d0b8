//! BuildKit's own shell-expansion corpus (`envVarTest`, `wordsTest`), run with the rules of
//! its Go harness (`TestShellParser4EnvVars`, `TestShellParser4Words`); see the corpus README.

use std::fs;
use std::path::PathBuf;

use kiln_syntax::shell::Lexer;

/// The corpus folder, or `None` (already reported) when it is absent outside CI.
fn corpus() -> Option<PathBuf> {
    kiln_test_support::conformance_dir().map(|dir| dir.join("buildkit-shell"))
}

/// Lines as Go's `bufio.Scanner` yields them: split at `\n`, a trailing `\r` removed, no
/// empty last line after a final newline.
fn scanner_lines(text: &str) -> Vec<&str> {
    let text = text.strip_suffix('\n').unwrap_or(text);
    text.split('\n')
        .map(|line| line.strip_suffix('\r').unwrap_or(line))
        .collect()
}

#[test]
fn env_var_test() {
    let Some(dir) = corpus() else { return };
    let text = fs::read_to_string(dir.join("envVarTest")).expect("read envVarTest");
    let env = ["PWD=/home", "SHELL=bash", "KOREAN=한국어", "NULL="];
    let lexer = Lexer::new('\\');

    let mut ran = 0;
    let mut failures = Vec::new();
    for (index, raw) in scanner_lines(&text).into_iter().enumerate() {
        let line_no = index + 1;
        if raw.starts_with('#') {
            continue;
        }
        let line = raw.trim();
        if line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split('|').collect();
        assert_eq!(
            fields.len(),
            3,
            "line {line_no}: expected 3 fields in {line:?}"
        );
        let (platform, source, expected) = (fields[0].trim(), fields[1].trim(), fields[2].trim());
        match platform {
            "A" | "U" => {}
            "W" => continue,
            other => panic!("line {line_no}: invalid platform tag {other:?}"),
        }
        ran += 1;
        let got = lexer.process_word(source, &env);
        let ok = match (&got, expected) {
            (Err(_), "error") => true,
            (Ok(word), expected) => expected != "error" && word == expected,
            (Err(_), _) => false,
        };
        if !ok {
            failures.push(format!(
                "line {line_no}: {source:?} gave {got:?}, expected {expected:?}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // 226 `A` and 2 `U` cases: a corpus that silently shrank must not pass.
    assert_eq!(ran, 228, "number of envVarTest cases run");
}

#[test]
fn words_test() {
    let Some(dir) = corpus() else { return };
    let text = fs::read_to_string(dir.join("wordsTest")).expect("read wordsTest");
    let lexer = Lexer::new('\\');

    let mut envs: Vec<String> = Vec::new();
    let mut ran = 0;
    let mut failures = Vec::new();
    for (index, line) in scanner_lines(&text).into_iter().enumerate() {
        let line_no = index + 1;
        if line.starts_with('#') {
            continue;
        }
        if let Some(rest) = line.strip_prefix("ENV ") {
            envs.push(rest.trim_start_matches(' ').to_owned());
            continue;
        }
        let parts: Vec<&str> = line.split('|').collect();
        assert_eq!(
            parts.len(),
            2,
            "line {line_no}: expected exactly one `|` in {line:?}"
        );
        let input = parts[0].trim();
        let expected: Vec<&str> = parts[1].trim_start_matches(' ').split(',').collect();
        ran += 1;
        let got = lexer
            .process_words(input, &envs)
            .unwrap_or_else(|_| vec!["error".to_owned()]);
        if got != expected {
            failures.push(format!(
                "line {line_no}: {input:?} gave {got:?}, expected {expected:?}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(ran, 24, "number of wordsTest cases run");
}

/// Regression (cargo fuzz, lexer target): nested `${V//p/r}` multiply sizes; the expansion
/// stops with an error instead of exhausting memory.
#[test]
fn nested_replacements_are_bounded() {
    use kiln_syntax::shell::{Lexer, ShellError};
    let env = ["P=*x?"];
    let mut word = "${P//?/ab}".to_owned();
    for _ in 0..24 {
        word = format!("${{P//?/{word}}}");
    }
    let err = Lexer::new('\\').process_word(&word, &env).unwrap_err();
    assert!(matches!(err, ShellError::TooLarge { .. }), "{err}");
    assert!(err.to_string().contains("expansion larger than"));
}

/// Regression (cargo fuzz, lexer target): patterns with many stars over long values stay
/// fast (linear-time matching), and give Go's answers.
#[test]
fn many_star_patterns_are_linear() {
    use kiln_syntax::shell::Lexer;
    let long = "a".repeat(200_000);
    let env = [format!("V={long}")];
    let env: Vec<&str> = env.iter().map(String::as_str).collect();
    let lexer = Lexer::new('\\');
    let out = lexer.process_word("${V//*a*a*a*a*a*a*b/x}", &env).unwrap();
    assert_eq!(out.len(), long.len(), "no match: unchanged");
    assert_eq!(lexer.process_word("${V##*a*a}", &env).unwrap(), "");
    assert_eq!(
        lexer.process_word("${V%a*a}", &env).unwrap().len(),
        long.len() - 2
    );
}
