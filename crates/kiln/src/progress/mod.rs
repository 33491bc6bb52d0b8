//! Progress rendering: one implementation of `kiln_build::Reporter` per `--progress` mode.
//! Everything goes to stderr; only data (ids, JSON documents) goes to stdout.
//!
//! - `plain`: BuildKit's `#N [stage k/n] INSTRUCTION` blocks with logs, timings and CACHED.
//! - `rawjson`: one JSON object per event per line.
//! - `quiet`: nothing (the command prints the image id on stdout).
//! - `tty`: the running steps redrawn in place with their elapsed time, stages side by side;
//!   chosen by `auto` when stderr is a terminal.

mod plain;
mod rawjson;
mod timings;
mod tty;

use std::io::IsTerminal as _;

pub(crate) use plain::Plain;
pub(crate) use rawjson::RawJson;
pub(crate) use timings::Timings;
pub(crate) use tty::Tty;

/// `--progress` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Mode {
    /// `tty` on a terminal, `plain` otherwise.
    Auto,
    /// Live redraw.
    Tty,
    /// Line-oriented blocks.
    Plain,
    /// One JSON event per line.
    Rawjson,
    /// Nothing but the result.
    Quiet,
}

/// A renderer of build events, which can stop drawing while something else (a debug
/// shell) has the terminal.
pub(crate) trait Render: kiln_build::Reporter {
    /// Stop (`true`) or resume (`false`) drawing. Only the live view draws by itself; the
    /// others write what they are given, and [`Timings`] holds events back meanwhile.
    fn pause(&self, _paused: bool) {}
}

impl Render for Plain {}
impl Render for RawJson {}
impl Render for Quiet {}

/// A reporter that drops every event (`--progress=quiet`).
pub(crate) struct Quiet;

impl kiln_build::Reporter for Quiet {
    fn event(&self, _event: kiln_build::Event) {}
}

/// The reporter for `mode`, writing to stderr.
pub(crate) fn reporter(mode: Mode) -> Box<dyn Render> {
    match mode {
        Mode::Auto if std::io::stderr().is_terminal() => Box::new(Tty::stderr()),
        Mode::Tty => Box::new(Tty::stderr()),
        Mode::Auto | Mode::Plain => Box::new(Plain::new(Box::new(std::io::stderr()))),
        Mode::Rawjson => Box::new(RawJson::new(Box::new(std::io::stderr()))),
        Mode::Quiet => Box::new(Quiet),
    }
}
