//! The checks' inputs beyond the Dockerfile: base images, the target, the check options and
//! warnings added from elsewhere.

use kiln_frontend::{BuildOptions, Platform};
use kiln_lint::{BaseImage, BaseImages, ConfigError, Report, Request};
use kiln_syntax::{Diagnostic, TextRange};

struct Images;

impl BaseImages for Images {
    fn base_image(&self, name: &str, platform: &Platform) -> Option<BaseImage> {
        (name == "golang").then(|| BaseImage {
            platform: Some(platform.clone()),
            env: vec![("GOPATH".into(), "/go".into())],
            shell: vec!["/bin/bash".into(), "-c".into()],
            user: None,
        })
    }
}

fn options(build_args: &[(&str, &str)], target: Option<&str>) -> BuildOptions {
    BuildOptions {
        target: target.map(str::to_owned),
        build_args: build_args
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        target_platform: Platform::parse("linux/amd64").unwrap(),
        build_platform: Platform::parse("linux/amd64").unwrap(),
    }
}

fn check(
    source: &str,
    opts: &BuildOptions,
    all_stages: bool,
    images: Option<&dyn BaseImages>,
) -> Result<Report, ConfigError> {
    let df = kiln_syntax::parse(source).unwrap();
    kiln_lint::check(&Request {
        source,
        dockerfile: &df,
        options: opts,
        all_stages,
        ignore: None,
        images,
        own_rules: false,
        context: None,
    })
}

fn rules(report: &Report) -> Vec<(&'static str, String)> {
    report
        .warnings
        .iter()
        .map(|w| (w.rule, w.message.clone()))
        .collect()
}

#[test]
fn a_known_base_image_brings_its_env_and_shell() {
    let src = "FROM golang\nWORKDIR $GOPATH/src\nCMD go run .\n";
    let known = check(src, &options(&[], None), true, Some(&Images)).unwrap();
    assert_eq!(rules(&known), []);
    let unknown = check(src, &options(&[], None), true, None).unwrap();
    assert_eq!(
        rules(&unknown),
        [
            (
                "UndefinedVar",
                "Usage of undefined variable '$GOPATH' (did you mean $PATH?)".to_owned()
            ),
            (
                "JSONArgsRecommended",
                "JSON arguments recommended for CMD to prevent unintended behavior related to OS signals"
                    .to_owned()
            ),
        ]
    );
    let hint = unknown.warnings[0].hint.as_deref().unwrap();
    assert!(hint.contains("`golang`"), "{hint}");
    assert_eq!(
        unknown.warnings[0].url.as_deref(),
        Some("https://docs.docker.com/go/dockerfile/rule/undefined-var/")
    );
}

#[test]
fn a_build_checks_the_stages_its_target_needs() {
    let src =
        "FROM scratch AS a\nCOPY $x .\nFROM scratch AS b\nCOPY $y .\nFROM a\nCOPY --from=b $z .\n";
    let lines = |r: &Report| -> Vec<String> { rules(r).into_iter().map(|(_, m)| m).collect() };
    let all = check(src, &options(&[], None), true, None).unwrap();
    assert_eq!(all.warnings.len(), 3);
    let build = check(src, &options(&[], Some("a")), false, None).unwrap();
    assert_eq!(lines(&build), ["Usage of undefined variable '$x'"]);
    let last = check(src, &options(&[], None), false, None).unwrap();
    assert_eq!(last.warnings.len(), 3, "the last stage needs a and b");
    let unknown = check(src, &options(&[], Some("c")), false, None).unwrap();
    assert_eq!(
        unknown.error.map(|e| e.to_string()).as_deref(),
        Some("target stage \"c\" could not be found")
    );
}

#[test]
fn bad_check_options_are_errors_with_their_origin() {
    let src = "# check=skip=all;foo=bar\nFROM scratch\n";
    let Err(ConfigError::Directive { span, source }) = check(src, &options(&[], None), true, None)
    else {
        panic!("not a directive error");
    };
    assert_eq!(span, TextRange::new(0, 24));
    assert_eq!(source.to_string(), "invalid check option \"foo\"");
    let from_arg = check(
        src,
        &options(&[("BUILDKIT_DOCKERFILE_CHECK", "error=yes")], None),
        true,
        None,
    )
    .unwrap_err();
    assert!(matches!(from_arg, ConfigError::BuildArg { .. }));
    assert!(from_arg.to_diagnostic().is_none());
    // The build arg replaces the directive, bad or not.
    let fine = check(
        src,
        &options(&[("BUILDKIT_DOCKERFILE_CHECK", "skip=FromAsCasing")], None),
        true,
        None,
    );
    assert!(fine.is_ok());
}

#[test]
fn added_warnings_follow_the_options_and_the_file_order() {
    let src = "# check=error=true\nFROM scratch AS base\nCOPY --from=bsae /a /b\nMAINTAINER me\n";
    let mut report = check(src, &options(&[], None), true, None).unwrap();
    let typo = Diagnostic::warning(
        "StageNameTypo",
        TextRange::new(45, 49),
        "`bsae` is not a stage",
    );
    report.add([typo.clone()]);
    let order: Vec<&str> = report.warnings.iter().map(|w| w.rule).collect();
    assert_eq!(order, ["StageNameTypo", "MaintainerDeprecated"]);
    assert_eq!(
        report.violation().as_deref(),
        Some("lint violation found for rules: StageNameTypo, MaintainerDeprecated")
    );
    let mut skipped = check(
        "# check=skip=StageNameTypo\nFROM scratch\n",
        &options(&[], None),
        true,
        None,
    )
    .unwrap();
    skipped.add([typo]);
    assert!(skipped.warnings.is_empty());
    assert_eq!(skipped.violation(), None);
}
