#!/usr/bin/env bash
# Make a busybox base image in a kiln store, from Debian's static busybox (no registry):
# every applet as a hard link, /etc/passwd and /etc/group with root and nobody, sticky /tmp.
# Usage: scripts/make-busybox-base.sh KILN [NAME]   (KILN: the kiln binary; KILN_ROOT applies)
set -euo pipefail
kiln=$1
name=${2:-busybox:latest}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/rootfs
mkdir -p "$root"/{bin,etc,tmp,root}
cp /bin/busybox "$root/bin/busybox"
for applet in $(/bin/busybox --list); do
    [ "$applet" = busybox ] || ln "$root/bin/busybox" "$root/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > "$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$root/etc/group"
chmod 1777 "$root/tmp"
tar --sort=name -C "$root" -cf "$work/rootfs.tar" .
"$kiln" import "$work/rootfs.tar" "$name" >/dev/null
echo "made $name from /bin/busybox"
