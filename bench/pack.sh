#!/usr/bin/env bash
# Packing benchmark: a 1 GiB tree of 50,000 files into a gzip layer with kiln-layer, beside
# `tar -c | gzip` and `tar -c | zstd` on the same tree in the same run. Prints wall time,
# output size, ratio to tar|gzip and peak memory (from /usr/bin/time -v).
# Usage: bash bench/pack.sh [WORKDIR]   (needs ~3 GiB free; the tree is kept for reruns)
set -euo pipefail
cd "$(dirname "$0")/.."
work="${1:-/tmp/kiln-bench}"
tree="$work/tree"
mkdir -p "$work"
cargo build --release -q -p kiln-layer --example pack
pack=target/release/examples/pack

if [ ! -f "$tree/.done" ]; then
    echo "making $tree (1 GiB, 50,000 files, content sampled from /usr) ..." >&2
    rm -rf "$tree"
    python3 - "$tree" <<'PY'
import os, random, sys
root = sys.argv[1]
random.seed(42)
corpus = bytearray()
for d in ("/usr/bin", "/usr/share/doc", "/usr/lib/x86_64-linux-gnu", "/usr/share/perl5", "/usr/lib/python3"):
    for dp, _, fs in os.walk(d):
        for f in fs:
            p = os.path.join(dp, f)
            if os.path.isfile(p) and not os.path.islink(p):
                try:
                    corpus += open(p, "rb").read()[:1 << 20]
                except OSError:
                    pass
            if len(corpus) > 256 << 20:
                break
corpus = bytes(corpus)
total, n, target = 0, 50000, 1 << 30
avg = target // n
for i in range(n):
    d = os.path.join(root, "d%03d" % (i % 500), "s%02d" % (i % 7))
    os.makedirs(d, exist_ok=True)
    size = max(1, int(random.expovariate(1 / avg)))
    if i == n - 1:
        size = max(1, target - total)
    off = random.randrange(0, len(corpus) - size - 1)
    with open(os.path.join(d, "f%05d" % i), "wb") as fh:
        fh.write(corpus[off:off + size])
    total += size
PY
    touch "$tree/.done"
fi
du -sh --apparent-size "$tree" >&2
# Warm the page cache so every contender reads from memory.
tar -C "$tree" -cf - . > /dev/null

measure() { # name, command
    local name=$1; shift
    /usr/bin/time -v -o "$work/$name.time" bash -c "$*" > /dev/null
    local wall rss
    wall=$(grep 'Elapsed (wall clock)' "$work/$name.time" | awk '{print $NF}')
    rss=$(grep 'Maximum resident set size' "$work/$name.time" | awk '{print $NF}')
    echo "$name $wall $rss"
}
to_secs() { awk -F: '{ if (NF==3) print $1*3600+$2*60+$3; else print $1*60+$2 }' <<<"$1"; }

results=()
results+=("$(measure tar_gzip "tar -C '$tree' -cf - . | gzip -6 > '$work/out.tar.gz'")")
results+=("$(measure tar_zstd "tar -C '$tree' -cf - . | zstd -3 -q -T1 > '$work/out.tar.zst'")")
results+=("$(measure kiln_gzip "'$pack' '$tree' '$work/out.kiln.gz' gzip")")
results+=("$(measure kiln_zstd "'$pack' '$tree' '$work/out.kiln.zst' zstd")")

base=""
printf "%-10s %9s %14s %8s %10s %13s\n" tool seconds bytes size% "speed x" "peak RSS MiB"
for r in "${results[@]}"; do
    read -r name wall rss <<<"$r"
    secs=$(to_secs "$wall")
    case $name in
        tar_gzip) file=out.tar.gz ;; tar_zstd) file=out.tar.zst ;; kiln_gzip) file=out.kiln.gz ;; kiln_zstd) file=out.kiln.zst ;;
    esac
    bytes=$(stat -c %s "$work/$file")
    [ -z "$base" ] && base="$secs $bytes"
    read -r bsecs bbytes <<<"$base"
    awk -v n="$name" -v s="$secs" -v b="$bytes" -v bs="$bsecs" -v bb="$bbytes" -v r="$rss" \
        'BEGIN { printf "%-10s %9.2f %14d %7.1f%% %9.2fx %13.1f\n", n, s, b, 100*b/bb, bs/s, r/1024 }'
done
echo "(size% and speed x are relative to tar|gzip; the layer's own tar includes what tar -c writes plus PAX where needed)"
