//! Executes a build plan from `kiln-frontend`: each needed stage in its own thread as soon as
//! the stages it depends on are done, each step turned into an image-config change or a new
//! layer, and the result exported.
//!
//! This crate ties the others together and owns the *meaning* of each instruction at build
//! time (the config BuildKit writes, the history text, the order of effects). It does not
//! parse Dockerfiles (`kiln-frontend` does), run processes (`kiln-sandbox`), write tar
//! (`kiln-layer`) or store blobs (`kiln-oci`), and it never prints: progress goes out as
//! events through the [`Reporter`] trait, which the binary renders.

mod context;
mod image_config;
mod output;
mod ports;
mod progress;
mod signal;

pub use context::{ContextError, PreparedContext, prepare_context};
pub use image_config::{
    HISTORY_COMMENT, MetaState, apply_metadata, default_path, empty_image, ensure_path,
    history_entry, run_created_by, with_shell,
};
pub use output::{Output, parse_output};
pub use ports::parse_ports;
pub use progress::{Event, Reporter, StepId};
pub use signal::parse_signal;

/// Why a build step failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// An instruction's value is not valid at build time (a bad port, an unknown signal).
    #[error("{message}")]
    Invalid {
        /// What is wrong, in BuildKit's words.
        message: String,
        /// The instruction's location in the Dockerfile.
        span: kiln_syntax::TextRange,
    },
}
