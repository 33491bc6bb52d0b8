#!/usr/bin/env bash
# The SARIF 2.1.0 JSON schema that `kiln lint --format sarif` is validated against
# (crates/kiln/tests/lint.rs). No Debian or PyPI package ships it; the npm package
# @microsoft/sarif-multitool-linux (MIT) does, as `package/sarif-2.1.0.json`. This script
# downloads that package's tarball from the npm registry with curl (no Node needed), keeps
# only the schema, checks it against the SHA-256 pinned here, and caches it outside the
# repository. Usage: bash scripts/sarif-schema.sh  (prints the schema's path)
set -euo pipefail
version=5.7.0
sha256=1c49a0f2b60444c71bb14878e21e0d882198eff4c539861b133093ad89ed798c
url="https://registry.npmjs.org/@microsoft/sarif-multitool-linux/-/sarif-multitool-linux-$version.tgz"
dest="${KILN_SARIF_SCHEMA:-${XDG_CACHE_HOME:-$HOME/.cache}/kiln-test/sarif-2.1.0.json}"
if [ ! -s "$dest" ] || ! echo "$sha256  $dest" | sha256sum -c --status; then
    command -v curl >/dev/null || { echo "error: curl is needed to fetch the SARIF schema" >&2; exit 1; }
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    curl -fsSL --retry 3 -o "$tmp/package.tgz" "$url"
    tar -xzf "$tmp/package.tgz" -C "$tmp" package/sarif-2.1.0.json
    echo "$sha256  $tmp/package/sarif-2.1.0.json" | sha256sum -c --status || {
        echo "error: $url: sarif-2.1.0.json does not have the pinned SHA-256" >&2
        exit 1
    }
    mkdir -p "$(dirname "$dest")"
    mv "$tmp/package/sarif-2.1.0.json" "$dest"
fi
echo "$dest"
