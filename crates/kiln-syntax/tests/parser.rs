//! Parser behaviour beyond the upstream corpus: heredocs, directives, spans and errors.

use kiln_syntax::{LineIndex, ParseErrorKind, dump, parse};

#[test]
fn heredoc_run_basic() {
    let df = parse("FROM a\nRUN <<EOF\necho hello\necho world\nEOF\nRUN b\n").unwrap();
    let run = &df.instructions[1];
    assert_eq!(run.heredocs.len(), 1);
    let h = &run.heredocs[0];
    assert_eq!(h.name, "EOF");
    assert_eq!(h.content, "echo hello\necho world\n");
    assert!(h.expand);
    assert!(!h.chomp);
    assert_eq!((run.start_line, run.end_line), (2, 5));
    assert_eq!(df.instructions[2].start_line, 6);
    assert_eq!(dump(&df), "(from \"a\")\n(run \"<<EOF\")\n(run \"b\")");
}

#[test]
fn heredoc_chomp_strips_tabs_from_body_and_terminator() {
    let df = parse("FROM a\nRUN <<-EOT\n\techo a\n\t\techo b\n\tEOT\n").unwrap();
    let h = &df.instructions[1].heredocs[0];
    assert_eq!(h.content, "echo a\necho b\n");
    assert!(h.chomp);
}

#[test]
fn heredoc_quoted_delimiters_do_not_expand() {
    for (opener, name) in [
        ("<<\"EOF\"", "EOF"),
        ("<<'EOF'", "EOF"),
        ("<<E\"O\"F", "EOF"),
    ] {
        let df = parse(&format!("FROM a\nRUN {opener}\necho $HOME\n{name}\n")).unwrap();
        let h = &df.instructions[1].heredocs[0];
        assert_eq!(h.name, name, "{opener}");
        assert!(!h.expand, "{opener}");
        assert_eq!(h.content, "echo $HOME\n");
    }
}

#[test]
fn several_heredocs_in_one_copy() {
    let src = "FROM a\nCOPY <<one <<two /dest/\nfirst\none\nsecond\ntwo\nRUN x\n";
    let df = parse(src).unwrap();
    let copy = &df.instructions[1];
    let docs: Vec<_> = copy
        .heredocs
        .iter()
        .map(|h| (h.name.as_str(), h.content.as_str()))
        .collect();
    assert_eq!(docs, [("one", "first\n"), ("two", "second\n")]);
    assert_eq!(copy.arg_texts(), ["<<one", "<<two", "/dest/"]);
    assert_eq!(copy.end_line, 6);
}

#[test]
fn heredoc_with_file_descriptor_and_command() {
    let df = parse("FROM a\nRUN 3<<EOF cat /proc/self/fd/3\nhi\nEOF\n").unwrap();
    let h = &df.instructions[1].heredocs[0];
    assert_eq!((h.file_descriptor, h.content.as_str()), (3, "hi\n"));
}

#[test]
fn empty_heredoc_and_crlf_body() {
    let df = parse("FROM a\nRUN <<EOF\nEOF\n").unwrap();
    assert_eq!(df.instructions[1].heredocs[0].content, "");
    let df = parse("FROM a\r\nRUN <<EOF\r\nx\r\nEOF\r\n").unwrap();
    assert_eq!(df.instructions[1].heredocs[0].content, "x\r\n");
}

#[test]
fn json_form_and_other_instructions_have_no_heredocs() {
    let df = parse("FROM a\nRUN [\"<<EOF\"]\nCMD <<EOF\nEOF\n").unwrap();
    assert!(df.instructions[1].heredocs.is_empty());
    assert!(df.instructions[2].heredocs.is_empty());
    assert_eq!(
        df.instructions.len(),
        4,
        "the EOF line is an instruction of its own"
    );
}

#[test]
fn onbuild_trigger_can_hold_a_heredoc() {
    let df = parse("FROM a\nONBUILD RUN <<EOF\necho hi\nEOF\n").unwrap();
    let trigger = df.instructions[1].trigger.as_deref().unwrap();
    assert_eq!(trigger.heredocs[0].content, "echo hi\n");
}

#[test]
fn unterminated_heredoc_is_an_error_with_location() {
    let src = "FROM a\nRUN <<EOF\necho hi\n";
    let err = parse(src).unwrap_err();
    assert_eq!(err.kind, ParseErrorKind::UnterminatedHeredoc("EOF".into()));
    let idx = LineIndex::new(src);
    assert_eq!(idx.line_col(src, err.span.start).line, 2);
}

#[test]
fn heredoc_as_copy_source_keeps_args_for_the_frontend() {
    let df = parse("FROM a\nCOPY /foo <<EOF\nEOF\n").unwrap();
    assert_eq!(df.instructions[1].arg_texts(), ["/foo", "<<EOF"]);
}

#[test]
fn escape_directive_switches_continuation() {
    let df = parse("# escape=`\nFROM a\nRUN dir c:\\ `\n  && echo x\n").unwrap();
    assert_eq!(df.escape, '`');
    assert_eq!(df.instructions[1].args[0].text, "dir c:\\   && echo x");
    assert_eq!(df.directive("escape").unwrap().value, "`");
}

#[test]
fn directives_syntax_and_check() {
    let df = parse("# syntax=docker/dockerfile:1\n# check=skip=all\nFROM a\n").unwrap();
    assert_eq!(df.directive("syntax").unwrap().value, "docker/dockerfile:1");
    assert_eq!(df.directive("check").unwrap().value, "skip=all");
}

#[test]
fn directive_errors() {
    let err = parse("# escape=x\nFROM a\n").unwrap_err();
    assert_eq!(err.kind, ParseErrorKind::InvalidEscape("x".into()));
    let err = parse("# escape=`\n# escape=\\\nFROM a\n").unwrap_err();
    assert_eq!(
        err.kind,
        ParseErrorKind::DuplicateDirective("escape".into())
    );
    let src = "# escape=`\n# escape=\\\nFROM a\n";
    assert_eq!(LineIndex::new(src).line_col(src, err.span.start).line, 2);
}

#[test]
fn directive_after_blank_line_is_a_comment() {
    let df = parse("\n# escape=`\nFROM a\nRUN a \\\n b\n").unwrap();
    assert_eq!(df.escape, '\\');
    assert!(df.directives.is_empty());
}

#[test]
fn comments_inside_continuations_and_prev_comments() {
    let df = parse("FROM a\n# the build\n# step\nRUN a \\\n  # inside\n  b\n").unwrap();
    let run = &df.instructions[1];
    assert_eq!(run.args[0].text, "a   b");
    assert_eq!(run.comments, ["the build", "step"]);
}

#[test]
fn directives_are_not_comments_of_the_first_instruction() {
    let df =
        parse("# check=skip=all\n# syntax=x\n# about a\nARG a\n# check=skip=X\nFROM b\n").unwrap();
    assert_eq!(df.directives.len(), 2);
    assert_eq!(df.instructions[0].comments, ["about a"]);
    assert_eq!(df.instructions[1].comments, ["check=skip=X"]);
}

#[test]
fn empty_continuation_line_warns() {
    let df = parse("FROM a\nRUN a \\\n\n b\n").unwrap();
    assert_eq!(df.warnings.len(), 1);
    let w = &df.warnings[0];
    assert!(w.message.contains("RUN a  b"));
    assert_eq!(w.rule, "NoEmptyContinuation");
    assert_eq!(w.severity, kiln_syntax::Severity::Warning);
    assert_eq!(w.span, kiln_syntax::TextRange::new(7, 18));
}

#[test]
fn error_spans_point_at_the_bad_word() {
    let src = "FROM a\nENV a=1 \\\n    bogus c=2\n";
    let err = parse(src).unwrap_err();
    assert_eq!(err.kind, ParseErrorKind::MissingEquals("bogus".into()));
    assert_eq!(&src[err.span.start..err.span.end], "bogus");
    let at = LineIndex::new(src).line_col(src, err.span.start);
    assert_eq!((at.line, at.col), (3, 5));
}

#[test]
fn invalid_utf8_is_an_error_not_a_panic() {
    let err = kiln_syntax::parse_bytes(b"FROM a\nRUN \xff\n").unwrap_err();
    assert_eq!(err.kind, ParseErrorKind::InvalidUtf8);
    assert_eq!(err.span.start, 11);
}

#[test]
fn parse_errors_become_diagnostics() {
    let err = parse("# nothing here\n").unwrap_err();
    let d = err.to_diagnostic();
    assert_eq!(d.rule, "SyntaxError");
    assert_eq!(d.severity, kiln_syntax::Severity::Error);
    assert_eq!(d.span, err.span);
    assert_eq!(d.message, "file with no instructions");
    assert_eq!(d.hint, err.hint);
    assert_eq!(kiln_syntax::Diagnostic::from(&err), d);
}
