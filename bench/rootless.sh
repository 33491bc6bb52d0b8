#!/usr/bin/env bash
# Rootless benchmark: the same builds by kiln as root and as an ordinary user (made here,
# with subordinate ids; kiln enters its own user namespace, overlay with `userxattr`), in
# interleaved rounds on the same machine:
#   - `RUN true`: one step (namespaces, overlay, diff, layer commit) with --no-cache, minus
#     the same build without it (an ENV instead), so start-up and store access cancel out;
#   - a step that makes 10,000 files (`seq 10000 | xargs touch`);
#   - a first build that COPYs a context of SIZE_MB (400) in FILES (20,000) files, from a
#     fresh copy of the base store each round.
# Prints medians (ms) and the ratio rootless / root for each.
# Usage: bash bench/rootless.sh [WORKDIR]   (root; busybox-static, uidmap)
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
work="${1:-/tmp/kiln-bench-rootless}"
N="${N:-7}"
FILES="${FILES:-20000}"
SIZE_MB="${SIZE_MB:-400}"
release_kiln "$work"
chmod 755 "$work"
K2="$work/kiln"; cp "$K" "$K2"; chmod 755 "$K2"

U=kiln-bench
id "$U" > /dev/null 2>&1 || useradd -M -s /bin/sh "$U"
grep -q "^$U:" /etc/subuid || usermod --add-subuids 2000000-2065535 --add-subgids 2000000-2065535 "$U"
home="$work/home"; mkdir -p "$home"; chown "$U:" "$home"
as_user() { setpriv --reuid "$U" --regid "$U" --init-groups -- env -i HOME="$home" PATH=/usr/bin:/bin "$@"; }

# The same base in both stores: imported by root, saved, loaded by the user.
KILN_ROOT="$work/root-base" bash scripts/make-busybox-base.sh "$K2" busybox:latest > /dev/null
"$K2" --root "$work/root-base" save -o "$work/bb.tar" busybox:latest; chmod 644 "$work/bb.tar"
"$K2" --root "$work/root-base" run --rm busybox:latest true
as_user "$K2" --root "$home/base" load -i "$work/bb.tar" > /dev/null
as_user "$K2" --root "$home/base" run --rm busybox:latest true

mk() { mkdir -p "$work/$1"; printf '%s\n' "${@:2}" > "$work/$1/Dockerfile"; chmod -R a+rX "$work/$1"; }
mk step 'FROM busybox:latest' 'RUN true'
mk nostep 'FROM busybox:latest' 'ENV A=1'
mk tenk 'FROM busybox:latest' 'RUN mkdir /d && cd /d && seq 10000 | xargs touch'
ctx="$work/ctx"; mkdir -p "$ctx/data"
make_files "$ctx/data" "$FILES" "$SIZE_MB"
printf 'FROM busybox:latest\nCOPY data/ /data/\n' > "$ctx/Dockerfile"; chmod -R a+rX "$ctx"

root_store="$work/root-store"; user_store="$home/store"
rm -rf "$root_store"; cp -a "$work/root-base" "$root_store"
as_user cp -a "$home/base" "$user_store"
time_of() { local start; start=$(now); "${@:2}" > /dev/null; printf -v "$1" '%s' $(( $(now) - start )); }
r() { "$K2" --root "$root_store" build -q --no-cache "$@"; }
u() { as_user "$K2" --root "$user_store" build -q --no-cache "$@"; }
rs=(); us=(); rn=(); un=(); rt=(); ut=(); rc=(); uc=()
for i in $(seq "$N"); do
    time_of t r "$work/step"; rs+=("$t"); time_of t u "$work/step"; us+=("$t")
    time_of t r "$work/nostep"; rn+=("$t"); time_of t u "$work/nostep"; un+=("$t")
    time_of t r "$work/tenk"; rt+=("$t"); time_of t u "$work/tenk"; ut+=("$t")
    rm -rf "$root_store"; cp -a "$work/root-base" "$root_store"; sync
    time_of t r "$ctx"; rc+=("$t")
    as_user rm -rf "$user_store"; as_user cp -a "$home/base" "$user_store"; sync
    time_of t u "$ctx"; uc+=("$t")
done
med() { printf '%s\n' "$@" | median; }
row() { printf '| %-44s | %9s | %9s | %5s |\n' "$1" "$(ms "$2")" "$(ms "$3")" "$(ratio "$3" "$2")"; }
echo "N=$N rounds, medians"
printf '| %-44s | %9s | %9s | %5s |\n' "workload" "root ms" "rootless" "ratio"
printf '|%s|%s|%s|%s|\n' "----------------------------------------------" "-----------" "-----------" "-------"
step_r=$(( $(med "${rs[@]}") - $(med "${rn[@]}") )); step_u=$(( $(med "${us[@]}") - $(med "${un[@]}") ))
row "RUN true step overhead" "$step_r" "$step_u"
row "build with RUN true (whole command)" "$(med "${rs[@]}")" "$(med "${us[@]}")"
row "RUN making 10,000 files (whole build)" "$(med "${rt[@]}")" "$(med "${ut[@]}")"
row "COPY of ${SIZE_MB} MiB / ${FILES} files (first build)" "$(med "${rc[@]}")" "$(med "${uc[@]}")"
