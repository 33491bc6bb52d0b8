//! The build context argument of `kiln build`: a directory (read in place, never copied), a
//! tarball (plain or compressed), or `-` for standard input holding a tarball or a lone
//! Dockerfile (then the context is empty). Tarballs are unpacked with `kiln-layer`'s
//! applier, which never writes outside the scratch directory.

use std::fs;
use std::io::{Cursor, Read};
use std::path::{Path, PathBuf};

/// A context ready to build from.
#[derive(Debug)]
pub struct PreparedContext {
    /// The context directory.
    pub dir: PathBuf,
    /// The Dockerfile text when it came on stdin instead of from the context.
    pub dockerfile: Option<String>,
    /// Whether `dir` is a scratch copy that the caller should remove.
    pub scratch: bool,
}

/// Why a context cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    /// The path is neither a directory nor a readable file.
    #[error("cannot read the build context `{path}`: {source}")]
    Read {
        /// The context argument.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A file that is not a tarball.
    #[error("the build context `{0}` is neither a directory nor a tarball")]
    NotAnArchive(PathBuf),
    /// The tarball could not be unpacked.
    #[error("cannot unpack the build context `{path}`: {message}")]
    Unpack {
        /// The context argument.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
}

/// Prepare `arg` (a path or `-`); tarballs and stdin are unpacked under `scratch`, a fresh
/// directory the caller owns.
pub fn prepare_context(
    arg: &str,
    stdin: &mut dyn Read,
    scratch: &Path,
) -> Result<PreparedContext, ContextError> {
    let path = PathBuf::from(arg);
    let bytes = if arg == "-" {
        let mut buf = Vec::new();
        stdin
            .read_to_end(&mut buf)
            .map_err(|source| ContextError::Read {
                path: path.clone(),
                source,
            })?;
        buf
    } else {
        let meta = fs::metadata(&path).map_err(|source| ContextError::Read {
            path: path.clone(),
            source,
        })?;
        if meta.is_dir() {
            // Absolute, so that threads with a working directory of their own (see `view`)
            // read the same files.
            let dir = fs::canonicalize(&path).map_err(|source| ContextError::Read {
                path: path.clone(),
                source,
            })?;
            return Ok(PreparedContext {
                dir,
                dockerfile: None,
                scratch: false,
            });
        }
        fs::read(&path).map_err(|source| ContextError::Read {
            path: path.clone(),
            source,
        })?
    };
    if !is_archive(&bytes) {
        if arg == "-" {
            fs::create_dir_all(scratch).map_err(|source| ContextError::Read {
                path: scratch.to_owned(),
                source,
            })?;
            return Ok(PreparedContext {
                dir: scratch.to_owned(),
                dockerfile: Some(String::from_utf8_lossy(&bytes).into_owned()),
                scratch: true,
            });
        }
        return Err(ContextError::NotAnArchive(path));
    }
    fs::create_dir_all(scratch).map_err(|source| ContextError::Read {
        path: scratch.to_owned(),
        source,
    })?;
    let opts = kiln_layer::ApplyOptions {
        whiteouts: false,
        ..kiln_layer::ApplyOptions::default()
    };
    kiln_layer::apply(Cursor::new(bytes), scratch, &opts).map_err(|e| ContextError::Unpack {
        path: path.clone(),
        message: e.to_string(),
    })?;
    Ok(PreparedContext {
        dir: scratch.to_owned(),
        dockerfile: None,
        scratch: true,
    })
}

/// Whether `bytes` start like a tar archive, possibly compressed.
fn is_archive(bytes: &[u8]) -> bool {
    let compressed = bytes.starts_with(&[0x1f, 0x8b])
        || bytes.starts_with(b"BZh")
        || bytes.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0])
        || bytes.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]);
    compressed || bytes.get(257..262) == Some(b"ustar")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directory_stdin_dockerfile_and_tarball() {
        let tmp = tempfile::tempdir().unwrap();
        let ctx = prepare_context(
            tmp.path().to_str().unwrap(),
            &mut std::io::empty(),
            &tmp.path().join("s"),
        )
        .unwrap();
        assert_eq!(
            (ctx.dir, ctx.scratch),
            (fs::canonicalize(tmp.path()).unwrap(), false)
        );

        let mut stdin = Cursor::new(b"FROM scratch\n".to_vec());
        let ctx = prepare_context("-", &mut stdin, &tmp.path().join("s1")).unwrap();
        assert_eq!(ctx.dockerfile.as_deref(), Some("FROM scratch\n"));

        let src = tmp.path().join("src");
        fs::create_dir_all(src.join("d")).unwrap();
        fs::write(src.join("Dockerfile"), "FROM scratch\nCOPY d /d\n").unwrap();
        fs::write(src.join("d/f"), "x").unwrap();
        let tar = tmp.path().join("ctx.tar.gz");
        let ok = std::process::Command::new("tar")
            .arg("-C")
            .arg(&src)
            .arg("-czf")
            .arg(&tar)
            .arg(".")
            .status()
            .unwrap();
        assert!(ok.success());
        let ctx = prepare_context(
            tar.to_str().unwrap(),
            &mut std::io::empty(),
            &tmp.path().join("s2"),
        )
        .unwrap();
        assert_eq!(fs::read_to_string(ctx.dir.join("d/f")).unwrap(), "x");
        let mut stdin = Cursor::new(fs::read(&tar).unwrap());
        let ctx = prepare_context("-", &mut stdin, &tmp.path().join("s3")).unwrap();
        assert!(ctx.dir.join("Dockerfile").is_file() && ctx.dockerfile.is_none());

        fs::write(tmp.path().join("notes.txt"), "hello").unwrap();
        let err = prepare_context(
            tmp.path().join("notes.txt").to_str().unwrap(),
            &mut std::io::empty(),
            &tmp.path().join("s4"),
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("neither a directory nor a tarball")
        );
    }
}
