//! What a rule is: BuildKit's `linter.LinterRule` (name, description, URL, experimental) plus
//! its documentation, taken from the doc comment of the rule's declaration.

use std::fmt;

/// One build check.
///
/// `name` is BuildKit's rule name, stable, and the name `# check=skip=` lists use;
/// `description` is BuildKit's one-line description; the message of each finding (BuildKit's
/// `Detail`) is the rule's own.
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
            docs: concat!($($doc, "\n"),*),
        };
    };
}
pub(crate) use declare_rule;
