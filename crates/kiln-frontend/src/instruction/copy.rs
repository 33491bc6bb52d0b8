//! COPY and ADD: sources, destination, heredoc sources and their flags.

use kiln_syntax::Word;

use super::Request;
use crate::error::{ErrorKind, InstructionError};
use crate::flags::FlagKind;

/// A heredoc used as a COPY/ADD source: `COPY <<EOF /dest`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeredocSource {
    /// The heredoc name, used as the file name when the destination is a directory.
    pub path: String,
    /// The body (tabs already stripped for `<<-`).
    pub data: String,
    /// Whether variables in the body are expanded.
    pub expand: bool,
}

/// The sources and destination of COPY/ADD.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourcesAndDest {
    /// Path (or URL) sources, as written.
    pub sources: Vec<Word>,
    /// Heredoc sources.
    pub heredocs: Vec<HeredocSource>,
    /// The destination, as written.
    pub dest: Word,
}

/// Flags COPY and ADD share.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CopyFlags {
    /// `--chown=user[:group]`, as written.
    pub chown: Option<Word>,
    /// `--chmod=mode`, as written.
    pub chmod: Option<Word>,
    /// `--link`.
    pub link: bool,
    /// `--exclude=pattern`, repeatable.
    pub exclude: Vec<Word>,
}

/// COPY.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Copy {
    /// What to copy where.
    pub paths: SourcesAndDest,
    /// Shared flags.
    pub flags: CopyFlags,
    /// `--from=stage|index|image`.
    pub from: Option<Word>,
    /// `--parents`.
    pub parents: bool,
}

/// ADD.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Add {
    /// What to add where.
    pub paths: SourcesAndDest,
    /// Shared flags.
    pub flags: CopyFlags,
    /// `--checksum=sha256:...` for URL sources.
    pub checksum: Option<Word>,
    /// `--keep-git-dir` for Git sources.
    pub keep_git_dir: bool,
    /// `--unpack`: whether local archives are extracted (default: yes for local tarballs,
    /// no for URLs).
    pub unpack: Option<bool>,
}

fn shared_flags(flags: &crate::flags::Flags) -> CopyFlags {
    let word = |(v, s)| Word::new(v, s);
    CopyFlags {
        chown: flags.string("chown").map(word),
        chmod: flags.string("chmod").map(word),
        link: flags.bool("link"),
        exclude: flags.strings("exclude").into_iter().map(word).collect(),
    }
}

pub(crate) fn parse_copy(req: &Request<'_>) -> Result<(Copy, Vec<&'static str>), InstructionError> {
    let flags = req.flags(&[
        ("from", FlagKind::String),
        ("chown", FlagKind::String),
        ("chmod", FlagKind::String),
        ("link", FlagKind::Bool),
        ("parents", FlagKind::Bool),
        ("exclude", FlagKind::Strings),
    ])?;
    if req.args.len() < 2 {
        return Err(req.err(ErrorKind::NoDestination("COPY")));
    }
    let paths = sources_and_dest(req, "COPY")?;
    if let Some(url) = paths.sources.iter().find(|s| is_url(&s.text)) {
        return Err(InstructionError::new(ErrorKind::CopyFromUrl, url.span)
            .with_hint("use `ADD` to download a URL"));
    }
    let copy = Copy {
        from: flags.string("from").map(|(v, s)| Word::new(v, s)),
        parents: flags.bool("parents"),
        flags: shared_flags(&flags),
        paths,
    };
    check_chmod(copy.flags.chmod.as_ref())?;
    Ok((copy, flags.used()))
}

pub(crate) fn parse_add(req: &Request<'_>) -> Result<(Add, Vec<&'static str>), InstructionError> {
    let flags = req.flags(&[
        ("chown", FlagKind::String),
        ("chmod", FlagKind::String),
        ("link", FlagKind::Bool),
        ("exclude", FlagKind::Strings),
        ("checksum", FlagKind::String),
        ("keep-git-dir", FlagKind::Bool),
        ("unpack", FlagKind::Bool),
    ])?;
    if req.args.len() < 2 {
        return Err(req.err(ErrorKind::NoDestination("ADD")));
    }
    let paths = sources_and_dest(req, "ADD")?;
    let checksum = flags.string("checksum").map(|(v, s)| Word::new(v, s));
    // With variables in the sources (`ADD --checksum=$D ${LINK}`), the kind of source is
    // only known after expansion, where `check_checksum` runs again.
    if !paths.sources.iter().any(|s| s.text.contains('$')) {
        check_checksum_sources(checksum.as_ref(), &paths.sources)?;
    }
    let add = Add {
        checksum,
        keep_git_dir: flags.bool("keep-git-dir"),
        unpack: flags.string("unpack").map(|(v, _)| v == "true"),
        flags: shared_flags(&flags),
        paths,
    };
    check_chmod(add.flags.chmod.as_ref())?;
    Ok((add, flags.used()))
}

/// `--checksum` only goes with URLs and Git sources.
pub(crate) fn check_checksum_sources(
    checksum: Option<&Word>,
    sources: &[Word],
) -> Result<(), InstructionError> {
    if let Some(c) = checksum
        && sources.iter().any(|s| !is_url(&s.text) && !is_git(&s.text))
    {
        return Err(InstructionError::new(ErrorKind::ChecksumSource, c.span));
    }
    Ok(())
}

/// An expanded `--checksum`, checked as go-digest's `Parse` checks it (BuildKit's words), for
/// the algorithm kiln verifies: `sha256`.
pub(crate) fn check_checksum_digest(checksum: &Word) -> Result<(), InstructionError> {
    let value = checksum.text.as_str();
    let fail = |reason| {
        Err(InstructionError::new(
            ErrorKind::ChecksumDigest {
                reason,
                value: value.to_owned(),
            },
            checksum.span,
        ))
    };
    let Some((algorithm, encoded)) = value
        .split_once(':')
        .filter(|(a, e)| !a.is_empty() && !e.is_empty())
    else {
        return fail("invalid checksum digest format");
    };
    if algorithm != "sha256" {
        // go-digest's `DigestRegexp`: `[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+`.
        let alg_ok = algorithm.split(['.', '+', '_', '-']).all(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        });
        let enc_ok = encoded
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'=' | b'_' | b'-'));
        if !alg_ok || !enc_ok {
            return fail("invalid checksum digest format");
        }
        return fail("unsupported digest algorithm");
    }
    if encoded.len() != 64 {
        return fail("invalid checksum digest length");
    }
    if !encoded
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return fail("invalid checksum digest format");
    }
    Ok(())
}

/// `--chmod` must be an octal mode up to 07777 or a symbolic mode (checked before
/// expansion only when it holds no variable).
fn check_chmod(chmod: Option<&Word>) -> Result<(), InstructionError> {
    let Some(w) = chmod else { return Ok(()) };
    if w.text.contains('$') {
        return Ok(());
    }
    super::Chmod::parse(&w.text)
        .map(|_| ())
        .ok_or_else(|| InstructionError::new(ErrorKind::InvalidChmod(w.text.clone()), w.span))
}

fn sources_and_dest(
    req: &Request<'_>,
    name: &'static str,
) -> Result<SourcesAndDest, InstructionError> {
    let (dest, srcs) = req
        .args
        .split_last()
        .expect("checked: at least two arguments");
    if matches!(kiln_syntax::parse_heredoc_word(&dest.text), Ok(Some(_))) {
        return Err(InstructionError::new(
            ErrorKind::HeredocDestination(name),
            dest.span,
        ));
    }
    let mut sources = Vec::new();
    let mut heredocs = Vec::new();
    for src in srcs {
        match kiln_syntax::parse_heredoc_word(&src.text) {
            Ok(Some(d)) => {
                let data = req
                    .inst
                    .heredocs
                    .iter()
                    .find(|h| h.name == d.name)
                    .map(|h| h.content.clone())
                    .unwrap_or_default();
                heredocs.push(HeredocSource {
                    path: d.name,
                    data,
                    expand: d.expand,
                });
            }
            _ => sources.push(src.clone()),
        }
    }
    Ok(SourcesAndDest {
        sources,
        heredocs,
        dest: dest.clone(),
    })
}

/// Whether a source is an http(s) URL.
pub fn is_url(s: &str) -> bool {
    s.starts_with("http://") || s.starts_with("https://")
}

/// Whether a source is a Git reference BuildKit would fetch.
pub fn is_git(s: &str) -> bool {
    s.starts_with("git@")
        || s.starts_with("git://")
        || (is_url(s)
            && std::path::Path::new(s.split('#').next().unwrap_or(s))
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("git")))
}
