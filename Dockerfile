# kiln's own image, built by kiln (`kiln build -t kiln .`) or by `docker build`.
#
# The runtime stage runs kiln as the non-root user `kiln` (uid 1000) with subordinate ids
# 100000-165535 and Debian's `newuidmap`/`newgidmap`, so RUN steps get a full user
# namespace. Run it without --privileged (see docs/rootless.md):
#
#   docker run --rm --security-opt seccomp=unconfined --security-opt apparmor=unconfined \
#     -v "$PWD":/ctx:ro kiln build -t app /ctx
#
# `--build-arg PROFILE=dev` compiles kiln unoptimized: about twice as fast to build, for
# tests and CI; the default is the release profile.
ARG PROFILE=release

FROM rust:1-bookworm AS build
ARG PROFILE
WORKDIR /src
COPY . .
# The registry and the target dir are build caches: a rebuild compiles only what changed.
# The binary leaves the cached target dir by a copy into /out.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --locked -p kiln --profile "$PROFILE" \
 && dir="$PROFILE" && if [ "$dir" = dev ]; then dir=debug; fi \
 && install -D -m 0755 "target/$dir/kiln" /out/kiln \
 && strip --strip-debug /out/kiln

FROM debian:bookworm-slim
# uidmap: newuidmap/newgidmap, which map the subordinate ids; ca-certificates: the CA
# roots of ADD <https-url> (and, later, registries).
# The helpers get file capabilities instead of Debian's setuid bit: a setuid-root
# newuidmap writes the map as root, and the kernel then wants CAP_SYS_ADMIN, which an
# unprivileged container does not have; with cap_setuid/cap_setgid it writes as the
# user, who owns the new namespace, and works without it.
# Not pinned on purpose: a rebuild takes bookworm's security updates.
# kiln ignore=KL008
RUN apt-get update \
 && apt-get install -y --no-install-recommends uidmap libcap2-bin ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && chmod u-s /usr/bin/newuidmap /usr/bin/newgidmap \
 && setcap cap_setuid=ep /usr/bin/newuidmap \
 && setcap cap_setgid=ep /usr/bin/newgidmap
# The store lives on /data (XDG_DATA_HOME, so $XDG_DATA_HOME/kiln): a volume there keeps it
# off the container's overlayfs root, where the overlay snapshotter cannot work.
RUN useradd --uid 1000 --user-group --create-home --shell /bin/sh kiln \
 && printf 'kiln:100000:65536\n' > /etc/subuid \
 && printf 'kiln:100000:65536\n' > /etc/subgid \
 && install -d -o kiln -g kiln /data
COPY --from=build /out/kiln /usr/local/bin/kiln
ENV XDG_DATA_HOME=/data
VOLUME /data
USER kiln
WORKDIR /home/kiln
ENTRYPOINT ["/usr/local/bin/kiln"]
CMD ["--help"]
