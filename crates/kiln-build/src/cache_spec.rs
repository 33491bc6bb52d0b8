//! `--cache-to` and `--cache-from` as BuildKit and buildx spell them, into typed specs.
//!
//! * `--cache-to type=registry,ref=R[,mode=min|max][,image-manifest=true|false]`
//!   `[,compression=gzip|zstd|uncompressed][,compression-level=N][,force-compression=B]`
//!   `[,mounts=true][,ignore-error=true][,oci-mediatypes=true]`
//! * `--cache-to type=local,dest=DIR[,tag=T]` with the same options
//! * `--cache-to type=inline` (`mode=min` only, as BuildKit)
//! * `--cache-from type=registry,ref=R`, `--cache-from type=local,src=DIR[,tag=T]`, and
//!   `--cache-from IMAGE` (an image whose config carries an inline cache)
//!
//! `mode=min` (the default) exports the steps that made the target image's layers;
//! `mode=max` every step of every stage built. kiln's export is always an image manifest (the
//! form registries that refuse unknown manifest types accept, see
//! `kiln_cache::transfer`), so `image-manifest=` and `oci-mediatypes=` are accepted and
//! change nothing.

use std::path::PathBuf;

use kiln_oci::store::ExportCompression;

use crate::output::{CompressionAttrs, OutputError};

/// Which steps an export carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CacheMode {
    /// The steps that made the target image's layers (its base stages' included).
    #[default]
    Min,
    /// Every step of every stage built.
    Max,
}

/// Where a cache goes or comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheLocation {
    /// An OCI layout directory, and the tag in it (`latest` by default).
    Local {
        /// The directory.
        dir: PathBuf,
        /// The tag of the cache manifest.
        tag: String,
    },
    /// A registry reference (`host/repo:tag`).
    Registry(String),
}

/// One `--cache-to`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheExport {
    /// Where it goes; `None` for `type=inline` (the image config).
    pub location: Option<CacheLocation>,
    /// Which steps.
    pub mode: CacheMode,
    /// How layers leave the machine.
    pub compression: ExportCompression,
    /// `image-manifest=` as given (kiln writes an image manifest either way).
    pub image_manifest: bool,
    /// `mounts=true`: `RUN --mount=type=cache` directories go too.
    pub mounts: bool,
    /// `ignore-error=true`: a failed export is a warning.
    pub ignore_error: bool,
}

/// One `--cache-from`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheImport {
    /// An export in a directory or registry.
    Remote(CacheLocation),
    /// An image (in the store, for now) whose config carries an inline cache.
    Image(String),
}

/// A `--cache-to` or `--cache-from` kiln cannot use.
#[derive(Debug, thiserror::Error)]
pub enum CacheSpecError {
    /// The spec is malformed or names an unknown attribute.
    #[error("invalid cache spec `{spec}`: {reason}")]
    Invalid {
        /// The spec as given.
        spec: String,
        /// What is wrong.
        reason: String,
    },
    /// A compression attribute is wrong.
    #[error("invalid cache spec `{spec}`: {source}")]
    Compression {
        /// The spec as given.
        spec: String,
        /// The cause.
        source: OutputError,
    },
}

/// The `key=value` fields of `spec` (a field without `=` is a key with an empty value).
fn fields(spec: &str) -> Vec<(&str, &str)> {
    spec.split(',')
        .filter(|f| !f.is_empty())
        .map(|f| f.split_once('=').unwrap_or((f, "")))
        .collect()
}

fn boolean(spec: &str, key: &str, value: &str) -> Result<bool, CacheSpecError> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "1" | "" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(invalid(
            spec,
            format!("`{key}={value}`: expected true or false"),
        )),
    }
}

fn invalid(spec: &str, reason: impl Into<String>) -> CacheSpecError {
    CacheSpecError::Invalid {
        spec: spec.to_owned(),
        reason: reason.into(),
    }
}

/// Parses one `--cache-to`.
pub fn parse_cache_to(spec: &str) -> Result<CacheExport, CacheSpecError> {
    let mut typ = None;
    let (mut dest, mut reference, mut tag) = (None, None, None);
    let mut mode = CacheMode::Min;
    let mut compression = CompressionAttrs::default();
    let (mut image_manifest, mut mounts, mut ignore_error) = (true, false, false);
    for (k, v) in fields(spec) {
        match k {
            "type" => typ = Some(v),
            "dest" => dest = Some(PathBuf::from(v)),
            "ref" => reference = Some(v.to_owned()),
            "tag" => tag = Some(v.to_owned()),
            "mode" => {
                mode = match v {
                    "min" => CacheMode::Min,
                    "max" => CacheMode::Max,
                    _ => return Err(invalid(spec, format!("`mode={v}`: expected min or max"))),
                };
            }
            "image-manifest" => image_manifest = boolean(spec, k, v)?,
            "oci-mediatypes" => {
                boolean(spec, k, v)?;
            }
            "mounts" => mounts = boolean(spec, k, v)?,
            "ignore-error" => ignore_error = boolean(spec, k, v)?,
            _ => {
                let taken =
                    compression
                        .take(k, v)
                        .map_err(|source| CacheSpecError::Compression {
                            spec: spec.to_owned(),
                            source,
                        })?;
                if !taken {
                    return Err(invalid(spec, format!("unknown attribute `{k}`")));
                }
            }
        }
    }
    let compression = compression
        .finish()
        .map_err(|source| CacheSpecError::Compression {
            spec: spec.to_owned(),
            source,
        })?;
    let location = match typ {
        Some("local") => Some(CacheLocation::Local {
            dir: dest.ok_or_else(|| invalid(spec, "`type=local` needs `dest=DIR`"))?,
            tag: tag.unwrap_or_else(|| kiln_cache::LOCAL_TAG.to_owned()),
        }),
        Some("registry") => {
            Some(CacheLocation::Registry(reference.ok_or_else(|| {
                invalid(spec, "`type=registry` needs `ref=REF`")
            })?))
        }
        Some("inline") => {
            if mode == CacheMode::Max {
                return Err(invalid(spec, "the inline cache supports `mode=min` only"));
            }
            if mounts {
                return Err(invalid(
                    spec,
                    "the inline cache cannot carry cache mounts: use `type=registry` or `type=local`",
                ));
            }
            None
        }
        Some(t) => {
            return Err(invalid(
                spec,
                format!(
                    "unknown type `{t}`: kiln exports caches as `registry`, `local` or `inline`"
                ),
            ));
        }
        None => return Err(invalid(spec, "no `type=`")),
    };
    Ok(CacheExport {
        location,
        mode,
        compression,
        image_manifest,
        mounts,
        ignore_error,
    })
}

/// Parses one `--cache-from`: a spec with `type=`, or an image name.
pub fn parse_cache_from(spec: &str) -> Result<CacheImport, CacheSpecError> {
    if !spec.contains('=') {
        if spec.is_empty() {
            return Err(invalid(spec, "empty"));
        }
        return Ok(CacheImport::Image(spec.to_owned()));
    }
    let mut typ = None;
    let (mut src, mut reference, mut tag) = (None, None, None);
    for (k, v) in fields(spec) {
        match k {
            "type" => typ = Some(v),
            "src" => src = Some(PathBuf::from(v)),
            "ref" => reference = Some(v.to_owned()),
            "tag" => tag = Some(v.to_owned()),
            // `--cache-to`'s attributes, in a spec written once for both flags.
            "mode" | "image-manifest" | "oci-mediatypes" | "compression" | "compression-level"
            | "force-compression" | "mounts" | "ignore-error" => {}
            _ => return Err(invalid(spec, format!("unknown attribute `{k}`"))),
        }
    }
    match typ {
        Some("local") => Ok(CacheImport::Remote(CacheLocation::Local {
            dir: src.ok_or_else(|| invalid(spec, "`type=local` needs `src=DIR`"))?,
            tag: tag.unwrap_or_else(|| kiln_cache::LOCAL_TAG.to_owned()),
        })),
        Some("registry") => Ok(CacheImport::Remote(CacheLocation::Registry(
            reference.ok_or_else(|| invalid(spec, "`type=registry` needs `ref=REF`"))?,
        ))),
        Some(t) => Err(invalid(
            spec,
            format!(
                "unknown type `{t}`: kiln imports caches of type `registry` or `local`, or an image by name"
            ),
        )),
        None => Err(invalid(spec, "no `type=`")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_layer::Compression;

    #[test]
    fn cache_to_specs() {
        let e = parse_cache_to(
            "type=registry,ref=reg:5000/app:cache,mode=max,image-manifest=true,compression=zstd,mounts=true",
        )
        .unwrap();
        assert_eq!(
            e.location,
            Some(CacheLocation::Registry("reg:5000/app:cache".into()))
        );
        assert_eq!(e.mode, CacheMode::Max);
        assert!(e.mounts && e.image_manifest && !e.ignore_error);
        assert_eq!(e.compression.compression, Compression::Zstd { level: 3 });

        let l = parse_cache_to("type=local,dest=/c,image-manifest=false").unwrap();
        assert_eq!(
            l.location,
            Some(CacheLocation::Local {
                dir: "/c".into(),
                tag: "latest".into()
            })
        );
        assert_eq!(l.mode, CacheMode::Min);
        assert!(!l.image_manifest);
        assert_eq!(l.compression.compression, Compression::Gzip { level: 6 });

        assert_eq!(parse_cache_to("type=inline").unwrap().location, None);
        for bad in [
            "type=inline,mode=max",
            "type=registry",
            "type=local",
            "type=s3,bucket=x",
            "type=local,dest=/c,mode=all",
            "type=local,dest=/c,compression=lz4",
            "type=local,dest=/c,colour=blue",
            "dest=/c",
        ] {
            assert!(parse_cache_to(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cache_from_specs() {
        assert_eq!(
            parse_cache_from("type=registry,ref=r/app:main").unwrap(),
            CacheImport::Remote(CacheLocation::Registry("r/app:main".into()))
        );
        assert_eq!(
            parse_cache_from("type=local,src=/c,tag=branch").unwrap(),
            CacheImport::Remote(CacheLocation::Local {
                dir: "/c".into(),
                tag: "branch".into()
            })
        );
        assert_eq!(
            parse_cache_from("app:built").unwrap(),
            CacheImport::Image("app:built".into())
        );
        assert_eq!(
            parse_cache_from("type=registry,ref=r/app:main,mode=max,mounts=true").unwrap(),
            CacheImport::Remote(CacheLocation::Registry("r/app:main".into())),
            "--cache-to's attributes are ignored"
        );
        assert!(parse_cache_from("type=local").is_err());
        assert!(parse_cache_from("type=local,src=/c,colour=blue").is_err());
        assert!(parse_cache_from("type=gha,scope=x").is_err());
    }
}
