#!/usr/bin/env bash
# Remote-cache rebuild benchmark (the "third CI runner"): a multi-stage build whose first
# stage's RUN makes FILES files (a dependency tree, say) that the final stage copies, built
# once with its cache exported to a loopback registry, then rebuilt from scratch on an empty
# builder that only has the registry:
#   kiln:     --cache-to type=registry,ref=R,mode=max, then an empty store with
#             --cache-from type=registry,ref=R (layers fetched as steps hit);
#   BuildKit: Docker 20.10 with BUILDKIT_INLINE_CACHE=1, the image pushed, then an empty
#             Docker (images removed, `builder prune -af`) with --cache-from R.
# The base image (busybox) comes from the registry too, for both. Rounds interleaved;
# prints medians (ms) and the ratio kiln / BuildKit. SETTLE=S waits S seconds after each
# deletion (an empty store, a pruned Docker) before the timed build: on ext4 without a journal
# (this machine's disk), inode allocation scans recently freed inodes for ~30 s after a big
# delete, which makes every file creation slow for whoever builds next.
# WORKLOAD=debian builds another shape instead, on a debootstrap Debian base pushed to the
# registry: a build stage installs a package (apt-get, through the host's network) and makes
# FILES files with it, the final stage installs the same package and copies them. COLD=0 skips
# the builds without a cache. WORKLOAD=context: a context of FILES files (FILES/100 MiB of
# random bytes) copied with `COPY . /src` and read by a RUN, the final stage copying what the
# RUN made; before each timed rebuild one file of the context changes (the same for both), so
# the COPY and everything after it miss and run: the cache saves only the base.
# Usage: bash bench/registry-cache.sh [WORKDIR]   (root; docker.io, docker-registry, busybox-static)
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
work="${1:-/tmp/kiln-bench-registry-cache}"
N="${N:-5}"
SETTLE="${SETTLE:-0}"
FILES="${FILES:-5000}"
release_kiln "$work"
PORT="${PORT:-5077}"
REG="127.0.0.1:$PORT"
cat > "$work/registry.yml" <<EOF
version: 0.1
storage: { filesystem: { rootdirectory: $work/registry-data } }
http: { addr: $REG }
EOF
docker-registry serve "$work/registry.yml" > "$work/registry.log" 2>&1 &
REG_PID=$!
start_dockerd "$work/dockerd"
trap 'kill $REG_PID $DOCKERD_PID 2>/dev/null; wait 2>/dev/null || true' EXIT
for _ in $(seq 50); do curl -fs "http://$REG/v2/" > /dev/null && break; sleep 0.1; done

WORKLOAD="${WORKLOAD:-busybox}"
COLD="${COLD:-1}"
ctx="$work/ctx"; mkdir -p "$ctx"
if [ "$WORKLOAD" = debian ]; then
    rootfs=$(cargo run -q -p kiln-test-support --example debian-rootfs)
    "$K" --root "$work/base" import "$rootfs" local/debian:bookworm > /dev/null
    "$K" --root "$work/base" push -q local/debian:bookworm "$REG/lib/debian:bookworm" > /dev/null
    cat > "$ctx/Dockerfile" <<DF
FROM $REG/lib/debian:bookworm AS build
RUN apt-get update -q && apt-get install -y -q --no-install-recommends python3-minimal > /dev/null
RUN python3 -c 'import os; os.makedirs("/app"); [open("/app/m%d.py" % i, "w").write("x = %d\\n" % i) for i in range($FILES)]'
FROM $REG/lib/debian:bookworm
RUN apt-get update -q && apt-get install -y -q --no-install-recommends python3-minimal > /dev/null && rm -rf /var/lib/apt/lists/*
COPY --from=build /app /app
RUN python3 -c 'import os; print(len(os.listdir("/app")))' > /count
DF
elif [ "$WORKLOAD" = context ]; then
    KILN_ROOT="$work/base" bash scripts/make-busybox-base.sh "$K" busybox:latest > /dev/null
    "$K" --root "$work/base" push -q busybox:latest "$REG/lib/busybox:1" > /dev/null
    make_files "$ctx/src" "$FILES" $((FILES / 100))
    echo "round 0" > "$ctx/changed.txt"
    cat > "$ctx/Dockerfile" <<DF
FROM $REG/lib/busybox:1 AS build
COPY . /src
RUN find /src -type f | wc -l > /count && cat /src/changed.txt /count > /version
FROM $REG/lib/busybox:1
COPY --from=build /version /version
DF
else
    KILN_ROOT="$work/base" bash scripts/make-busybox-base.sh "$K" busybox:latest > /dev/null
    "$K" --root "$work/base" push -q busybox:latest "$REG/lib/busybox:1" > /dev/null
    cat > "$ctx/Dockerfile" <<DF
FROM $REG/lib/busybox:1 AS deps
RUN mkdir -p /deps && cd /deps && for d in \$(seq 50); do mkdir \$d; for f in \$(seq $((FILES / 50))); do echo "\$d \$f" > \$d/\$f; done; done
FROM $REG/lib/busybox:1
COPY --from=deps /deps /opt/deps
RUN find /opt/deps -type f | wc -l > /count
DF
fi

# The first runners: their caches go to the registry.
"$K" --root "$work/runner1" build -q --cache-to "type=registry,ref=$REG/app:kiln-cache,mode=max" "$ctx" > /dev/null
DOCKER_BUILDKIT=1 "${D[@]}" build --network=host -q --build-arg BUILDKIT_INLINE_CACHE=1 -t "$REG/app:bk" "$ctx" > /dev/null
"${D[@]}" push -q "$REG/app:bk" > /dev/null 2>&1 || "${D[@]}" push "$REG/app:bk" > /dev/null

time_of() { local start; start=$(now); "${@:2}" > /dev/null; printf -v "$1" '%s' $(( $(now) - start )); }
empty_docker() {
    "${D[@]}" image ls -q | sort -u | xargs -r "${D[@]}" rmi -f > /dev/null 2>&1 || true
    "${D[@]}" builder prune -af > /dev/null
}
kiln_third() { "$K" --root "$work/runner3" build -q --cache-from "type=registry,ref=$REG/app:kiln-cache" "$ctx"; }
bk_third() { DOCKER_BUILDKIT=1 "${D[@]}" build --network=host -q --cache-from "$REG/app:bk" "$ctx"; }
kc=(); bc=(); kcold=(); bcold=()
for i in $(seq "$N"); do
    [ "$WORKLOAD" != context ] || echo "round $i" > "$ctx/changed.txt"
    rm -rf "$work/runner3"; sync; sleep "$SETTLE"
    time_of t kiln_third; kc+=("$t")
    empty_docker; sync; sleep "$SETTLE"
    time_of t bk_third; bc+=("$t")
    [ "$COLD" = 1 ] || continue
    # Without any cache, for scale: what the remote cache saves.
    rm -rf "$work/runner3"; sync; sleep "$SETTLE"
    time_of t "$K" --root "$work/runner3" build -q "$ctx"; kcold+=("$t")
    empty_docker; sync; sleep "$SETTLE"
    time_of t env DOCKER_BUILDKIT=1 "${D[@]}" build --network=host -q "$ctx"; bcold+=("$t")
done
med() { printf '%s\n' "$@" | median; }
echo "N=$N rounds, WORKLOAD=$WORKLOAD, $FILES files made by the first stage, SETTLE=$SETTLE s; medians"
printf '| %-46s | %9s | %9s | %6s |\n' "empty builder, cache in a loopback registry" "kiln ms" "BuildKit" "k/bk"
printf '|%s|%s|%s|%s|\n' "------------------------------------------------" "-----------" "-----------" "--------"
row() { printf '| %-46s | %9s | %9s | %6s |\n' "$1" "$(ms "$2")" "$(ms "$3")" "$(ratio "$2" "$3")"; }
row "rebuild from the remote cache (third runner)" "$(med "${kc[@]}")" "$(med "${bc[@]}")"
[ "$COLD" = 1 ] && row "build without a cache (for scale)" "$(med "${kcold[@]}")" "$(med "${bcold[@]}")"
