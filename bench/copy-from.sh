#!/usr/bin/env bash
# The multi-stage pattern itself (issue 12's workload): two stages whose RUN makes FILES files
# each, a stage that `COPY --from`s both trees and runs a small RUN, and a final stage that
# copies three small files; plus a RUN that bind-mounts one tree from its stage. Timed for
# kiln, Docker 20.10's BuildKit (a private dockerd) and buildah (when installed; overlay
# storage, --layers) in the same run, interleaved: a cold build and a no-op rebuild, for
# FILES = 3,000 and 30,000 (or $FILES). Prints medians (ms) and ratios; a no-op rebuild must
# not grow with FILES.
# Each tool's previous store is deleted before its cold build. On an ext4 without a journal
# (as on these machines) inode allocation skips inodes deleted in the last 30 s one by one
# (fs/ext4/ialloc.c, recently_deleted), so a cold build right after a big delete measures
# that scan as much as the builder. SETTLE=35 waits that long after each delete, so the two
# states can be compared; the default (0) measures the unsettled state.
# Usage: bash bench/copy-from.sh [WORKDIR]    (root; docker.io, busybox-static; buildah optional)
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
work="${1:-/tmp/kiln-bench-copy-from}"
N="${N:-3}"
release_kiln "$work"

busybox_bases "$K" "$work"
start_buildah "$work/buildah" overlay "$work/bb.tar"
SETTLE="${SETTLE:-0}"
settle() { [ "$SETTLE" = 0 ] || sleep "$SETTLE"; }

context() {
    local dir=$1 files=$2
    mkdir -p "$dir"
    cat > "$dir/Dockerfile" <<DF
FROM busybox AS a
RUN mkdir /x && for i in \$(seq 1 $files); do echo "a \$i" > /x/f\$i; done && md5sum /x/* > /x.sum
FROM busybox AS b
RUN mkdir /x && for i in \$(seq 1 $files); do echo "b \$i" > /x/f\$i; done && md5sum /x/* > /x.sum
FROM busybox AS c
COPY --from=a /x /a
COPY --from=b /x /b
RUN ls /a /b | wc -l > /n
RUN --mount=from=a,source=/x,target=/m ls /m | wc -l > /m.n
FROM busybox
COPY --from=c /n /n
COPY --from=c /m.n /m.n
COPY --from=a /x.sum /a.sum
COPY --from=b /x.sum /b.sum
DF
}

printf '%-16s %9s %9s %9s %6s %6s %9s %9s %9s %6s\n' workload kiln-cold bk-cold bh-cold k/bk k/bh \
    noop-kiln noop-bk noop-bh k/bk
for files in ${FILES:-3000 30000}; do
    ctx="$work/ctx-$files"
    context "$ctx" "$files"
    kc=(); bc=(); hc=(); kw=(); bw=(); hw=()
    for _ in $(seq "$N"); do
        rm -rf "$work/k"; cp -a "$base_store" "$work/k"; settle
        t=$(now); "$K" --root "$work/k" build -q "$ctx" > /dev/null; kc+=($(( $(now) - t )))
        t=$(now); "$K" --root "$work/k" build -q "$ctx" > /dev/null; kw+=($(( $(now) - t )))
        "${D[@]}" builder prune -af > /dev/null; settle
        t=$(now); DOCKER_BUILDKIT=1 "${D[@]}" build --network=host --no-cache -q "$ctx" > /dev/null; bc+=($(( $(now) - t )))
        t=$(now); DOCKER_BUILDKIT=1 "${D[@]}" build --network=host -q "$ctx" > /dev/null; bw+=($(( $(now) - t )))
        if [ $have_buildah = 1 ]; then
            "${B[@]}" rmi -af > /dev/null 2>&1 || true
            skopeo copy -q "docker-archive:$work/bb.tar" \
                "containers-storage:[overlay@$work/buildah/root+$work/buildah/run]docker.io/library/busybox:latest" > /dev/null
            settle
            t=$(now); "${B[@]}" build --layers --pull=never -q "$ctx" > /dev/null 2>&1; hc+=($(( $(now) - t )))
            t=$(now); "${B[@]}" build --layers --pull=never -q "$ctx" > /dev/null 2>&1; hw+=($(( $(now) - t )))
        fi
    done
    mk=$(printf '%s\n' "${kc[@]}" | median); mb=$(printf '%s\n' "${bc[@]}" | median)
    wk=$(printf '%s\n' "${kw[@]}" | median); wb=$(printf '%s\n' "${bw[@]}" | median)
    mh=0; wh=0; kh="-"
    if [ $have_buildah = 1 ]; then
        mh=$(printf '%s\n' "${hc[@]}" | median); wh=$(printf '%s\n' "${hw[@]}" | median)
        kh=$(ratio "$mk" "$mh")
    fi
    printf '%-16s %9s %9s %9s %6s %6s %9s %9s %9s %6s\n' "2 x $files files" "$(ms "$mk")" "$(ms "$mb")" \
        "$(ms "$mh")" "$(ratio "$mk" "$mb")" "$kh" "$(ms "$wk")" "$(ms "$wb")" "$(ms "$wh")" \
        "$(ratio "$wk" "$wb")"
done
