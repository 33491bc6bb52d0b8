#!/usr/bin/env bash
# Build benchmark: the shipped busybox example and every conformance Dockerfile, built by kiln,
# by Docker 20.10's BuildKit (a private dockerd) and by buildah (when installed), in the same
# run with interleaved rounds, cold and warm. Prints medians (ms) and ratios kiln / peer.
#
# cold: kiln with an empty store except the imported base (snapshots unpacked once, as a
#       store that has the base image would have them); BuildKit after `docker builder prune`
#       with --no-cache; buildah with --no-cache.
# warm: the same build again on the same store / daemon: a no-op rebuild, every step a
#       cache hit for all three.
# Usage: bash bench/build.sh [WORKDIR]    (root; docker.io, busybox-static; buildah optional)
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
work="${1:-/tmp/kiln-bench-build}"
N="${N:-5}"
release_kiln "$work"


busybox_bases "$K" "$work"

start_buildah "$work/buildah" vfs "$work/bb.tar"

cases=(examples/busybox-app)
for c in crates/kiln/tests/conformance/*/; do cases+=("${c%/}"); done

flags_for() {
    local c=$1 f=()
    [ -f "$c/args" ] && while read -r a; do f+=(--build-arg "$a"); done < "$c/args"
    [ -f "$c/target" ] && f+=(--target "$(cat "$c/target")")
    echo "${f[@]}"
}

printf '%-46s %9s %9s %9s %7s %9s %9s %7s\n' case kiln-cold bk-cold bh-cold k/bk warm-kiln warm-bk k/bk
declare -a all_kc all_bc
for c in "${cases[@]}"; do
    name=$(basename "$c")
    read -r -a fl <<< "$(flags_for "$c")"
    kc=(); bc=(); hc=(); kw=(); bw=(); hfail=0
    for _ in $(seq "$N"); do
        # kiln cold: a copy of the base store (base image and its snapshot only).
        rm -rf "$work/k"; cp -a "$base_store" "$work/k"
        t=$(now); "$K" --root "$work/k" build -q "${fl[@]}" "$c" > /dev/null; kc+=($(( $(now) - t )))
        t=$(now); "$K" --root "$work/k" build -q "${fl[@]}" "$c" > /dev/null; kw+=($(( $(now) - t )))
        "${D[@]}" builder prune -af > /dev/null
        t=$(now); DOCKER_BUILDKIT=1 "${D[@]}" build --network=host --no-cache -q "${fl[@]}" "$c" > /dev/null; bc+=($(( $(now) - t )))
        t=$(now); DOCKER_BUILDKIT=1 "${D[@]}" build --network=host -q "${fl[@]}" "$c" > /dev/null; bw+=($(( $(now) - t )))
        if [ $have_buildah = 1 ]; then
            t=$(now)
            if "${B[@]}" build --layers --no-cache --pull=never -q "${fl[@]}" "$c" > /dev/null 2>&1; then
                hc+=($(( $(now) - t )))
            else
                hfail=1
            fi
        fi
    done
    mk=$(printf '%s\n' "${kc[@]}" | median); mb=$(printf '%s\n' "${bc[@]}" | median)
    wk=$(printf '%s\n' "${kw[@]}" | median); wb=$(printf '%s\n' "${bw[@]}" | median)
    # A failed buildah run is not a fast one: the case shows `fail`.
    mh="-"; [ $have_buildah = 1 ] && mh=$(ms "$(printf '%s\n' "${hc[@]}" | median)")
    [ $hfail = 1 ] && mh=fail
    all_kc+=("$mk"); all_bc+=("$mb")
    printf '%-46s %9s %9s %9s %7s %9s %9s %7s\n' "$name" "$(ms "$mk")" "$(ms "$mb")" "$mh" "$(ratio "$mk" "$mb")" "$(ms "$wk")" "$(ms "$wb")" "$(ratio "$wk" "$wb")"
done
sk=0; sb=0
for i in "${!all_kc[@]}"; do sk=$((sk + all_kc[i])); sb=$((sb + all_bc[i])); done
printf '%-46s %9s %9s %9s %7s\n' "TOTAL (sum of cold medians)" "$(ms $sk)" "$(ms $sb)" "" "$(ratio $sk $sb)"
