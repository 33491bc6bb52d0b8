//! Typed Dockerfile instructions, stages, ARG/ENV scoping and the stage graph: what a
//! Dockerfile *means*, as BuildKit's `instructions` package and `dockerfile2llb` define it.
//!
//! This crate is pure: it reads the syntax tree from `kiln-syntax` and answers which stages
//! exist, what each instruction says after variable expansion, which stages a target needs
//! and in which order, and gives the stage graph one shape for drawing ([`StageGraph`]). It
//! does not know how a step runs, where images come from, or files.

#![forbid(unsafe_code)]

mod error;
mod expand;
mod flags;
mod graph;
pub mod instruction;
mod plan;
mod platform;
mod scope;
pub mod suggest;

pub use error::{ErrorKind, InstructionError};
pub use expand::{ArgContext, Expanded, expand_command};
pub use graph::{Edge, Node, NodeKind, StageGraph};
pub use instruction::{Command, CommandKind, TriggerError, parse_instruction, parse_trigger};
pub use plan::{Base, BuildOptions, Dep, DepKind, ImageRef, Plan, Stage, plan};
pub use platform::{Platform, PlatformError, automatic_args, is_proxy_arg};
pub use scope::{ArgOrigin, ResolvedArg, Scope};
