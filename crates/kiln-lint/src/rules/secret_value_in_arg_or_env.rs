//! `SecretValueInArgOrEnv` (KL005): an ARG default or ENV value that looks like a credential.

use kiln_syntax::TextRange;

use crate::CheckConfig;
use crate::rule::declare_rule;
use crate::sink::Sink;

declare_rule! {
    /// ## What it does
    /// Flags an `ARG` default or an `ENV` value (after expansion) that has the shape of a
    /// credential, whatever the variable is called: a private key block
    /// (`-----BEGIN ... PRIVATE KEY-----`), a JSON Web Token, or a token with a known
    /// issuer's prefix (GitHub `ghp_`/`gho_`/`ghs_`/`ghu_`/`ghr_`/`github_pat_`, GitLab
    /// `glpat-`, Slack `xox?-`, AWS access key ids `AKIA`/`ASIA`, Stripe `sk_live_`/`rk_live_`,
    /// OpenAI-style `sk-`, Google API keys `AIza`, npm `npm_`). The message shows only the
    /// value's first characters.
    ///
    /// BuildKit's `SecretsUsedInArgOrEnv` judges the variable's *name* (`GITHUB_TOKEN`); this
    /// rule judges the *value*, so it catches `ENV GH=ghp_...` and says nothing of
    /// `ARG GITHUB_TOKEN` without a default. Where both fire, both are right.
    ///
    /// ## Why is this bad?
    /// The value is in the image for good: an ENV in its config, an ARG in the history of
    /// every RUN that sees it, and in the Dockerfile's repository besides. Anyone who can pull
    /// the image, or read the repository, has the credential. Revoke it, and pass the new one
    /// as a build secret, which never reaches a layer.
    ///
    /// ## Example
    /// ```dockerfile
    /// ENV NPM_AUTH=npm_0123456789abcdefghijABCDEFGHIJ012345
    /// RUN npm ci
    /// ```
    ///
    /// Use instead:
    /// ```dockerfile
    /// RUN --mount=type=secret,id=npm_token,env=NPM_AUTH npm ci
    /// ```
    code: "KL005",
    name: "SecretValueInArgOrEnv",
    description: "ARG and ENV values should not hold credentials",
    hadolint: [],
}

/// Token prefixes and the least number of token characters (`[A-Za-z0-9_-]`) after them.
const PREFIXES: [(&str, usize); 15] = [
    ("ghp_", 30),
    ("gho_", 30),
    ("ghs_", 30),
    ("ghu_", 30),
    ("ghr_", 30),
    ("github_pat_", 30),
    ("glpat-", 20),
    ("xoxb-", 10),
    ("xoxp-", 10),
    ("xoxa-", 10),
    ("sk_live_", 16),
    ("rk_live_", 16),
    ("sk-", 32),
    ("AIza", 30),
    ("npm_", 30),
];

/// What kind of credential `value` looks like, if any.
fn credential(value: &str) -> Option<&'static str> {
    let token_char = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    if value.contains("-----BEGIN") && value.contains("PRIVATE KEY") {
        return Some("a private key");
    }
    for word in value.split(|c: char| !(token_char(c) || c == '.')) {
        for (prefix, min) in PREFIXES {
            if let Some(rest) = word.strip_prefix(prefix)
                && rest.len() >= min
                && rest.chars().all(token_char)
            {
                return Some("an API token");
            }
        }
        let aws = |p: &str| {
            word.strip_prefix(p).is_some_and(|rest| {
                rest.len() == 16
                    && rest
                        .chars()
                        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
            })
        };
        if aws("AKIA") || aws("ASIA") {
            return Some("an AWS access key id");
        }
        let parts: Vec<&str> = word.split('.').collect();
        if parts.len() == 3
            && parts[0].starts_with("eyJ")
            && parts[1].starts_with("eyJ")
            && parts
                .iter()
                .all(|p| p.len() >= 8 && p.chars().all(token_char))
        {
            return Some("a JSON Web Token");
        }
    }
    None
}

/// Check the value of the variable `name` that the `keyword` (`ARG` or `ENV`) at `span` sets.
pub(crate) fn check(
    sink: &mut Sink,
    config: &CheckConfig,
    keyword: &str,
    name: &str,
    value: &str,
    span: TextRange,
) {
    let Some(kind) = credential(value) else {
        return;
    };
    let shown: String = value.chars().take(4).collect();
    sink.finding(
        config,
        &RULE,
        None,
        span,
        format!("the {keyword} `{name}` holds what looks like {kind} (`{shown}...`), which stays in the image"),
        Some("revoke it, and pass it with `RUN --mount=type=secret` instead".to_owned()),
    );
}

#[cfg(test)]
mod tests {
    use super::credential;

    #[test]
    fn knows_credential_shapes() {
        assert_eq!(
            credential("AKIAIOSFODNN7EXAMPLE"),
            Some("an AWS access key id")
        );
        assert_eq!(
            credential("Bearer ghp_0123456789abcdefghijABCDEFGHIJ012345"),
            Some("an API token")
        );
        assert_eq!(
            credential(
                "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dBjftJeZ4CVPmB92K27uhbUJU1p1r_wW1gFWFOEjXk"
            ),
            Some("a JSON Web Token")
        );
        assert_eq!(
            credential("-----BEGIN OPENSSH PRIVATE KEY-----\nabc"),
            Some("a private key")
        );
        for fine in [
            "production",
            "ghp_short",
            "sk-not-a-key",
            "/usr/local/bin",
            "AKIA1234",
        ] {
            assert_eq!(credential(fine), None, "{fine}");
        }
    }
}
