//! Where findings go: each passes the check options in force for its instruction, and becomes a
//! [`Diagnostic`] with the rule's name and URL.

use kiln_syntax::{Diagnostic, TextRange};

use crate::{CheckConfig, Rule};

/// The warnings of one run, in the order the checks found them.
#[derive(Debug, Default)]
pub(crate) struct Sink {
    pub(crate) warnings: Vec<Diagnostic>,
}

impl Sink {
    /// Report `rule` at `span` with `message` (BuildKit's `Detail`), when `config` runs it.
    pub(crate) fn warn(
        &mut self,
        config: &CheckConfig,
        rule: &'static Rule,
        span: TextRange,
        message: String,
    ) {
        self.warn_with_hint(config, rule, span, message, None);
    }

    /// [`warn`](Self::warn) with a hint of kiln's (BuildKit's message stays as it is).
    pub(crate) fn warn_with_hint(
        &mut self,
        config: &CheckConfig,
        rule: &'static Rule,
        span: TextRange,
        message: String,
        hint: Option<String>,
    ) {
        self.finding(config, rule, None, span, message, hint);
    }

    /// Report a finding of `rule` whose own hadolint code (for a rule that stands in for
    /// several) is `alias`, unless the check options skip the rule or an ignore comment
    /// suppresses the finding.
    pub(crate) fn finding(
        &mut self,
        config: &CheckConfig,
        rule: &'static Rule,
        alias: Option<&str>,
        span: TextRange,
        message: String,
        hint: Option<String>,
    ) {
        if !config.runs(rule) || config.suppresses(rule, alias) {
            return;
        }
        let mut d = Diagnostic::warning(rule.name, span, message).with_hint(hint);
        if let Some(url) = rule.url {
            d = d.with_url(url);
        }
        self.warnings.push(d);
    }
}
