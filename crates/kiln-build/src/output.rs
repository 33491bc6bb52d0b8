//! `--output` specs, as `docker build` reads them: `type=image,name=N`, `type=oci,dest=F`,
//! `type=docker,dest=F`, `type=tar,dest=F`, `type=local,dest=DIR`; a bare path means
//! `type=local,dest=PATH` and `-` means `type=tar` to stdout.

use std::path::PathBuf;

/// Where a build's result goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Into the store, tagged with `names` (and every `-t`).
    Image {
        /// Extra names from `name=` (comma-separated lists are split).
        names: Vec<String>,
    },
    /// An OCI archive of the image.
    Oci {
        /// The file (`None`: stdout).
        dest: Option<PathBuf>,
    },
    /// A `docker load` tarball of the image.
    Docker {
        /// The file (`None`: stdout).
        dest: Option<PathBuf>,
    },
    /// The final stage's filesystem as a tarball.
    Tar {
        /// The file (`None`: stdout).
        dest: Option<PathBuf>,
    },
    /// The final stage's filesystem written into a directory.
    Local {
        /// The directory.
        dest: PathBuf,
    },
}

/// Why an `--output` value does not parse; the message says what would be valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OutputError {
    /// A field without `=`.
    #[error("invalid field `{0}`: expected `key=value`")]
    Field(String),
    /// A key kiln has nothing to do with (refused loudly rather than ignored).
    #[error("unsupported output attribute `{0}`")]
    Attribute(String),
    /// `type=local` without a directory.
    #[error("`type=local` needs `dest=DIR`")]
    LocalWithoutDest,
    /// A type kiln does not write.
    #[error("unknown output type `{0}`: valid types are image, oci, docker, tar and local")]
    UnknownType(String),
    /// No `type=`.
    #[error("missing `type=`: valid types are image, oci, docker, tar and local")]
    MissingType,
    /// A `"` that is not closed.
    #[error("unterminated quote in `{0}`")]
    UnterminatedQuote(String),
}

/// Parse one `--output` value; the error says what is wrong and what would be valid.
pub fn parse_output(spec: &str) -> Result<Output, OutputError> {
    if spec == "-" {
        return Ok(Output::Tar { dest: None });
    }
    if !spec.contains('=') {
        return Ok(Output::Local { dest: spec.into() });
    }
    let mut typ = None;
    let mut dest: Option<String> = None;
    let mut names = Vec::new();
    for field in split_csv(spec)? {
        let (k, v) = field
            .split_once('=')
            .ok_or_else(|| OutputError::Field(field.clone()))?;
        match k.trim().to_ascii_lowercase().as_str() {
            "type" => typ = Some(v.to_ascii_lowercase()),
            "dest" => dest = Some(v.to_owned()),
            "name" => names.extend(v.split(',').filter(|n| !n.is_empty()).map(str::to_owned)),
            // Keys docker accepts that kiln has nothing to do with yet are refused loudly
            // rather than ignored.
            other => return Err(OutputError::Attribute(other.to_owned())),
        }
    }
    let file = |dest: Option<String>| dest.filter(|d| d != "-").map(PathBuf::from);
    match typ.as_deref() {
        Some("image") => Ok(Output::Image { names }),
        Some("oci") => Ok(Output::Oci { dest: file(dest) }),
        Some("docker") => Ok(Output::Docker { dest: file(dest) }),
        Some("tar") => Ok(Output::Tar { dest: file(dest) }),
        Some("local") => dest
            .map(|d| Output::Local { dest: d.into() })
            .ok_or(OutputError::LocalWithoutDest),
        Some(other) => Err(OutputError::UnknownType(other.to_owned())),
        None => Err(OutputError::MissingType),
    }
}

/// Split `a=1,"b=x,y",c=2` as docker's CSV reader does (quotes group commas; a `name=` list
/// inside quotes stays one field).
fn split_csv(s: &str) -> Result<Vec<String>, OutputError> {
    let mut fields = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in s.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => fields.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    if quoted {
        return Err(OutputError::UnterminatedQuote(s.to_owned()));
    }
    fields.push(cur);
    Ok(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs() {
        assert_eq!(
            parse_output("out").unwrap(),
            Output::Local { dest: "out".into() }
        );
        assert_eq!(parse_output("-").unwrap(), Output::Tar { dest: None });
        assert_eq!(
            parse_output("type=tar,dest=x.tar").unwrap(),
            Output::Tar {
                dest: Some("x.tar".into())
            }
        );
        assert_eq!(
            parse_output("type=docker,dest=-").unwrap(),
            Output::Docker { dest: None }
        );
        assert_eq!(
            parse_output("type=oci,dest=a.tar").unwrap(),
            Output::Oci {
                dest: Some("a.tar".into())
            }
        );
        assert_eq!(
            parse_output("type=image,\"name=a:1,b:2\"").unwrap(),
            Output::Image {
                names: vec!["a:1".into(), "b:2".into()]
            }
        );
        assert_eq!(
            parse_output("type=local").unwrap_err(),
            OutputError::LocalWithoutDest
        );
        assert!(
            parse_output("type=registry,name=x")
                .unwrap_err()
                .to_string()
                .contains("unknown output type `registry`")
        );
        assert_eq!(
            parse_output("dest=x").unwrap_err(),
            OutputError::MissingType
        );
    }
}
