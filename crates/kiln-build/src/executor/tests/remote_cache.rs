//! Issue 13's cache shared by many machines, without root or network: separate stores
//! ("CI runners") share one in-memory remote ([`kiln_cache::MemoryRemote`], the registry's
//! stand-in, which counts every call), exporting through it and importing from it lazily.

use std::sync::Arc;

use kiln_cache::{Cache, CacheRemote, ExportOptions, LazyImport, MemoryRemote};

use super::*;

/// Two stages; the target copies from the other one.
const DOCKERFILE: &str = "FROM scratch AS tools\nRUN make-tools\n\
    FROM scratch\nCOPY a.txt /a.txt\nRUN build\nCOPY --from=tools /tools /tools\nRUN test\n";

/// A machine: its own store and context (the same files), and its cache.
struct Runner {
    fx: Fixture,
    cache: Cache,
}

impl Runner {
    fn new() -> Self {
        let fx = Fixture::new();
        fx.file("a.txt", "source\n");
        let cache = Cache::open(&fx.store).unwrap();
        Self { fx, cache }
    }

    /// Builds `dockerfile` with the cache (and `remote` to import from lazily); the outcome
    /// and the commands that ran.
    fn build(
        &self,
        dockerfile: &str,
        remote: Option<&LazyImport>,
        inline: bool,
    ) -> (BuildOutcome, Vec<String>) {
        let sandbox = FakeSandbox::new(|spec, root| {
            let cmd = spec.process.args.last().cloned().unwrap_or_default();
            let dir = root.join("tools");
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join(format!("out-{cmd}")), &cmd).unwrap();
            FakeRun::exit(0)
        });
        let outcome = self.build_with(dockerfile, &sandbox, remote, inline);
        let ran = sandbox
            .specs()
            .iter()
            .map(|s| s.process.args.last().cloned().unwrap_or_default())
            .collect();
        (outcome, ran)
    }

    fn build_with(
        &self,
        dockerfile: &str,
        sandbox: &FakeSandbox,
        remote: Option<&LazyImport>,
        inline: bool,
    ) -> BuildOutcome {
        let cache = crate::CacheUse {
            cache: &self.cache,
            no_cache: false,
            no_cache_stages: Vec::new(),
            dockerfile: "/ci/Dockerfile".into(),
            remote,
            inline,
        };
        self.fx
            .run_cached(
                dockerfile,
                sandbox,
                &Recorder::default(),
                Some(&cache),
                super::super::build,
            )
            .unwrap()
    }

    /// A lazy import of `remote`'s `main` tag.
    fn import(&self, remote: &Arc<MemoryRemote>) -> LazyImport {
        let mut lazy = LazyImport::new();
        lazy.add(
            self.cache
                .open_remote(Box::new(Arc::clone(remote)), "main")
                .unwrap(),
        );
        lazy
    }

    fn export(
        &self,
        remote: &Arc<MemoryRemote>,
        keys: &[kiln_cache::CacheKey],
        imported: Option<&LazyImport>,
    ) -> kiln_cache::ExportReport {
        let opts = ExportOptions {
            tag: "main".into(),
            ..ExportOptions::default()
        };
        self.cache
            .export_to(&**remote, Some(keys), &opts, imported)
            .unwrap()
    }
}

/// A first runner's build of [`DOCKERFILE`], exported (`mode=max`) to a remote of its own.
fn built_by_a_first_runner() -> (Arc<MemoryRemote>, Runner, BuildOutcome) {
    let remote = Arc::new(MemoryRemote::new("registry"));
    let first = Runner::new();
    let (built, _) = first.build(DOCKERFILE, None, false);
    first.export(&remote, &built.cache_keys, None);
    (remote, first, built)
}

/// The names in a runner's `snapshots/`, sorted.
fn snapshot_entries(runner: &Runner) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(runner.fx.store.layout().snapshots())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn three_runners_share_one_remote_cache_and_only_the_first_runs_anything() {
    let remote = Arc::new(MemoryRemote::new("registry"));
    let first = Runner::new();
    let (built, ran) = first.build(DOCKERFILE, None, false);
    assert_eq!(ran, ["make-tools", "build", "test"]);
    let exported = first.export(&remote, &built.cache_keys, None);
    assert_eq!(exported.records, 5, "mode=max: both stages' layer steps");
    assert_eq!(exported.uploaded, remote.calls().pushed.len());
    let pushed_first = remote.blobs().len();

    for n in 2..=3 {
        let runner = Runner::new();
        let lazy = runner.import(&remote);
        remote.reset_calls();
        let (rebuilt, ran) = runner.build(DOCKERFILE, Some(&lazy), false);
        assert!(ran.is_empty(), "runner {n} ran {ran:?}");
        assert_eq!(
            rebuilt.manifest.digest, built.manifest.digest,
            "runner {n} made the very image the first runner made"
        );
        assert_eq!(rebuilt.id, built.id);
        // Every layer step hit, so each of their layers was fetched, once.
        let fetched = remote.calls().fetched;
        assert_eq!(fetched.len(), 5, "{fetched:?}");
        assert_eq!(lazy.report().layers_fetched, 5);
        for l in &rebuilt.layers {
            assert!(runner.fx.store.has_blob(&l.descriptor.digest));
        }

        // Exporting what it rebuilt uploads nothing: every blob came from this remote.
        remote.reset_calls();
        let again = runner.export(&remote, &rebuilt.cache_keys, Some(&lazy));
        assert_eq!(again.uploaded, 0);
        assert!(remote.calls().pushed.is_empty(), "{:?}", remote.calls());
        assert_eq!(
            again.manifest.digest, exported.manifest.digest,
            "same export"
        );
        assert_eq!(remote.blobs().len(), pushed_first);

        // What was fetched is persisted like an ordinary import: a rebuild needs no remote.
        let (local, ran) = runner.build(DOCKERFILE, None, false);
        assert!(ran.is_empty());
        assert_eq!(local.manifest.digest, built.manifest.digest);
    }
}

#[test]
fn a_runner_keys_copy_from_by_the_exported_selection_and_unpacks_no_layer() {
    let (remote, _, built) = built_by_a_first_runner();

    let runner = Runner::new();
    let lazy = runner.import(&remote);
    let (rebuilt, ran) = runner.build(DOCKERFILE, Some(&lazy), false);
    assert!(ran.is_empty(), "{ran:?}");
    assert_eq!(rebuilt.manifest.digest, built.manifest.digest);
    // The `COPY --from=tools` key came from the first runner's memo: the tools stage's layer
    // (like every other) is only promised, never unpacked, although its files are hashed
    // into that key.
    let entries = snapshot_entries(&runner);
    assert_eq!(entries.len(), 5, "{entries:?}");
    assert!(
        entries.iter().all(|e| e.ends_with(".pending")),
        "a snapshot was unpacked: {entries:?}"
    );
    // The runner records the memo with its own hit, so its own export carries it on.
    let again = Arc::new(MemoryRemote::new("next"));
    runner.export(&again, &rebuilt.cache_keys, None);
    let third = Runner::new();
    let lazy = third.import(&again);
    let (_, ran) = third.build(DOCKERFILE, Some(&lazy), false);
    assert!(ran.is_empty(), "{ran:?}");
    let entries = snapshot_entries(&third);
    assert!(
        entries.iter().all(|e| e.ends_with(".pending")),
        "{entries:?}"
    );
}

#[test]
fn an_export_asks_the_remote_and_skips_what_it_has() {
    let (remote, _, _) = built_by_a_first_runner();
    // Another machine imports it all at once (no lazy import to remember where blobs came
    // from), rebuilds, and exports to the same place: the remote is asked, and has them all.
    let other = Runner::new();
    let imported = other.cache.import_from(&*remote, "main").unwrap();
    assert_eq!(imported.added, 5);
    let (same, ran) = other.build(DOCKERFILE, None, false);
    assert!(ran.is_empty());
    remote.reset_calls();
    let report = other.export(&remote, &same.cache_keys, None);
    assert_eq!(report.uploaded, 0, "{report:?}");
    let calls = remote.calls();
    assert!(calls.pushed.is_empty(), "{calls:?}");
    assert!(calls.has_blob >= 5, "it asked: {calls:?}");
}

#[test]
fn steps_that_miss_download_nothing() {
    let (remote, first, _) = built_by_a_first_runner();

    let runner = Runner::new();
    let lazy = runner.import(&remote);
    remote.reset_calls();
    // `RUN build` changed: it and every step after it in the target miss.
    let changed = DOCKERFILE.replace("RUN build", "RUN build-changed");
    let (_, ran) = runner.build(&changed, Some(&lazy), false);
    assert_eq!(ran, ["build-changed", "test"]);
    // Hits: `RUN make-tools` and `COPY a.txt`; only their layers were fetched.
    let fetched = remote.calls().fetched;
    assert_eq!(fetched.len(), 2, "{fetched:?}");
    assert_eq!(lazy.report().hits, 2);
    let hit_layers: Vec<_> = first
        .cache
        .records()
        .unwrap()
        .into_iter()
        .filter_map(|r| r.output.layer)
        .map(|l| {
            first
                .fx
                .store
                .layer_variant(
                    &l.descriptor,
                    MediaTypes::Oci,
                    kiln_oci::store::ExportCompression::default(),
                )
                .unwrap()
                .digest
        })
        .collect();
    assert!(fetched.iter().all(|d| hit_layers.contains(d)));

    // A build whose steps all miss fetches nothing at all.
    let fresh = Runner::new();
    let lazy = fresh.import(&remote);
    remote.reset_calls();
    let (_, ran) = fresh.build("FROM scratch\nRUN other\n", Some(&lazy), false);
    assert_eq!(ran, ["other"]);
    assert!(remote.calls().fetched.is_empty());
}

#[test]
fn mode_min_exports_the_targets_steps_and_max_every_stages() {
    let runner = Runner::new();
    let (built, _) = runner.build(DOCKERFILE, None, false);
    let remote = Arc::new(MemoryRemote::new("registry"));
    let min = runner.export(&remote, &built.target_cache_keys, None);
    let max = runner.export(&remote, &built.cache_keys, None);
    // min: COPY a.txt, RUN build, COPY --from, RUN test; max adds the tools stage's RUN.
    assert_eq!((min.records, max.records), (4, 5));
}

#[test]
fn a_cache_mount_travels_with_mounts_true() {
    const WRITE: &str = "FROM scratch\nRUN --mount=type=cache,target=/cache,id=pkgs fill\n";
    const READ: &str = "FROM scratch\nRUN --mount=type=cache,target=/cache,id=pkgs check\n";
    let sandbox = FakeSandbox::new(|spec, root| {
        let cmd = spec.process.args.last().cloned().unwrap_or_default();
        let mount = spec
            .mounts
            .iter()
            .find(|m| m.target == "/cache")
            .expect("the cache mount");
        let kiln_sandbox::MountKind::Bind {
            root: dir, path, ..
        } = &mount.kind
        else {
            panic!("a cache mount is a bind: {mount:?}");
        };
        let dir = dir.join(path);
        if cmd == "fill" {
            std::fs::create_dir_all(dir.join("pkgs")).unwrap();
            std::fs::write(dir.join("pkgs/downloaded"), "package\n").unwrap();
        } else {
            let seen = std::fs::read_to_string(dir.join("pkgs/downloaded")).unwrap_or_default();
            std::fs::write(root.join("seen"), seen).unwrap();
        }
        FakeRun::exit(0)
    });
    let remote = Arc::new(MemoryRemote::new("registry"));
    let first = Runner::new();
    let built = first.build_with(WRITE, &sandbox, None, false);
    let opts = ExportOptions {
        tag: "main".into(),
        mounts: true,
        ..ExportOptions::default()
    };
    let report = first
        .cache
        .export_to(&*remote, Some(&built.cache_keys), &opts, None)
        .unwrap();
    assert_eq!(report.mounts, 1);

    let second = Runner::new();
    let lazy = second.import(&remote);
    assert_eq!(lazy.restore_mounts(&second.cache).unwrap(), 1);
    let read = second.build_with(READ, &sandbox, Some(&lazy), false);
    let layer = read.layers.last().unwrap();
    assert_eq!(
        std::fs::read_to_string(layer.snapshot.join("seen")).unwrap(),
        "package\n",
        "the second runner's RUN saw the first runner's cache mount"
    );
    // A mount that has files is left alone.
    let lazy = second.import(&remote);
    assert_eq!(lazy.restore_mounts(&second.cache).unwrap(), 0);

    // Without `mounts=true` nothing travels.
    let remote = Arc::new(MemoryRemote::new("plain"));
    first
        .cache
        .export_to(
            &*remote,
            None,
            &ExportOptions {
                tag: "main".into(),
                ..ExportOptions::default()
            },
            None,
        )
        .unwrap();
    let third = Runner::new();
    assert_eq!(
        third.import(&remote).restore_mounts(&third.cache).unwrap(),
        0
    );
    let _ = remote.name();
}

#[test]
fn an_inline_cache_in_the_image_config_is_read_back() {
    let runner = Runner::new();
    let (built, ran) = runner.build(DOCKERFILE, None, true);
    assert_eq!(ran.len(), 3);
    let image = runner
        .fx
        .store
        .resolve(&built.manifest.digest.to_string())
        .unwrap();
    assert!(image.config.extra.contains_key(kiln_cache::INLINE_FIELD));
    // The store forgets its records; the image alone brings back the target's.
    for r in runner.cache.records().unwrap() {
        runner.cache.remove(&r.key).unwrap();
    }
    let report = runner.cache.import_inline(&image, "built").unwrap();
    assert_eq!(report.added, 4, "mode=min's records: the target's steps");
    let (again, ran) = runner.build(DOCKERFILE, None, true);
    // The tools stage's RUN is not in the target's image: it runs; the target's steps hit.
    assert_eq!(ran, ["make-tools"]);
    assert_eq!(again.manifest.digest, built.manifest.digest);

    // An image built without it has none, and says so.
    let (plain, _) = runner.build(DOCKERFILE, None, false);
    let image = runner
        .fx
        .store
        .resolve(&plain.manifest.digest.to_string())
        .unwrap();
    assert!(!image.config.extra.contains_key(kiln_cache::INLINE_FIELD));
    let report = runner.cache.import_inline(&image, "plain").unwrap();
    assert_eq!(report.added, 0);
    assert!(report.note.unwrap().contains("no inline cache"));
}
