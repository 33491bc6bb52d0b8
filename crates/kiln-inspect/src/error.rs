//! What can go wrong while inspecting images.

use kiln_layer::Digest;
use kiln_oci::StoreError;

/// An image or layer that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    /// The store could not give the image or a blob.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A layer blob is not a readable tar stream.
    #[error("cannot read layer `{digest}`")]
    Layer {
        /// The layer's blob digest.
        digest: Digest,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}
