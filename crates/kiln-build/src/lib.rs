//! Executes a build plan from `kiln-frontend`: every needed stage in its own thread, each
//! waiting only for the stages it reads; each step looked up in the step cache (`kiln-cache`,
//! keys documented in `cache_step`) and otherwise turned into an image-config change or a new
//! layer; the result committed to the store in one transaction and exported.
//!
//! This crate ties the others together and owns the *meaning* of each instruction at build
//! time (the config BuildKit writes, the history text, the order of effects). It does not
//! parse Dockerfiles (`kiln-frontend` does), run processes (`kiln-sandbox`), write tar
//! (`kiln-layer`) or store blobs (`kiln-oci`), and it never prints: progress goes out as
//! events through the [`Reporter`] trait, which the binary renders.
//!
//! A RUN's process is run through the [`Sandbox`] trait: the binary passes
//! [`kiln_sandbox::Launcher`] (namespaces, which need root), this crate's tests a recording
//! fake, so that how each instruction is dispatched is tested without privileges. Base images
//! come through [`ImageResolver`]; the store is [`kiln_oci::Store`] itself, a directory that
//! needs no privileges either.
//!
//! A RUN whose process fails is offered, mounts and all, to the caller's [`OnRunFailure`]
//! hook before it is cleaned up (the binary's `--on-error=shell` opens a shell there), and
//! with `keep_failed` handed back as a [`KeptStep`] that can become an image.
//!
//! Remote caches (`--cache-from`) reach the executor as a [`kiln_cache::LazyImport`] in
//! [`CacheUse::remote`]: a step that misses locally and hits one of its records has that
//! record's layer fetched at that moment (and only then), then proceeds as a local hit.
//! [`BuildOutcome`] gives the keys an export carries (`cache_keys` for `mode=max`,
//! `target_cache_keys` for `mode=min`); [`CacheUse::inline`] writes the target's records into
//! its config. [`parse_cache_to`] and [`parse_cache_from`] read the flags into typed specs; the
//! caller opens the remotes (the binary: a layout directory, the registry client).
//!
//! [`explain`] is the same walk over the plan without running or storing anything: it returns
//! an [`Explanation`], for every layer step whether the cache has it or why it would run.

#![forbid(unsafe_code)]

mod cache_spec;
mod cache_step;
mod context;
mod copy_step;
mod error;
mod executor;
mod explain;
mod image_config;
mod layers;
mod on_failure;
mod output;
mod ports;
mod progress;
mod resolve;
mod run_mount;
mod run_step;
mod sandbox;
mod signal;
mod snapshotter;
mod stage;

pub use cache_spec::{
    CacheExport, CacheImport, CacheLocation, CacheMode, CacheSpecError, parse_cache_from,
    parse_cache_to,
};
pub use cache_step::CacheUse;
pub use context::{ContextError, PreparedContext, prepare_context};
pub use error::{BuildError, StepError, one_line};
pub use executor::{BuildOutcome, BuildRequest, StageSummary, build, explain};
pub use explain::{ExplainedStep, Explanation, Verdict, WhyRun};
pub use layers::Layer;
pub use on_failure::{FailedRun, OnRunFailure};
pub use output::{CompressionAttrs, Output, OutputError, parse_output};
pub use ports::{PortError, PortProblem};
pub use progress::{Event, Reporter, StepId};
pub use resolve::{ImageResolver, ResolveError};
pub use run_mount::{
    CacheMountUsage, MountError, Secret, SecretError, SecretSource, cache_mounts, parse_secret,
    remove_cache_mount,
};
pub use run_step::{KeptStep, StepRoot};
pub use sandbox::Sandbox;
pub use signal::SignalError;
pub use snapshotter::Snapshotter;
