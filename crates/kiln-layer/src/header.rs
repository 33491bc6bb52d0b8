//! Encoding of tar headers: ustar, with a PAX extended header when a field does not fit.
//!
//! The format is fixed because layer digests depend on it; changing any byte here changes the
//! digest of every layer kiln writes. The rules:
//! - ustar magic (`ustar\0`, version `00`); numeric fields in zero-padded octal with a NUL;
//! - no user or group names, no atime or ctime, no prefix field;
//! - directories end in `/`; the name goes in the 100-byte name field when it fits, otherwise a
//!   PAX `path` record carries it (likewise `linkpath`); `size`, `uid` and `gid` move to PAX
//!   records when they overflow their octal fields; xattrs become `SCHILY.xattr.NAME` records;
//! - PAX records are sorted by key, the PAX header is named `././@PaxHeader`, mode `0o644`,
//!   owned by 0:0, mtime 0.

use std::os::unix::ffi::OsStrExt;

use crate::entry::{Entry, EntryKind};

/// Size of one tar block.
pub const BLOCK: usize = 512;

/// Appends the header block(s) for `entry` (PAX header and its data, if needed, then the ustar
/// header) to `out`, with `mtime` already clamped by the caller.
pub fn encode(entry: &Entry, mtime: i64, out: &mut Vec<u8>) {
    let mut name = entry.path.as_os_str().as_bytes().to_vec();
    if entry.kind == EntryKind::Dir && !name.ends_with(b"/") {
        name.push(b'/');
    }
    let link: Option<&[u8]> = match &entry.kind {
        EntryKind::Symlink(t) | EntryKind::Hardlink(t) => Some(t.as_os_str().as_bytes()),
        _ => None,
    };
    let size = if entry.kind == EntryKind::File {
        entry.size
    } else {
        0
    };
    let mtime = u64::try_from(mtime).unwrap_or(0).min(MAX_11);

    let mut pax: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    if name.len() > 100 {
        pax.push((b"path".to_vec(), name.clone()));
    }
    if let Some(l) = link.filter(|l| l.len() > 100) {
        pax.push((b"linkpath".to_vec(), l.to_vec()));
    }
    if size > MAX_11 {
        pax.push((b"size".to_vec(), size.to_string().into_bytes()));
    }
    if entry.uid > MAX_7 {
        pax.push((b"uid".to_vec(), entry.uid.to_string().into_bytes()));
    }
    if entry.gid > MAX_7 {
        pax.push((b"gid".to_vec(), entry.gid.to_string().into_bytes()));
    }
    for (k, v) in &entry.xattrs {
        pax.push((format!("SCHILY.xattr.{k}").into_bytes(), v.clone()));
    }
    if !pax.is_empty() {
        pax.sort();
        let mut data = Vec::new();
        for (k, v) in &pax {
            pax_record(&mut data, k, v);
        }
        let mut h = [0u8; BLOCK];
        put_bytes(&mut h[0..100], b"././@PaxHeader");
        put_octal(&mut h[100..108], 0o644);
        put_octal(&mut h[108..116], 0);
        put_octal(&mut h[116..124], 0);
        put_octal(&mut h[124..136], data.len() as u64);
        put_octal(&mut h[136..148], 0);
        h[156] = b'x';
        finish_header(&mut h);
        out.extend_from_slice(&h);
        out.extend_from_slice(&data);
        pad(out);
    }

    let mut h = [0u8; BLOCK];
    put_bytes(&mut h[0..100], &name[..name.len().min(100)]);
    put_octal(&mut h[100..108], u64::from(entry.mode & 0o7777));
    put_octal(&mut h[108..116], entry.uid.min(MAX_7));
    put_octal(&mut h[116..124], entry.gid.min(MAX_7));
    put_octal(&mut h[124..136], size.min(MAX_11));
    put_octal(&mut h[136..148], mtime);
    h[156] = match entry.kind {
        EntryKind::File => b'0',
        EntryKind::Hardlink(_) => b'1',
        EntryKind::Symlink(_) => b'2',
        EntryKind::CharDevice { .. } => b'3',
        EntryKind::BlockDevice { .. } => b'4',
        EntryKind::Dir => b'5',
        EntryKind::Fifo => b'6',
    };
    if let Some(l) = link {
        put_bytes(&mut h[157..257], &l[..l.len().min(100)]);
    }
    if let EntryKind::CharDevice { major, minor } | EntryKind::BlockDevice { major, minor } =
        entry.kind
    {
        put_octal(&mut h[329..337], u64::from(major).min(MAX_7));
        put_octal(&mut h[337..345], u64::from(minor).min(MAX_7));
    } else {
        put_octal(&mut h[329..337], 0);
        put_octal(&mut h[337..345], 0);
    }
    finish_header(&mut h);
    out.extend_from_slice(&h);
}

/// Largest value of an 8-byte octal field (7 digits).
const MAX_7: u64 = 0o7_777_777;
/// Largest value of a 12-byte octal field (11 digits).
const MAX_11: u64 = 0o77_777_777_777;

/// Pads `out` with zeros to a multiple of [`BLOCK`].
pub fn pad(out: &mut Vec<u8>) {
    let rem = out.len() % BLOCK;
    if rem != 0 {
        out.resize(out.len() + BLOCK - rem, 0);
    }
}

fn pax_record(out: &mut Vec<u8>, key: &[u8], value: &[u8]) {
    // "LEN KEY=VALUE\n", where LEN counts the whole record including its own digits.
    let rest = 1 + key.len() + 1 + value.len() + 1;
    let mut len = rest + 1;
    while len.to_string().len() + rest != len {
        len = len.to_string().len() + rest;
    }
    out.extend_from_slice(len.to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(key);
    out.push(b'=');
    out.extend_from_slice(value);
    out.push(b'\n');
}

fn put_bytes(field: &mut [u8], value: &[u8]) {
    field[..value.len()].copy_from_slice(value);
}

fn put_octal(field: &mut [u8], value: u64) {
    let digits = field.len() - 1;
    let s = format!("{value:0digits$o}");
    field[..digits].copy_from_slice(&s.as_bytes()[s.len() - digits..]);
    field[digits] = 0;
}

fn finish_header(h: &mut [u8; BLOCK]) {
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].fill(b' ');
    let sum: u64 = h.iter().map(|&b| u64::from(b)).sum();
    let s = format!("{sum:06o}");
    h[148..154].copy_from_slice(s.as_bytes());
    h[154] = 0;
    h[155] = b' ';
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_record_length_counts_itself() {
        let mut out = Vec::new();
        pax_record(&mut out, b"path", b"x");
        assert_eq!(out, b"9 path=x\n");
        let mut out = Vec::new();
        pax_record(&mut out, b"path", &[b'a'; 93]);
        // " path=" + 93 + "\n" is 100 bytes; with the three digits of "103" the total is 103.
        assert!(out.starts_with(b"103 path="));
        assert_eq!(out.len(), 103);
    }

    #[test]
    fn header_checksum_is_valid_for_tar_crate() {
        let mut e = Entry::new("a/b", EntryKind::File);
        e.size = 3;
        let mut out = Vec::new();
        encode(&e, 5, &mut out);
        let h = tar::Header::from_byte_slice(&out[..BLOCK]);
        assert_eq!(h.cksum().unwrap(), {
            let mut copy = out[..BLOCK].to_vec();
            copy[148..156].fill(b' ');
            copy.iter().map(|&b| u32::from(b)).sum::<u32>()
        });
        assert_eq!(h.size().unwrap(), 3);
        assert_eq!(h.mtime().unwrap(), 5);
    }
}
