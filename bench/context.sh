#!/usr/bin/env bash
# Large-context rebuild benchmark: a context of 1 GiB in 50,000 files, built once, then
# rebuilt after changing one small file, by kiln and by Docker 20.10's BuildKit (a private
# dockerd) in interleaved rounds. kiln re-checks the context through its stat cache and
# re-runs only the steps that copy the changed file; BuildKit re-syncs the context and does
# the same. Prints medians (ms) and the ratio kiln / BuildKit.
# Usage: bash bench/context.sh [WORKDIR]    (root; docker.io, busybox-static; ~3 GiB of disk)
set -euo pipefail
cd "$(dirname "$0")/.."
work="${1:-/tmp/kiln-bench-context}"
N="${N:-3}"
FILES="${FILES:-50000}"
cargo build --release -q -p kiln --bin kiln
K="$PWD/target/release/kiln"
rm -rf "$work"; mkdir -p "$work"

now() { date +%s%N; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
ms() { awk -v ns="$1" 'BEGIN {printf "%.0f", ns/1e6}'; }

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
dd="$work/dockerd"; mkdir -p "$dd"
dockerd --iptables=false --ip-forward=false --ip-masq=false --bridge=none \
    --data-root "$dd/data" --exec-root "$dd/exec" --pidfile "$dd/pid" \
    -H "unix://$dd/docker.sock" > "$dd/log" 2>&1 &
dpid=$!
trap 'kill $dpid 2>/dev/null; wait $dpid 2>/dev/null || true' EXIT
D=(/usr/bin/docker -H "unix://$dd/docker.sock")
for _ in $(seq 100); do "${D[@]}" version > /dev/null 2>&1 && break; sleep 0.3; done
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
