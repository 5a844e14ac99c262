#!/usr/bin/env bash
# Refreshes the API reference renderer /docs serves (docs/dashboard.md,
# "API reference"): Redoc's standalone bundle from npm, compiled into the
# binary, so nothing is fetched when the page is shown. Pin the version
# here, run this script, and commit what it writes into assets/redoc/.
set -euo pipefail
VERSION="${1:-2.5.4}"
cd "$(dirname "$0")/.."
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack "redoc@$VERSION" --silent >/dev/null && tar xzf "redoc-$VERSION.tgz")
cp "$work/package/bundles/redoc.standalone.js" assets/redoc/
cp "$work/package/bundles/redoc.standalone.js.LICENSE.txt" assets/redoc/
cp "$work/package/LICENSE" assets/redoc/LICENSE
echo "$VERSION" > assets/redoc/VERSION
sha256sum assets/redoc/redoc.standalone.js
