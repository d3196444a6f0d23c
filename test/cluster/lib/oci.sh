# Builds OCI image-layout tarballs from a root filesystem directory, without a
# registry or Docker, and imports them into the cluster's containerd.
# Source it; reusable by the demo / Helm scripts:
#   source test/cluster/lib/oci.sh
#   oci_build_image <rootfs-dir> <full-ref> <out.tar> [config-json]   # prints the final ref
#     (a literal {digest12} in the ref becomes the first 12 hex of the manifest digest,
#      so a changed image always gets a new tag)
#   oci_import <out.tar>          # into containerd's k8s.io namespace (needs a running cluster)
#   oci_copy_with_libs <root> <binary>...   # copy binaries plus their ldd libraries into <root>
# shellcheck shell=bash

_oci_sha() { sha256sum "$1" | cut -d' ' -f1; }
_oci_size() { stat -c %s "$1"; }

# oci_build_image <rootfs> <ref> <out.tar> [config-json]
# config-json is the image's "config" object, e.g. '{"Entrypoint":["/pause"]}'.
# The layer is an uncompressed, reproducible tar (sorted, mtime 0, numeric owners)
# so the same rootfs always yields the same digests.
oci_build_image() {
  local rootfs=$1 ref=$2 out=$3 cfg=${4:-'{}'}
  local work; work=$(mktemp -d)
  mkdir -p "$work/blobs/sha256"
  tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
    -C "$rootfs" -cf "$work/layer.tar" .
  local layer_sha; layer_sha=$(_oci_sha "$work/layer.tar")
  local layer_size; layer_size=$(_oci_size "$work/layer.tar")
  mv "$work/layer.tar" "$work/blobs/sha256/$layer_sha"

  jq -cn --argjson cfg "$cfg" --arg diff "sha256:$layer_sha" \
    '{architecture:"amd64", os:"linux", config:$cfg, rootfs:{type:"layers", diff_ids:[$diff]},
      history:[{created_by:"authprobe test/cluster/lib/oci.sh"}]}' >"$work/config.json"
  local cfg_sha; cfg_sha=$(_oci_sha "$work/config.json")
  local cfg_size; cfg_size=$(_oci_size "$work/config.json")
  mv "$work/config.json" "$work/blobs/sha256/$cfg_sha"

  jq -cn --arg c "sha256:$cfg_sha" --argjson cs "$cfg_size" --arg l "sha256:$layer_sha" --argjson ls "$layer_size" \
    '{schemaVersion:2, mediaType:"application/vnd.oci.image.manifest.v1+json",
      config:{mediaType:"application/vnd.oci.image.config.v1+json", digest:$c, size:$cs},
      layers:[{mediaType:"application/vnd.oci.image.layer.v1.tar", digest:$l, size:$ls}]}' >"$work/manifest.json"
  local man_sha; man_sha=$(_oci_sha "$work/manifest.json")
  local man_size; man_size=$(_oci_size "$work/manifest.json")
  mv "$work/manifest.json" "$work/blobs/sha256/$man_sha"

  ref=${ref//\{digest12\}/${man_sha:0:12}}
  jq -cn --arg m "sha256:$man_sha" --argjson ms "$man_size" --arg ref "$ref" --arg tag "${ref##*:}" \
    '{schemaVersion:2, mediaType:"application/vnd.oci.image.index.v1+json",
      manifests:[{mediaType:"application/vnd.oci.image.manifest.v1+json", digest:$m, size:$ms,
        platform:{architecture:"amd64", os:"linux"},
        annotations:{"io.containerd.image.name":$ref, "org.opencontainers.image.ref.name":$tag}}]}' >"$work/index.json"
  echo '{"imageLayoutVersion":"1.0.0"}' >"$work/oci-layout"

  tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$work" -cf "$out.tmp" oci-layout index.json blobs
  mv -f "$out.tmp" "$out"
  rm -rf "$work"
  echo "$ref"
}

# oci_import <tar>: import into the cluster containerd's CRI namespace (k8s.io).
oci_import() {
  local sock=${CONTAINERD_SOCK:?CONTAINERD_SOCK not set (source lib/common.sh)}
  ctr --address "$sock" -n k8s.io images import "$1" >&2
}

# oci_copy_binary <root> <src> <dest>: copy one binary to <dest> under <root>, plus its ldd libraries
oci_copy_binary() {
  local root=$1 src=$2 dest=$3 lib
  mkdir -p "$root$(dirname "$dest")"
  cp -L "$src" "$root$dest"
  while read -r lib; do
    [[ -n $lib && -e $lib ]] || continue
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done < <(ldd "$src" 2>/dev/null | grep -oE '(/[^ ]+)' | sort -u)
}

# oci_copy_with_libs <root> <binary>...: copy each binary to the same path under
# <root> together with every shared library ldd lists (at its ldd path, plus the loader).
oci_copy_with_libs() {
  local root=$1; shift
  local f
  for f in "$@"; do oci_copy_binary "$root" "$f" "$f"; done
}
