//! `RunCd` (KL009): `cd` in a RUN.

use kiln_syntax::TextRange;

use crate::CheckConfig;
use crate::rule::declare_rule;
use crate::script::SimpleCommand;
use crate::sink::Sink;

declare_rule! {
    /// ## What it does
    /// Flags a `RUN` whose shell commands include `cd`.
    ///
    /// ## Why is this bad?
    /// A `cd` lasts only until the end of its RUN, so the next instruction is back in the
    /// old directory, which surprises readers and breaks when lines are split or reordered.
    /// `WORKDIR` sets the directory for every later instruction (and creates it), and says
    /// where the stage works in one visible place.
    ///
    /// ## Example
    /// ```dockerfile
    /// RUN cd /src && make
    /// ```
    ///
    /// Use instead:
    /// ```dockerfile
    /// WORKDIR /src
    /// RUN make
    /// ```
    code: "KL009",
    name: "RunCd",
    description: "Use WORKDIR to change directory, not cd in RUN",
    hadolint: ["DL3003"],
}

/// Check the commands of the RUN at `span`.
pub(crate) fn check(
    sink: &mut Sink,
    config: &CheckConfig,
    commands: &[SimpleCommand],
    span: TextRange,
) {
    let Some(cd) = commands.iter().find(|c| c.program() == "cd") else {
        return;
    };
    let dir = cd.args().first().map_or("~", String::as_str);
    sink.finding(
        config,
        &RULE,
        None,
        span,
        format!("`cd {dir}` lasts only for this RUN"),
        Some(format!(
            "set the directory with `WORKDIR {dir}` before the RUN"
        )),
    );
}
