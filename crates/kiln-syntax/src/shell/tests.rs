//! Behaviour of the lexer beyond BuildKit's corpus files: the inline tables of upstream
//! `lex_test.go`, the options, errors and their offsets, and BuildKit's oddities.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::{Env, Expansion, Lexer, ShellError};

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|&(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|&n| n.to_owned()).collect()
}

/// The expected outcome of one `process_word_with_matches` case.
enum Want {
    /// This result, these matched and these unmatched names.
    Ok(
        &'static str,
        &'static [&'static str],
        &'static [&'static str],
    ),
    Err,
}

/// One case: the word, the env as `(name, value)` pairs, and the outcome.
type Case = (&'static str, &'static [(&'static str, &'static str)], Want);

/// Upstream `TestProcessWithMatches`.
#[rustfmt::skip]
const WITH_MATCHES: &[Case] = &[
    ("x", &[("DUMMY", "dummy")], Want::Ok("x", &[], &[])),
    ("x ${UNUSED}", &[("DUMMY", "dummy")], Want::Ok("x ", &[], &["UNUSED"])),
    ("x ${FOO}", &[("FOO", "y")], Want::Ok("x y", &["FOO"], &[])),
    // `-` and `:-`: only the colon form treats empty as unset.
    ("${FOO-aaa} ${BAR-bbb} ${BAZ-ccc}", &[("FOO", "xxx"), ("BAR", "")],
        Want::Ok("xxx  ccc", &["FOO", "BAR"], &["BAZ"])),
    ("${FOO:-aaa} ${BAR:-bbb} ${BAZ:-ccc}", &[("FOO", "xxx"), ("BAR", "")],
        Want::Ok("xxx bbb ccc", &["FOO", "BAR"], &["BAZ"])),
    ("${FOO:-}", &[("FOO", "xxx"), ("BAR", "")], Want::Ok("xxx", &["FOO"], &[])),
    ("${FOO:-}", &[], Want::Ok("", &[], &["FOO"])),
    // `+` and `:+`.
    ("${FOO+aaa} ${BAR+bbb} ${BAZ+ccc}", &[("FOO", "xxx"), ("BAR", "")],
        Want::Ok("aaa bbb ", &["FOO", "BAR"], &["BAZ"])),
    ("${FOO:+aaa} ${BAR:+bbb} ${BAZ:+ccc}", &[("FOO", "xxx"), ("BAR", "")],
        Want::Ok("aaa  ", &["FOO", "BAR"], &["BAZ"])),
    // `?` and `:?`.
    ("${FOO?aaa}", &[("FOO", "xxx"), ("BAR", "")], Want::Ok("xxx", &["FOO"], &[])),
    ("${BAR?bbb}", &[("FOO", "xxx"), ("BAR", "")], Want::Ok("", &["BAR"], &[])),
    ("${BAZ?ccc}", &[("FOO", "xxx"), ("BAR", "")], Want::Err),
    ("${FOO:?aaa}", &[("FOO", "xxx"), ("BAR", "")], Want::Ok("xxx", &["FOO"], &[])),
    ("${BAR:?bbb}", &[("FOO", "xxx"), ("BAR", "")], Want::Err),
    ("${BAZ:?ccc}", &[("FOO", "xxx"), ("BAR", "")], Want::Err),
    ("${BAZ:?}", &[("FOO", "xxx"), ("BAR", "")], Want::Err),
    // Assignment forms are not supported.
    ("${FOO=aaa}", &[("FOO", "xxx"), ("BAR", "")], Want::Err),
    ("${FOO=:aaa}", &[("FOO", "xxx"), ("BAR", "")], Want::Err),
    ("${FOO=}", &[], Want::Err),
    // Regex metacharacters are literal; `}` must be escaped inside `${}`.
    (r"${FOO#()[]{\}^$.\*\?|\\}", &[("FOO", r"()[]{}^$.*?|\x")], Want::Ok("x", &["FOO"], &[])),
    (r"${FOO%%\**}", &[("FOO", "xx**")], Want::Ok("xx", &["FOO"], &[])),
    ("${FOO#*x*y}", &[("FOO", "xxyy")], Want::Ok("y", &["FOO"], &[])),
    ("${FOO#*}", &[("FOO", "xxyy")], Want::Ok("xxyy", &["FOO"], &[])),
    ("${FOO#$BAR}", &[("FOO", "xxyy"), ("BAR", "x")], Want::Ok("xyy", &["FOO", "BAR"], &[])),
    ("${FOO#$BAR}", &[("FOO", "xxyy"), ("BAR", "")], Want::Ok("xxyy", &["FOO", "BAR"], &[])),
    ("${FOO#}", &[("FOO", "xxyy")], Want::Ok("xxyy", &["FOO"], &[])),
    ("${FOO##*x}", &[("FOO", "xxyy")], Want::Ok("yy", &["FOO"], &[])),
    ("${FOO##}", &[("FOO", "xxyy")], Want::Ok("xxyy", &["FOO"], &[])),
    (r"${FOO#?\?}", &[("FOO", "???y")], Want::Ok("?y", &["FOO"], &[])),
    ("${ABC:-.}${FOO%x}${ABC:-.}", &[("FOO", "xxyy")], Want::Ok(".xxyy.", &["FOO"], &["ABC"])),
    (r"${FOO%%\**\*}", &[("FOO", "a***yy*")], Want::Ok("a", &["FOO"], &[])),
    ("${FOO%}", &[("FOO", "xxyy")], Want::Ok("xxyy", &["FOO"], &[])),
    ("${FOO%%$BAR}", &[("FOO", "xxyy"), ("BAR", "")], Want::Ok("xxyy", &["FOO", "BAR"], &[])),
    // `:` cannot precede `#` or `%`.
    ("${FOO:#}", &[], Want::Err),
    ("${FOO:##}", &[], Want::Err),
    ("${FOO:%}", &[], Want::Err),
    ("${FOO:%%}", &[], Want::Err),
    // Replacement: wildcards, `/` in patterns, escaped separators.
    ("${FOO/$NEEDLE/.} - ${FOO//$NEEDLE/.}", &[("FOO", "/foo*/*/*.txt"), ("NEEDLE", r"\*/")],
        Want::Ok("/foo.*/*.txt - /foo..*.txt", &["FOO", "NEEDLE"], &[])),
    ("${FOO/$NEEDLE/} - ${FOO//$NEEDLE/}", &[("FOO", "/tmp/tmp/bar.txt"), ("NEEDLE", "/tmp")],
        Want::Ok("/tmp/bar.txt - /bar.txt", &["FOO", "NEEDLE"], &[])),
    ("${FOO/$NEEDLE/$REPLACEMENT} - ${FOO//$NEEDLE/$REPLACEMENT}",
        &[("FOO", "/a/foo/b/c.txt"), ("NEEDLE", "/?/"), ("REPLACEMENT", "/")],
        Want::Ok("/foo/b/c.txt - /foo/c.txt", &["FOO", "NEEDLE", "REPLACEMENT"], &[])),
    ("${FOO/$NEEDLE/$REPLACEMENT}",
        &[("FOO", "http://google.de"), ("NEEDLE", "http://"), ("REPLACEMENT", "https://")],
        Want::Ok("https://google.de", &["FOO", "NEEDLE", "REPLACEMENT"], &[])),
    (r"${FOO//\//\/}", &[("FOO", "/tmp/foo.txt")], Want::Ok(r"\/tmp\/foo.txt", &["FOO"], &[])),
    // Partial forms (upstream: "not guaranteed behaviour", but tested).
    ("${FOO/$BAR/ww}", &[("FOO", "xxyy"), ("BAR", "")], Want::Ok("wwxxyy", &["FOO", "BAR"], &[])),
    ("${FOO//ww}", &[("FOO", "xxyy")], Want::Err),
    ("${FOO//}", &[("FOO", "xxyy")], Want::Err),
    ("${FOO///}", &[("FOO", "xxyy")], Want::Ok("xxyy", &["FOO"], &[])),
    ("${FOO///}", &[], Want::Ok("", &[], &["FOO"])),
];

#[test]
fn process_with_matches_table() {
    let lexer = Lexer::new('\\');
    let mut failures = Vec::new();
    for (input, env, want) in WITH_MATCHES {
        let got = lexer.process_word_with_matches(input, &map(env));
        let ok = match (want, &got) {
            (Want::Err, Err(_)) => true,
            (Want::Ok(result, matched, unmatched), Ok(got)) => {
                got.result == *result
                    && got.matched == set(matched)
                    && got.unmatched == set(unmatched)
            }
            _ => false,
        };
        if !ok {
            failures.push(format!("{input:?}: got {got:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(WITH_MATCHES.len(), 47);
}

#[test]
fn release_file_name_with_optional_variant() {
    // Upstream `TestProcessWithMatchesPlatform`.
    let word =
        "something-${VERSION}.${TARGETOS}-${TARGETARCH}${TARGETVARIANT:+-${TARGETVARIANT}}.tar.gz";
    let lexer = Lexer::new('\\');
    let base = [("VERSION", "v1.2.3"), ("TARGETOS", "linux")];
    let cases: [(&[(&str, &str)], &str); 3] = [
        (
            &[("TARGETARCH", "arm"), ("TARGETVARIANT", "v7")],
            "something-v1.2.3.linux-arm-v7.tar.gz",
        ),
        (
            &[("TARGETARCH", "arm64"), ("TARGETVARIANT", "")],
            "something-v1.2.3.linux-arm64.tar.gz",
        ),
        (
            &[("TARGETARCH", "arm64")],
            "something-v1.2.3.linux-arm64.tar.gz",
        ),
    ];
    for (extra, want) in cases {
        let env = map(&[&base[..], extra].concat());
        assert_eq!(lexer.process_word(word, &env).unwrap(), want);
    }
}

#[test]
fn mandatory_variables() {
    // Upstream `TestShellParserMandatoryEnvVars`.
    let lexer = Lexer::new('\\');
    let set_env = ["VAR=plain", "ARG=x"];
    let empty_env = ["VAR=", "ARG=x"];
    let unset_env = ["ARG=x"];
    let no_empty = "${VAR:?message here$ARG}";
    let no_unset = "${VAR?message here$ARG}";

    assert_eq!(lexer.process_word(no_empty, &set_env).unwrap(), "plain");
    for env in [&empty_env[..], &unset_env[..]] {
        let err = lexer.process_word(no_empty, &env).unwrap_err();
        assert_eq!(err.to_string(), "VAR: message herex");
    }
    assert_eq!(lexer.process_word(no_unset, &set_env).unwrap(), "plain");
    assert_eq!(lexer.process_word(no_unset, &empty_env).unwrap(), "");
    let err = lexer.process_word(no_unset, &unset_env).unwrap_err();
    assert_eq!(err.to_string(), "VAR: message herex");
}

#[test]
fn mandatory_variable_default_messages() {
    let lexer = Lexer::new('\\');
    let env = ["EMPTY="];
    let err = lexer.process_word("${UNSET?}", &env).unwrap_err();
    assert_eq!(err.to_string(), "UNSET: is not allowed to be unset");
    let err = lexer.process_word("${UNSET:?}", &env).unwrap_err();
    assert_eq!(err.to_string(), "UNSET: is not allowed to be unset");
    let err = lexer.process_word("ab${EMPTY:?}", &env).unwrap_err();
    assert_eq!(err.to_string(), "EMPTY: is not allowed to be empty");
    assert_eq!(
        err,
        ShellError::EmptyVariable {
            name: "EMPTY".into(),
            message: None,
            offset: 2
        }
    );
}

#[test]
fn env_lists_last_entry_wins() {
    // Upstream `TestGetEnv`.
    let empty: [&str; 0] = [];
    assert_eq!(Env::get(&empty, "foo"), None);
    assert_eq!(Env::get(&["foo"], "foo"), Some(""));
    assert_eq!(Env::get(&["foo="], "foo"), Some(""));
    assert_eq!(Env::get(&["foo=bar"], "foo"), Some("bar"));
    let list = ["foo=bar", "car=hat", "car=bike"];
    assert_eq!(Env::get(&list, "foo"), Some("bar"));
    assert_eq!(Env::get(&list, "car"), Some("bike"));
    assert_eq!(Env::get(&["a=b=c"], "a"), Some("b=c"));

    let owned: Vec<String> = vec!["car=hat".into(), "car=bike".into()];
    assert_eq!(Env::get(&owned, "car"), Some("bike"));
    let pairs: Vec<(String, String)> =
        vec![("car".into(), "hat".into()), ("car".into(), "bike".into())];
    assert_eq!(Env::get(&pairs, "car"), Some("bike"));
    assert_eq!(
        Env::get(&[("car", "hat"), ("car", "bike")], "car"),
        Some("bike")
    );
    let slice: &[&str] = &list;
    assert_eq!(
        Lexer::default().process_word("$car", &slice).unwrap(),
        "bike"
    );
    let hash: HashMap<String, String> = HashMap::from([("k".into(), "v".into())]);
    assert_eq!(Env::get(&hash, "k"), Some("v"));
    // Case-sensitive, as on Linux.
    assert_eq!(Env::get(&list, "FOO"), None);
}

#[test]
fn raw_quotes_keeps_quotes_but_not_their_splitting() {
    let lexer = Lexer::new('\\').raw_quotes(true);
    let env = ["A=x  y"];
    assert_eq!(
        lexer.process_word(r#"'a b'"$A"c"#, &env).unwrap(),
        r#"'a b'"x  y"c"#
    );
    assert_eq!(
        lexer.process_words(r#"'a b' "$A" $A"#, &env).unwrap(),
        ["'a b'", r#""x  y""#, "x", "y"]
    );
    assert_eq!(Lexer::new('\\').process_word("'a b'", &env).unwrap(), "a b");
}

#[test]
fn raw_escapes_keeps_escape_characters() {
    let lexer = Lexer::new('\\').raw_escapes(true);
    let env = ["A=1"];
    assert_eq!(lexer.process_word(r"\$A$A", &env).unwrap(), r"\$A1");
    // In double quotes an escape of anything but `"`, `$` or `\` is kept twice: once as the raw
    // escape, once as the literal it then is.
    assert_eq!(lexer.process_word(r#""\t\$A""#, &env).unwrap(), r"\\t\$A");
    // A trailing escape is kept, and nothing follows it.
    assert_eq!(lexer.process_word("a\\", &env).unwrap(), "a\\");
    // The word of `:-` is scanned without raw escapes.
    assert_eq!(lexer.process_word(r"${B:-\$A}", &env).unwrap(), "$A");
    assert_eq!(Lexer::new('\\').process_word(r"\$A", &env).unwrap(), "$A");
}

#[test]
fn skip_unset_env_leaves_unset_references() {
    let lexer = Lexer::new('\\').skip_unset_env(true);
    let env = ["SET=v", "EMPTY="];
    for (word, want) in [
        ("$U", "$U"),
        ("${U}", "${U}"),
        ("${U:-$SET}", "${U:-v}"),
        ("${U+x}", "${U+x}"),
        ("${U?x}", "${U?x}"),
        ("${U##*/}", "${U##*/}"),
        ("${U//a/b}", "${U/a/b}"),
        ("${U:Z}", "${U:Z}"),
        ("$SET${EMPTY:-d}", "vd"),
        ("$1", "$1"),
    ] {
        assert_eq!(lexer.process_word(word, &env).unwrap(), want, "{word}");
    }
    // Errors that do not depend on the variable still happen.
    assert!(lexer.process_word("${U=x}", &env).is_err());
    assert!(lexer.process_word("${}", &env).is_err());
    assert_eq!(Lexer::new('\\').process_word("a$U", &env).unwrap(), "a");
}

#[test]
fn skip_process_quotes_treats_quotes_as_text() {
    let lexer = Lexer::new('\\').skip_process_quotes(true);
    let env = ["A=x y"];
    assert_eq!(
        lexer.process_word(r#"'$A' "b"#, &env).unwrap(),
        r#"'x y' "b"#
    );
    assert_eq!(
        lexer.process_words(r#"'$A' "b"#, &env).unwrap(),
        ["'x", "y'", "\"b"]
    );
    assert_eq!(lexer.process_word(r"\'", &env).unwrap(), "'");
}

#[test]
fn backtick_escape() {
    let lexer = Lexer::new('`');
    let env = ["A=1"];
    assert_eq!(lexer.process_word(r"C:\dir\$A", &env).unwrap(), r"C:\dir\1");
    assert_eq!(lexer.process_word("`$A`", &env).unwrap(), "$A");
    assert_eq!(lexer.process_word(r#""a`"b\c""#, &env).unwrap(), r#"a"b\c"#);
    assert_eq!(lexer.process_words("a` b c", &env).unwrap(), ["a b", "c"]);
    // Patterns still use `\` for their own escapes.
    assert_eq!(
        lexer.process_word(r"${B:-x}${A#\*}", &["A=*1"]).unwrap(),
        "x1"
    );
    assert_eq!(lexer.escape(), '`');
}

#[test]
fn errors_carry_offsets() {
    let lexer = Lexer::new('\\');
    let env = ["SET=v"];
    for (word, want) in [
        ("ab${}", ShellError::BadSubstitution { offset: 2 }),
        ("ab${:x}", ShellError::BadSubstitution { offset: 2 }),
        ("a${", ShellError::MissingBrace { offset: 1 }),
        ("a${SET", ShellError::MissingBrace { offset: 1 }),
        ("a${SET:-x", ShellError::MissingBrace { offset: 1 }),
        ("a${SET:-'x}", ShellError::MissingBrace { offset: 1 }),
        ("a${SET/x", ShellError::MissingSlash { offset: 1 }),
        ("a${SET//x/", ShellError::MissingBrace { offset: 1 }),
        ("é'x", ShellError::UnterminatedSingleQuote { offset: 2 }),
        ("x\"$SET", ShellError::UnterminatedDoubleQuote { offset: 1 }),
        ("x\"\\\"", ShellError::UnterminatedDoubleQuote { offset: 1 }),
        (
            "${SET:=x}",
            ShellError::UnsupportedModifier {
                modifier: ":=".into(),
                offset: 0,
            },
        ),
        (
            "${SET=x}",
            ShellError::UnsupportedModifier {
                modifier: "=".into(),
                offset: 0,
            },
        ),
        (
            "${SET.}",
            ShellError::UnsupportedModifier {
                modifier: ".".into(),
                offset: 0,
            },
        ),
        (
            "${SET:%x}",
            ShellError::UnsupportedModifier {
                modifier: ":%".into(),
                offset: 0,
            },
        ),
        (
            "x${A:-${U?no}}",
            ShellError::UnsetVariable {
                name: "U".into(),
                message: Some("no".into()),
                offset: 6,
            },
        ),
        (
            r"${SET#\x}",
            ShellError::InvalidPatternEscape {
                pattern: r"\x".into(),
                escaped: Some('x'),
                offset: 0,
            },
        ),
        (
            r"${SET/a\b/c}",
            ShellError::InvalidPatternEscape {
                pattern: r"a\b".into(),
                escaped: Some('b'),
                offset: 0,
            },
        ),
    ] {
        let err = lexer.process_word(word, &env).unwrap_err();
        assert_eq!(err, want, "{word}");
        assert_eq!(err.offset(), want.offset());
    }
}

#[test]
fn error_messages_use_buildkit_wording() {
    let lexer = Lexer::new('\\');
    let env: [&str; 0] = [];
    for (word, message) in [
        ("${}", "syntax error: bad substitution"),
        ("${A", "syntax error: missing '}'"),
        ("${A/b", "syntax error: missing '/' in ${}"),
        (
            "'a",
            "unexpected end of statement while looking for matching single-quote",
        ),
        (
            "\"a",
            "unexpected end of statement while looking for matching double-quote",
        ),
        ("${A:=b}", "unsupported modifier (:=) in substitution"),
        (
            r"${A%\q}",
            r"invalid pattern (\q) in substitution: invalid escape '\q'",
        ),
    ] {
        assert_eq!(
            lexer.process_word(word, &env).unwrap_err().to_string(),
            message,
            "{word}"
        );
    }
}

#[test]
fn nested_modifier_discards_fields_split_before_it() {
    // BuildKit's shared field buffer: the expanded string is complete, the fields are not.
    let lexer = Lexer::new('\\');
    let env: [&str; 0] = [];
    let out = lexer.process_word_with_matches("x${A:-y}z", &env).unwrap();
    assert_eq!(out.result, "xyz");
    assert_eq!(out.words, ["yz"]);
    assert_eq!(
        lexer.process_words("a b${A:-c}d", &env).unwrap(),
        ["a", "cd"]
    );
    // A plain `${A}` has no nested scan and keeps everything.
    assert_eq!(lexer.process_words("x${A}z", &["A=y"]).unwrap(), ["xyz"]);
}

#[test]
fn heredoc_operator_stays_with_its_word() {
    let lexer = Lexer::new('\\');
    let env: [&str; 0] = [];
    assert_eq!(
        lexer.process_words("cat <<  EOF x", &env).unwrap(),
        ["cat", "<<  EOF", "x"]
    );
    assert_eq!(lexer.process_words("a < b", &env).unwrap(), ["a", "<", "b"]);
    assert_eq!(
        lexer.process_word("cat <<  EOF", &env).unwrap(),
        "cat <<  EOF"
    );
}

#[test]
fn leading_byte_order_mark_is_dropped() {
    let lexer = Lexer::new('\\');
    let env = ["A=1"];
    assert_eq!(lexer.process_word("\u{FEFF}$A", &env).unwrap(), "1");
    assert_eq!(lexer.process_word("$A\u{FEFF}", &env).unwrap(), "1\u{FEFF}");
}

#[test]
fn names_positional_and_special_parameters() {
    let lexer = Lexer::new('\\');
    let env = ["한국어=ko", "A_1=a", "1=one", "@=at"];
    for (word, want) in [
        ("$한국어!", "ko!"),
        ("$A_1-", "a-"),
        ("$12x", "x"),
        ("$1x", "onex"),
        ("$@@", "at@"),
        ("${@}", "at"),
        ("$-x", "x"),
        ("$.", "$."),
        ("$", "$"),
        ("a$ b", "a$ b"),
    ] {
        assert_eq!(lexer.process_word(word, &env).unwrap(), want, "{word}");
    }
    let out = lexer.process_word_with_matches("$1$2$@", &env).unwrap();
    assert_eq!(out.matched, set(&["1", "@"]));
    assert_eq!(out.unmatched, set(&["2"]));
}

#[test]
fn greedy_marker_is_read_after_expansion() {
    // BuildKit checks the first character of the expanded pattern for the second `#`/`%`.
    let lexer = Lexer::new('\\');
    let env = ["V=a/b/c", "P=#*/", "S=%/*"];
    assert_eq!(lexer.process_word("${V#$P}", &env).unwrap(), "c");
    assert_eq!(lexer.process_word("${V%$S}", &env).unwrap(), "a");
    assert_eq!(lexer.process_word("${V#*/}", &env).unwrap(), "b/c");
}

#[test]
fn replace_all_expands_dollar_zero() {
    let lexer = Lexer::new('\\');
    let env = ["V=abc"];
    assert_eq!(
        lexer.process_word(r"${V//b/<\$0>}", &env).unwrap(),
        r"a<\b>c"
    );
    assert_eq!(
        lexer.process_word(r"${V/b/<\$0>}", &env).unwrap(),
        r"a<\$0>c"
    );
}

#[test]
fn expansion_is_consistent_across_entry_points() {
    let lexer = Lexer::new('\\');
    let env = ["A=x  y"];
    let out: Expansion = lexer
        .process_word_with_matches("p $A \"$A\" $U", &env)
        .unwrap();
    assert_eq!(
        out.result,
        lexer.process_word("p $A \"$A\" $U", &env).unwrap()
    );
    assert_eq!(
        out.words,
        lexer.process_words("p $A \"$A\" $U", &env).unwrap()
    );
    assert_eq!(out.words, ["p", "x", "y", "x  y"]);
    assert_eq!(out.matched, set(&["A"]));
    assert_eq!(out.unmatched, set(&["U"]));
}
