//! Instruction-level errors and results, from BuildKit's `instructions/*_test.go` tables
//! (see `shared/conformance/instructions-errors.md`).

use kiln_frontend::instruction::{CommandLine, Healthcheck, MountType};
use kiln_frontend::{Command, CommandKind, InstructionError, parse_instruction};

fn parse_one(src: &str) -> Result<Command, InstructionError> {
    let df = kiln_syntax::parse(src).expect("syntax");
    parse_instruction(&df.instructions[0])
}

fn err(src: &str) -> String {
    parse_one(src).expect_err(src).to_string()
}

#[test]
fn exactly_one_argument() {
    for kw in ["MAINTAINER", "WORKDIR", "USER", "STOPSIGNAL"] {
        assert_eq!(err(kw), format!("{kw} requires exactly one argument"));
    }
}

#[test]
fn at_least_one_argument() {
    for kw in ["ENV", "LABEL", "ONBUILD", "HEALTHCHECK", "EXPOSE", "VOLUME"] {
        assert_eq!(err(kw), format!("{kw} requires at least one argument"));
    }
}

#[test]
fn no_destination() {
    for kw in ["ADD", "COPY"] {
        assert_eq!(
            err(&format!("{kw} arg1")),
            format!(
                "{kw} requires at least two arguments, but only one was provided. Destination could not be determined"
            )
        );
    }
    assert!(err("COPY\t\n\t\tquux \\\n      bar").contains("COPY requires at least two arguments"));
}

#[test]
fn blank_names() {
    assert_eq!(err("ENV =arg2"), "ENV names can not be blank");
    assert_eq!(err("LABEL =arg2"), "LABEL names can not be blank");
}

#[test]
fn error_cases() {
    assert!(err("ONBUILD FROM scratch").contains("FROM isn't allowed as an ONBUILD trigger"));
    assert!(err("ONBUILD MAINTAINER x").contains("MAINTAINER isn't allowed as an ONBUILD trigger"));
    assert!(err("MAINTAINER --boo joe@example.com").contains("unknown flag: --boo"));
    assert!(
        err("ONBUILD ONBUILD RUN touch foobar")
            .contains("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")
    );
    assert!(err("FOO bar").contains("unknown instruction: FOO"));
    assert!(err("foo bar").contains("unknown instruction: foo"));
    assert!(err("HEALTHCHECK --interval=50ns CMD x").contains("cannot be less than 1ms"));
    assert!(parse_one("HEALTHCHECK --interval=0ms CMD x").is_ok());
    assert!(parse_one("HEALTHCHECK --interval=1ms CMD x").is_ok());
    assert_eq!(
        err("COPY /foo <<EOF\nEOF"),
        "COPY cannot accept a heredoc as a destination"
    );
}

#[test]
fn other_messages() {
    assert_eq!(
        err("FROM a b"),
        "FROM requires either one or three arguments"
    );
    assert_eq!(
        err("FROM a XS b"),
        "FROM requires either one or three arguments"
    );
    assert_eq!(
        err("FROM a AS 1x"),
        "invalid name for build stage: \"1x\", name can't start with a number or contain symbols"
    );
    assert_eq!(
        err("HEALTHCHECK NONE x"),
        "HEALTHCHECK NONE takes no arguments"
    );
    assert_eq!(
        err("HEALTHCHECK CMD"),
        "Missing command after HEALTHCHECK CMD"
    );
    assert_eq!(
        err("HEALTHCHECK FOO x"),
        "Unknown type \"FOO\" in HEALTHCHECK (try CMD)"
    );
    assert_eq!(
        err("HEALTHCHECK --retries=-1 CMD x"),
        "--retries cannot be negative (-1)"
    );
    assert_eq!(
        err("VOLUME [\"\"]"),
        "VOLUME specified can not be an empty string"
    );
    assert_eq!(
        err("SHELL /bin/sh -c"),
        "SHELL requires the arguments to be in JSON form"
    );
    assert_eq!(
        err("RUN --network=bridge x"),
        "invalid network mode \"bridge\""
    );
    assert_eq!(err("RUN --security=x y"), "security \"x\" is not valid");
    assert_eq!(err("COPY http://x/y /z"), "source can't be a URL for COPY");
    assert_eq!(
        err("COPY --chmod=0999 a b"),
        "invalid chmod parameter: '0999'. it should be octal string and between 0 and 07777"
    );
    assert_eq!(
        err("ADD --checksum=sha256:abc a b"),
        "checksum requires HTTP(S) or Git sources"
    );
    assert_eq!(
        err("COPY --form=x a b"),
        "unknown flag: --form (did you mean --from?)"
    );
    assert_eq!(
        err("RUN --mount=type=bind,required x"),
        "unexpected key 'required' for mount type 'bind'"
    );
    assert_eq!(
        err("COPY --link=maybe a b"),
        "expecting boolean value for flag --link, not: maybe"
    );
    assert_eq!(
        err("COPY --from=a --from=b a b"),
        "duplicate flag specified: --from"
    );
}

#[test]
fn healthcheck_cmd_is_cmd_shell() {
    let cmd = parse_one("HEALTHCHECK CMD hello world").unwrap();
    let CommandKind::Healthcheck(h) = &cmd.kind else {
        panic!()
    };
    assert_eq!(h.test(), ["CMD-SHELL", "hello world"]);
    let cmd = parse_one("HEALTHCHECK --interval=5s --retries=3 CMD [\"a\", \"b\"]").unwrap();
    let CommandKind::Healthcheck(h @ Healthcheck::Cmd { retries: 3, .. }) = &cmd.kind else {
        panic!()
    };
    assert_eq!(h.test(), ["CMD", "a", "b"]);
    let cmd = parse_one("HEALTHCHECK NONE").unwrap();
    let CommandKind::Healthcheck(h) = &cmd.kind else {
        panic!()
    };
    assert_eq!(h.test(), ["NONE"]);
}

#[test]
fn run_flags_used_and_mounts() {
    let cmd = parse_one("RUN --mount=type=tmpfs,target=/foo/ echo hello").unwrap();
    assert_eq!(cmd.flags_used, ["mount"]);
    let CommandKind::Run(run) = &cmd.kind else {
        panic!()
    };
    assert_eq!(run.mounts[0].typ, MountType::Tmpfs);
    assert_eq!(
        run.command,
        CommandLine {
            args: vec!["echo hello".into()],
            prepend_shell: true,
            files: vec![]
        }
    );
}

#[test]
fn json_args_stay_split_and_shell_joins() {
    let cmd = parse_one("CMD [\"foo\", \"bar\"]").unwrap();
    let CommandKind::Cmd(c) = &cmd.kind else {
        panic!()
    };
    assert_eq!(
        (c.args.clone(), c.prepend_shell),
        (vec!["foo".to_owned(), "bar".to_owned()], false)
    );
    let cmd = parse_one("ENTRYPOINT").unwrap();
    let CommandKind::Entrypoint(c) = &cmd.kind else {
        panic!()
    };
    assert!(c.args.is_empty());
}

#[test]
fn copy_flags_and_heredoc_sources() {
    let cmd = parse_one(
        "COPY --from=build --chown=app:app --chmod=0644 --link --parents --exclude=*.md --exclude=x <<EOF a /dst/\nhello\nEOF",
    )
    .unwrap();
    let CommandKind::Copy(c) = &cmd.kind else {
        panic!()
    };
    assert_eq!(c.from.as_ref().unwrap().text, "build");
    assert_eq!(c.flags.chown.as_ref().unwrap().text, "app:app");
    assert!(c.flags.link && c.parents);
    assert_eq!(c.flags.exclude.len(), 2);
    assert_eq!(c.paths.heredocs[0].path, "EOF");
    assert_eq!(c.paths.heredocs[0].data, "hello\n");
    assert_eq!(c.paths.sources.len(), 1);
    assert_eq!(c.paths.dest.text, "/dst/");
    let cmd =
        parse_one("ADD --checksum=sha256:abc --keep-git-dir --unpack=false https://x/y.tgz /d")
            .unwrap();
    let CommandKind::Add(a) = &cmd.kind else {
        panic!()
    };
    assert_eq!(a.unpack, Some(false));
    assert!(a.keep_git_dir);
}

#[test]
fn arg_names_values_and_doc_comments() {
    let cmd = parse_one("# foo is the foo\n# this is irrelevant\nARG foo=\"a b\" bar").unwrap();
    let CommandKind::Arg(args) = &cmd.kind else {
        panic!()
    };
    assert_eq!(args[0].key.text, "foo");
    assert_eq!(args[0].default.as_ref().unwrap().text, "\"a b\"");
    assert_eq!(args[0].doc.as_deref(), Some("is the foo"));
    assert_eq!(args[1].default, None);
    assert_eq!(args[1].doc, None);
}

#[test]
fn onbuild_keeps_its_expression() {
    let cmd = parse_one("ONBUILD   RUN echo hi").unwrap();
    let CommandKind::Onbuild(o) = &cmd.kind else {
        panic!()
    };
    assert_eq!(o.expression, "RUN echo hi");
    assert_eq!(o.trigger.name(), "RUN");
}

#[test]
fn no_panic_on_odd_arguments() {
    // BuildKit's TestNilLinter: every instruction with a few argument shapes.
    let keywords = [
        "ADD",
        "ARG",
        "CMD",
        "COPY",
        "ENTRYPOINT",
        "ENV",
        "EXPOSE",
        "FROM",
        "HEALTHCHECK",
        "LABEL",
        "MAINTAINER",
        "ONBUILD",
        "RUN",
        "SHELL",
        "STOPSIGNAL",
        "USER",
        "VOLUME",
        "WORKDIR",
    ];
    for kw in keywords {
        for args in ["foo=bar", "a", "a b", "a b c", "0 0", ""] {
            if let Ok(df) = kiln_syntax::parse(&format!("{kw} {args}")) {
                let _ = parse_instruction(&df.instructions[0]);
            }
        }
    }
}

#[test]
fn errors_carry_spans() {
    let src = "RUN --mount=type=cahce,target=/x make";
    let e = parse_one(src).unwrap_err();
    assert_eq!(
        &src[e.span.start..e.span.end],
        "--mount=type=cahce,target=/x"
    );
    assert!(e.hint.is_some());
}

#[test]
fn every_error_has_a_hint() {
    let bad = [
        "MAINTAINER",
        "WORKDIR",
        "USER",
        "STOPSIGNAL",
        "ENV",
        "LABEL",
        "ONBUILD",
        "HEALTHCHECK",
        "EXPOSE",
        "VOLUME",
        "ADD arg1",
        "COPY arg1",
        "ENV =x",
        "ONBUILD FROM scratch",
        "ONBUILD ONBUILD RUN x",
        "FOO bar",
        "HEALTHCHECK --interval=50ns CMD x",
        "COPY /foo <<EOF\nEOF",
        "FROM a b",
        "FROM a AS 1x",
        "HEALTHCHECK NONE x",
        "HEALTHCHECK CMD",
        "HEALTHCHECK FOO x",
        "HEALTHCHECK --retries=-1 CMD x",
        "HEALTHCHECK --retries=x CMD x",
        "HEALTHCHECK --timeout=5 CMD x",
        "VOLUME [\"\"]",
        "SHELL /bin/sh -c",
        "RUN --network=bridge x",
        "RUN --security=x y",
        "COPY http://x/y /z",
        "COPY --chmod=0999 a b",
        "ADD --checksum=sha256:abc a b",
        "COPY --form=x a b",
        "MAINTAINER --x y",
        "COPY --link=maybe a b",
        "COPY --from=a --from=b a b",
        "COPY --from a b",
        "RUN --mount=type=bind,required x",
        "RUN --mount=type=bind,foo x",
        "RUN --mount=from=$X x",
        "RUN --mount=type=cahce x",
        "RUN --mount=ro=maybe x",
        "RUN --mount=type=cache,sharing=all x",
        "RUN --mount=type=cache,mode=9 x",
        "RUN --mount=targte=/y x",
        "RUN --mount=type=bind,mode=0700 x",
        "RUN --mount=type=tmpfs,sharing=shared x",
        "RUN --mount=type=secret,id=a,from=x x",
        "RUN --mount=type=secret x",
        "RUN --mount=type=secret,source=a,id=b x",
        "RUN --mount=\"type=bind x",
        "RUN --device=a,name=b x",
    ];
    for src in bad {
        let e = parse_one(src).expect_err(src);
        assert!(e.hint.is_some(), "no hint for `{src}`: {e}");
    }
    let e = parse_one("COPY --form=x a b").unwrap_err();
    assert_eq!(
        e.hint.as_deref(),
        Some("`COPY` takes --from, --chown, --chmod, --link, --parents, --exclude")
    );
}

/// ONBUILD triggers as image configs store them are parsed here, not by the executor: a
/// heredoc trigger keeps its body, and a bad one says which trigger and why.
#[test]
fn stored_triggers_parse_into_the_instructions_they_fire() {
    let fired = kiln_frontend::parse_trigger("RUN <<EOF\necho hi\nEOF").unwrap();
    assert_eq!(fired.len(), 1);
    let kiln_frontend::CommandKind::Run(run) = &fired[0].kind else {
        panic!("{:?}", fired[0].kind)
    };
    assert!(run.command.is_heredoc_script());
    assert_eq!(run.command.files[0].content, "echo hi\n");
    let err = kiln_frontend::parse_trigger("COPY --bogus a b").unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid ONBUILD trigger `COPY --bogus a b` of the base image"
    );
    let cause = std::error::Error::source(&err).unwrap().to_string();
    assert!(cause.contains("unknown flag: --bogus"), "{cause}");
}
