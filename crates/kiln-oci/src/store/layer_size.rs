//! The size of a layer as Docker shows it, and the per-blob record that keeps it.
//!
//! Docker's `docker images`, `docker history` and `docker inspect` (overlay2 graph driver) give
//! each layer the size of its unpacked content: `directory.Size` of the layer's diff directory,
//! the sum of the `lstat` sizes of everything that is not a directory, each inode once. Read from
//! the layer's tar, that is the size of every regular file plus the length of every symlink's
//! target. Hard links add nothing (their inode is counted at the file's own entry), nor do
//! directories, whiteouts, devices and FIFOs; a path written twice counts as its last entry.
//! It is neither the blob's size (compressed) nor the tar's length (headers and padding).
//!
//! Finding it takes the whole uncompressed stream, so it is read once per blob, the first time
//! a command asks, and kept beside the blobs:
//! ```text
//! layer-sizes/sha256/<hex>   the content size of blob <hex>, in decimal ASCII
//! ```
//! A record is a function of its blob's bytes, so it never goes stale: [`Store::remove_blob`]
//! deletes it with the blob, and one left behind is still right if the blob comes back. One
//! that does not parse (a crash while it was written) is read again from the blob. Should the
//! definition above change, the bucket gets a new name.

use std::collections::HashMap;
use std::fs;
use std::io::{self, Read};

use kiln_layer::Digest;

use super::Store;
use crate::error::{StoreError, io_err};

/// The content size of a layer (plain, gzip or zstd), as defined in the module docs.
pub fn content_size<R: Read>(layer: R) -> io::Result<u64> {
    let (reader, _) = kiln_layer::decompress(layer)?;
    let mut archive = tar::Archive::new(reader);
    // Path -> what its last entry adds.
    let mut sizes: HashMap<Vec<u8>, u64> = HashMap::new();
    for entry in archive.entries()? {
        let entry = entry?;
        let header = entry.header();
        let size = match header.entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous => entry.size(),
            // The file's size, not that of the data blocks the archive holds.
            tar::EntryType::GNUSparse => header
                .as_gnu()
                .and_then(|g| g.real_size().ok())
                .unwrap_or_else(|| entry.size()),
            tar::EntryType::Symlink => entry
                .link_name_bytes()
                .map_or(0, |target| target.len() as u64),
            _ => 0,
        };
        sizes.insert(
            kiln_layer::entry::normalized_path(&entry.path_bytes()).to_vec(),
            size,
        );
    }
    Ok(sizes.values().sum())
}

impl Store {
    /// The content size of the layer blob `blob` ([`content_size`]): its record when there is
    /// one, else read from the blob and recorded. A record that cannot be written (a read-only
    /// store) is not an error; the size is read again next time.
    pub fn layer_size(&self, blob: &Digest) -> Result<u64, StoreError> {
        let record = self.layout.layer_size(blob);
        if let Ok(text) = fs::read_to_string(&record)
            && let Ok(size) = text.trim().parse()
        {
            return Ok(size);
        }
        let file = self.open_blob(blob, &format!("layer `{blob}`"))?;
        let size = content_size(io::BufReader::with_capacity(1 << 20, file))
            .map_err(io_err("read the layer", self.blob_path(blob)))?;
        if let Some(dir) = record.parent()
            && fs::create_dir_all(dir).is_ok()
        {
            let _ = self.write_atomic(&record, format!("{size}\n").as_bytes());
        }
        Ok(size)
    }

    /// Deletes the blob `digest` and its layer-size record. A blob that is not there is not
    /// an error. The caller holds the store lock or otherwise knows nothing refers to it.
    pub fn remove_blob(&self, digest: &Digest) -> Result<(), StoreError> {
        let path = self.blob_path(digest);
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err("remove", path)(e)),
        }
        let record = self.layout.layer_size(digest);
        match fs::remove_file(&record) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_err("remove", record)(e)),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::content_size;

    fn header(kind: tar::EntryType, size: u64) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_size(size);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h
    }

    /// What Docker 20.10 (overlay2) shows for this tree is 1000 + 5 + 7 + 29.
    #[test]
    fn counts_files_once_and_link_targets_as_docker_does() {
        let mut b = tar::Builder::new(Vec::new());
        let dir = |b: &mut tar::Builder<Vec<u8>>, p: &str| {
            b.append_data(&mut header(tar::EntryType::Directory, 0), p, &[][..])
                .unwrap();
        };
        let file = |b: &mut tar::Builder<Vec<u8>>, p: &str, data: &[u8]| {
            b.append_data(
                &mut header(tar::EntryType::Regular, data.len() as u64),
                p,
                data,
            )
            .unwrap();
        };
        let link = |b: &mut tar::Builder<Vec<u8>>, kind, p: &str, target: &str| {
            b.append_link(&mut header(kind, 0), p, target).unwrap();
        };
        dir(&mut b, "./");
        dir(&mut b, "./bin/");
        file(&mut b, "./bin/busybox", &[7; 1000]);
        link(&mut b, tar::EntryType::Link, "./bin/ls", "./bin/busybox");
        link(&mut b, tar::EntryType::Symlink, "./bin/sh", "busybox");
        // Written twice: the second entry is what the layer holds.
        file(&mut b, "d/f", b"first version");
        file(&mut b, "./d/f", b"hello");
        file(&mut b, "d/empty", b"");
        file(&mut b, "d/.wh.gone", b"");
        file(&mut b, "d/.wh..wh..opq", b"");
        link(
            &mut b,
            tar::EntryType::Symlink,
            "d/lnk",
            "/a/very/long/target/path/name",
        );
        let mut fifo = header(tar::EntryType::Fifo, 0);
        b.append_data(&mut fifo, "d/fifo", &[][..]).unwrap();
        let tar = b.into_inner().unwrap();
        assert_eq!(content_size(&tar[..]).unwrap(), 1000 + 5 + 7 + 29);
        // The same compressed.
        let (gz, _) =
            kiln_layer::compress_tar(&tar[..], Vec::new(), kiln_layer::Compression::default())
                .unwrap();
        assert_ne!(gz, tar);
        assert_eq!(content_size(&gz[..]).unwrap(), 1000 + 5 + 7 + 29);
    }
}
