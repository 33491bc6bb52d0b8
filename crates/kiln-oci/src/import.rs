//! Making a one-layer image from a root filesystem tarball, as `docker import` does.

use std::io::Read;

use kiln_layer::Compression;

use crate::config::{ContainerConfig, History, ImageConfig, RootFs};
use crate::error::StoreError;
use crate::image::host_arch;
use crate::media::MediaTypes;
use crate::model::Descriptor;
use crate::reference::Reference;
use crate::store::Store;

/// Options of [`import_rootfs`].
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// Layer compression; the default is gzip.
    pub compression: Compression,
    /// Media type family of the manifest; OCI by default.
    pub media_types: MediaTypes,
    /// The image's creation time in seconds since the epoch; `None` means now.
    /// `SOURCE_DATE_EPOCH` is the caller's to pass here.
    pub created: Option<i64>,
    /// The container config (`Cmd`, `Env`, ...); none by default, like `docker import`.
    pub config: Option<ContainerConfig>,
    /// The history comment; the default names no file.
    pub comment: Option<String>,
}

/// Imports the tar stream `rootfs` (plain, gzip or zstd) as a one-layer image named
/// `reference`. The tarball's entries are kept as they are (not re-normalized); the layer is
/// compressed as asked. Returns the manifest descriptor.
pub fn import_rootfs<R: Read>(
    store: &Store,
    rootfs: R,
    reference: Option<&Reference>,
    opts: &ImportOptions,
) -> Result<Descriptor, StoreError> {
    let mut txn = store.txn()?;
    let (reader, _) = kiln_layer::decompress(rootfs).map_err(|source| {
        StoreError::Io(kiln_io::IoError {
            action: "read",
            path: "the rootfs tarball".into(),
            source,
        })
    })?;
    let writer = txn.blob_writer()?;
    let (writer, digests) =
        kiln_layer::compress_tar(reader, writer, opts.compression).map_err(|e| {
            StoreError::Io(kiln_io::IoError {
                action: "import",
                path: "the rootfs tarball".into(),
                source: std::io::Error::other(e),
            })
        })?;
    let (layer_digest, layer_size) =
        writer.commit(Some((&digests.digest, digests.size)), "imported layer")?;
    let created = rfc3339(opts.created.unwrap_or_else(now));
    let config = ImageConfig {
        created: Some(created.clone()),
        architecture: host_arch().to_owned(),
        os: "linux".to_owned(),
        config: Some(opts.config.clone().unwrap_or_default()),
        rootfs: RootFs {
            kind: "layers".to_owned(),
            diff_ids: vec![digests.diff_id.to_string()],
        },
        history: vec![History {
            created: Some(created),
            created_by: Some("kiln import".to_owned()),
            comment: Some(
                opts.comment
                    .clone()
                    .unwrap_or_else(|| "Imported from -".to_owned()),
            ),
            ..History::default()
        }],
        ..ImageConfig::default()
    };
    let layer = Descriptor::new(
        opts.media_types.layer(opts.compression),
        layer_digest,
        layer_size,
    );
    let (descriptor, _) = txn.put_image(opts.media_types, &config, vec![layer])?;
    txn.commit(|index| {
        match reference {
            Some(r) => crate::store::set_tag(index, r, &descriptor),
            None => crate::store::add_untagged(index, &descriptor),
        }
        Ok(())
    })?;
    Ok(descriptor)
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Formats seconds since the epoch as RFC 3339 UTC (`2024-01-02T03:04:05Z`).
pub fn rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Parses the RFC 3339 times images carry (`2024-01-02T03:04:05.123456789Z`, or with an
/// offset) into seconds since the epoch; `None` when it is not one.
#[allow(clippy::many_single_char_names)]
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d, h, mi, se) = (
        num(0..4)?,
        num(5..7)?,
        num(8..10)?,
        num(11..13)?,
        num(14..16)?,
        num(17..19)?,
    );
    let mut rest = &s[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        rest = frac.trim_start_matches(|c: char| c.is_ascii_digit());
    }
    let offset = match rest {
        "Z" | "z" => 0,
        r if r.len() == 6 && (r.starts_with('+') || r.starts_with('-')) => {
            let sign = if r.starts_with('-') { -1 } else { 1 };
            sign * (r.get(1..3)?.parse::<i64>().ok()? * 3600
                + r.get(4..6)?.parse::<i64>().ok()? * 60)
        }
        _ => return None,
    };
    let (y, m) = if mo <= 2 {
        (y - 1, mo + 9)
    } else {
        (y, mo - 3)
    };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let doy = (153 * m + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + mi * 60 + se - offset)
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc3339_round_trip() {
        for t in [0, 951_782_400, 1_700_000_000, 4_102_444_800] {
            assert_eq!(super::parse_rfc3339(&super::rfc3339(t)), Some(t));
        }
        assert_eq!(super::rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(
            super::parse_rfc3339("2023-11-14T23:13:20.5+01:00"),
            Some(1_700_000_000)
        );
    }
}
