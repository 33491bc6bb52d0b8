#!/usr/bin/env bash
# The multi-stage pattern itself (issue 12's workload): two stages whose RUN makes FILES files
# each, a stage that `COPY --from`s both trees and runs a small RUN, and a final stage that
# copies three small files; plus a RUN that bind-mounts one tree from its stage. Timed for
# kiln and Docker 20.10's BuildKit (a private dockerd) in the same run, interleaved: a cold
# build and a no-op rebuild, for FILES = 3,000 and 30,000 (or $FILES). Prints medians (ms)
# and ratios kiln / BuildKit; a no-op rebuild must not grow with FILES.
# Usage: bash bench/copy-from.sh [WORKDIR]    (root; docker.io, busybox-static)
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
work="${1:-/tmp/kiln-bench-copy-from}"
N="${N:-3}"
release_kiln "$work"

busybox_bases "$K" "$work"

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

printf '%-28s %9s %9s %7s %9s %9s %7s\n' workload kiln-cold bk-cold k/bk noop-kiln noop-bk k/bk
for files in ${FILES:-3000 30000}; do
    ctx="$work/ctx-$files"
    context "$ctx" "$files"
    kc=(); bc=(); kw=(); bw=()
    for _ in $(seq "$N"); do
        rm -rf "$work/k"; cp -a "$base_store" "$work/k"
        t=$(now); "$K" --root "$work/k" build -q "$ctx" > /dev/null; kc+=($(( $(now) - t )))
        t=$(now); "$K" --root "$work/k" build -q "$ctx" > /dev/null; kw+=($(( $(now) - t )))
        "${D[@]}" builder prune -af > /dev/null
        t=$(now); DOCKER_BUILDKIT=1 "${D[@]}" build --network=host --no-cache -q "$ctx" > /dev/null; bc+=($(( $(now) - t )))
        t=$(now); DOCKER_BUILDKIT=1 "${D[@]}" build --network=host -q "$ctx" > /dev/null; bw+=($(( $(now) - t )))
    done
    mk=$(printf '%s\n' "${kc[@]}" | median); mb=$(printf '%s\n' "${bc[@]}" | median)
    wk=$(printf '%s\n' "${kw[@]}" | median); wb=$(printf '%s\n' "${bw[@]}" | median)
    printf '%-28s %9s %9s %7s %9s %9s %7s\n' "2 x $files files" "$(ms "$mk")" "$(ms "$mb")" \
        "$(ratio "$mk" "$mb")" "$(ms "$wk")" "$(ms "$wb")" "$(ratio "$wk" "$wb")"
done
