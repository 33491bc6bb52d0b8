//! Which instructions and flags expand variables, and with what (BuildKit's dispatch rules).

use kiln_frontend::instruction::MountType;
use kiln_frontend::{ArgContext, CommandKind, Expanded, Scope, expand_command, parse_instruction};

fn run(env: &[(&str, &str)], lines: &[&str]) -> Vec<Expanded> {
    let mut scope = Scope::new(
        '\\',
        env.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    );
    let ctx = ArgContext {
        build_args: &[],
        global_args: &[],
    };
    lines
        .iter()
        .map(|l| {
            let df = kiln_syntax::parse(l).unwrap();
            let cmd = parse_instruction(&df.instructions[0]).unwrap();
            expand_command(&mut scope, &cmd, ctx).unwrap()
        })
        .collect()
}

fn one(env: &[(&str, &str)], line: &str) -> CommandKind {
    run(env, &[line]).pop().unwrap().command.kind
}

const ENV: &[(&str, &str)] = &[
    ("V", "1.2"),
    ("D", "/opt"),
    ("U", "app"),
    ("P", "80 443"),
    (
        "H",
        "0000000000000000000000000000000000000000000000000000000000000000",
    ),
];

#[test]
fn copy_and_add_expand_paths_and_owner_flags() {
    let CommandKind::Copy(c) = one(
        ENV,
        "COPY --chown=${U}:${U} --chmod=0${V%.*}755 --from=$X a-$V \"$D\"/x",
    ) else {
        panic!()
    };
    assert_eq!(c.paths.sources[0].text, "a-1.2");
    assert_eq!(c.paths.dest.text, "/opt/x");
    assert_eq!(c.flags.chown.unwrap().text, "app:app");
    assert_eq!(c.flags.chmod.unwrap().text, "01755");
    assert_eq!(c.from.unwrap().text, "$X", "--from is never expanded");
    let CommandKind::Add(a) = one(ENV, "ADD --checksum=sha256:$H https://x/$V.tgz $D/") else {
        panic!()
    };
    assert_eq!(
        a.checksum.unwrap().text,
        format!("sha256:{}", "0".repeat(64))
    );
    assert_eq!(a.paths.sources[0].text, "https://x/1.2.tgz");
}

#[test]
fn heredoc_sources_expand_only_when_unquoted_and_keep_quotes() {
    let CommandKind::Copy(c) = one(ENV, "COPY <<EOF <<'RAW' /d/\nv=\"$V\" \\$D\nEOF\nv=$V\nRAW")
    else {
        panic!()
    };
    assert_eq!(
        c.paths.heredocs[0].data, "v=\"1.2\" $D\n",
        "quotes kept, escaped dollar literal"
    );
    assert_eq!(c.paths.heredocs[1].data, "v=$V\n");
}

#[test]
fn metadata_instructions_expand() {
    assert!(matches!(one(ENV, "WORKDIR $D/src"), CommandKind::Workdir(w) if w.text == "/opt/src"));
    assert!(matches!(one(ENV, "USER ${U}:1"), CommandKind::User(w) if w.text == "app:1"));
    assert!(
        matches!(one(ENV, "STOPSIGNAL SIG${U:+TERM}"), CommandKind::StopSignal(w) if w.text == "SIGTERM")
    );
    let CommandKind::Volume(v) = one(ENV, "VOLUME $D/a $D/b") else {
        panic!()
    };
    assert_eq!(
        v.iter().map(|w| w.text.as_str()).collect::<Vec<_>>(),
        ["/opt/a", "/opt/b"]
    );
    let CommandKind::Expose(p) = one(ENV, "EXPOSE $P 8080/udp") else {
        panic!()
    };
    assert_eq!(
        p.iter().map(|w| w.text.as_str()).collect::<Vec<_>>(),
        ["80", "443", "8080/udp"]
    );
    let CommandKind::Label(l) = one(ENV, "LABEL version=$V \"$U\"=x") else {
        panic!()
    };
    assert_eq!(
        (l[0].value.text.as_str(), l[1].key.text.as_str()),
        ("1.2", "app")
    );
}

#[test]
fn commands_run_by_a_shell_are_left_alone() {
    for line in [
        "RUN echo $V",
        "CMD echo $V",
        "ENTRYPOINT [\"echo\", \"$V\"]",
        "HEALTHCHECK CMD echo $V",
        "SHELL [\"/bin/$U\"]",
        "MAINTAINER $U",
        "ONBUILD COPY $V /",
    ] {
        let before = kiln_syntax::parse(line).unwrap();
        let cmd = parse_instruction(&before.instructions[0]).unwrap();
        let after = one(ENV, line);
        assert_eq!(format!("{:?}", cmd.kind), format!("{after:?}"), "{line}");
    }
}

#[test]
fn run_mount_fields_expand_except_from() {
    let CommandKind::Run(r) = one(
        ENV,
        "RUN --mount=type=cache,target=$D/cache,id=c-$V,from=base true",
    ) else {
        panic!()
    };
    let m = &r.mounts[0];
    assert_eq!(
        (
            m.typ,
            m.target.as_deref(),
            m.id.as_deref(),
            m.from.as_deref()
        ),
        (
            MountType::Cache,
            Some("/opt/cache"),
            Some("c-1.2"),
            Some("base")
        )
    );
}

#[test]
fn arg_and_env_change_the_scope() {
    let out = run(
        &[("X", "0")],
        &[
            "ENV X=1 Y=$X",
            "ARG Z=${X}${Y}",
            "ARG NOVALUE",
            "COPY $Z /$NOVALUE",
        ],
    );
    let CommandKind::Env(kv) = &out[0].command.kind else {
        panic!()
    };
    assert_eq!(
        (kv[1].key.text.as_str(), kv[1].value.text.as_str()),
        ("Y", "0")
    );
    assert_eq!(out[1].args[0].value.as_deref(), Some("10"));
    assert_eq!(out[2].args[0].value, None);
    let CommandKind::Copy(c) = &out[3].command.kind else {
        panic!()
    };
    assert_eq!(
        (c.paths.sources[0].text.as_str(), c.paths.dest.text.as_str()),
        ("10", "/")
    );
}

#[test]
fn later_arg_overrides_env_for_expansion() {
    let out = run(&[], &["ENV A=env", "ARG A=arg", "WORKDIR /$A"]);
    assert!(matches!(&out[2].command.kind, CommandKind::Workdir(w) if w.text == "/arg"));
}
