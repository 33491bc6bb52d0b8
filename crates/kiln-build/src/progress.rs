//! Progress events: what the builder tells whoever watches (the binary renders them as
//! `tty`, `plain`, `rawjson` or `quiet`). Libraries never print.

use std::time::Duration;

/// A step's number in the build, from 1, as BuildKit's `#N` lines count them.
pub type StepId = usize;

/// One thing that happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A step started: `[stage k/n] INSTRUCTION`.
    StepStarted {
        /// The step.
        id: StepId,
        /// The stage's name or index.
        stage: String,
        /// Position in the stage, from 1.
        index: usize,
        /// Steps in the stage.
        total: usize,
        /// The instruction as shown (expanded, upper-case keyword).
        name: String,
    },
    /// A step was satisfied from the cache.
    StepCached {
        /// The step.
        id: StepId,
    },
    /// A step was not in the cache, and why (which file, arg or parent changed).
    CacheMiss {
        /// The step.
        id: StepId,
        /// The reason, for people.
        reason: String,
    },
    /// A line of a step's output.
    Log {
        /// The step.
        id: StepId,
        /// 1 for stdout, 2 for stderr.
        stream: u8,
        /// The bytes of the line, newline included.
        line: Vec<u8>,
    },
    /// A step finished.
    StepDone {
        /// The step.
        id: StepId,
        /// How long it ran.
        elapsed: Duration,
    },
    /// A step failed.
    StepFailed {
        /// The step.
        id: StepId,
        /// Why.
        message: String,
    },
    /// A stage's image is complete.
    StageDone {
        /// The stage's name or index.
        stage: String,
        /// The size of its layers as stored (compressed), in bytes.
        size: u64,
    },
}

/// Receives events; implemented by the binary's renderers. Called from several threads.
pub trait Reporter: Send + Sync {
    /// Handle one event.
    fn event(&self, event: Event);
}
