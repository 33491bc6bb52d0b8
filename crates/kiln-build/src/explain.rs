//! `--explain` as data: for every layer step of the stages a build needs, whether the step
//! cache has it or why it would run, found without running or storing anything
//! ([`crate::explain`]).

use std::fmt;

use kiln_syntax::TextRange;

/// What [`crate::explain`] found, step by step.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Explanation {
    /// The layer steps (RUN, COPY, ADD, WORKDIR) of the needed stages, in the plan's stage
    /// order and each stage's step order. Metadata steps (ENV, LABEL ...) make no layer and
    /// are not listed; a stage stops at its first step that would run, and the steps after it
    /// are listed as would-run too ([`WhyRun::EarlierStep`]).
    pub steps: Vec<ExplainedStep>,
}

impl Explanation {
    /// Whether some step would run (a build would not be all cache hits).
    pub fn would_run(&self) -> bool {
        self.steps
            .iter()
            .any(|s| matches!(s.verdict, Verdict::WouldRun(_)))
    }
}

/// One layer step and what the cache says about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExplainedStep {
    /// The stage's name, or `stage-N`.
    pub stage: String,
    /// The stage's index in the Dockerfile (from 0).
    pub stage_index: usize,
    /// The step's position in its stage, from 1 (FROM is 1), as `[stage k/n]` counts it;
    /// the base image's ONBUILD triggers come first and count too.
    pub index: usize,
    /// The number of steps of the stage, FROM and ONBUILD triggers included.
    pub total: usize,
    /// The instruction as shown in progress: its first line, keyword upper-cased.
    pub instruction: String,
    /// Where it is in the Dockerfile (a trigger points at its stage's FROM).
    pub span: TextRange,
    /// Cached, or why it would run.
    pub verdict: Verdict,
}

/// What the step cache says about a step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The cache has its result: a build would reuse it.
    Cached,
    /// A build would run it, for this reason.
    WouldRun(WhyRun),
}

/// Why a step runs (or would run) instead of being reused. The `Display` form is the phrase
/// progress shows after `cache miss:`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WhyRun {
    /// `--no-cache`: nothing is looked up.
    NoCache,
    /// `--no-cache-filter STAGE`: this stage (lowercased) looks nothing up.
    NoCacheFilter(String),
    /// The cache has no result for its key; the cache says why (first build, pruned, or which
    /// components of the key changed since last time).
    Miss(kiln_cache::Miss),
    /// Its inputs are not hashed, so it has no key: a URL without `--checksum`, a context
    /// bind mount whose source is missing or has glob characters.
    NotHashed,
    /// The build has no step cache.
    NoCacheStore,
    /// An earlier step of its stage would run, so its parent would be new.
    EarlierStep,
    /// A stage it reads (its base, a `--from` or a mount) would be rebuilt.
    StageRebuilt(String),
}

impl fmt::Display for WhyRun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoCache => f.write_str("--no-cache"),
            Self::NoCacheFilter(stage) => write!(f, "--no-cache-filter {stage}"),
            Self::Miss(kiln_cache::Miss::FirstBuild) => f.write_str("first build of this step"),
            Self::Miss(kiln_cache::Miss::Evicted) => {
                f.write_str("same key as last time, but its record was pruned")
            }
            Self::Miss(kiln_cache::Miss::Changed(changes)) => {
                for (i, c) in changes.iter().enumerate() {
                    if i > 0 {
                        f.write_str("; ")?;
                    }
                    write!(f, "{c}")?;
                }
                Ok(())
            }
            Self::NotHashed => f.write_str(
                "not cached: its inputs are not hashed (a URL without --checksum, a context bind mount whose source is missing or has glob characters)",
            ),
            Self::NoCacheStore => f.write_str("the build has no step cache"),
            Self::EarlierStep => f.write_str("an earlier step of this stage would run"),
            Self::StageRebuilt(stage) => write!(f, "stage `{stage}` would be rebuilt"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(verdict: Verdict) -> ExplainedStep {
        ExplainedStep {
            stage: "app".into(),
            stage_index: 0,
            index: 2,
            total: 3,
            instruction: "COPY a /a".into(),
            span: TextRange::new(0, 9),
            verdict,
        }
    }

    #[test]
    fn reasons_read_as_progress_shows_them() {
        let changed = WhyRun::Miss(kiln_cache::Miss::Changed(vec![
            kiln_cache::Change::Instruction,
            kiln_cache::Change::File {
                path: "/a".into(),
                delta: kiln_cache::Delta::Changed,
            },
        ]));
        assert_eq!(
            changed.to_string(),
            "instruction changed; file `/a` changed"
        );
        assert_eq!(
            WhyRun::StageRebuilt("deps".into()).to_string(),
            "stage `deps` would be rebuilt"
        );
        assert_eq!(
            WhyRun::NoCacheFilter("app".into()).to_string(),
            "--no-cache-filter app"
        );
    }

    #[test]
    fn would_run_when_any_step_would() {
        let mut e = Explanation {
            steps: vec![step(Verdict::Cached)],
        };
        assert!(!e.would_run());
        e.steps.push(step(Verdict::WouldRun(WhyRun::EarlierStep)));
        assert!(e.would_run());
    }
}
