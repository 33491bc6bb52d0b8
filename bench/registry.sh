#!/usr/bin/env bash
# Registry benchmark: pull and push of a 100 MiB image in 5 layers (random bytes, gzip) against
# Debian's docker-registry on loopback, kiln against skopeo in the same rounds (interleaved),
# and kiln's pull when every blob is already in the store. Each round starts from an empty
# registry (push) or an empty store / OCI layout (pull). `kiln pull` writes the blobs only, as
# skopeo does (layers are unpacked at first use); "pull and unpack" is a build `FROM` the
# image with a COPY on it (which unpacks the layers as they arrive) against `skopeo copy`
# then `umoci raw unpack`. Prints medians of N rounds and kiln / skopeo.
# Usage: bash bench/registry.sh [WORKDIR]   (docker-registry, skopeo, gzip; ~1 GiB of disk)
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
work="${1:-/tmp/kiln-bench-registry}"
N="${N:-5}"
LAYERS="${LAYERS:-5}"
MB="${MB:-100}"
cargo build --release -q -p kiln --bin kiln
K="${CARGO_TARGET_DIR:-$PWD/target}/release/kiln"
rm -rf "$work"; mkdir -p "$work"

# The image: an OCI layout of LAYERS gzip layers of MB/LAYERS MiB of random bytes each.
layout="$work/layout"
mkdir -p "$layout/blobs/sha256"
echo '{"imageLayoutVersion":"1.0.0"}' > "$layout/oci-layout"
put() { local d; d=$(sha256sum "$1" | cut -d' ' -f1); mv "$1" "$layout/blobs/sha256/$d"; echo "$d"; }
layers=""; diffs=""
for i in $(seq "$LAYERS"); do
    mkdir -p "$work/l$i"
    head -c $((MB * 1024 * 1024 / LAYERS)) /dev/urandom > "$work/l$i/data$i"
    tar -C "$work/l$i" -cf "$work/l$i.tar" .
    diff=$(sha256sum "$work/l$i.tar" | cut -d' ' -f1)
    gzip -1 -n "$work/l$i.tar"
    size=$(stat -c %s "$work/l$i.tar.gz")
    d=$(put "$work/l$i.tar.gz")
    layers="$layers${layers:+,}{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"sha256:$d\",\"size\":$size}"
    diffs="$diffs${diffs:+,}\"sha256:$diff\""
    rm -rf "$work/l$i"
done
arch=$(dpkg --print-architecture 2>/dev/null || echo amd64)
printf '{"architecture":"%s","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":[%s]}}' "$arch" "$diffs" > "$work/config"
csize=$(stat -c %s "$work/config"); c=$(put "$work/config")
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[%s]}' "$c" "$csize" "$layers" > "$work/manifest"
msize=$(stat -c %s "$work/manifest"); m=$(put "$work/manifest")
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"bench"}}]}' "$m" "$msize" > "$layout/index.json"

# The kiln store holding it (layers stay gzip: the push compresses nothing).
src_store="$work/src-store"
"$K" --root "$src_store" load -i "$layout" > /dev/null

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
reg="127.0.0.1:$port"
cat > "$work/registry.yml" <<YML
version: 0.1
log: { level: error, accesslog: { disabled: true } }
storage: { filesystem: { rootdirectory: $work/registry-data } }
http: { addr: $reg }
YML
REG_PID=""
start_registry() {
    docker-registry serve "$work/registry.yml" > "$work/registry.log" 2>&1 &
    REG_PID=$!
    for _ in $(seq 200); do (echo > "/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0; sleep 0.05; done
    echo "docker-registry did not start: see $work/registry.log" >&2; return 1
}
stop_registry() { [ -n "$REG_PID" ] && kill "$REG_PID" 2>/dev/null && wait "$REG_PID" 2>/dev/null || true; REG_PID=""; }
fresh_registry() { stop_registry; rm -rf "$work/registry-data"; start_registry; }
trap stop_registry EXIT

ctx="$work/ctx"; mkdir -p "$ctx"; echo x > "$ctx/f"
printf 'FROM %s\nCOPY f /f\n' "$reg/bench/img:1" > "$ctx/Dockerfile"
kpush=(); spush=(); kpull=(); spull=(); kpresent=(); kunpack=(); sunpack=()
for r in $(seq "$N"); do
    fresh_registry
    rm -rf "$src_store/registry-sources"
    t0=$(now); "$K" --root "$src_store" push -q "sha256:$m" "$reg/bench/img:1" > /dev/null; t1=$(now)
    kpush+=($((t1 - t0)))
    fresh_registry
    t0=$(now); skopeo copy -q --dest-tls-verify=false "oci:$layout:bench" "docker://$reg/bench/img:1" > /dev/null; t1=$(now)
    spush+=($((t1 - t0)))
    # Pulls from the registry skopeo just filled.
    rm -rf "$work/pull-store" "$work/pull-layout"
    t0=$(now); "$K" --root "$work/pull-store" pull -q "$reg/bench/img:1" > /dev/null; t1=$(now)
    kpull+=($((t1 - t0)))
    t0=$(now); skopeo copy -q --src-tls-verify=false "docker://$reg/bench/img:1" "oci:$work/pull-layout:x" > /dev/null; t1=$(now)
    spull+=($((t1 - t0)))
    t0=$(now); "$K" --root "$work/pull-store" pull -q "$reg/bench/img:1" > /dev/null; t1=$(now)
    kpresent+=($((t1 - t0)))
    rm -rf "$work/build-store" "$work/unpack-layout" "$work/rootfs"
    t0=$(now); "$K" --root "$work/build-store" build -q "$ctx" > /dev/null; t1=$(now)
    kunpack+=($((t1 - t0)))
    t0=$(now)
    skopeo copy -q --src-tls-verify=false "docker://$reg/bench/img:1" "oci:$work/unpack-layout:x" > /dev/null
    umoci raw unpack --image "$work/unpack-layout:x" "$work/rootfs" > /dev/null
    t1=$(now)
    sunpack+=($((t1 - t0)))
done
mk() { printf '%s\n' "$@" | median; }
kp=$(mk "${kpush[@]}"); sp=$(mk "${spush[@]}"); kl=$(mk "${kpull[@]}"); sl=$(mk "${spull[@]}"); ka=$(mk "${kpresent[@]}")
ku=$(mk "${kunpack[@]}"); su=$(mk "${sunpack[@]}")
printf '%-34s %10s %10s %14s\n' "${MB} MiB, ${LAYERS} layers, N=$N" "kiln ms" "skopeo ms" "kiln/skopeo"
printf '%-34s %10s %10s %14s\n' "push (empty registry)" "$(ms "$kp")" "$(ms "$sp")" "$(ratio "$kp" "$sp")"
printf '%-34s %10s %10s %14s\n' "pull (empty store)" "$(ms "$kl")" "$(ms "$sl")" "$(ratio "$kl" "$sl")"
printf '%-34s %10s %10s %14s\n' "pull and unpack (+umoci)" "$(ms "$ku")" "$(ms "$su")" "$(ratio "$ku" "$su")"
printf '%-34s %10s %10s %14s\n' "pull, every blob present" "$(ms "$ka")" "-" "-"
