//! What a rule is: BuildKit's `linter.LinterRule` (name, description, URL, experimental) plus
//! its documentation, taken from the doc comment of the rule's declaration, and for kiln's own
//! rules their stable code (`KL001`) and the hadolint codes they stand in for.

use std::fmt;

/// One build check.
///
/// `name` is BuildKit's rule name (or, for kiln's own rules, a name in BuildKit's style),
/// stable, and the name `# check=skip=` lists use; `description` is the one-line description;
/// the message of each finding (BuildKit's `Detail`) is the rule's own.
#[derive(Debug)]
pub struct Rule {
    /// BuildKit's name, `UpperCamelCase` (`StageNameCasing`).
    pub name: &'static str,
    /// BuildKit's one-line description of what the rule wants.
    pub description: &'static str,
    /// The rule's documentation page; BuildKit gives `InvalidBaseImagePlatform` none.
    pub url: Option<&'static str>,
    /// Runs only when enabled by `# check=experimental=<name>|all` (BuildKit's flag).
    pub experimental: bool,
    /// kiln's stable code (`KL001`) for kiln's own rules; `None` for BuildKit's, which have
    /// only their names.
    pub code: Option<&'static str>,
    /// The hadolint codes (`DL3006`) this rule stands in for: `# hadolint ignore=` with one of
    /// them suppresses the rule's findings. Empty when hadolint has no such rule.
    pub hadolint: &'static [&'static str],
    /// The doc comment of the declaration, one `#[doc]` line per line (each with the space
    /// that followed `///`).
    pub(crate) docs: &'static str,
}

impl Rule {
    /// The rule's documentation in Markdown: `## What it does`, `## Why is this bad?`,
    /// `## Example` and `Use instead:`, as written above its declaration.
    pub fn documentation(&self) -> String {
        let mut out = String::with_capacity(self.docs.len());
        for line in self.docs.lines() {
            out.push_str(line.strip_prefix(' ').unwrap_or(line));
            out.push('\n');
        }
        out
    }

    /// Whether `id`, as written in a `skip=` or `ignore=` list, names this rule: its name or its
    /// code, exactly (hadolint codes are matched per finding, see the sink).
    pub fn is_named(&self, id: &str) -> bool {
        id == self.name || self.code == Some(id)
    }

    /// Whether this is one of kiln's own rules rather than one of BuildKit's.
    pub fn is_kilns(&self) -> bool {
        self.code.is_some()
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

/// Declares a rule's `static RULE`, keeping its doc comment as the rule's documentation.
macro_rules! declare_rule {
    (
        $(#[doc = $doc:literal])*
        name: $name:literal,
        description: $description:literal,
        url: $url:expr,
        experimental: $experimental:literal $(,)?
    ) => {
        $(#[doc = $doc])*
        pub static RULE: $crate::Rule = $crate::Rule {
            name: $name,
            description: $description,
            url: $url,
            experimental: $experimental,
            code: None,
            hadolint: &[],
            docs: concat!($($doc, "\n"),*),
        };
    };
    (
        $(#[doc = $doc:literal])*
        code: $code:literal,
        name: $name:literal,
        description: $description:literal,
        hadolint: [$($alias:literal),* $(,)?] $(,)?
    ) => {
        $(#[doc = $doc])*
        pub static RULE: $crate::Rule = $crate::Rule {
            name: $name,
            description: $description,
            url: Some(concat!("docs/lint/", $code, ".md")),
            experimental: false,
            code: Some($code),
            hadolint: &[$($alias),*],
            docs: concat!($($doc, "\n"),*),
        };
    };
}
pub(crate) use declare_rule;
