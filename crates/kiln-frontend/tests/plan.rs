//! Stages, ARG scoping and the stage graph (BuildKit's `dockerfile2llb` rules).

use kiln_frontend::{ArgOrigin, Base, BuildOptions, DepKind, Plan, plan};

fn plan_with(src: &str, opts: &BuildOptions) -> Result<Plan, kiln_frontend::InstructionError> {
    plan(&kiln_syntax::parse(src).expect("syntax"), opts)
}

fn ok(src: &str) -> Plan {
    plan_with(src, &BuildOptions::default()).unwrap()
}

fn opts(target: Option<&str>, args: &[(&str, &str)]) -> BuildOptions {
    BuildOptions {
        target: target.map(str::to_owned),
        build_args: args
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        ..BuildOptions::default()
    }
}

fn arg<'a>(p: &'a Plan, stage: usize, name: &str) -> Option<&'a kiln_frontend::ResolvedArg> {
    p.stages[stage].used_args.iter().find(|a| a.name == name)
}

const MULTI: &str = "\
ARG BASE=busybox
ARG TAG=1.36
FROM ${BASE}:${TAG} AS Build
ARG VERSION=1.0
RUN make
FROM scratch AS unused
RUN false
FROM build AS test
RUN make test
FROM busybox
COPY --from=build /out /app
";

#[test]
fn stages_names_bases_and_pruning() {
    let p = ok(MULTI);
    assert_eq!(p.stages.len(), 4);
    assert_eq!(
        p.stages[0].name.as_deref(),
        Some("build"),
        "names are lowercased"
    );
    assert_eq!(p.stages[0].base, Base::Image("busybox:1.36".into()));
    assert_eq!(p.stages[1].base, Base::Scratch);
    assert_eq!(p.stages[2].base, Base::Stage(0));
    assert_eq!(p.target, 3);
    assert_eq!(p.build_order(), [0, 3], "unused and test are not needed");
    assert_eq!(p.stages[3].deps[0].kind, DepKind::CopyFrom);
    let p = plan_with(MULTI, &opts(Some("TEST"), &[])).unwrap();
    assert_eq!(p.build_order(), [0, 2]);
}

#[test]
fn global_args_and_build_args() {
    let p = plan_with(MULTI, &opts(None, &[("TAG", "musl"), ("VERSION", "2.0")])).unwrap();
    assert_eq!(p.stages[0].base_name, "busybox:musl");
    let v = arg(&p, 0, "VERSION").unwrap();
    assert_eq!(
        (v.value.as_deref(), v.origin),
        (Some("2.0"), ArgOrigin::BuildArg)
    );
    let tag = arg(&p, 0, "TAG").unwrap();
    assert_eq!(tag.origin, ArgOrigin::BuildArg);
    // The base stage's args are inherited by `FROM build`.
    assert!(arg(&p, 2, "VERSION").is_some());
    // The final stage uses no ARG.
    assert!(p.stages[3].used_args.is_empty());
}

#[test]
fn global_arg_default_expands_earlier_ones() {
    let p = ok("ARG A=x\nARG B=${A}-y\nFROM img:${B}\n");
    assert_eq!(p.stages[0].base_name, "img:x-y");
    let used: Vec<_> = p.stages[0]
        .used_args
        .iter()
        .map(|a| a.name.as_str())
        .collect();
    assert_eq!(used, ["A", "B"], "B and what its default references");
}

#[test]
fn arg_redeclared_in_stage_takes_the_global_value() {
    let p = ok("ARG V=1\nFROM a\nARG V\nRUN echo $V\nFROM b\nRUN echo $V\n");
    let v = arg(&p, 0, "V").unwrap();
    assert_eq!(
        (v.value.as_deref(), v.origin),
        (Some("1"), ArgOrigin::Global)
    );
    assert!(
        arg(&p, 1, "V").is_none(),
        "not redeclared: not visible in stage 1"
    );
    assert_eq!(p.stages[1].final_scope.get("V"), None);
}

#[test]
fn automatic_platform_args() {
    let p = ok("FROM --platform=$BUILDPLATFORM img AS b\nARG TARGETARCH\nFROM b\n");
    assert_eq!(
        p.stages[0].platform.as_deref(),
        Some(&*kiln_frontend::Platform::host().to_string())
    );
    let t = arg(&p, 0, "TARGETARCH").unwrap();
    assert_eq!(t.origin, ArgOrigin::Automatic);
    assert_eq!(
        t.value.as_deref(),
        Some(&*kiln_frontend::Platform::host().architecture)
    );
}

#[test]
fn env_and_arg_scoping() {
    let p = ok("FROM a\nENV X=1\nENV X=2 Y=$X\nARG Z=${Y}z\nENV W=$Z\n");
    let s = &p.stages[0].final_scope;
    assert_eq!(s.get("Y"), Some("1"), "ENV a=1 b=$a sees the old value");
    assert_eq!(s.get("Z"), Some("1z"));
    assert_eq!(s.get("W"), Some("1z"));
}

#[test]
fn env_inherited_from_base_stage() {
    let p = ok("FROM a AS one\nENV P=/opt\nFROM one\nARG Q=$P/bin\n");
    assert_eq!(p.stages[1].final_scope.get("Q"), Some("/opt/bin"));
}

#[test]
fn from_only_resolves_earlier_stages() {
    let p = ok("FROM later AS first\nFROM busybox AS later\n");
    assert_eq!(p.stages[0].base, Base::Image("later".into()));
}

#[test]
fn copy_from_index_name_and_image() {
    let p = ok(
        "FROM a\nFROM b AS x\nFROM c\nCOPY --from=0 / /\nCOPY --from=X / /\nCOPY --from=alpine:3 / /\nRUN --mount=from=x,target=/m true\n",
    );
    let deps: Vec<_> = p.stages[2].deps.iter().map(|d| (d.stage, d.kind)).collect();
    assert_eq!(
        deps,
        [
            (0, DepKind::CopyFrom),
            (1, DepKind::CopyFrom),
            (1, DepKind::MountFrom)
        ]
    );
    let images: Vec<_> = p.stages[2].image_refs.iter().map(|r| &r.name).collect();
    assert_eq!(images, ["alpine:3"]);
    assert_eq!(p.build_order(), [0, 1, 2]);
}

fn err(src: &str, o: &BuildOptions) -> String {
    plan_with(src, o).unwrap_err().to_string()
}

#[test]
fn graph_errors() {
    let d = BuildOptions::default();
    assert_eq!(
        err("FROM a AS x\nCOPY --from=x / /\n", &d),
        "circular dependency detected on stage: x"
    );
    assert_eq!(
        err("FROM a AS x\nCOPY --from=y / /\nFROM b AS y\n", &d),
        "cannot copy from stage \"y\", it needs to be defined before current stage \"x\""
    );
    assert_eq!(
        err(
            "FROM a AS x\nRUN --mount=from=y,target=/y true\nFROM b AS y\n",
            &d
        ),
        "cannot mount from stage \"y\" to \"x\", stage needs to be defined before current command"
    );
    assert_eq!(
        err("FROM a\nCOPY --from=7 / /\n", &d),
        "invalid stage index 7"
    );
    assert_eq!(
        err("FROM a AS x\nFROM b AS X\n", &d),
        "duplicate stage name \"x\""
    );
    assert_eq!(
        err("FROM a AS x\n", &opts(Some("y"), &[])),
        "target stage \"y\" could not be found"
    );
    assert_eq!(
        err("RUN x\nFROM a\n", &d),
        "RUN is not allowed before the first FROM; only ARG is"
    );
    assert_eq!(err("ARG x\n", &d), "no build stage in current context");
    assert_eq!(
        err("ARG B\nFROM ${B}\n", &d),
        "base name (${B}) should not be blank"
    );
    assert!(
        err("FROM a\nCOPY --from=$X / /\n", &d)
            .starts_with("variable expansion is not supported for --from")
    );
    assert!(err("FROM a\nWORKDIR ${}\n", &d).contains("bad substitution"));
    assert!(err("FROM --platform=linux/ a\n", &d).starts_with("failed to parse platform linux/"));
}

#[test]
fn error_locations_point_at_the_reference() {
    let src = "FROM a AS x\nFROM b\nCOPY --from=x / /\nCOPY --from=y2k /a /b\nFROM c AS y2k\n";
    let e = plan_with(src, &BuildOptions::default()).unwrap_err();
    assert_eq!(&src[e.span.start..e.span.end], "--from=y2k");
    assert!(e.hint.is_some());
}

#[test]
fn unknown_target_suggests_a_name() {
    let e = plan_with("FROM a AS builder\nFROM b\n", &opts(Some("buidler"), &[])).unwrap_err();
    assert_eq!(e.hint.as_deref(), Some("did you mean `builder`?"));
    let d = e.to_diagnostic();
    assert_eq!(d.rule, "InstructionError");
    assert_eq!(d.severity, kiln_syntax::Severity::Error);
    assert_eq!(d.message, e.kind.to_string());
    assert_eq!(d.hint, e.hint);
}

#[test]
fn from_close_to_a_stage_name_warns() {
    let src = "FROM a AS builder\nFROM b\nCOPY --from=buidler /x /y\nCOPY --from=alpine /x /y\n";
    let p = ok(src);
    assert_eq!(p.warnings.len(), 1);
    assert_eq!(
        &src[p.warnings[0].span.start..p.warnings[0].span.end],
        "--from=buidler"
    );
    assert_eq!(
        p.warnings[0].hint.as_deref(),
        Some("did you mean the stage `builder`?")
    );
    assert_eq!(p.warnings[0].rule, "StageNameTypo");
    assert_eq!(p.warnings[0].severity, kiln_syntax::Severity::Warning);
    let images: Vec<_> = p.stages[1].image_refs.iter().map(|r| &r.name).collect();
    assert_eq!(images, ["buidler", "alpine"]);
}
