//! kiln's own rules: each fires on a bad example and is quiet on its fix, and the suppression
//! comments (`# hadolint ignore=`, `# kiln ignore=`, global ignores) and `# check=skip=` work
//! on them by code, name and hadolint alias.

use kiln_frontend::{BuildOptions, Platform};
use kiln_lint::{BaseImage, BaseImages, ContextName, ContextSummary, Report, Request};

fn options() -> BuildOptions {
    BuildOptions {
        target: None,
        build_args: Vec::new(),
        target_platform: Platform::parse("linux/amd64").unwrap(),
        build_platform: Platform::parse("linux/amd64").unwrap(),
    }
}

struct Inputs<'a> {
    ignore: Option<&'a kiln_context::IgnoreRules>,
    context: Option<&'a ContextSummary>,
    images: Option<&'a dyn BaseImages>,
}

const NONE: Inputs<'static> = Inputs {
    ignore: None,
    context: None,
    images: None,
};

fn report(source: &str, inputs: &Inputs<'_>) -> Report {
    let df = kiln_syntax::parse(source).unwrap();
    kiln_lint::check(&Request {
        source,
        dockerfile: &df,
        options: &options(),
        all_stages: true,
        ignore: inputs.ignore.map(kiln_context::IgnoreRules::matcher),
        images: inputs.images,
        own_rules: true,
        context: inputs.context,
    })
    .unwrap()
}

/// The messages of `rule`'s findings in `source`.
fn findings(rule: &str, source: &str, inputs: &Inputs<'_>) -> Vec<String> {
    report(source, inputs)
        .warnings
        .into_iter()
        .filter(|w| w.rule == rule)
        .map(|w| w.message)
        .collect()
}

/// `rule` fires on `bad` (each message containing the matching `says` part) and not on `good`.
fn fires_then_quiet(rule: &str, bad: &str, says: &[&str], good: &str, inputs: &Inputs<'_>) {
    let found = findings(rule, bad, inputs);
    assert_eq!(found.len(), says.len(), "{rule} on bad: {found:?}");
    for (message, part) in found.iter().zip(says) {
        assert!(message.contains(part), "{rule}: {message:?} lacks {part:?}");
    }
    assert_eq!(
        findings(rule, good, inputs),
        Vec::<String>::new(),
        "{rule} on good"
    );
}

#[test]
fn kl001_unpinned_base_image() {
    fires_then_quiet(
        "UnpinnedBaseImage",
        "FROM debian\nUSER 1000\nFROM node:latest AS n\nUSER 1000\nFROM registry:5000/app\nCOPY --from=n /x /x\nUSER 1000\n",
        &[
            "`debian` has no tag",
            "`node:latest` is pinned to `latest`",
            "`registry:5000/app` has no tag",
        ],
        "ARG V=12\nFROM debian:$V AS a\nFROM node@sha256:0123456789012345678901234567890123456789012345678901234567890123 AS b\nFROM a\nCOPY --from=b / /x\nFROM scratch\nCOPY --from=2 /x /x\nUSER 1000\n",
        &NONE,
    );
}

#[test]
fn kl002_build_tools_in_final_stage() {
    fires_then_quiet(
        "BuildToolsInFinalStage",
        "FROM debian:12 AS base\nRUN apt-get install -y --no-install-recommends gcc=12 libssl-dev=3\nFROM base\nUSER app\n",
        &["`gcc=12`, `libssl-dev=3`"],
        "FROM debian:12 AS build\nRUN apt-get install -y gcc\nFROM alpine:3.20\nRUN apk add --no-cache --virtual .deps build-base && make && apk del .deps\nRUN apk add --no-cache make\nCOPY --from=build /out /out\nUSER app\nENTRYPOINT [\"make\"]\n",
        &NONE,
    );
}

#[test]
fn kl003_package_cache_in_layer() {
    fires_then_quiet(
        "PackageCacheInLayer",
        "FROM debian:12\nRUN apt-get update && apt-get install -y --no-install-recommends curl=1\nRUN apk add curl\nRUN pip install flask\nRUN npm ci\nRUN yarn install\nUSER app\n",
        &[
            "apt package lists",
            "apk cache",
            "pip's download cache",
            "npm's cache",
            "yarn's cache",
        ],
        "FROM debian:12 AS tools\nRUN pip install x\nFROM debian:12\nRUN apt-get update && apt-get install -y --no-install-recommends curl=1 && rm -rf /var/lib/apt/lists/*\nRUN apk add --no-cache curl\nRUN pip install --no-cache-dir flask\nRUN --mount=type=cache,target=/root/.npm npm ci\nRUN yarn install && yarn cache clean\nENV PIP_NO_CACHE_DIR=1\nRUN pip install y\nCOPY --from=tools /x /x\nUSER app\n",
        &NONE,
    );
}

#[test]
fn kl004_unfiltered_context_copy() {
    let entries = |names: &[(&str, bool)]| ContextSummary {
        ignore_file: true,
        entries: names
            .iter()
            .map(|(n, d)| ContextName {
                name: (*n).to_owned(),
                dir: *d,
            })
            .collect(),
    };
    let context = entries(&[
        (".git", true),
        ("id_rsa", false),
        ("node_modules", true),
        ("src", true),
    ]);
    let src = "FROM alpine:3.20\nWORKDIR /app\nCOPY . .\nCOPY src/ src/\nUSER app\n";
    // An ignore file that lets `.git` and `id_rsa` in.
    let partial = kiln_context::IgnoreRules::from_patterns(&["node_modules"]).unwrap();
    let found = findings(
        "UnfilteredContextCopy",
        src,
        &Inputs {
            ignore: Some(&partial),
            context: Some(&context),
            images: None,
        },
    );
    assert_eq!(
        found,
        [
            "COPY of the whole context takes in `.git` (VCS data), `id_rsa` (a secret), which `.dockerignore` lets through"
        ]
    );
    // No ignore file at all.
    let bare = ContextSummary {
        ignore_file: false,
        ..entries(&[("src", true)])
    };
    let found = findings(
        "UnfilteredContextCopy",
        src,
        &Inputs {
            ignore: None,
            context: Some(&bare),
            images: None,
        },
    );
    assert_eq!(
        found,
        ["COPY of the whole context, which has no `.dockerignore`"]
    );
    // The fix: an ignore file that covers them.
    let full = kiln_context::IgnoreRules::from_patterns(&[".git", "id_*", "node_modules"]).unwrap();
    let good = Inputs {
        ignore: Some(&full),
        context: Some(&context),
        images: None,
    };
    assert_eq!(
        findings("UnfilteredContextCopy", src, &good),
        Vec::<String>::new()
    );
    // Without the context the rule cannot tell, and says nothing.
    assert_eq!(
        findings("UnfilteredContextCopy", src, &NONE),
        Vec::<String>::new()
    );
}

#[test]
fn kl005_secret_value_in_arg_or_env() {
    fires_then_quiet(
        "SecretValueInArgOrEnv",
        "FROM alpine:3.20\nARG DEPLOY=AKIAIOSFODNN7EXAMPLE\nENV GH=ghp_0123456789abcdefghijABCDEFGHIJ012345\nUSER app\n",
        &[
            "ARG `DEPLOY` holds what looks like an AWS access key id (`AKIA...`)",
            "ENV `GH` holds what looks like an API token (`ghp_...`)",
        ],
        "FROM alpine:3.20\nARG DEPLOY\nENV GH_HOST=github.com\nUSER app\n",
        &NONE,
    );
}

#[test]
fn kl006_add_instead_of_copy() {
    fires_then_quiet(
        "AddInsteadOfCopy",
        "FROM alpine:3.20\nADD requirements.txt conf/ /app/\nUSER app\n",
        &["ADD copies local files"],
        "FROM alpine:3.20\nCOPY requirements.txt /app/\nADD rootfs.tar.gz /\nADD https://example.com/x.txt /x\nADD lib-*.tgz /lib/\nUSER app\n",
        &NONE,
    );
}

#[test]
fn kl007_unused_stage() {
    fires_then_quiet(
        "UnusedStage",
        "FROM alpine:3.20 AS tools\nFROM alpine:3.20\nFROM alpine:3.20 AS build\nFROM alpine:3.20\nCOPY --from=build /x /x\nUSER app\n",
        &["the stage `tools`", "stage 1"],
        "FROM alpine:3.20 AS base\nFROM base AS build\nFROM alpine:3.20 AS cache\nFROM alpine:3.20\nCOPY --from=1 /x /x\nRUN --mount=from=cache,target=/c true\nUSER app\n",
        &NONE,
    );
}

#[test]
fn kl008_loose_apt_get_install() {
    fires_then_quiet(
        "LooseAptGetInstall",
        "FROM debian:12\nRUN apt-get update && apt-get install -y curl ca-certificates=20230311 && rm -rf /var/lib/apt/lists/*\nUSER app\n",
        &[
            "without `--no-install-recommends`",
            "of `curl` without a pinned version",
        ],
        "FROM debian:12\nRUN apt-get update && apt-get -y install --no-install-recommends curl=7.88.1 ./local.deb \"$EXTRA\" && rm -rf /var/lib/apt/lists/*\nUSER app\n",
        &NONE,
    );
}

#[test]
fn kl009_run_cd() {
    fires_then_quiet(
        "RunCd",
        "FROM alpine:3.20\nRUN cd /src && make\nUSER app\n",
        &["`cd /src` lasts only for this RUN"],
        "FROM alpine:3.20\nWORKDIR /src\nRUN make && echo cd\nUSER app\n",
        &NONE,
    );
}

struct AppUser;

impl BaseImages for AppUser {
    fn base_image(&self, name: &str, _platform: &Platform) -> Option<BaseImage> {
        (name == "distroless:nonroot").then(|| BaseImage {
            user: Some("65532".into()),
            ..BaseImage::default()
        })
    }
}

#[test]
fn kl010_final_stage_runs_as_root() {
    fires_then_quiet(
        "FinalStageRunsAsRoot",
        "FROM alpine:3.20\nUSER app\nRUN id\nUSER root:root\n",
        &["runs as `root:root`"],
        "FROM alpine:3.20 AS base\nUSER 0\nRUN apk add --no-cache curl\nUSER app\nFROM base\nRUN id\n",
        &NONE,
    );
    fires_then_quiet(
        "FinalStageRunsAsRoot",
        "FROM alpine:3.20\nRUN id\n",
        &["no USER is set"],
        "FROM distroless:nonroot\nCOPY app /app\n",
        &Inputs {
            ignore: None,
            context: None,
            images: Some(&AppUser),
        },
    );
}

#[test]
fn kl011_copy_from_whole_tree() {
    fires_then_quiet(
        "CopyFromWholeTree",
        "FROM node:20 AS build\nWORKDIR /src\nCOPY . .\nRUN npm run build\nFROM nginx:1.27\nCOPY --from=build /src /usr/share/nginx/html\nCOPY --from=build / /rootfs\nUSER app\n",
        &[
            "copies `/src`, where it copied the whole build context, from `build`",
            "its whole filesystem from `build`",
        ],
        "FROM node:20 AS build\nWORKDIR /src\nCOPY . .\nRUN npm run build\nFROM nginx:1.27\nCOPY --from=build /src/dist /usr/share/nginx/html\nUSER app\n",
        &NONE,
    );
}

const APT: &str =
    "RUN apt-get install -y --no-install-recommends curl && rm -rf /var/lib/apt/lists/*\n";

#[test]
fn hadolint_ignore_suppresses_the_aliased_findings_only() {
    let plain = format!("FROM debian\n{APT}USER app\n");
    assert_eq!(findings("UnpinnedBaseImage", &plain, &NONE).len(), 1);
    assert_eq!(findings("LooseAptGetInstall", &plain, &NONE).len(), 1);
    let ignored = format!(
        "# hadolint ignore=DL3006\nFROM debian\n# hadolint ignore=DL3008,DL3003\n{APT}USER app\n"
    );
    assert_eq!(
        findings("UnpinnedBaseImage", &ignored, &NONE),
        Vec::<String>::new()
    );
    assert_eq!(
        findings("LooseAptGetInstall", &ignored, &NONE),
        Vec::<String>::new()
    );
    // DL3007 is the other alias of KL001: it does not cover an untagged image.
    let other = "# hadolint ignore=DL3007\nFROM debian\nUSER app\n";
    assert_eq!(findings("UnpinnedBaseImage", other, &NONE).len(), 1);
    // Only the instruction below the comment.
    let once = "FROM alpine:3.20\n# hadolint ignore=DL3003\nRUN cd /a\nRUN cd /b\nUSER app\n";
    assert_eq!(
        findings("RunCd", once, &NONE),
        ["`cd /b` lasts only for this RUN"]
    );
}

#[test]
fn kiln_ignore_takes_codes_and_names() {
    let src = "# kiln ignore=KL001\nFROM debian\n# kiln ignore=RunCd, LooseAptGetInstall\nRUN cd /x && apt-get install -y curl && rm -rf /var/lib/apt/lists/*\nUSER app\n";
    let r = report(src, &NONE);
    assert_eq!(
        r.warnings.iter().map(|w| w.rule).collect::<Vec<_>>(),
        Vec::<&str>::new()
    );
}

#[test]
fn global_ignores_cover_the_file() {
    let src = "# hadolint global ignore=DL3003\n# kiln global ignore=UnusedStage\nFROM alpine:3.20 AS x\nFROM alpine:3.20\nRUN cd /a\nRUN cd /b\nUSER app\n";
    let r = report(src, &NONE);
    assert_eq!(
        r.warnings.iter().map(|w| w.rule).collect::<Vec<_>>(),
        Vec::<&str>::new()
    );
}

#[test]
fn check_skip_takes_kiln_codes_and_names_and_error_counts_them() {
    let src = "# check=skip=KL001,RunCd;error=true\nFROM debian\nRUN cd /a\nFROM alpine\n";
    let r = report(src, &NONE);
    let rules: Vec<&str> = r.warnings.iter().map(|w| w.rule).collect();
    // Skipping the code skips `UnpinnedBaseImage` for both FROMs.
    assert_eq!(rules, ["UnusedStage", "FinalStageRunsAsRoot"]);
    assert_eq!(
        r.violation().as_deref(),
        Some("lint violation found for rules: UnusedStage, FinalStageRunsAsRoot")
    );
    // Per instruction, as BuildKit's own `# check=` comments.
    let src = "FROM alpine:3.20\n# check=skip=KL009\nRUN cd /a\nRUN cd /b\nUSER app\n";
    assert_eq!(
        findings("RunCd", src, &NONE),
        ["`cd /b` lasts only for this RUN"]
    );
}

#[test]
fn kiln_rules_are_off_unless_asked_for_and_link_their_page() {
    let src = "FROM debian\nRUN cd /x\n";
    let df = kiln_syntax::parse(src).unwrap();
    let mut req = Request {
        source: src,
        dockerfile: &df,
        options: &options(),
        all_stages: true,
        ignore: None,
        images: None,
        own_rules: false,
        context: None,
    };
    assert!(kiln_lint::check(&req).unwrap().warnings.is_empty());
    req.own_rules = true;
    let on = kiln_lint::check(&req).unwrap();
    let first = &on.warnings[0];
    assert_eq!(first.rule, "UnpinnedBaseImage");
    assert_eq!(first.url.as_deref(), Some("docs/lint/KL001.md"));
    assert_eq!(first.severity, kiln_syntax::Severity::Warning);
}
