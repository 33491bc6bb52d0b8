#!/usr/bin/env bash
# The SARIF 2.1.0 JSON schema that `kiln lint --format sarif` is validated against
# (crates/kiln/tests/lint.rs). No Debian or PyPI package ships it; the npm package
# @microsoft/sarif-multitool-linux (MIT) does, as `package/sarif-2.1.0.json`. This script
# takes that one file from the package with npm's own client and keeps it in a cache outside
# the repository. Usage: bash scripts/sarif-schema.sh  (prints the schema's path)
set -euo pipefail
version=5.7.0
dest="${KILN_SARIF_SCHEMA:-${XDG_CACHE_HOME:-$HOME/.cache}/kiln-test/sarif-2.1.0.json}"
if [ ! -s "$dest" ]; then
    command -v npm >/dev/null || { echo "error: npm is needed to fetch the SARIF schema" >&2; exit 1; }
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    (cd "$tmp" && npm pack --silent "@microsoft/sarif-multitool-linux@$version" >/dev/null)
    tar -xzf "$tmp"/microsoft-sarif-multitool-linux-"$version".tgz -C "$tmp" package/sarif-2.1.0.json
    mkdir -p "$(dirname "$dest")"
    mv "$tmp/package/sarif-2.1.0.json" "$dest"
fi
echo "$dest"
