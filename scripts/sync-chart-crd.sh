#!/usr/bin/env bash
# Copies the AuthProbe CRD into the Helm chart. The top-level crds/ file is the one source of truth;
# the chart's copy must be byte-identical (test/unit/chart/crd-sync.test.ts enforces it), so never
# edit charts/authprobe-operator/crds/ by hand: edit crds/ and run this script.
#   bash scripts/sync-chart-crd.sh          copy
#   bash scripts/sync-chart-crd.sh --check  exit 1 when the copy differs (for CI)
set -euo pipefail
cd "$(dirname "$0")/.."
src=crds/authprobe.io_authprobes.yaml
dst=charts/authprobe-operator/crds/authprobe.io_authprobes.yaml
if [[ ${1:-} == --check ]]; then
  if cmp -s "$src" "$dst"; then echo "$dst is in sync with $src"; exit 0; fi
  echo "$dst differs from $src: run bash scripts/sync-chart-crd.sh" >&2
  exit 1
fi
mkdir -p "$(dirname "$dst")"
cp "$src" "$dst.tmp.$$"
mv "$dst.tmp.$$" "$dst"
echo "copied $src -> $dst"
