#!/usr/bin/env bash
# Real-project-shaped multi-stage builds with package installs, cold, kiln against Docker
# 20.10's BuildKit (a private dockerd) and buildah (when installed; overlay storage,
# --layers, chroot isolation), interleaved: a C project (apt-get install of a
# compiler, `make -j` of PROJECT_FILES translation units, the binary copied into a slim
# final stage) and a Python project (apt-get install of python3-venv, `pip install` of a few
# packages from PyPI into a venv, the venv copied into the final stage). Both start FROM a
# Debian bookworm base made by ../shared/tools/make-bases.sh (debootstrap; cached between
# runs), loaded into kiln's store (`kiln load` unpacks it) and into dockerd.
# Package downloads go to Debian's mirror and PyPI: their speed varies between runs, so
# compare kiln and BuildKit of the same round, and read the ratio, not the times.
# Usage: bash bench/projects.sh [WORKDIR]    (root; docker.io, debootstrap, umoci, skopeo)
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
work="${1:-/tmp/kiln-bench-projects}"
N="${N:-2}"
PROJECT_FILES="${PROJECT_FILES:-200}"
release_kiln "$work"

shared="${KILN_SHARED:-$PWD/../shared}"
OUT="$work/bases" CACHE="${BASES_CACHE:-/tmp/kiln-bases/cache}" LOAD_DOCKER=0 \
    DOCKER_ARCHIVES=1 bash "$shared/tools/make-bases.sh" > "$work/bases.log" 2>&1 \
    || { echo "make-bases.sh failed: see $work/bases.log" >&2; exit 1; }
base="$work/bases/debian.docker.tar"
start_dockerd "$work/dockerd"
"${D[@]}" load -i "$base" > /dev/null
base_ref=$("${D[@]}" images --format '{{.Repository}}:{{.Tag}}' | grep debian | head -1)

# The C project: PROJECT_FILES sources with a few functions each, and a main calling them.
c="$work/c"; mkdir -p "$c/src"
python3 - "$c/src" "$PROJECT_FILES" <<'PY'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    with open(os.path.join(root, f"m{i}.c"), "w") as f:
        f.write(f"int f{i}(int x) {{ int s = 0; for (int k = 0; k < x; k++) s += k * {i + 1}; return s; }}\n")
with open(os.path.join(root, "main.c"), "w") as f:
    f.write("#include <stdio.h>\n")
    f.write("".join(f"int f{i}(int);\n" for i in range(n)))
    f.write("int main(void) { long t = 0;\n")
    f.write("".join(f"  t += f{i}(3);\n" for i in range(n)))
    f.write('  printf("%ld\\n", t); return 0; }\n')
PY
cat > "$c/Makefile" <<'MK'
SRC := $(wildcard src/*.c)
app: $(SRC:.c=.o)
	$(CC) -O2 -o $@ $^
%.o: %.c
	$(CC) -O2 -c -o $@ $<
MK
cat > "$c/Dockerfile" <<DF
FROM $base_ref AS build
RUN apt-get update && apt-get install -y --no-install-recommends gcc make libc6-dev && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY . .
RUN make -j2 app
FROM $base_ref
COPY --from=build /app/app /usr/local/bin/app
RUN app
DF

# The Python project: a venv with packages from PyPI, copied into the final stage.
py="$work/py"; mkdir -p "$py"
printf 'requests==2.31.0\nflask==3.0.0\npyyaml==6.0.1\n' > "$py/requirements.txt"
printf 'import flask, requests, yaml\nprint("ok")\n' > "$py/app.py"
# pip verifies PyPI against the host's roots (which may hold a proxy's own CA).
cp /etc/ssl/certs/ca-certificates.crt "$py/ca.crt"
cat > "$py/Dockerfile" <<DF
FROM $base_ref AS build
RUN apt-get update && apt-get install -y --no-install-recommends python3-venv && rm -rf /var/lib/apt/lists/*
COPY ca.crt requirements.txt ./
ENV PIP_CERT=/ca.crt
RUN python3 -m venv /venv && /venv/bin/pip install --no-cache-dir -q -r requirements.txt
FROM $base_ref AS run
RUN apt-get update && apt-get install -y --no-install-recommends python3 && rm -rf /var/lib/apt/lists/*
COPY --from=build /venv /venv
COPY app.py /app.py
RUN /venv/bin/python /app.py
DF

base_store="$work/base-store"
"$K" --root "$base_store" load -i "$base" > /dev/null
have_buildah=0
if command -v buildah > /dev/null; then
    have_buildah=1
    export BUILDAH_ISOLATION=chroot
    B=(buildah --root "$work/buildah/root" --runroot "$work/buildah/run" --storage-driver overlay)
    bh_store="containers-storage:[overlay@$work/buildah/root+$work/buildah/run]"
fi

printf '%-24s %10s %10s %10s %8s %8s\n' project kiln BuildKit buildah k/bk k/bh
for p in c py; do
    kt=(); bt=(); ht=()
    kiln_round() {
        rm -rf "$work/k"; cp -a "$base_store" "$work/k"
        t=$(now); "$K" --root "$work/k" build -q --network=host "$work/$p" > /dev/null; kt+=($(( $(now) - t )))
    }
    buildkit_round() {
        "${D[@]}" builder prune -af > /dev/null
        t=$(now); DOCKER_BUILDKIT=1 "${D[@]}" build --network=host --no-cache -q "$work/$p" > /dev/null; bt+=($(( $(now) - t )))
    }
    buildah_round() {
        [ $have_buildah = 1 ] || return 0
        rm -rf "$work/buildah"
        skopeo copy -q "docker-archive:$base" "$bh_store$base_ref" > /dev/null
        t=$(now); "${B[@]}" build --layers --no-cache --pull=never --network=host -q "$work/$p" > /dev/null 2>&1
        ht+=($(( $(now) - t )))
    }
    # Who downloads first may meet a colder mirror or proxy: the order alternates.
    for i in $(seq "$N"); do
        if [ $((i % 2)) = 1 ]; then kiln_round; buildkit_round; buildah_round
        else buildah_round; buildkit_round; kiln_round; fi
    done
    mk=$(printf '%s\n' "${kt[@]}" | median); mb=$(printf '%s\n' "${bt[@]}" | median)
    mh=0; kh="-"
    if [ $have_buildah = 1 ]; then mh=$(printf '%s\n' "${ht[@]}" | median); kh=$(ratio "$mk" "$mh"); fi
    printf '%-24s %10s %10s %10s %8s %8s\n' "$p cold (median of $N)" "$(ms "$mk")" "$(ms "$mb")" \
        "$(ms "$mh")" "$(ratio "$mk" "$mb")" "$kh"
done
