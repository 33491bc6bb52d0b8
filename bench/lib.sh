# Shared by the bench scripts (sourced): timing helpers and a private dockerd.
# shellcheck shell=bash

now() { date +%s%N; }

# release_kiln WORK: kiln built in release as K, and WORK made anew (empty).
release_kiln() {
    cargo build --release -q -p kiln --bin kiln
    K="$PWD/target/release/kiln"
    rm -rf "$1"; mkdir -p "$1"
}
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
ms() { awk -v ns="$1" 'BEGIN {printf "%.0f", ns/1e6}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b > 0) printf "%.2f", a/b; else print "-"}'; }

# start_dockerd DIR: a private dockerd under DIR that touches neither the host firewall nor
# the host's Docker; stopped when the script exits. Sets D=(docker -H ...) for it.
start_dockerd() {
    local dd=$1
    mkdir -p "$dd"
    dockerd --iptables=false --ip-forward=false --ip-masq=false --bridge=none \
        --data-root "$dd/data" --exec-root "$dd/exec" --pidfile "$dd/pid" \
        -H "unix://$dd/docker.sock" > "$dd/log" 2>&1 &
    DOCKERD_PID=$!
    trap 'kill $DOCKERD_PID 2>/dev/null; wait $DOCKERD_PID 2>/dev/null || true' EXIT
    D=(/usr/bin/docker -H "unix://$dd/docker.sock")
    for _ in $(seq 100); do "${D[@]}" version > /dev/null 2>&1 && return 0; sleep 0.3; done
    echo "dockerd did not start: see $dd/log" >&2
    return 1
}

# start_buildah DIR DRIVER ARCHIVE: when buildah is installed, a private buildah store under
# DIR (storage driver DRIVER) holding ARCHIVE (a `docker save` of busybox) as
# docker.io/library/busybox:latest. Sets have_buildah=1|0 and B=(buildah ...).
start_buildah() {
    have_buildah=0
    command -v buildah > /dev/null || return 0
    have_buildah=1
    export BUILDAH_ISOLATION=chroot
    B=(buildah --root "$1/root" --runroot "$1/run" --storage-driver "$2")
    skopeo copy -q "docker-archive:$3" "containers-storage:[$2@$1/root+$1/run]docker.io/library/busybox:latest" > /dev/null
}

# busybox_bases K WORK: kiln (the binary K) built in release, a kiln store WORK/base-store
# holding busybox:latest with its snapshot unpacked, WORK/bb.tar (a `docker save` of it), and
# a private dockerd that has it loaded (see start_dockerd). Sets base_store.
busybox_bases() {
    local k=$1 work=$2
    base_store="$work/base-store"
    KILN_ROOT="$base_store" bash scripts/make-busybox-base.sh "$k" busybox:latest > /dev/null
    "$k" --root "$base_store" run --rm busybox:latest true   # unpack the base snapshot once
    "$k" --root "$base_store" save --format docker -o "$work/bb.tar" busybox:latest
    start_dockerd "$work/dockerd"
    "${D[@]}" load -i "$work/bb.tar" > /dev/null
}

# make_files DIR N SIZE_MB: N files of SIZE_MB in all (random, not compressible) in 500
# directories under DIR: a big context.
make_files() {
    python3 - "$1" "$2" "$3" <<'PY'
import os, sys
root, n, mb = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
size = (mb << 20) // n
chunk = os.urandom(1 << 20)
for i in range(n):
    d = os.path.join(root, f"d{i % 500:03d}")
    os.makedirs(d, exist_ok=True)
    off = (i * 7919) % ((1 << 20) - size)
    with open(os.path.join(d, f"f{i:05d}"), "wb") as f:
        f.write(chunk[off:off + size])
PY
}
