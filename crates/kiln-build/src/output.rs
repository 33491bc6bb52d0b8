//! `--output` specs, as `docker build` reads them: `type=image,name=N[,push=true]`,
//! `type=registry,name=N` (the same as `type=image,push=true`), `type=oci,dest=F`,
//! `type=docker,dest=F`, `type=tar,dest=F`, `type=local,dest=DIR`; a bare path means
//! `type=local,dest=PATH` and `-` means `type=tar` to stdout.

use std::path::PathBuf;

use kiln_layer::Compression;
use kiln_oci::store::ExportCompression;

/// Where a build's result goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Into the store, tagged with `names` (and every `-t`); with `push`, also pushed to
    /// each name's registry (`type=registry`, `type=image,push=true`, `--push`).
    Image {
        /// Extra names from `name=` (comma-separated lists are split).
        names: Vec<String>,
        /// Push them (`push=true`, or `type=registry`).
        push: Option<ExportCompression>,
    },
    /// An OCI archive of the image.
    Oci {
        /// The file (`None`: stdout).
        dest: Option<PathBuf>,
        /// How its layers are compressed (`compression=`, `compression-level=`,
        /// `force-compression=`).
        compression: ExportCompression,
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
    #[error(
        "unknown output type `{0}`: valid types are image, registry, oci, docker, tar and local"
    )]
    UnknownType(String),
    /// No `type=`.
    #[error("missing `type=`: valid types are image, registry, oci, docker, tar and local")]
    MissingType,
    /// `push=` that is not a boolean.
    #[error("invalid `push={0}`: expected true or false")]
    Push(String),
    /// A `"` that is not closed.
    #[error("unterminated quote in `{0}`")]
    UnterminatedQuote(String),
    /// `compression=` names no compression kiln writes.
    #[error("unknown compression `{0}`: valid are gzip, zstd and uncompressed")]
    Compression(String),
    /// `compression-level=` is not a level of the compression.
    #[error("invalid compression-level `{0}`: gzip takes 0 to 9, zstd 1 to 22")]
    CompressionLevel(String),
    /// A boolean attribute that is neither true nor false.
    #[error("invalid `{key}={value}`: expected true or false")]
    Bool {
        /// The attribute.
        key: String,
        /// Its value.
        value: String,
    },
}

/// The compression attributes of an export (`--output type=oci`, `--cache-to`), as BuildKit
/// spells them: `compression=gzip|zstd|uncompressed`, `compression-level=N`,
/// `force-compression=true|false`. Feed each attribute to [`Self::take`], then [`Self::finish`].
#[derive(Debug, Default)]
pub struct CompressionAttrs {
    name: Option<String>,
    level: Option<String>,
    force: bool,
}

impl CompressionAttrs {
    /// Takes `key=value` when it is a compression attribute; whether it was.
    pub fn take(&mut self, key: &str, value: &str) -> Result<bool, OutputError> {
        match key {
            "compression" => self.name = Some(value.to_ascii_lowercase()),
            "compression-level" => self.level = Some(value.to_owned()),
            "force-compression" => {
                self.force = match value.to_ascii_lowercase().as_str() {
                    "true" | "1" | "" => true,
                    "false" | "0" => false,
                    _ => {
                        return Err(OutputError::Bool {
                            key: key.to_owned(),
                            value: value.to_owned(),
                        });
                    }
                };
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// The compression asked for: gzip (level 6) unless said otherwise.
    pub fn finish(self) -> Result<ExportCompression, OutputError> {
        let level = |max: i64, min: i64| -> Result<Option<i64>, OutputError> {
            self.level
                .as_deref()
                .map(|l| {
                    l.parse::<i64>()
                        .ok()
                        .filter(|n| (min..=max).contains(n))
                        .ok_or_else(|| OutputError::CompressionLevel(l.to_owned()))
                })
                .transpose()
        };
        let compression = match self.name.as_deref().unwrap_or("gzip") {
            "gzip" => Compression::Gzip {
                level: level(9, 0)?.map_or(6, |n| u32::try_from(n).unwrap_or(6)),
            },
            "zstd" => Compression::Zstd {
                level: level(22, 1)?.map_or(3, |n| i32::try_from(n).unwrap_or(3)),
            },
            "uncompressed" => Compression::None,
            other => return Err(OutputError::Compression(other.to_owned())),
        };
        Ok(ExportCompression {
            compression,
            force: self.force,
        })
    }
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
    let mut compression = CompressionAttrs::default();
    let mut compression_keys = Vec::new();
    let mut push = false;
    for field in split_csv(spec)? {
        let (k, v) = field
            .split_once('=')
            .ok_or_else(|| OutputError::Field(field.clone()))?;
        let key = k.trim().to_ascii_lowercase();
        if compression.take(&key, v)? {
            compression_keys.push(key);
            continue;
        }
        match key.as_str() {
            "type" => typ = Some(v.to_ascii_lowercase()),
            "dest" => dest = Some(v.to_owned()),
            "name" => names.extend(v.split(',').filter(|n| !n.is_empty()).map(str::to_owned)),
            "push" => {
                push = match v.to_ascii_lowercase().as_str() {
                    "true" | "1" => true,
                    "false" | "0" => false,
                    _ => return Err(OutputError::Push(v.to_owned())),
                };
            }
            // Keys docker accepts that kiln has nothing to do with yet are refused loudly
            // rather than ignored.
            other => return Err(OutputError::Attribute(other.to_owned())),
        }
    }
    let file = |dest: Option<String>| dest.filter(|d| d != "-").map(PathBuf::from);
    let registry = typ.as_deref() == Some("registry");
    // Only an OCI archive's layers and a push's are compressed (a docker archive's are plain
    // tars, the store keeps built layers plain).
    let compressed = typ.as_deref() == Some("oci") || registry || push;
    if let Some(key) = compression_keys.first()
        && !compressed
    {
        return Err(OutputError::Attribute(key.clone()));
    }
    if push && typ.as_deref() != Some("image") {
        return Err(OutputError::Attribute("push".to_owned()));
    }
    match typ.as_deref() {
        Some("image" | "registry") => Ok(Output::Image {
            names,
            push: if registry || push {
                Some(compression.finish()?)
            } else {
                None
            },
        }),
        Some("oci") => Ok(Output::Oci {
            dest: file(dest),
            compression: compression.finish()?,
        }),
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
    fn compression_attributes() {
        let oci = |spec: &str| match parse_output(spec) {
            Ok(Output::Oci { compression, .. }) => Ok(compression),
            Ok(other) => panic!("{other:?}"),
            Err(e) => Err(e.to_string()),
        };
        assert_eq!(oci("type=oci,dest=a"), Ok(ExportCompression::default()));
        assert_eq!(
            oci("type=oci,dest=a,compression=zstd,compression-level=19,force-compression=true"),
            Ok(ExportCompression {
                compression: Compression::Zstd { level: 19 },
                force: true
            })
        );
        assert_eq!(
            oci("type=oci,compression=uncompressed"),
            Ok(ExportCompression {
                compression: Compression::None,
                force: false
            })
        );
        assert_eq!(
            oci("type=oci,compression=gzip,compression-level=10"),
            Err("invalid compression-level `10`: gzip takes 0 to 9, zstd 1 to 22".into())
        );
        assert_eq!(
            oci("type=oci,compression=lz4"),
            Err("unknown compression `lz4`: valid are gzip, zstd and uncompressed".into())
        );
        assert_eq!(
            oci("type=oci,force-compression=maybe"),
            Err("invalid `force-compression=maybe`: expected true or false".into())
        );
        assert_eq!(
            parse_output("type=docker,compression=zstd"),
            Err(OutputError::Attribute("compression".into()))
        );
    }

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
                dest: Some("a.tar".into()),
                compression: ExportCompression::default(),
            }
        );
        assert_eq!(
            parse_output("type=image,\"name=a:1,b:2\"").unwrap(),
            Output::Image {
                names: vec!["a:1".into(), "b:2".into()],
                push: None,
            }
        );
        let gzip = Some(ExportCompression::default());
        for spec in [
            "type=registry,name=h:5000/a:1",
            "type=image,name=h:5000/a:1,push=true",
        ] {
            assert_eq!(
                parse_output(spec).unwrap(),
                Output::Image {
                    names: vec!["h:5000/a:1".into()],
                    push: gzip,
                },
                "{spec}"
            );
        }
        assert_eq!(
            parse_output("type=registry,name=a,compression=zstd").unwrap(),
            Output::Image {
                names: vec!["a".into()],
                push: Some(ExportCompression {
                    compression: Compression::Zstd { level: 3 },
                    force: false
                }),
            }
        );
        assert_eq!(
            parse_output("type=image,name=a,compression=zstd").unwrap_err(),
            OutputError::Attribute("compression".into())
        );
        assert_eq!(
            parse_output("type=image,name=a,push=maybe").unwrap_err(),
            OutputError::Push("maybe".into())
        );
        assert_eq!(
            parse_output("type=local").unwrap_err(),
            OutputError::LocalWithoutDest
        );
        assert!(
            parse_output("type=s3,name=x")
                .unwrap_err()
                .to_string()
                .contains("unknown output type `s3`")
        );
        assert_eq!(
            parse_output("dest=x").unwrap_err(),
            OutputError::MissingType
        );
    }
}
