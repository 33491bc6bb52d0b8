#!/usr/bin/env bash
# The README's first command: build kiln, make a busybox base image locally (no registry),
# build the multi-stage example `examples/busybox-app` and run the result.
# Works on a fresh Debian 12 machine as root with Rust's cargo installed.
# Usage: bash scripts/example.sh        (store: $KILN_ROOT, default /tmp/kiln-example)
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
for p in build-essential busybox-static; do
    dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need[@]}" >/dev/null
fi
command -v cargo >/dev/null || { echo "error: cargo not found; install Rust (rustup) first" >&2; exit 1; }

cargo build --release --locked -p kiln
kiln=$PWD/target/release/kiln
export KILN_ROOT=${KILN_ROOT:-/tmp/kiln-example}

bash scripts/make-busybox-base.sh "$kiln" busybox:latest
echo "== the plan"
"$kiln" outline examples/busybox-app
echo "== the build"
"$kiln" build --progress=plain -t kiln-example/greet:latest examples/busybox-app
echo "== the result"
"$kiln" run --rm kiln-example/greet:latest
"$kiln" history kiln-example/greet:latest
