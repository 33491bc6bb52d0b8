#!/usr/bin/env bash
# Image analysis benchmark: an image of 1 GiB in 50,000 files over 10 layers (the last one
# writes over the files of the one before, so there is waste to find), analysed by
# `kiln analyze --format json` (tar headers only, seeking past content in the store's
# uncompressed blobs) and by dive 0.13.1 (`--source docker-archive --json`, on a `kiln save
# --format docker` of the same image; dive reads and hashes every file), and diffed by
# `kiln diff` against itself (every byte hashed). Prints medians of N runs: wall time and
# peak RSS (GNU time -v), and kiln / dive. The page cache is warm for both.
# Usage: bash bench/analyze.sh [WORKDIR]   (python3; GNU time; dive via scripts/dive.sh;
#                                          ~3.5 GiB of disk)
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
work="${1:-/tmp/kiln-bench-analyze}"
N="${N:-3}"
FILES="${FILES:-50000}"
SIZE_MB="${SIZE_MB:-1024}"
LAYERS="${LAYERS:-10}"
release_kiln "$work"
dive="$(bash scripts/dive.sh)"

# The context: LAYERS directories of FILES/LAYERS files each (SIZE_MB in all), 100 subfolders each.
ctx="$work/ctx"; mkdir -p "$ctx"
python3 - "$ctx" "$FILES" "$SIZE_MB" "$LAYERS" <<'PY'
import os, sys
root, n, mb, layers = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
size = (mb << 20) // n
chunk = os.urandom(1 << 20)
for i in range(n):
    d = os.path.join(root, f"l{i % layers}", f"d{(i // layers) % 100:02d}")
    os.makedirs(d, exist_ok=True)
    off = (i * 7919) % ((1 << 20) - size)
    with open(os.path.join(d, f"f{i // layers:05d}"), "wb") as f:
        f.write(chunk[off:off + size])
PY
{
    echo "FROM scratch"
    for l in $(seq 0 $((LAYERS - 2))); do echo "COPY l$l /l$l"; done
    echo "COPY l$((LAYERS - 1)) /l$((LAYERS - 2))"
} > "$ctx/Dockerfile"
"$K" --root "$work/store" build -q -t big:1 "$ctx" > /dev/null
"$K" --root "$work/store" save --format docker -o "$work/big.tar" big:1
echo "image: $LAYERS layers, $(du -sh "$work/big.tar" | cut -f1) as a docker archive, $FILES files"

# measure NAME CMD...: N runs; appends "NAME ms rss_kib" (medians) to $work/results.
: > "$work/results"
measure() {
    local name=$1; shift
    local times=() rss=()
    for _ in $(seq "$N"); do
        /usr/bin/time -v -o "$work/time.txt" "$@" > /dev/null 2>&1
        times+=("$(awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,p,":"); s=0; for(i=1;i<=n;i++) s=s*60+p[i]; printf "%.0f", s*1000}' "$work/time.txt")")
        rss+=("$(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/time.txt")")
    done
    echo "$name $(printf '%s\n' "${times[@]}" | median) $(printf '%s\n' "${rss[@]}" | median)" >> "$work/results"
}
measure "kiln-analyze" "$K" --root "$work/store" analyze big:1 --format json
measure "kiln-html" "$K" --root "$work/store" analyze big:1 --format html -o "$work/report.html"
measure "dive" "$dive" --source docker-archive "$work/big.tar" --json "$work/dive.json"
measure "kiln-diff" "$K" --root "$work/store" diff big:1 big:1

# The two agree on the numbers (a check, not a timing).
"$K" --root "$work/store" analyze big:1 --format json > "$work/kiln.json" || true
python3 - "$work/kiln.json" "$work/dive.json" <<'PY'
import json, sys
k, d = (json.load(open(p))["image"] for p in sys.argv[1:])
for key in ("sizeBytes", "inefficientBytes", "efficiencyScore"):
    assert k[key] == d[key], (key, k[key], d[key])
print(f"numbers agree: efficiency {k['efficiencyScore']:.4f}, {k['inefficientBytes']} bytes wasted, "
      f"{len(k['fileReference'])} inefficient files")
PY

printf '%-14s %10s %14s\n' tool "time (ms)" "peak RSS (MiB)"
while read -r name ms rss; do
    printf '%-14s %10s %14s\n' "$name" "$ms" "$(awk -v k="$rss" 'BEGIN {printf "%.1f", k/1024}')"
done < "$work/results"
k=$(awk '$1=="kiln-analyze" {print $2}' "$work/results")
d=$(awk '$1=="dive" {print $2}' "$work/results")
echo "kiln analyze / dive (time): $(ratio "$k" "$d")"
