#!/usr/bin/env bash
# Large-context rebuild benchmark: a context of 1 GiB in 50,000 files, built once, then
# rebuilt after changing one small file, by kiln and by Docker 20.10's BuildKit (a private
# dockerd) in interleaved rounds. kiln re-checks the context through its stat cache and
# re-runs only the steps that copy the changed file; BuildKit re-syncs the context and does
# the same. Prints medians (ms) and the ratio kiln / BuildKit.
# Usage: bash bench/context.sh [WORKDIR]    (root; docker.io, busybox-static; ~3 GiB of disk)
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
work="${1:-/tmp/kiln-bench-context}"
N="${N:-3}"
FILES="${FILES:-50000}"
cargo build --release -q -p kiln --bin kiln
K="$PWD/target/release/kiln"
rm -rf "$work"; mkdir -p "$work"


# The context: FILES files of ~21 KiB (1 GiB in all) in 500 directories, and one small file.
ctx="$work/ctx"; mkdir -p "$ctx/data"
python3 - "$ctx/data" "$FILES" <<'PY'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
size = (1 << 30) // n
chunk = os.urandom(1 << 20)
for i in range(n):
    d = os.path.join(root, f"d{i % 500:03d}")
    os.makedirs(d, exist_ok=True)
    off = (i * 7919) % ((1 << 20) - size)
    with open(os.path.join(d, f"f{i:05d}"), "wb") as f:
        f.write(chunk[off:off + size])
PY
echo "v0" > "$ctx/app.txt"
cat > "$ctx/Dockerfile" <<'DF'
FROM busybox
COPY data/ /data/
COPY app.txt /app.txt
RUN cat /app.txt > /seen
DF
echo "context: $(du -sh "$ctx" | cut -f1) in $(find "$ctx" -type f | wc -l) files"

KILN_ROOT="$work/store" bash scripts/make-busybox-base.sh "$K" busybox:latest > /dev/null
"$K" --root "$work/store" save --format docker -o "$work/bb.tar" busybox:latest
start_dockerd "$work/dockerd"
"${D[@]}" load -i "$work/bb.tar" > /dev/null

t=$(now); "$K" --root "$work/store" build -q "$ctx" > /dev/null; kfirst=$(( $(now) - t ))
t=$(now); DOCKER_BUILDKIT=1 "${D[@]}" build --network=host -q "$ctx" > /dev/null; bfirst=$(( $(now) - t ))
kr=(); br=(); kn=(); bn=()
for i in $(seq "$N"); do
    echo "v$i" > "$ctx/app.txt"
    t=$(now); "$K" --root "$work/store" build -q "$ctx" > /dev/null; kr+=($(( $(now) - t )))
    t=$(now); DOCKER_BUILDKIT=1 "${D[@]}" build --network=host -q "$ctx" > /dev/null; br+=($(( $(now) - t )))
    t=$(now); "$K" --root "$work/store" build -q "$ctx" > /dev/null; kn+=($(( $(now) - t )))
    t=$(now); DOCKER_BUILDKIT=1 "${D[@]}" build --network=host -q "$ctx" > /dev/null; bn+=($(( $(now) - t )))
done
mk=$(printf '%s\n' "${kr[@]}" | median); mb=$(printf '%s\n' "${br[@]}" | median)
nk=$(printf '%s\n' "${kn[@]}" | median); nb=$(printf '%s\n' "${bn[@]}" | median)
printf '%-36s %10s %10s %8s\n' build kiln BuildKit k/bk
printf '%-36s %10s %10s %8s\n' "first build (1 GiB context)" "$(ms $kfirst)" "$(ms $bfirst)" "$(awk -v a=$kfirst -v b=$bfirst 'BEGIN{printf "%.2f", a/b}')"
printf '%-36s %10s %10s %8s\n' "rebuild after changing one file" "$(ms $mk)" "$(ms $mb)" "$(awk -v a=$mk -v b=$mb 'BEGIN{printf "%.2f", a/b}')"
printf '%-36s %10s %10s %8s\n' "no-op rebuild" "$(ms $nk)" "$(ms $nb)" "$(awk -v a=$nk -v b=$nb 'BEGIN{printf "%.2f", a/b}')"
