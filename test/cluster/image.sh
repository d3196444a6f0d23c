#!/usr/bin/env bash
# Builds the project's image (the built app, production node_modules, and the Node 24 binary
# with its shared libraries) as an OCI tarball, imports it into the test cluster's containerd,
# and prints its full reference as the LAST line of stdout. The tag is content-addressed
# (0.1.0-<first 12 hex of the manifest digest>), so a rebuilt image gets a new tag.
set -euo pipefail
START_TS=$(date +%s)
source "$(dirname "$0")/lib/common.sh"
source "$CLUSTER_SRC/lib/oci.sh"

cd "$REPO_ROOT"
version=$(jq -r .version package.json)
node_bin=$REPO_ROOT/node_modules/node/bin/node
[[ -x $node_bin ]] || die "$node_bin missing: run npm ci first (the npm package node@24 provides it)"
[[ $("$node_bin" --version) == v24.* ]] || die "$node_bin is not Node 24 ($("$node_bin" --version))"

log "building the app (npm run build)"
npm run -s build >&2
[[ -f dist/cli/main.js ]] || die "dist/cli/main.js does not exist after npm run build: the CLI entry point (src/cli/main.ts) is not written yet"

# production dependencies, installed once per package-lock.json content
lock_key=$(sha256sum package-lock.json | cut -c1-16)
deps=$CACHE/npm-prod/$lock_key
if [[ ! -d $deps/node_modules ]]; then
  log "installing production dependencies (npm ci --omit=dev) into $deps"
  tmp=$deps.tmp.$$
  rm -rf "$tmp"; mkdir -p "$tmp"
  cp package.json package-lock.json "$tmp/"
  (cd "$tmp" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund >&2)
  rm -rf "$deps"; mv "$tmp" "$deps"
fi

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
oci_copy_binary "$root" "$node_bin" /usr/local/bin/node
mkdir -p "$root/app" "$root/tmp" "$root/etc"
chmod 1777 "$root/tmp"
cp -r dist "$root/app/dist"
cp -r "$deps/node_modules" "$root/app/node_modules"
cp package.json "$root/app/package.json"
printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/app:/sbin/nologin\n' >"$root/etc/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' >"$root/etc/group"

mkdir -p "$CACHE/images"
out=$CACHE/images/authprobe-operator.tar
log "building the image"
ref=$(oci_build_image "$root" "docker.io/authprobe/authprobe-operator:$version-{digest12}" "$out" \
  '{"Entrypoint":["/usr/local/bin/node","/app/dist/cli/main.js"],"User":"65532:65532","WorkingDir":"/app",
    "Env":["NODE_ENV=production","PATH=/usr/local/bin:/usr/bin:/bin"]}')

if [[ -S $CONTAINERD_SOCK ]] && ctr --address "$CONTAINERD_SOCK" version >/dev/null 2>&1; then
  log "importing $ref"
  oci_import "$out"
else
  log "the test cluster's containerd is not running: built $out but did not import it (npm run cluster:up first)"
  exit 1
fi
log "done"
echo "$ref"
