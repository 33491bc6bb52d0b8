//! What pulls and pushes tell their caller as they go.

use kiln_oci::Descriptor;

/// How a blob's transfer ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobOutcome {
    /// Already there (in the store for a pull, in the registry for a push): nothing moved.
    Present,
    /// Downloaded.
    Fetched,
    /// Uploaded.
    Uploaded,
    /// Mounted from another repository of the registry: nothing moved.
    Mounted,
    /// Not pushed: a foreign (non-distributable) layer, which stays where its URLs say.
    Foreign,
}

/// Told of each blob of a pull or push, from several threads at once. Every method does
/// nothing by default.
pub trait Progress: Sync {
    /// The transfer of `blob` begins.
    fn blob_started(&self, blob: &Descriptor) {
        let _ = blob;
    }
    /// `done` bytes of `blob` have moved so far (of `blob.size`).
    fn blob_progress(&self, blob: &Descriptor, done: u64) {
        let _ = (blob, done);
    }
    /// `blob` is done.
    fn blob_finished(&self, blob: &Descriptor, outcome: BlobOutcome) {
        let _ = (blob, outcome);
    }
}

/// A [`Progress`] that listens to nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {}
