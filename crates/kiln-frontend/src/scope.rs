//! Variable scope of one stage, as BuildKit's dispatcher keeps it: the environment that
//! expansions and RUN see, and the ARGs declared so far.
//!
//! The rules (BuildKit `dispatchArg`, `dispatchEnv`):
//! - The environment starts as the base's: a base stage's final scope, or the base image's
//!   `Env` (which only the builder knows; at plan time an image base starts empty).
//! - `ENV k=v ...`: every value is expanded against the environment *before* the
//!   instruction (`ENV a=1 b=$a` sees the old `a`), then all are set in order.
//! - `ARG k[=default]`: the value is the `--build-arg` when given (used verbatim), else the
//!   default expanded against the current environment, else the global ARG of that name.
//!   The key is never expanded. A valued ARG is set in the environment (so RUN and later
//!   expansions see it) but never in the image config.
//! - The later of ENV and ARG wins for a name; a value-less ARG changes nothing.

use std::collections::BTreeSet;
use std::sync::Mutex;

use kiln_syntax::shell::{Expansion, Lexer, ShellError};
use kiln_syntax::{TextRange, Word};

use crate::error::{ErrorKind, InstructionError};
use crate::instruction::ArgDecl;

/// Where an ARG's value came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ArgOrigin {
    /// `--build-arg`.
    BuildArg,
    /// The ARG's own default.
    Default,
    /// The global (pre-FROM) ARG of the same name.
    Global,
    /// An automatic platform ARG (`TARGETARCH` ...).
    Automatic,
    /// No value.
    Unset,
}

/// An ARG with its resolved value.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ResolvedArg {
    /// The name.
    pub name: String,
    /// The value, when it has one.
    pub value: Option<String>,
    /// Where the value came from.
    pub origin: ArgOrigin,
    /// The declaring instruction's span.
    #[serde(skip)]
    pub span: TextRange,
}

/// The variables one stage sees at one point of its instructions.
#[derive(Debug)]
pub struct Scope {
    lexer: Lexer,
    env: Vec<(String, String)>,
    args: Vec<ResolvedArg>,
    /// Names referenced by expansions so far (set or not).
    referenced: Mutex<BTreeSet<String>>,
    /// Names looked up and unset since the last [`Scope::take_unmatched`].
    unmatched: Mutex<BTreeSet<String>>,
}

impl Clone for Scope {
    fn clone(&self) -> Self {
        Self {
            lexer: self.lexer.clone(),
            env: self.env.clone(),
            args: self.args.clone(),
            referenced: Mutex::new(self.referenced_lock().clone()),
            unmatched: Mutex::new(lock(&self.unmatched).clone()),
        }
    }
}

fn lock(set: &Mutex<BTreeSet<String>>) -> std::sync::MutexGuard<'_, BTreeSet<String>> {
    set.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Scope {
    fn referenced_lock(&self) -> std::sync::MutexGuard<'_, BTreeSet<String>> {
        lock(&self.referenced)
    }

    /// A scope starting from `env` (the base's environment), with `escape` for expansion.
    pub fn new(escape: char, env: Vec<(String, String)>) -> Self {
        Self {
            lexer: Lexer::new(escape),
            env,
            args: Vec::new(),
            referenced: Mutex::new(BTreeSet::new()),
            unmatched: Mutex::new(BTreeSet::new()),
        }
    }

    /// The environment as `(name, value)` pairs, in the order first set.
    pub fn env(&self) -> &[(String, String)] {
        &self.env
    }

    /// The ARGs declared so far (inherited ones first).
    pub fn args(&self) -> &[ResolvedArg] {
        &self.args
    }

    /// Names referenced by the expansions done through this scope.
    pub fn referenced(&self) -> BTreeSet<String> {
        self.referenced_lock().clone()
    }

    /// The names that expansions through this scope looked up and found unset since the last
    /// call, and forgets them: what BuildKit's `UndefinedVar` check reads after expanding one
    /// instruction.
    pub fn take_unmatched(&self) -> BTreeSet<String> {
        std::mem::take(&mut *lock(&self.unmatched))
    }

    /// Look up a variable.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.env
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Set a variable, replacing an earlier value in place.
    pub fn set(&mut self, name: &str, value: String) {
        match self.env.iter_mut().find(|(k, _)| k == name) {
            Some(slot) => slot.1 = value,
            None => self.env.push((name.to_owned(), value)),
        }
    }

    /// Expand one word against the current environment.
    pub fn expand(&self, word: &Word) -> Result<String, InstructionError> {
        self.expand_with(&self.lexer, word).map(|e| e.result)
    }

    /// Expand one word into several (EXPOSE), splitting on unquoted whitespace.
    pub fn expand_words(&self, word: &Word) -> Result<Vec<String>, InstructionError> {
        self.expand_with(&self.lexer, word).map(|e| e.words)
    }

    /// Expand a heredoc body: variables only, quotes and the escape character kept (BuildKit
    /// expands COPY/ADD heredoc sources with `SkipProcessQuotes` and `\`).
    pub fn expand_raw(&self, word: &Word) -> Result<String, InstructionError> {
        let lexer = Lexer::new('\\').skip_process_quotes(true);
        self.expand_with(&lexer, word).map(|e| e.result)
    }

    fn expand_with(&self, lexer: &Lexer, word: &Word) -> Result<Expansion, InstructionError> {
        let out = lexer
            .process_word_with_matches(&word.text, &self.env)
            .map_err(|e| expansion_error(word, &e))?;
        let mut referenced = self.referenced_lock();
        referenced.extend(out.matched.iter().cloned());
        referenced.extend(out.unmatched.iter().cloned());
        lock(&self.unmatched).extend(out.unmatched.iter().cloned());
        Ok(out)
    }

    /// Apply `ENV`: expand every value against the environment before the instruction,
    /// then set them all. Returns the `(key, value)` pairs set.
    pub fn apply_env(
        &mut self,
        pairs: &[(Word, Word)],
    ) -> Result<Vec<(String, String)>, InstructionError> {
        let mut out = Vec::with_capacity(pairs.len());
        for (k, v) in pairs {
            let key = self.expand(k)?;
            let value = self.expand(v)?;
            out.push((key, value));
        }
        for (k, v) in &out {
            self.set(k, v.clone());
        }
        Ok(out)
    }

    /// Apply one `ARG` name: resolve its value and make it visible.
    pub fn declare_arg(
        &mut self,
        decl: &ArgDecl,
        build_args: &[(String, String)],
        global_args: &[ResolvedArg],
    ) -> Result<ResolvedArg, InstructionError> {
        let name = decl.key.text.clone();
        let (value, origin) =
            if let Some((_, v)) = build_args.iter().rev().find(|(k, _)| *k == name) {
                (Some(v.clone()), ArgOrigin::BuildArg)
            } else if let Some(default) = &decl.default {
                (Some(self.expand(default)?), ArgOrigin::Default)
            } else if let Some(g) = global_args
                .iter()
                .find(|g| g.name == name && g.value.is_some())
            {
                let origin = if g.origin == ArgOrigin::Automatic {
                    ArgOrigin::Automatic
                } else {
                    ArgOrigin::Global
                };
                (g.value.clone(), origin)
            } else {
                (None, ArgOrigin::Unset)
            };
        if let Some(v) = &value {
            self.set(&name, v.clone());
        }
        let resolved = ResolvedArg {
            name: name.clone(),
            value,
            origin,
            span: decl.key.span,
        };
        // A redeclared ARG keeps its first place (BuildKit's order in RUN's history text,
        // `|2 foo=bar2 bar=123`) and takes the new value.
        match self.args.iter_mut().find(|a| a.name == name) {
            Some(slot) => *slot = resolved.clone(),
            None => self.args.push(resolved.clone()),
        }
        Ok(resolved)
    }
}

fn expansion_error(word: &Word, e: &ShellError) -> InstructionError {
    let at = (word.span.start + e.offset()).min(word.span.end);
    let span = if word.span.len() == word.text.len() {
        TextRange::new(at, word.span.end)
    } else {
        word.span
    };
    InstructionError::new(
        ErrorKind::Expansion(format!("failed to process {:?}: {e}", word.text)),
        span,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(s: &str) -> Word {
        Word::new(s, TextRange::new(0, s.len()))
    }

    #[test]
    fn env_sees_old_values() {
        let mut s = Scope::new('\\', vec![("a".into(), "0".into())]);
        s.apply_env(&[(w("a"), w("1")), (w("b"), w("$a"))]).unwrap();
        assert_eq!(s.get("a"), Some("1"));
        assert_eq!(s.get("b"), Some("0"));
    }

    #[test]
    fn arg_precedence() {
        let global = [ResolvedArg {
            name: "V".into(),
            value: Some("g".into()),
            origin: ArgOrigin::Global,
            span: TextRange::default(),
        }];
        let decl = |d: Option<&str>| ArgDecl {
            key: w("V"),
            default: d.map(w),
            doc: None,
        };
        let mut s = Scope::new('\\', vec![]);
        assert_eq!(
            s.declare_arg(&decl(None), &[], &global)
                .unwrap()
                .value
                .as_deref(),
            Some("g")
        );
        assert_eq!(
            s.declare_arg(&decl(Some("d")), &[], &global)
                .unwrap()
                .value
                .as_deref(),
            Some("d")
        );
        let ba = [("V".to_owned(), "$b".to_owned())];
        let r = s.declare_arg(&decl(Some("d")), &ba, &global).unwrap();
        assert_eq!(
            (r.value.as_deref(), r.origin),
            (Some("$b"), ArgOrigin::BuildArg)
        );
        let mut s = Scope::new('\\', vec![]);
        assert_eq!(
            s.declare_arg(&decl(None), &[], &[]).unwrap().origin,
            ArgOrigin::Unset
        );
        assert_eq!(s.get("V"), None);
    }

    #[test]
    fn unmatched_names_are_taken_per_instruction() {
        let s = Scope::new('\\', vec![("a".into(), "1".into())]);
        s.expand(&w("$a$b${c:-x}")).unwrap();
        assert_eq!(
            s.take_unmatched().into_iter().collect::<Vec<_>>(),
            ["b", "c"]
        );
        assert!(s.take_unmatched().is_empty());
        assert!(s.referenced().contains("b"));
    }

    #[test]
    fn expansion_errors_point_into_the_word() {
        let s = Scope::new('\\', vec![]);
        let word = Word::new("a${}", TextRange::new(10, 14));
        let err = s.expand(&word).unwrap_err();
        assert!(err.to_string().contains("bad substitution"), "{err}");
        assert!(err.span.start >= 10 && err.span.end == 14);
    }
}
