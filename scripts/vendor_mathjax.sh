#!/usr/bin/env bash
# Vendor MathJax 3 (Apache-2.0) into assets/mathjax/, so that the built book typesets its equations without
# reaching a CDN (readers offline, the rendered-book test). Needs npm; the files are committed.
set -euo pipefail
VERSION=3.2.2
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "mathjax@$VERSION" >/dev/null && tar xzf "mathjax-$VERSION.tgz")
rm -rf assets/mathjax
mkdir -p assets/mathjax/output/chtml/fonts
cp "$work/package/es5/tex-mml-chtml.js" "$work/package/LICENSE" assets/mathjax/
cp -r "$work/package/es5/output/chtml/fonts/woff-v2" assets/mathjax/output/chtml/fonts/
cat > assets/mathjax/PROVENANCE <<TEXT
MathJax $VERSION from the npm registry (npm pack mathjax@$VERSION): es5/tex-mml-chtml.js and the CHTML
woff-v2 fonts it loads, nothing else. Licence: Apache-2.0 (LICENSE). Regenerate: bash scripts/vendor_mathjax.sh
TEXT
