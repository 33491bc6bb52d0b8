//! Build context rules: which files of a build context BuildKit would send, and why.
//!
//! This crate reads `.dockerignore` files exactly like moby/patternmatcher's
//! `ignorefile.ReadAll`, finds them as BuildKit's `dockerui` does (`<Dockerfile>.dockerignore`
//! before the context's `.dockerignore`), matches paths exactly like patternmatcher (the same
//! matcher serves `COPY --exclude`), and walks a context directory with tonistiigi/fsutil's
//! filtering semantics, in a deterministic order, without following symlinks. Errors carry the
//! ignore file, line and pattern at fault.
//!
//! It deliberately knows nothing about Dockerfiles: it is told where the Dockerfile is but
//! never reads it, and it does not decide what a `COPY` source means. Hashing file contents
//! and the stat cache belong to the layer above, which consumes [`ContextEntry`] values.
//!
//! Upstream references: moby/patternmatcher (Apache-2.0, Docker, Inc.) and tonistiigi/fsutil
//! `filter.go` (MIT). Their behaviour is re-implemented here, not their code; the shared
//! corpus in `conformance/dockerignore` pins it down.

#![forbid(unsafe_code)]

mod error;
mod glob_syntax;
mod go_regex;
mod gopath;
mod ignore_file;
mod matcher;
mod pattern;
mod walk;

pub use error::{ContextError, IgnoreSource, PatternError, PatternLocation};
/// Go's `path.Clean` (= `filepath.Clean` on Unix), shared by every crate that must clean
/// paths exactly as BuildKit does.
pub use gopath::clean as clean_path;
pub use ignore_file::{DOCKERIGNORE, IgnoreLine, IgnoreRules, LineTooLong, read_ignore_lines};
pub use matcher::{MatchInfo, PatternMatcher, legacy_matches};
pub use pattern::{MatchType, Pattern};
pub use walk::{ContextEntry, walk, walk_each};
