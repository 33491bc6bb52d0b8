//! `SecretsUsedInArgOrEnv`: an ARG or ENV whose name says it holds a secret.

use kiln_syntax::{TextRange, go_quote};

use crate::CheckConfig;
use crate::rule::declare_rule;
use crate::sink::Sink;

declare_rule! {
    /// ## What it does
    /// Flags an `ARG` or `ENV` whose name has a part (between underscores, any case) such as
    /// `password`, `secret`, `token`, `key`, `auth` or `apikey`, unless another part is
    /// `public`, `file` or `version` (`PUBLIC_KEY`, `PASSWORD_FILE` are fine).
    ///
    /// ## Why is this bad?
    /// ARG and ENV values are stored in the image: ENV in its config, ARG in the history of
    /// every RUN that sees it. Anyone who can pull the image can read them. Secrets belong in
    /// a secret mount (`RUN --mount=type=secret`), which never reaches the image.
    ///
    /// ## Example
    /// ```dockerfile
    /// ARG GITHUB_TOKEN
    /// RUN git clone https://$GITHUB_TOKEN@github.com/org/private.git
    /// ```
    ///
    /// Use instead:
    /// ```dockerfile
    /// RUN --mount=type=secret,id=github_token,env=GITHUB_TOKEN \
    ///     git clone https://$GITHUB_TOKEN@github.com/org/private.git
    /// ```
    name: "SecretsUsedInArgOrEnv",
    description: "Sensitive data should not be used in the ARG or ENV commands",
    url: Some("https://docs.docker.com/go/dockerfile/rule/secrets-used-in-arg-or-env/"),
    experimental: false,
}

/// Name parts that say "secret" (BuildKit's `secretTokens`).
const SECRET: [&str; 10] = [
    "apikey",
    "auth",
    "credential",
    "credentials",
    "key",
    "password",
    "pword",
    "passwd",
    "secret",
    "token",
];

/// Name parts that say "not the secret itself" (BuildKit's `allowTokens`).
const ALLOW: [&str; 3] = ["public", "file", "version"];

/// Whether `key` names a secret: BuildKit's `(?i)(?:_|^)(?:token...)(?:_|$)` deny and allow
/// patterns, which match exactly when one `_`-separated part equals a token.
pub(crate) fn is_secret(key: &str) -> bool {
    let lower = key.to_lowercase();
    let has = |tokens: &[&str]| lower.split('_').any(|part| tokens.contains(&part));
    has(&SECRET) && !has(&ALLOW)
}

/// Check one ARG or ENV key (`instruction` is `ARG` or `ENV`).
pub(crate) fn check(
    sink: &mut Sink,
    config: &CheckConfig,
    instruction: &str,
    key: &str,
    span: TextRange,
) {
    if is_secret(key) {
        sink.warn(
            config,
            &RULE,
            span,
            format!(
                "Do not use ARG or ENV instructions for sensitive data ({instruction} {})",
                go_quote(key)
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::is_secret;

    #[test]
    fn names_that_hold_secrets() {
        for key in [
            "SECRET_PASSPHRASE",
            "SUPER_Secret",
            "password",
            "auth",
            "git_key",
            "x__token",
        ] {
            assert!(is_secret(key), "{key}");
        }
        for key in [
            "PUBLIC_KEY",
            "public_token",
            "SECRET_FILE",
            "AUTH_MODULE_VERSION",
            "sunflower",
            "keys",
            "monkey",
        ] {
            assert!(!is_secret(key), "{key}");
        }
    }
}
