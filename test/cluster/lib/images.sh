# The pause (sandbox) and toolbox images, built locally and imported into containerd.
# shellcheck shell=bash
source "$CLUSTER_SRC/lib/oci.sh"

IMAGES_DIR=$CACHE/images

_image_in_containerd() { ctr_ images ls -q "name==$1" 2>/dev/null | grep -qxF "$1"; }

build_pause_image() { # prints the tarball path
  local out
  out=$IMAGES_DIR/pause-$(sha256sum "$CLUSTER_SRC/images/pause.c" | cut -c1-12).tar
  if [[ ! -s $out ]]; then
    mkdir -p "$IMAGES_DIR"
    local root; root=$(mktemp -d)
    gcc -static -O2 -s -o "$root/pause" "$CLUSTER_SRC/images/pause.c"
    oci_build_image "$root" "$PAUSE_IMAGE" "$out" '{"Entrypoint":["/pause"],"User":"65535:65535"}' >/dev/null
    rm -rf "$root"
  fi
  echo "$out"
}

build_toolbox_image() { # prints the tarball path
  # Debian's curl with its libraries, and busybox-static for sh/ls/cat/sleep (the seed's commands)
  local key; key=$(cat /usr/bin/curl /usr/bin/busybox "${BASH_SOURCE[0]}" | sha256sum | cut -c1-12)
  local out=$IMAGES_DIR/toolbox-$key.tar
  if [[ ! -s $out ]]; then
    mkdir -p "$IMAGES_DIR"
    local root; root=$(mktemp -d)
    oci_copy_with_libs "$root" /usr/bin/curl
    mkdir -p "$root/bin" "$root/tmp" "$root/etc"
    chmod 1777 "$root/tmp"
    cp /usr/bin/busybox "$root/bin/busybox"
    local a
    for a in sh ls cat sleep echo env head tail wc id grep cut tr date true false test printf base64; do
      ln -s busybox "$root/bin/$a"
    done
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n' >"$root/etc/passwd"
    oci_build_image "$root" "$TOOLBOX_IMAGE" "$out" \
      '{"Entrypoint":[],"Cmd":["/bin/sh"],"Env":["PATH=/usr/local/bin:/usr/bin:/bin"],"WorkingDir":"/"}' >/dev/null
    rm -rf "$root"
  fi
  echo "$out"
}

ensure_base_images() {
  local ref tar
  for ref in "$PAUSE_IMAGE" "$TOOLBOX_IMAGE"; do
    _image_in_containerd "$ref" && continue
    if [[ $ref == "$PAUSE_IMAGE" ]]; then tar=$(build_pause_image); else tar=$(build_toolbox_image); fi
    log "importing $ref"
    oci_import "$tar"
  done
}
