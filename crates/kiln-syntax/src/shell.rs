//! Shell-word expansion (placeholder module, being written).
