#!/usr/bin/env bash
# Large-context rebuild benchmark: a context of 1 GiB in 50,000 files (or SIZE_MB in FILES),
# built once, then rebuilt after changing one small file outside the big COPY, and after
# changing one file inside it (both then recopy the whole directory and rerun the RUN), by kiln, by Docker 20.10's BuildKit (a private
# dockerd) and by buildah (when installed; overlay storage, --layers) in interleaved rounds.
# kiln re-checks the context through its stat cache and re-runs only the steps that copy the
# changed file; BuildKit re-syncs the context and does the same; buildah re-hashes the
# context's content. Prints medians (ms) and the ratios kiln / BuildKit and kiln / buildah.
# Usage: bash bench/context.sh [WORKDIR]    (root; docker.io, busybox-static, skopeo;
#                                            buildah optional; ~4 GiB of disk)
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
work="${1:-/tmp/kiln-bench-context}"
N="${N:-3}"
FILES="${FILES:-50000}"
SIZE_MB="${SIZE_MB:-1024}"
release_kiln "$work"


# The context: FILES files (SIZE_MB in all) in 500 directories, and one small file.
ctx="$work/ctx"; mkdir -p "$ctx/data"
make_files "$ctx/data" "$FILES" "$SIZE_MB"
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

start_buildah "$work/buildah" overlay "$work/bb.tar"
kiln() { "$K" --root "$work/store" build -q "$ctx" > /dev/null; }
buildkit() { DOCKER_BUILDKIT=1 "${D[@]}" build --network=host -q "$ctx" > /dev/null; }
buildah_() { [ $have_buildah = 0 ] || "${B[@]}" build --layers --pull=never -q -t ctxbench "$ctx" > /dev/null; }
# time_of VAR CMD: runs CMD and sets VAR to its wall time (ns).
time_of() { local start; start=$(now); "${@:2}"; printf -v "$1" '%s' $(( $(now) - start )); }

# First builds, interleaved: kiln into a fresh copy of the base store, BuildKit after
# `builder prune -af` (its context copy and cache gone), each after `sync` so neither pays
# for writing back what came before (the context just generated, say).
cp -a "$work/store" "$work/base-store"
kf=(); bf=()
for i in $(seq "$N"); do
    rm -rf "$work/store"; cp -a "$work/base-store" "$work/store"; sync
    time_of t kiln; kf+=("$t")
    "${D[@]}" builder prune -af > /dev/null; sync
    time_of t buildkit; bf+=("$t")
done
sync; time_of hfirst buildah_
kr=(); br=(); hr=(); kn=(); bn=(); hn=()
for i in $(seq "$N"); do
    echo "v$i" > "$ctx/app.txt"
    time_of t kiln; kr+=("$t"); time_of t buildkit; br+=("$t"); time_of t buildah_; hr+=("$t")
    time_of t kiln; kn+=("$t"); time_of t buildkit; bn+=("$t"); time_of t buildah_; hn+=("$t")
done
# A change inside the big COPY: its layer and everything after it are rebuilt.
ki=(); bi=(); hi=()
for i in $(seq "$N"); do
    printf 'changed %s' "$i" >> "$ctx/data/d001/f00001"
    time_of t kiln; ki+=("$t"); time_of t buildkit; bi+=("$t"); time_of t buildah_; hi+=("$t")
done
med() { printf '%s\n' "$@" | median; }
row() {  # label kiln buildkit buildah (ns)
    local h="-" kh="-"
    if [ $have_buildah = 1 ]; then h=$(ms "$4"); kh=$(ratio "$2" "$4"); fi
    printf '%-36s %10s %10s %10s %8s %8s\n' "$1" "$(ms "$2")" "$(ms "$3")" "$h" "$(ratio "$2" "$3")" "$kh"
}
printf '%-36s %10s %10s %10s %8s %8s\n' build kiln BuildKit buildah k/bk k/bh
row "first build ($SIZE_MB MiB, $FILES files)" "$(med "${kf[@]}")" "$(med "${bf[@]}")" "$hfirst"
row "rebuild after changing one file" "$(med "${kr[@]}")" "$(med "${br[@]}")" "$(med "${hr[@]}")"
row "no-op rebuild" "$(med "${kn[@]}")" "$(med "${bn[@]}")" "$(med "${hn[@]}")"
row "change inside the big COPY, then RUN" "$(med "${ki[@]}")" "$(med "${bi[@]}")" "$(med "${hi[@]}")"
