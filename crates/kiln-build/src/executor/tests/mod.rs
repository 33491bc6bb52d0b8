//! How each instruction is dispatched, without root: small Dockerfiles planned as the binary
//! plans them, built with the naive snapshotter, a real store in a temporary directory and
//! the recording fake sandbox ([`crate::sandbox::fake`]) in place of the namespaced init.
//! The real sandbox is exercised by the `kiln` crate's end-to-end tests (which need root).

use std::path::Path;
use std::sync::Mutex;

use kiln_frontend::{BuildOptions, Plan, Platform};
use kiln_oci::{ContainerConfig, MediaTypes, Store};
use kiln_sandbox::{Network, Rootfs, Spec};

use super::{BuildOutcome, BuildRequest};
use crate::error::{BuildError, StepError};
use crate::progress::{Event, Reporter};
use crate::sandbox::fake::{FakeRun, FakeSandbox};
use crate::snapshotter::Snapshotter;

/// Keeps every event.
#[derive(Default)]
struct Recorder(Mutex<Vec<Event>>);

impl Reporter for Recorder {
    fn event(&self, event: Event) {
        self.0.lock().unwrap().push(event);
    }
}

/// Refuses every download: these builds have no `ADD <url>`.
struct NoFetch;

impl kiln_fileop::Fetcher for NoFetch {
    fn fetch(
        &self,
        url: &str,
        _out: &mut dyn std::io::Write,
    ) -> Result<kiln_fileop::FetchMeta, kiln_fileop::FetchError> {
        Err(kiln_fileop::FetchError::Unsupported(url.to_owned()))
    }
}

/// A store and a build context in a temporary directory.
struct Fixture {
    dir: tempfile::TempDir,
    store: Store,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("store")).unwrap();
        std::fs::create_dir(dir.path().join("context")).unwrap();
        Self { dir, store }
    }

    fn context(&self) -> std::path::PathBuf {
        self.dir.path().join("context")
    }

    /// Puts `body` at `rel` in the context.
    fn file(&self, rel: &str, body: &str) {
        let path = self.context().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, body).unwrap();
    }

    /// Builds `dockerfile` (or explains it, with `explain`) with `sandbox`, as `kiln build`
    /// would with `--network=none`, without a step cache.
    fn run<R>(
        &self,
        dockerfile: &str,
        sandbox: &FakeSandbox,
        reporter: &Recorder,
        go: impl FnOnce(&BuildRequest<'_>) -> R,
    ) -> R {
        self.run_cached(dockerfile, sandbox, reporter, None, go)
    }

    /// [`Fixture::run`] with a step cache.
    fn run_cached<R>(
        &self,
        dockerfile: &str,
        sandbox: &FakeSandbox,
        reporter: &Recorder,
        cache: Option<&crate::CacheUse<'_>>,
        go: impl FnOnce(&BuildRequest<'_>) -> R,
    ) -> R {
        let plan = plan(dockerfile);
        let ignore = kiln_context::IgnoreRules::empty();
        let platform = Platform::host();
        let req = BuildRequest {
            store: &self.store,
            resolver: &self.store,
            fetcher: &NoFetch,
            plan: &plan,
            context: &self.context(),
            ignore: &ignore,
            build_args: &[],
            platform: &platform,
            labels: &[],
            tags: &[],
            network: Network::None,
            sandbox,
            media: MediaTypes::Oci,
            source_date_epoch: None,
            reporter,
            secrets: &[],
            cache,
            keep_failed: false,
            on_run_failure: None,
            snapshotter: Snapshotter::Naive,
        };
        go(&req)
    }

    fn build(&self, dockerfile: &str, sandbox: &FakeSandbox) -> Result<BuildOutcome, BuildError> {
        self.run(dockerfile, sandbox, &Recorder::default(), super::build)
    }
}

fn plan(dockerfile: &str) -> Plan {
    let df = kiln_syntax::parse(dockerfile).unwrap();
    kiln_frontend::plan(&df, &BuildOptions::default()).unwrap()
}

/// The files of a layer's snapshot, relative, sorted, with the contents of regular files.
fn files(snapshot: &Path) -> Vec<(String, Option<String>)> {
    let mut out = Vec::new();
    let mut stack = vec![snapshot.to_owned()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let path = e.unwrap().path();
            let rel = path.strip_prefix(snapshot).unwrap().display().to_string();
            if path.is_dir() {
                out.push((format!("{rel}/"), None));
                stack.push(path);
            } else {
                out.push((rel, std::fs::read_to_string(&path).ok()));
            }
        }
    }
    out.sort();
    out
}

fn container(outcome: &BuildOutcome) -> &ContainerConfig {
    outcome.config.config.as_ref().expect("a container config")
}

fn the_one(specs: &[Spec]) -> &Spec {
    assert_eq!(specs.len(), 1, "one process ran: {specs:#?}");
    &specs[0]
}

#[test]
fn run_shell_form_gets_the_shell_env_workdir_user_and_network() {
    let fx = Fixture::new();
    let sandbox = FakeSandbox::succeeding();
    fx.build(
        "FROM scratch\nENV A=1 B=\"two words\"\nWORKDIR /app\nUSER 1000:1000\n\
         RUN echo \"$A\" > out\n",
        &sandbox,
    )
    .unwrap();
    let spec = sandbox.specs();
    let spec = the_one(&spec);
    assert_eq!(spec.process.args, ["/bin/sh", "-c", "echo \"$A\" > out"]);
    assert!(
        spec.process.env.contains(&"A=1".to_owned())
            && spec.process.env.contains(&"B=two words".to_owned()),
        "{:?}",
        spec.process.env
    );
    assert_eq!(spec.process.cwd, "/app");
    assert_eq!(spec.process.user, "1000:1000");
    assert_eq!(spec.network, Network::None, "the build's `--network`");
    assert!(!spec.process.terminal);
    assert!(spec.mounts.is_empty());
    assert!(
        matches!(&spec.rootfs, Rootfs::Bind { .. }),
        "naive: a plain directory"
    );
}

#[test]
fn run_network_flag_overrides_the_builds() {
    let fx = Fixture::new();
    let sandbox = FakeSandbox::succeeding();
    fx.build(
        "FROM scratch\nRUN --network=host true\nRUN --network=none true\nRUN true\n",
        &sandbox,
    )
    .unwrap();
    let networks: Vec<Network> = sandbox.specs().iter().map(|s| s.network).collect();
    assert_eq!(networks, [Network::Host, Network::None, Network::None]);
}

#[test]
fn run_exec_form_runs_its_argv_without_a_shell() {
    let fx = Fixture::new();
    let sandbox = FakeSandbox::succeeding();
    fx.build(
        "FROM scratch\nRUN [\"/bin/prog\", \"a b\", \"$HOME\"]\n",
        &sandbox,
    )
    .unwrap();
    let spec = sandbox.specs();
    assert_eq!(the_one(&spec).process.args, ["/bin/prog", "a b", "$HOME"]);
    assert_eq!(the_one(&spec).process.cwd, "/", "no WORKDIR: the root");
    assert_eq!(the_one(&spec).process.user, "", "no USER: root");
}

#[test]
fn shell_changes_the_shell_of_later_runs() {
    let fx = Fixture::new();
    let sandbox = FakeSandbox::succeeding();
    let outcome = fx
        .build(
            "FROM scratch\nRUN one\nSHELL [\"/bin/bash\", \"-euo\", \"pipefail\", \"-c\"]\nRUN two\n",
            &sandbox,
        )
        .unwrap();
    let args: Vec<Vec<String>> = sandbox
        .specs()
        .into_iter()
        .map(|s| s.process.args)
        .collect();
    assert_eq!(
        args,
        [
            vec!["/bin/sh", "-c", "one"],
            vec!["/bin/bash", "-euo", "pipefail", "-c", "two"],
        ]
    );
    assert_eq!(
        container(&outcome).shell.as_deref(),
        Some(&["/bin/bash", "-euo", "pipefail", "-c"].map(String::from)[..])
    );
}

#[test]
fn what_a_run_writes_lands_in_its_layer() {
    let fx = Fixture::new();
    let sandbox = FakeSandbox::new(|spec, root| {
        let cwd = root.join(spec.process.cwd.trim_start_matches('/'));
        std::fs::create_dir_all(&cwd).unwrap();
        std::fs::write(cwd.join("made"), "by the step\n").unwrap();
        FakeRun::exit(0)
    });
    let outcome = fx
        .build("FROM scratch\nWORKDIR /w\nRUN make\n", &sandbox)
        .unwrap();
    let run_layer = outcome.layers.last().expect("the RUN's layer");
    assert!(fx.store.has_blob(&run_layer.descriptor.digest), "committed");
    assert_eq!(
        files(&run_layer.snapshot),
        [
            ("dev/".to_owned(), None),
            ("proc/".to_owned(), None),
            ("sys/".to_owned(), None),
            ("w/".to_owned(), None),
            ("w/made".to_owned(), Some("by the step\n".to_owned())),
        ],
        "the step's file, and the mount points BuildKit's RUN layers keep"
    );
    assert_eq!(
        outcome.config.rootfs.diff_ids.last(),
        Some(&run_layer.diff_id.to_string())
    );
    let history = outcome.config.history.last().unwrap();
    assert_eq!(
        history.created_by.as_deref(),
        Some("RUN /bin/sh -c make # buildkit")
    );
}

#[test]
fn a_run_that_fails_fails_the_build_with_its_output_tail() {
    let fx = Fixture::new();
    let sandbox = FakeSandbox::new(|_, _| {
        let mut run = FakeRun::exit(3);
        for i in 1..=12 {
            run = run.print(if i % 2 == 0 { 2 } else { 1 }, &format!("line {i}"));
        }
        run
    });
    let reporter = Recorder::default();
    let err = fx
        .run(
            "FROM scratch AS app\nRUN exit 3\nRUN never\n",
            &sandbox,
            &reporter,
            super::build,
        )
        .unwrap_err();
    assert_eq!(err.stage, "app");
    assert!(err.instruction.contains("exit 3"), "{}", err.instruction);
    match &*err.error {
        StepError::RunFailed {
            command,
            code,
            kept,
        } => {
            assert_eq!(command, "/bin/sh -c exit 3");
            assert_eq!(*code, 3);
            assert!(kept.is_none(), "no `--keep-failed`");
        }
        other => panic!("not RunFailed: {other:?}"),
    }
    let tail: Vec<String> = (3..=12).map(|i| format!("line {i}")).collect();
    assert_eq!(err.output_tail, tail, "the last ten lines");
    assert_eq!(sandbox.specs().len(), 1, "the next RUN never ran");
    let logs: Vec<(u8, Vec<u8>)> = reporter
        .0
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e {
            Event::Log { stream, line, .. } => Some((*stream, line.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(logs.len(), 12, "every line was reported");
    assert_eq!(logs[1], (2, b"line 2\n".to_vec()), "stderr's lines as such");
    assert!(
        fx.store.images().unwrap().is_empty(),
        "no image after a failed build"
    );
}

#[test]
fn copy_from_the_context_lands_in_a_layer() {
    let fx = Fixture::new();
    fx.file("src/a.txt", "alpha\n");
    fx.file("src/sub/b.txt", "beta\n");
    let sandbox = FakeSandbox::succeeding();
    let outcome = fx
        .build("FROM scratch\nCOPY src/ /app/\n", &sandbox)
        .unwrap();
    assert!(sandbox.specs().is_empty(), "COPY runs nothing");
    assert_eq!(outcome.layers.len(), 1);
    assert_eq!(
        files(&outcome.layers[0].snapshot),
        [
            ("app/".to_owned(), None),
            ("app/a.txt".to_owned(), Some("alpha\n".to_owned())),
            ("app/sub/".to_owned(), None),
            ("app/sub/b.txt".to_owned(), Some("beta\n".to_owned())),
        ]
    );
}

#[test]
fn config_instructions_end_up_in_the_image_config() {
    let fx = Fixture::new();
    let sandbox = FakeSandbox::succeeding();
    let outcome = fx
        .build(
            "FROM scratch\nENV A=1\nLABEL org.example.k=v\nWORKDIR /srv\nUSER app\n\
             ENTRYPOINT [\"/bin/server\"]\nCMD [\"--port\", \"80\"]\n",
            &sandbox,
        )
        .unwrap();
    assert!(sandbox.specs().is_empty());
    assert_eq!(
        outcome.layers.len(),
        1,
        "WORKDIR's layer only, as BuildKit makes it"
    );
    assert_eq!(
        files(&outcome.layers[0].snapshot),
        [("srv/".to_owned(), None)]
    );
    let c = container(&outcome);
    assert!(
        c.env.as_ref().unwrap().contains(&"A=1".to_owned()),
        "{:?}",
        c.env
    );
    assert_eq!(
        c.labels
            .as_ref()
            .unwrap()
            .get("org.example.k")
            .map(String::as_str),
        Some("v")
    );
    assert_eq!(c.working_dir.as_deref(), Some("/srv"));
    assert_eq!(c.user.as_deref(), Some("app"));
    assert_eq!(
        c.entrypoint.as_deref(),
        Some(&["/bin/server".to_owned()][..])
    );
    assert_eq!(
        c.cmd.as_deref(),
        Some(&["--port".to_owned(), "80".to_owned()][..])
    );
    let empty: Vec<bool> = outcome
        .config
        .history
        .iter()
        .map(|h| h.empty_layer)
        .collect();
    assert_eq!(
        empty,
        [true, true, false, true, true, true],
        "only WORKDIR has a layer"
    );
}

#[test]
fn explain_runs_nothing_and_stores_nothing() {
    let fx = Fixture::new();
    fx.file("a", "a\n");
    let sandbox = FakeSandbox::succeeding();
    let explanation = fx
        .run(
            "FROM scratch\nCOPY a /a\nRUN touch /b\n",
            &sandbox,
            &Recorder::default(),
            super::explain,
        )
        .unwrap();
    assert!(sandbox.specs().is_empty(), "nothing ran");
    assert!(
        explanation.would_run(),
        "no cache: every layer step would run"
    );
    assert_eq!(explanation.steps.len(), 2, "{explanation:?}");
    assert!(fx.store.images().unwrap().is_empty(), "no image");
    let blobs = std::fs::read_dir(fx.store.root().join("blobs/sha256")).map_or(0, Iterator::count);
    assert_eq!(blobs, 0, "no blob");
}

#[test]
fn a_shebang_heredoc_runs_as_a_script_mounted_at_dev_pipes() {
    let fx = Fixture::new();
    let sandbox = FakeSandbox::succeeding();
    fx.build(
        "FROM scratch\nRUN <<EOF\n#!/bin/prog\nhello\nEOF\n",
        &sandbox,
    )
    .unwrap();
    let specs = sandbox.specs();
    let spec = the_one(&specs);
    assert_eq!(spec.process.args, ["/bin/sh", "-c", "/dev/pipes/EOF"]);
    assert_eq!(spec.mounts.len(), 1, "{:?}", spec.mounts);
    assert_eq!(spec.mounts[0].target, "/dev/pipes/EOF");
    match &spec.mounts[0].kind {
        kiln_sandbox::MountKind::File { content, mode, .. } => {
            assert_eq!(*mode, 0o755);
            assert_eq!(
                content,
                &kiln_sandbox::FileContent::Inline(b"#!/bin/prog\nhello\n".to_vec())
            );
        }
        other => panic!("not a file: {other:?}"),
    }
}

#[test]
fn a_stage_based_on_another_runs_with_its_env_workdir_user_and_files() {
    let fx = Fixture::new();
    let saw_built = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let saw = std::sync::Arc::clone(&saw_built);
    let sandbox = FakeSandbox::new(move |spec, root| {
        match spec.process.args.last().map(String::as_str) {
            Some("make") => std::fs::write(root.join("base/built"), "x").unwrap(),
            Some("check") => saw.store(
                root.join("base/built").is_file(),
                std::sync::atomic::Ordering::SeqCst,
            ),
            _ => {}
        }
        FakeRun::exit(0)
    });
    let outcome = fx
        .build(
            "FROM scratch AS base\nENV FROM_BASE=yes\nWORKDIR /base\nUSER 7\nRUN make\n\
             FROM base\nRUN check\nFROM scratch\nCOPY --from=1 /base/built /out\n",
            &sandbox,
        )
        .unwrap();
    let specs = sandbox.specs();
    assert_eq!(specs.len(), 2, "{specs:#?}");
    let check = &specs[1];
    assert_eq!(check.process.args, ["/bin/sh", "-c", "check"]);
    assert!(check.process.env.contains(&"FROM_BASE=yes".to_owned()));
    assert_eq!(check.process.cwd, "/base");
    assert_eq!(check.process.user, "7");
    assert!(
        saw_built.load(std::sync::atomic::Ordering::SeqCst),
        "the second RUN's root has the first RUN's file"
    );
    // The COPY reads a view of the base stage's three layers (WORKDIR, `make`, `check`):
    // with the naive snapshotter, a merged copy.
    assert_eq!(outcome.layers.len(), 1, "the target: COPY's layer only");
    assert_eq!(
        files(&outcome.layers[0].snapshot),
        [("out".to_owned(), Some("x".to_owned()))]
    );
}

#[test]
fn keep_failed_keeps_the_failed_steps_filesystem_and_spec() {
    let fx = Fixture::new();
    let sandbox = FakeSandbox::new(|_, root| {
        std::fs::write(root.join("left"), "behind").unwrap();
        FakeRun::exit(1)
    });
    let err = fx
        .run(
            "FROM scratch\nRUN false\n",
            &sandbox,
            &Recorder::default(),
            |req| {
                super::build(&BuildRequest {
                    keep_failed: true,
                    ..*req
                })
            },
        )
        .unwrap_err();
    let StepError::RunFailed {
        kept: Some(kept), ..
    } = &*err.error
    else {
        panic!("not a kept RunFailed: {:?}", err.error)
    };
    assert!(kept.dir.starts_with(fx.store.root()), "{:?}", kept.dir);
    assert!(kept.dir.join("spec.json").is_file());
    let Rootfs::Bind { dir } = &kept.spec.rootfs else {
        panic!("naive")
    };
    assert!(dir.starts_with(&kept.dir), "the spec's paths moved along");
    assert_eq!(std::fs::read_to_string(dir.join("left")).unwrap(), "behind");
    assert_eq!(kept.spec.process.args, ["/bin/sh", "-c", "false"]);
}

/// One call of the failure hook: stage, position, exit code, mount targets, secret mounts,
/// secret variables, and whether the failed step's changes and state dir were there then.
type Seen = (
    String,
    usize,
    i32,
    Vec<String>,
    Vec<String>,
    Vec<String>,
    bool,
);

/// What the failure hook saw.
#[derive(Default)]
struct SeenFailure(Mutex<Vec<Seen>>);

impl crate::on_failure::OnRunFailure for SeenFailure {
    fn run_failed(&self, f: &crate::on_failure::FailedRun<'_>) {
        let Rootfs::Bind { dir } = &f.spec.rootfs else {
            panic!("naive")
        };
        let targets = f.spec.mounts.iter().map(|m| m.target.clone()).collect();
        self.0.lock().unwrap().push((
            f.stage.to_owned(),
            f.position,
            f.code,
            targets,
            f.secret_mounts.to_vec(),
            f.secret_env.to_vec(),
            dir.join("left").is_file() && f.state.is_dir(),
        ));
    }
}

#[test]
fn the_failure_hook_sees_the_failed_run_with_its_mounts_before_it_is_kept() {
    let fx = Fixture::new();
    let secret_file = fx.dir.path().join("token");
    std::fs::write(&secret_file, "s3cret").unwrap();
    let secrets = [crate::run_mount::Secret {
        id: "tok".into(),
        source: crate::run_mount::SecretSource::File(secret_file),
    }];
    let sandbox = FakeSandbox::new(|_, root| {
        std::fs::write(root.join("left"), "behind").unwrap();
        FakeRun::exit(3)
    });
    let seen = SeenFailure::default();
    let err = fx
        .run(
            "FROM scratch AS app\nENV A=1\nRUN --mount=type=tmpfs,target=/t --mount=type=secret,id=tok,env=TOKEN,target=/run/secrets/tok false\n",
            &sandbox,
            &Recorder::default(),
            |req| {
                super::build(&BuildRequest {
                    keep_failed: true,
                    on_run_failure: Some(&seen),
                    secrets: &secrets,
                    ..*req
                })
            },
        )
        .unwrap_err();
    let seen = seen.0.into_inner().unwrap();
    assert_eq!(
        seen,
        [(
            "app".to_owned(),
            3,
            3,
            vec!["/t".to_owned(), "/run/secrets/tok".to_owned()],
            vec!["/run/secrets/tok".to_owned()],
            vec!["TOKEN".to_owned()],
            true
        )]
    );
    let StepError::RunFailed {
        kept: Some(kept), ..
    } = &*err.error
    else {
        panic!("not a kept RunFailed: {:?}", err.error)
    };
    // What an image of the failed step needs: the stage as it was before the step.
    assert_eq!((kept.stage.as_str(), kept.position), ("app", 3));
    assert!(kept.layers.is_empty());
    let env = kept.config.config.as_ref().unwrap().env.clone().unwrap();
    assert_eq!(env.last().map(String::as_str), Some("A=1"));
    let mut layer = Vec::new();
    let (_, digests) = kept
        .diff(&mut layer, kiln_layer::Compression::None, None)
        .unwrap();
    assert_eq!(digests.size, layer.len() as u64);
    // The layer holds the file the failed process wrote (a tar: name and body in the clear).
    let has = |needle: &[u8]| layer.windows(needle.len()).any(|w| w == needle);
    assert!(has(b"left") && has(b"behind"));
}

mod remote_cache;
mod snapshots;
