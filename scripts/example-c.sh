#!/usr/bin/env bash
# The classic multi-stage pattern: build a C program with gcc (installed from Debian's mirror
# inside the builder stage) on a Debian base made locally with debootstrap, and ship only the
# static binary in `scratch`. Needs root and Debian's mirror; the base is cached in $WORK.
# Usage: bash scripts/example-c.sh      (store: $KILN_ROOT, default /tmp/kiln-example)
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
for p in build-essential debootstrap; do
    dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need[@]}" >/dev/null
fi
cargo build --release --locked -p kiln
kiln=$PWD/target/release/kiln
export KILN_ROOT=${KILN_ROOT:-/tmp/kiln-example}
work=${WORK:-/tmp/kiln-example-debian}
mkdir -p "$work"
if [ ! -f "$work/bookworm.tar" ]; then
    rm -rf "$work/rootfs"
    debootstrap --variant=minbase bookworm "$work/rootfs" >/dev/null
    tar --sort=name -C "$work/rootfs" -cf "$work/bookworm.tar" .
fi
"$kiln" import "$work/bookworm.tar" debian:bookworm >/dev/null
"$kiln" build --progress=plain -t kiln-example/c-hello:latest examples/c-hello
"$kiln" run --rm kiln-example/c-hello:latest
"$kiln" images kiln-example/c-hello 2>/dev/null || "$kiln" images
