#!/usr/bin/env bash
# RUN-step benchmark: the overhead of a `RUN true` step in kiln (namespaces + overlay setup,
# diff, layer commit; measured as a whole `kiln run --commit`, so kiln's start-up and store
# access are included) and diffing an upper dir of 10,000 new files, beside the same steps in
# BuildKit (Docker 20.10, a private dockerd, `--no-cache`) in the same run. BuildKit's step
# overhead is its build time with the step minus its build time of the same Dockerfile without
# it (an ENV instead), so its client/daemon round trip is not counted against it.
# Prints medians of N runs (default 15) and the ratios BuildKit / kiln.
# Usage: bash bench/run-step.sh [WORKDIR]   (root; Debian packages docker.io and busybox-static)
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
# Step overheads are small: one decimal.
ms() { awk -v ns="$1" 'BEGIN {printf "%.1f", ns/1e6}'; }
work="${1:-/tmp/kiln-bench-run}"
N="${N:-15}"
cargo build --release -q -p kiln --bin kiln
cargo build --release -q -p kiln-layer --example diff
K="$PWD/target/release/kiln"
DIFF="$PWD/target/release/examples/diff"
rm -rf "$work"; mkdir -p "$work"
root="$work/store"

# A busybox base image, made here (no registry).
rootfs="$work/rootfs"
mkdir -p "$rootfs/bin" "$rootfs/etc" "$rootfs/tmp" "$rootfs/root"
cp /bin/busybox "$rootfs/bin/busybox"
for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln "$rootfs/bin/busybox" "$rootfs/bin/$a"; done
printf 'root:x:0:0:root:/root:/bin/sh\n' > "$rootfs/etc/passwd"
printf 'root:x:0:\n' > "$rootfs/etc/group"
chmod 1777 "$rootfs/tmp"
tar --sort=name -C "$rootfs" -cf "$work/rootfs.tar" .
"$K" --root "$root" import "$work/rootfs.tar" bench/bb:1 > /dev/null
"$K" --root "$root" run bench/bb:1 true   # unpack the snapshot once


# Every contender runs once per round, rounds interleaved, so load from other processes on the
# machine falls on all of them alike; each cell is the median over the rounds.
TEN_K='mkdir /d && cd /d && seq 10000 | xargs touch'
upper="$work/upper"; mkdir -p "$upper/d"
(cd "$upper/d" && seq 10000 | xargs touch)
lower=$(ls -d "$root"/snapshots/*/fs)

have_docker=0
if command -v dockerd > /dev/null && [ -x /usr/bin/docker ]; then
    have_docker=1
    mkdir -p "$work/ctx"
    start_dockerd "$work/dockerd"
    "$K" --root "$root" save --format docker -o "$work/bb-docker.tar" bench/bb:1
    "${D[@]}" load -i "$work/bb-docker.tar" > /dev/null
    for body in 'ENV BENCH=1' 'RUN true' "RUN $TEN_K"; do
        printf 'FROM bench/bb:1\n%s\n' "$body" > "$work/Dockerfile.$(echo "$body" | cksum | cut -d' ' -f1)"
        # One untimed build each: the first build of a daemon pays for its warm-up.
        DOCKER_BUILDKIT=1 "${D[@]}" build --network=host -q -t bench/warm \
            -f "$work/Dockerfile.$(echo "$body" | cksum | cut -d' ' -f1)" "$work/ctx" > /dev/null
    done
else
    echo "dockerd not found: BuildKit columns left empty (apt-get install docker.io)" >&2
fi
dockerfile() { echo "$work/Dockerfile.$(echo "$1" | cksum | cut -d' ' -f1)"; }
bk() { # Dockerfile body -> ns of one uncached build
    local t0 t1
    t0=$(now)
    DOCKER_BUILDKIT=1 "${D[@]}" build --network=host --no-cache -q -t bench/out \
        -f "$(dockerfile "$1")" "$work/ctx" > /dev/null
    t1=$(now); echo $((t1 - t0))
}
timed() { local t0 t1; t0=$(now); "$@" > /dev/null; t1=$(now); echo $((t1 - t0)); }

: > "$work/samples"
for i in $(seq "$N"); do
    {
        echo "k_true $(timed "$K" --root "$root" run --commit "bench/out:$i" bench/bb:1 true)"
        echo "k_nocommit $(timed "$K" --root "$root" run bench/bb:1 true)"
        echo "k_naive $(timed env KILN_SNAPSHOTTER=naive "$K" --root "$root" run --commit "bench/naive:$i" bench/bb:1 true)"
        echo "k_10k $(timed "$K" --root "$root" run --commit "bench/ten:$i" bench/bb:1 sh -c "$TEN_K")"
        echo "d_10k $(awk -v s="$("$DIFF" upper "$upper" $lower 2>/dev/null)" 'BEGIN {printf "%d", s*1e9}')"
        if [ "$have_docker" = 1 ]; then
            echo "b_base $(bk 'ENV BENCH=1')"
            echo "b_true $(bk 'RUN true')"
            echo "b_10k $(bk "RUN $TEN_K")"
        fi
    } 2>/dev/null >> "$work/samples"
done
cell() { local v; v=$(awk -v k="$1" '$1 == k {print $2}' "$work/samples" | median); echo "${v:--}"; }
k_true=$(cell k_true); k_true_nocommit=$(cell k_nocommit); k_true_naive=$(cell k_naive)
k_10k=$(cell k_10k); d_10k_ns=$(cell d_10k)
b_base=$(cell b_base); b_true=$(cell b_true); b_10k=$(cell b_10k)

row() { # name kiln_ns buildkit_ns
    local r="-" b="-"
    if [ "$3" != "-" ]; then
        b=$(ms "$3")
        r=$(awk -v b="$3" -v k="$2" 'BEGIN {printf "%.1fx", b/k}')
    fi
    printf '%-52s %10s %12s %9s\n' "$1" "$(ms "$2")" "$b" "$r"
}
sub() { [ "$1" = "-" ] && echo - || echo $(($1 - $2)); }
echo
echo "median of $N runs, milliseconds (ratio = BuildKit / kiln; higher is better for kiln)"
printf '%-52s %10s %12s %9s\n' "step" "kiln" "BuildKit" "ratio"
row "RUN true: whole step, overlay (kiln run --commit)" "$k_true" "$(sub "$b_true" "$b_base")"
row "RUN true: without commit (kiln run)" "$k_true_nocommit" "-"
row "RUN true: whole step, naive snapshotter" "$k_true_naive" "-"
row "RUN 10,000 new files: whole step" "$k_10k" "$(sub "$b_10k" "$b_base")"
row "diff of an upper dir of 10,000 new files (gzip)" "$d_10k_ns" "-"
[ "$b_base" != "-" ] && printf '%-52s %10s %12s\n' "(BuildKit build without the step, subtracted)" "" "$(ms "$b_base")"
