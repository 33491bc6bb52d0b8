//! `UnfilteredContextCopy` (KL004): COPY or ADD of the whole build context that lets VCS
//! directories, secrets or build outputs in.

use kiln_context::PatternMatcher;
use kiln_syntax::TextRange;

use crate::rule::declare_rule;
use crate::sink::Sink;
use crate::{CheckConfig, ContextSummary};

declare_rule! {
    /// ## What it does
    /// Flags a `COPY` or `ADD` of the whole build context (a source of `.`, `./`, `/` or `*`,
    /// not `--from`) when the context has no `.dockerignore`, or when its `.dockerignore`
    /// lets in a top-level entry that should not be there: a VCS directory (`.git`, `.hg`,
    /// `.svn`), a file that looks like a secret (`.env`, `.env.*`, `*.pem`, `*.key`, `*.p12`,
    /// `id_rsa` and the other SSH keys, `.npmrc`, `.pypirc`, `.netrc`, `.aws`, `.ssh`), or a
    /// build output or dependency directory (`node_modules`, `target`, `dist`, `build`,
    /// `__pycache__`, `.venv`, `venv`). The caller passes the context's top-level entries
    /// (the rule reads no file); without them the rule stays silent.
    ///
    /// It is the sibling of BuildKit's `CopyIgnoredFile`, which flags a copy of what the
    /// `.dockerignore` leaves out; this one flags what it lets in.
    ///
    /// ## Why is this bad?
    /// Everything the copy takes is in a layer for good: the repository's whole history,
    /// credentials, or a host's build output that shadows the one the image should build. It
    /// also makes the step's cache depend on every file, so any commit rebuilds it.
    ///
    /// ## Example
    /// ```dockerfile
    /// # no .dockerignore; the context holds .git, .env and node_modules
    /// COPY . .
    /// ```
    ///
    /// Use instead:
    /// ```dockerfile
    /// # .dockerignore:
    /// #   .git
    /// #   .env*
    /// #   node_modules
    /// COPY . .
    /// ```
    code: "KL004",
    name: "UnfilteredContextCopy",
    description: "A copy of the whole context should exclude VCS data, secrets and build outputs",
    hadolint: [],
}

/// What a top-level entry of the context is, when it should not reach the image.
fn risk(name: &str) -> Option<&'static str> {
    const VCS: [&str; 4] = [".git", ".hg", ".svn", ".bzr"];
    const SECRET_NAMES: [&str; 12] = [
        ".env",
        "id_rsa",
        "id_dsa",
        "id_ecdsa",
        "id_ed25519",
        ".npmrc",
        ".pypirc",
        ".netrc",
        ".aws",
        ".ssh",
        ".docker",
        "credentials.json",
    ];
    const SECRET_ENDINGS: [&str; 5] = [".pem", ".key", ".p12", ".pfx", ".jks"];
    const OUTPUTS: [&str; 7] = [
        "node_modules",
        "target",
        "dist",
        "build",
        "__pycache__",
        ".venv",
        "venv",
    ];
    if VCS.contains(&name) {
        Some("VCS data")
    } else if SECRET_NAMES.contains(&name)
        || (name.starts_with(".env.") && !name.ends_with(".example") && !name.ends_with(".sample"))
        || SECRET_ENDINGS.iter().any(|e| name.ends_with(e))
    {
        Some("a secret")
    } else if OUTPUTS.contains(&name) {
        Some("build output")
    } else {
        None
    }
}

/// Check the whole-context copy (`keyword`, COPY or ADD) at `span`, given what the caller
/// saw of the context and its `.dockerignore` patterns (`None` when there are none).
pub(crate) fn check(
    sink: &mut Sink,
    config: &CheckConfig,
    context: &ContextSummary,
    ignore: Option<&PatternMatcher>,
    keyword: &str,
    span: TextRange,
) {
    let excluded = |name: &str, dir: bool| {
        ignore.is_some_and(|m| {
            // A pattern error leaves the entry out: better quiet than wrong.
            m.matches(name).unwrap_or(true)
                || (dir && m.matches(&format!("{name}/x")).unwrap_or(true))
        })
    };
    let let_in: Vec<String> = context
        .entries
        .iter()
        .filter_map(|e| risk(&e.name).map(|r| (e, r)))
        .filter(|(e, _)| !excluded(&e.name, e.dir))
        .map(|(e, r)| format!("`{}` ({r})", e.name))
        .collect();
    let message = match (context.ignore_file, let_in.is_empty()) {
        (true, true) => return,
        (false, true) => format!("{keyword} of the whole context, which has no `.dockerignore`"),
        (false, false) => format!(
            "{keyword} of the whole context, which has no `.dockerignore`, takes in {}",
            let_in.join(", ")
        ),
        (true, false) => format!(
            "{keyword} of the whole context takes in {}, which `.dockerignore` lets through",
            let_in.join(", ")
        ),
    };
    sink.finding(
        config,
        &RULE,
        None,
        span,
        message,
        Some("list VCS directories, secrets and build outputs in `.dockerignore`".to_owned()),
    );
}
