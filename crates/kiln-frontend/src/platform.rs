//! Platforms (`linux/amd64`, `linux/arm/v7`) and the automatic platform ARGs.

use std::fmt;

/// Why a platform does not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PlatformError {
    /// More than `os/arch/variant`.
    #[error("{0:?}: too many slashes")]
    TooManySlashes(String),
    /// An empty component, or one with characters other than letters, digits, `_`, `-`.
    #[error("{0:?}: invalid component")]
    InvalidComponent(String),
}

/// An OS/architecture/variant triple.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub struct Platform {
    /// `linux`.
    pub os: String,
    /// `amd64`, `arm64`, `arm` ...
    pub architecture: String,
    /// `v7`, `v8` ... or empty.
    pub variant: String,
}

impl Platform {
    /// The platform of the machine kiln runs on.
    pub fn host() -> Self {
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "arm" => "arm",
            "powerpc64" => "ppc64le",
            "s390x" => "s390x",
            "riscv64" => "riscv64",
            other => other,
        };
        Self {
            os: "linux".into(),
            architecture: arch.into(),
            variant: String::new(),
        }
    }

    /// Parse `os/arch[/variant]` (also `arch` alone, taken as linux), normalizing common
    /// aliases (`x86_64` to `amd64`, `aarch64` to `arm64`).
    pub fn parse(s: &str) -> Result<Self, PlatformError> {
        let parts: Vec<&str> = s.split('/').collect();
        let (os, arch, variant) = match parts.as_slice() {
            [arch] => ("linux", *arch, ""),
            [os, arch] => (*os, *arch, ""),
            [os, arch, variant] => (*os, *arch, *variant),
            _ => return Err(PlatformError::TooManySlashes(s.to_owned())),
        };
        let ok = |p: &str| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        };
        if !ok(os) || !ok(arch) || (!variant.is_empty() && !ok(variant)) {
            return Err(PlatformError::InvalidComponent(s.to_owned()));
        }
        let arch = match arch.to_ascii_lowercase().as_str() {
            "x86_64" | "x86-64" => "amd64".to_owned(),
            "aarch64" => "arm64".to_owned(),
            "i386" => "386".to_owned(),
            a => a.to_owned(),
        };
        let variant = if arch == "arm64" && variant == "v8" {
            String::new()
        } else {
            variant.to_ascii_lowercase()
        };
        Ok(Self {
            os: os.to_ascii_lowercase(),
            architecture: arch,
            variant,
        })
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if !self.variant.is_empty() {
            write!(f, "/{}", self.variant)?;
        }
        Ok(())
    }
}

/// The automatic ARGs of the global scope (BuildKit's `defaultArgs`), in BuildKit's order.
pub fn automatic_args(
    build: &Platform,
    target: &Platform,
    target_stage: &str,
) -> Vec<(String, String)> {
    [
        ("BUILDPLATFORM", build.to_string()),
        ("BUILDOS", build.os.clone()),
        ("BUILDOSVERSION", String::new()),
        ("BUILDARCH", build.architecture.clone()),
        ("BUILDVARIANT", build.variant.clone()),
        ("TARGETPLATFORM", target.to_string()),
        ("TARGETOS", target.os.clone()),
        ("TARGETOSVERSION", String::new()),
        ("TARGETARCH", target.architecture.clone()),
        ("TARGETVARIANT", target.variant.clone()),
        ("TARGETSTAGE", target_stage.to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// Whether a build arg is one of the proxy variables that reach every RUN without an ARG
/// declaration and stay out of history and cache keys (matched case-insensitively).
pub fn is_proxy_arg(name: &str) -> bool {
    [
        "http_proxy",
        "https_proxy",
        "ftp_proxy",
        "no_proxy",
        "all_proxy",
    ]
    .iter()
    .any(|p| p.eq_ignore_ascii_case(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_platforms() {
        assert_eq!(
            Platform::parse("linux/amd64").unwrap().to_string(),
            "linux/amd64"
        );
        assert_eq!(Platform::parse("linux/arm/v7").unwrap().variant, "v7");
        assert_eq!(
            Platform::parse("linux/aarch64/v8").unwrap().to_string(),
            "linux/arm64"
        );
        assert!(Platform::parse("linux/amd64/v2/x").is_err());
        assert!(Platform::parse("linux/").is_err());
    }
}
