//! Executing a plan: every needed stage in its own thread, started at once; a stage waits
//! only for the stages it depends on, so independent stages run in parallel. The target's
//! image is committed to the store in one transaction with every new blob; a failure anywhere
//! stops the other stages at their next step and leaves the store without a partial image.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use kiln_context::IgnoreRules;
use kiln_frontend::{Plan, Platform, Scope};
use kiln_layer::{Compression, Digest};
use kiln_oci::model::Descriptor;
use kiln_oci::{ImageConfig, MediaTypes, Reference, Store};
use kiln_sandbox::Network;

use crate::error::{BuildError, StepError};
use crate::explain::{ExplainedStep, Explanation};
use crate::layers::{Layer, LayerSink};
use crate::progress::Reporter;
use crate::snapshotter::Snapshotter;

/// Everything a build needs besides the plan's own contents.
pub struct BuildRequest<'a> {
    /// The store: the result goes into it.
    pub store: &'a Store,
    /// Where base images and `--from=<image>` come from (the store, today).
    pub resolver: &'a dyn crate::resolve::ImageResolver,
    /// How `ADD <url>` downloads (`kiln_http::Client`, with the proxies and CA roots the
    /// caller configured).
    pub fetcher: &'a (dyn kiln_fileop::Fetcher + Sync),
    /// The planned Dockerfile.
    pub plan: &'a Plan,
    /// The context directory.
    pub context: &'a Path,
    /// Its `.dockerignore` rules.
    pub ignore: &'a IgnoreRules,
    /// `--build-arg` values.
    pub build_args: &'a [(String, String)],
    /// `--platform` (the host's when not given).
    pub platform: &'a Platform,
    /// `--label` values, set on the target's config.
    pub labels: &'a [(String, String)],
    /// `-t` names (and `--output type=image,name=`).
    pub tags: &'a [Reference],
    /// `--network` for RUN steps without their own.
    pub network: Network,
    /// Runs RUN steps' processes: a [`kiln_sandbox::Launcher`] (which needs root), or a
    /// fake in tests.
    pub sandbox: &'a dyn crate::sandbox::Sandbox,
    /// Media types of the result.
    pub media: MediaTypes,
    /// `SOURCE_DATE_EPOCH`: clamps file times and sets the image's `created`. Without it the
    /// image has no `created` time, so that COPY-only builds are reproducible.
    pub source_date_epoch: Option<i64>,
    /// Where progress goes.
    pub reporter: &'a dyn Reporter,
    /// `--secret`s, for `RUN --mount=type=secret`.
    pub secrets: &'a [crate::run_mount::Secret],
    /// The step cache; `None` builds without one.
    pub cache: Option<&'a crate::cache_step::CacheUse<'a>>,
    /// Keep the filesystem of a RUN whose process fails, under the store's `failed-steps/`
    /// (`--keep-failed`); the error names it.
    pub keep_failed: bool,
    /// Told when a RUN's process fails, while its filesystem and mounts still stand
    /// (`--on-error=shell`); `None` tells no one.
    pub on_run_failure: Option<&'a dyn crate::on_failure::OnRunFailure>,
    /// How steps get their filesystems (`--snapshotter`, or [`Snapshotter::choose`]'s probe).
    pub snapshotter: Snapshotter,
}

/// What a built stage leaves for the stages that use it.
#[derive(Clone, Debug)]
pub(crate) struct StageResult {
    /// Its image config (history and `rootfs.diff_ids` complete).
    pub config: ImageConfig,
    /// Its layers, bottom first.
    pub layers: Vec<Layer>,
    /// Its variables at the end, for stages based on it.
    pub scope: Scope,
    /// How many of `layers` came from its base.
    pub base_layers: usize,
    /// What a stage based on this one chains its cache keys on.
    pub chain: kiln_cache::Parent,
    /// The keys of the steps that made its image (its base stage's too), each with the
    /// index of its layer in `layers`: `--cache-to mode=min` and the inline cache.
    pub keys: Vec<(kiln_cache::CacheKey, Option<usize>)>,
}

impl StageResult {
    /// The snapshots of its layers, topmost first.
    pub(crate) fn lowers(&self) -> Vec<std::path::PathBuf> {
        crate::layers::stack(&self.layers)
    }
}

/// A built stage, for the summary.
#[derive(Clone, Debug)]
pub struct StageSummary {
    /// Its name or index.
    pub name: String,
    /// The layers of its image, bottom first (the caller sizes them: they are all in the
    /// store once the build is committed).
    pub layers: Vec<Descriptor>,
    /// How many of `layers` came from its base.
    pub base_layers: usize,
}

/// The result of a build.
#[derive(Clone, Debug)]
pub struct BuildOutcome {
    /// The image's manifest in the store.
    pub manifest: Descriptor,
    /// The image id (the config's digest).
    pub id: Digest,
    /// The image config.
    pub config: ImageConfig,
    /// The target's layers (for `tar`/`local` exports).
    pub layers: Vec<Layer>,
    /// Every stage that was built, in build order.
    pub stages: Vec<StageSummary>,
    /// Things that did not fail the build but deserve a word (the cache could not be saved).
    pub warnings: Vec<String>,
    /// The cache keys of this build's steps, every stage's (for `--cache-to mode=max`).
    pub cache_keys: Vec<kiln_cache::CacheKey>,
    /// The cache keys of the steps that made the target image's layers, its base stages'
    /// included (for `--cache-to mode=min`).
    pub target_cache_keys: Vec<kiln_cache::CacheKey>,
    /// Regular files the build's new snapshots created, and those they hard-linked from the
    /// trees RUN steps wrote instead: a RUN's files are created once, by the RUN.
    pub snapshot_files: (u64, u64),
}

/// How a stage thread ended; `Ok(None)`: an explanation stopped the stage at a step that
/// would run.
type StageRun = Result<Option<Arc<StageResult>>, BuildError>;

/// One stage's result, shared between threads.
#[derive(Default)]
struct Slot {
    result: Mutex<Option<Result<Arc<StageResult>, String>>>,
    ready: Condvar,
}

/// State shared by the stage threads.
pub(crate) struct Shared<'a> {
    pub req: &'a BuildRequest<'a>,
    /// The images the build names, resolved before the stages started.
    pub images: crate::resolve::Images<'a>,
    pub sink: LayerSink<'a>,
    pub snapshotter: Snapshotter,
    pub fetcher: &'a (dyn kiln_fileop::Fetcher + Sync),
    pub cache: Option<&'a crate::cache_step::CacheUse<'a>>,
    /// Under [`explain`]: where the steps' verdicts go. `Some` means nothing may run and
    /// nothing may be stored.
    pub explained: Option<&'a Mutex<Vec<ExplainedStep>>>,
    /// Context files hashed through the cache's stat cache.
    pub stat: Option<kiln_cache::StatCachedHasher<'a>>,
    /// Steps to record once the build's blobs are published.
    pub pending: crate::cache_step::PendingRecords,
    /// The context as COPY reads it (walked once for `.dockerignore`, shared by every step).
    pub context_root: std::sync::OnceLock<
        Result<kiln_fileop::SourceRoot, Arc<dyn std::error::Error + Send + Sync>>,
    >,
    pub next_step: AtomicUsize,
    pub failed: AtomicBool,
    /// Cache mounts emptied by this build under `--no-cache` ([`crate::run_mount`]).
    pub emptied_caches: Mutex<std::collections::HashSet<String>>,
    slots: Vec<Slot>,
}

impl Shared<'_> {
    /// Whether this is [`explain`]: steps are looked up, never run.
    pub(crate) fn explaining(&self) -> bool {
        self.explained.is_some()
    }

    /// Under [`explain`], note what the cache says about a step.
    pub(crate) fn note(&self, step: ExplainedStep) {
        if let Some(e) = self.explained {
            e.lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(step);
        }
    }

    /// Wait for stage `i` to finish; its result, or the label of the failed stage. A stage
    /// this build does not run is an error at once, never a wait.
    pub(crate) fn wait(&self, i: usize) -> Result<Arc<StageResult>, StepError> {
        if !self.req.plan.stages[i].needed {
            return Err(StepError::StageNotScheduled(
                self.req.plan.stages[i].label(),
            ));
        }
        self.wait_scheduled(i).map_err(StepError::DependencyFailed)
    }

    fn wait_scheduled(&self, i: usize) -> Result<Arc<StageResult>, String> {
        let slot = &self.slots[i];
        let mut guard = slot
            .result
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        loop {
            if let Some(r) = guard.as_ref() {
                return r.clone();
            }
            guard = slot
                .ready
                .wait(guard)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
    }

    fn set(&self, i: usize, r: Result<Arc<StageResult>, String>) {
        let slot = &self.slots[i];
        *slot
            .result
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(r);
        slot.ready.notify_all();
    }
}

/// The plan with the stages that base images' ONBUILD triggers read scheduled too: those
/// triggers are only known from the images' configs, so the planner could not see them.
/// `None` when no trigger reads a stage the plan does not run already.
fn with_trigger_stages(
    req: &BuildRequest<'_>,
    images: &crate::resolve::Images<'_>,
) -> Option<Plan> {
    let mut extra = Vec::new();
    for stage in req.plan.stages.iter().filter(|s| s.needed) {
        let kiln_frontend::Base::Image(name) = &stage.base else {
            continue;
        };
        // A base that cannot be resolved fails its stage later, with its own message.
        let Ok(image) = images.get(name) else {
            continue;
        };
        let triggers = image
            .config
            .config
            .as_ref()
            .and_then(|c| c.on_build.as_ref());
        for t in triggers.into_iter().flatten() {
            extra.extend(
                req.plan
                    .trigger_stages(t)
                    .into_iter()
                    .filter(|&i| !req.plan.stages[i].needed),
            );
        }
    }
    if extra.is_empty() {
        return None;
    }
    let mut plan = req.plan.clone();
    for i in extra {
        plan.schedule(i);
    }
    Some(plan)
}

/// Build the plan's target.
pub fn build(req: &BuildRequest<'_>) -> Result<BuildOutcome, BuildError> {
    let outcome = run_plan(req, None)?;
    Ok(outcome.expect("a build that is not an explanation makes an image"))
}

/// Say for every layer step of the stages the target needs whether the step cache has it or
/// why it would run, without running a step, making a mount or changing the store (the
/// transaction a build would commit is dropped). Base images must be in the store, as for a
/// build. Errors are those a build would meet before its first step that would run.
pub fn explain(req: &BuildRequest<'_>) -> Result<Explanation, BuildError> {
    let explained = Mutex::new(Vec::new());
    run_plan(req, Some(&explained))?;
    let mut steps = explained
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    steps.sort_by_key(|s: &ExplainedStep| (s.stage_index, s.index));
    Ok(Explanation { steps })
}

/// Build or explain the plan, with the stages its base images' ONBUILD triggers read.
fn run_plan(
    req: &BuildRequest<'_>,
    explained: Option<&Mutex<Vec<ExplainedStep>>>,
) -> Result<Option<BuildOutcome>, BuildError> {
    // Every image the build names, resolved once, before any stage starts.
    let mut images = crate::resolve::Images::for_plan(req.resolver, req.plan);
    match with_trigger_stages(req, &images) {
        Some(plan) => {
            // Stages only the triggers read may name images of their own.
            images.add_plan(&plan);
            build_plan(
                &BuildRequest {
                    plan: &plan,
                    ..*req
                },
                images,
                explained,
            )
        }
        None => build_plan(req, images, explained),
    }
}

/// Build (or, with `explained`, explain) the plan; `None` is an explanation's result.
fn build_plan(
    req: &BuildRequest<'_>,
    images: crate::resolve::Images<'_>,
    explained: Option<&Mutex<Vec<ExplainedStep>>>,
) -> Result<Option<BuildOutcome>, BuildError> {
    let whole = |error: StepError| BuildError {
        stage: req.plan.stages[req.plan.target].label(),
        instruction: String::new(),
        span: req.plan.stages[req.plan.target].from_command.span,
        error: Box::new(error),
        output_tail: Vec::new(),
    };
    if req.platform.architecture != Platform::host().architecture || req.platform.os != "linux" {
        return Err(whole(StepError::ForeignPlatform {
            wanted: req.platform.to_string(),
            host: Platform::host().to_string(),
        }));
    }
    // Layers stay uncompressed in the store: compressing is most of a package install's
    // commit, and what leaves the machine is compressed on the way out (once per layer).
    let sink = LayerSink::new(req.store, req.media, Compression::None).map_err(whole)?;
    let shared = Shared {
        req,
        images,
        sink,
        snapshotter: req.snapshotter,
        fetcher: req.fetcher,
        cache: req.cache,
        explained,
        stat: match req.cache {
            Some(c) => Some(
                c.cache
                    .stat_hasher(req.context)
                    .map_err(|e| whole(StepError::Cache(Box::new(e))))?,
            ),
            None => None,
        },
        pending: crate::cache_step::PendingRecords::default(),
        context_root: std::sync::OnceLock::new(),
        next_step: AtomicUsize::new(1),
        failed: AtomicBool::new(false),
        emptied_caches: Mutex::default(),
        slots: req.plan.stages.iter().map(|_| Slot::default()).collect(),
    };
    let order = req.plan.build_order();
    let results: Vec<(usize, StageRun)> = std::thread::scope(|s| {
        let handles: Vec<_> = order
            .iter()
            .map(|&i| {
                let shared = &shared;
                (
                    i,
                    s.spawn(move || {
                        let r = crate::stage::run_stage(shared, i).map(|r| r.map(Arc::new));
                        if r.is_err() {
                            shared.failed.store(true, Ordering::SeqCst);
                        }
                        // A stage an explanation stopped has no result: the stages that read
                        // it see it as a failed dependency, and explain their steps so.
                        let label = || req.plan.stages[i].label();
                        let slot = match &r {
                            Ok(Some(res)) => Ok(Arc::clone(res)),
                            Ok(None) => Err(label()),
                            Err(e) => Err(e.stage.clone()),
                        };
                        shared.set(i, slot);
                        r
                    }),
                )
            })
            .collect();
        handles
            .into_iter()
            .map(|(i, h)| (i, h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))))
            .collect()
    });
    // Report the root cause: the first failure that is not a dependency's failure.
    let mut ok = Vec::new();
    let mut errors = Vec::new();
    for (i, r) in results {
        match r {
            Ok(Some(res)) => ok.push((i, res)),
            Ok(None) => {}
            Err(e) => errors.push(e),
        }
    }
    if !errors.is_empty() {
        if let Some(c) = req.cache
            && explained.is_none()
        {
            keep_finished_steps(shared.sink, shared.stat.as_ref(), shared.pending, c);
        }
        let root = errors
            .iter()
            .position(|e| {
                !matches!(
                    *e.error,
                    StepError::DependencyFailed(_) | StepError::Cancelled
                )
            })
            .unwrap_or(0);
        return Err(errors.swap_remove(root));
    }
    if explained.is_some() {
        // Nothing is committed: the transaction and its scratch space go away.
        return Ok(None);
    }
    let target = ok
        .iter()
        .find(|(i, _)| *i == req.plan.target)
        .map(|(_, r)| Arc::clone(r))
        .expect("the target is always built");
    let stages = ok
        .iter()
        .map(|(i, r)| StageSummary {
            name: req.plan.stages[*i].label(),
            layers: r.layers.iter().map(|l| l.descriptor.clone()).collect(),
            base_layers: r.base_layers,
        })
        .collect();
    let mut outcome = commit(shared.sink, req, &target, stages).map_err(whole)?;
    if let Some(c) = req.cache {
        if let Some(stat) = &shared.stat
            && let Err(e) = stat.flush()
        {
            outcome
                .warnings
                .push(format!("the context's stat cache: {e}"));
        }
        let (keys, warnings) = shared.pending.record(c.cache);
        outcome.cache_keys = keys;
        outcome.warnings.extend(warnings);
    }
    Ok(Some(outcome))
}

/// After a failed build, keep what the steps that finished made, as BuildKit does: their
/// layers are published (no image is made and no tag changes) and their cache records
/// written, so fixing the step that failed does not rerun the ones before it. Best effort:
/// the build has failed already, and an error here only costs those future hits.
fn keep_finished_steps(
    sink: LayerSink<'_>,
    stat: Option<&kiln_cache::StatCachedHasher<'_>>,
    pending: crate::cache_step::PendingRecords,
    cache: &crate::cache_step::CacheUse<'_>,
) {
    if let Some(stat) = stat {
        let _ = stat.flush();
    }
    if pending.is_empty() || sink.finish(|_| Ok(())).is_err() {
        return;
    }
    let _ = pending.record(cache.cache);
}

/// Write the target's config and manifest and publish everything, tagged.
fn commit(
    sink: LayerSink<'_>,
    req: &BuildRequest<'_>,
    target: &StageResult,
    stages: Vec<StageSummary>,
) -> Result<BuildOutcome, StepError> {
    let mut config = target.config.clone();
    if !req.labels.is_empty() {
        let c = config.config.get_or_insert_with(Default::default);
        let labels = c.labels.get_or_insert_with(Default::default);
        for (k, v) in req.labels {
            labels.insert(k.clone(), v.clone());
        }
    }
    // A base image's inline cache describes the base, not this image.
    config.extra.remove(kiln_cache::INLINE_FIELD);
    config.extra.remove(kiln_cache::BUILDKIT_INLINE_FIELD);
    if req.cache.is_some_and(|c| c.inline) {
        config.extra.insert(
            kiln_cache::INLINE_FIELD.to_owned(),
            kiln_cache::transfer::inline::to_value(&target.keys),
        );
    }
    let layers = target.layers.iter().map(|l| l.descriptor.clone()).collect();
    let (descriptor, config_digest) = sink.put_image(req.media, &config, layers)?;
    let snapshot_files = sink.snapshot_files();
    sink.finish(|index| {
        if req.tags.is_empty() {
            kiln_oci::store::add_untagged(index, &descriptor);
        }
        for t in req.tags {
            kiln_oci::store::set_tag(index, t, &descriptor);
        }
        Ok(())
    })?;
    Ok(BuildOutcome {
        manifest: descriptor,
        id: config_digest,
        config,
        layers: target.layers.clone(),
        stages,
        warnings: Vec::new(),
        cache_keys: Vec::new(),
        target_cache_keys: target.keys.iter().map(|(k, _)| k.clone()).collect(),
        snapshot_files,
    })
}

#[cfg(test)]
mod tests;
