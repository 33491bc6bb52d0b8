//! A RUN command's shell text cut into simple commands, for the rules that look for a program
//! (`apt-get install`, `cd`, `rm -rf /var/lib/apt/lists/*`) in it.
//!
//! This is a rough reading of POSIX shell, not a shell: quotes and backslashes are removed,
//! `&&`, `||`, `;`, `|`, `&`, newlines and parentheses end a command, `#` at the start of a
//! word starts a comment, and leading `NAME=value` assignments are dropped (kept apart, as
//! [`SimpleCommand::env`]). Variables stay as written and control structures are not
//! understood: the words of `if`, `then` or `do` start commands like any other word, so a `cd`
//! after `then` counts as a command. The rules built on it accept that imprecision.

use kiln_frontend::instruction::CommandLine;

/// One simple command: its assignments and its words (the program first).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct SimpleCommand {
    /// The `NAME=value` words before the program.
    pub(crate) env: Vec<String>,
    /// The program and its arguments, unquoted.
    pub(crate) words: Vec<String>,
}

impl SimpleCommand {
    /// The program's name without its directory (`/usr/bin/apt-get` is `apt-get`).
    pub(crate) fn program(&self) -> &str {
        self.words
            .first()
            .map_or("", |w| w.rsplit('/').next().unwrap_or(w))
    }

    /// The arguments after the program.
    pub(crate) fn args(&self) -> &[String] {
        self.words.get(1..).unwrap_or_default()
    }

    /// Whether the first argument that is not a flag is `sub` (`apt-get -y install` has the
    /// subcommand `install`).
    pub(crate) fn subcommand_is(&self, subs: &[&str]) -> bool {
        self.args()
            .iter()
            .find(|a| !a.starts_with('-'))
            .is_some_and(|a| subs.contains(&a.as_str()))
    }
}

/// The simple commands a RUN runs: of its shell text, of its script when it is a lone heredoc,
/// or of an exec form's `sh -c SCRIPT`; any other exec form is one command as written.
pub(crate) fn commands(line: &CommandLine) -> Vec<SimpleCommand> {
    if line.is_heredoc_script() {
        return line.files.iter().flat_map(|h| split(&h.content)).collect();
    }
    if line.prepend_shell {
        return line.args.iter().flat_map(|a| split(a)).collect();
    }
    match line.args.as_slice() {
        [sh, c, script, ..]
            if c == "-c"
                && matches!(sh.rsplit('/').next(), Some("sh" | "bash" | "ash" | "dash")) =>
        {
            split(script)
        }
        [] => Vec::new(),
        words => vec![SimpleCommand {
            env: Vec::new(),
            words: words.to_vec(),
        }],
    }
}

/// A package manager whose installs the rules look at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Manager {
    /// `apt-get install`, `apt install`.
    Apt,
    /// `apk add`.
    Apk,
    /// `yum`, `dnf` or `microdnf install`.
    Rpm,
}

/// When `cmd` installs packages: the manager and the package words (flags and their values
/// left out).
pub(crate) fn package_install(cmd: &SimpleCommand) -> Option<(Manager, Vec<&str>)> {
    let (manager, sub, valued): (Manager, &[&str], &[&str]) = match cmd.program() {
        "apt-get" | "apt" => (
            Manager::Apt,
            &["install"],
            &["-o", "-t", "--target-release", "-c"],
        ),
        "apk" => (
            Manager::Apk,
            &["add"],
            &["-t", "--virtual", "-X", "--repository", "-p", "--root"],
        ),
        "yum" | "dnf" | "microdnf" => (
            Manager::Rpm,
            &["install"],
            &["--setopt", "-c", "--releasever"],
        ),
        _ => return None,
    };
    if !cmd.subcommand_is(sub) {
        return None;
    }
    let mut packages = Vec::new();
    let mut args = cmd.args().iter();
    let mut seen_sub = false;
    while let Some(a) = args.next() {
        match a.as_str() {
            v if valued.contains(&v) => {
                args.next();
            }
            v if v.starts_with('-') => {}
            _ if !seen_sub => seen_sub = true,
            v => packages.push(v),
        }
    }
    Some((manager, packages))
}

/// Cut `text` into simple commands.
pub(crate) fn split(text: &str) -> Vec<SimpleCommand> {
    let mut out = Vec::new();
    let mut current = SimpleCommand::default();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = text.chars().peekable();
    let end_word = |word: &mut String, in_word: &mut bool, current: &mut SimpleCommand| {
        if !*in_word {
            return;
        }
        let w = std::mem::take(word);
        *in_word = false;
        let assignment = w.split_once('=').is_some_and(|(k, _)| {
            !k.is_empty() && k.chars().all(|c| c == '_' || c.is_ascii_alphanumeric())
        });
        if current.words.is_empty() && assignment {
            current.env.push(w);
        } else {
            current.words.push(w);
        }
    };
    let end_command = |current: &mut SimpleCommand, out: &mut Vec<SimpleCommand>| {
        let c = std::mem::take(current);
        if !c.words.is_empty() || !c.env.is_empty() {
            out.push(c);
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                for c in chars.by_ref() {
                    if c == '\'' {
                        break;
                    }
                    word.push(c);
                }
            }
            '"' => {
                in_word = true;
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => match chars.next() {
                            Some('\n') | None => {}
                            Some(n @ ('"' | '\\' | '$' | '`')) => word.push(n),
                            Some(n) => {
                                word.push('\\');
                                word.push(n);
                            }
                        },
                        c => word.push(c),
                    }
                }
            }
            '\\' => match chars.next() {
                Some('\n') | None => {}
                Some(n) => {
                    in_word = true;
                    word.push(n);
                }
            },
            '#' if !in_word => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
                end_command(&mut current, &mut out);
            }
            ';' | '&' | '|' | '\n' | '(' | ')' => {
                end_word(&mut word, &mut in_word, &mut current);
                end_command(&mut current, &mut out);
            }
            c if c.is_whitespace() => end_word(&mut word, &mut in_word, &mut current),
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    end_word(&mut word, &mut in_word, &mut current);
    end_command(&mut current, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<Vec<String>> {
        split(text).into_iter().map(|c| c.words).collect()
    }

    #[test]
    fn cuts_at_operators_and_unquotes() {
        assert_eq!(
            words(
                "cd /src && make 'a b' \"c\\\"d\" || true; x=1 FOO=2 env | grep x # cd no\nrm -rf /var/lib/apt/lists/*"
            ),
            [
                vec!["cd", "/src"],
                vec!["make", "a b", "c\"d"],
                vec!["true"],
                vec!["env"],
                vec!["grep", "x"],
                vec!["rm", "-rf", "/var/lib/apt/lists/*"],
            ]
        );
        let c = &split("DEBIAN_FRONTEND=noninteractive /usr/bin/apt-get -y install curl")[0];
        assert_eq!(c.env, ["DEBIAN_FRONTEND=noninteractive"]);
        assert_eq!(c.program(), "apt-get");
        assert!(c.subcommand_is(&["install"]));
        assert_eq!(
            words("apt-get update \\\n && apt-get install x"),
            [vec!["apt-get", "update"], vec!["apt-get", "install", "x"]]
        );
    }
}
