# Sourced by the container tests (container_test.sh, ../kubernetes/kube_play_test.sh): the
# podman tools, the debian:bookworm-slim base built from Debian's archive when not cached (no
# registry here; see /work/shared/notes/containers.md), and the tidepool image built from the
# repository's Dockerfile. Callers define log() and fail() and a scratch directory $WORK.

TIDEPOOL_IMAGE=localhost/tidepool
TIDEPOOL_BASE_IMAGE=docker.io/library/debian:bookworm-slim

# The tools, installed when missing (as root).
podman_tools() {
  local missing=() tool
  for tool in podman buildah runc debootstrap; do
    command -v "$tool" >/dev/null || missing+=("$tool")
  done
  (( ${#missing[@]} )) || return 0
  [[ $(id -u) == 0 ]] || fail "missing ${missing[*]} and not root to apt-get install them"
  log "installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}" >"$WORK/apt.log" 2>&1 \
    || { apt-get update >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive \
           apt-get install -y "${missing[@]}" >"$WORK/apt.log" 2>&1; } \
    || { tail -20 "$WORK/apt.log" >&2; fail "apt-get install ${missing[*]}"; }
}

# The base image, built with debootstrap once and cached in podman's store.
podman_base_image() {
  if podman image exists "$TIDEPOOL_BASE_IMAGE"; then
    log "base image $TIDEPOOL_BASE_IMAGE cached"
    return 0
  fi
  log "building $TIDEPOOL_BASE_IMAGE with debootstrap (cached for later runs)"
  local t rootfs=$WORK/rootfs
  t=$(date +%s)
  debootstrap --variant=minbase bookworm "$rootfs" >"$WORK/debootstrap.log" 2>&1 \
    || { tail -20 "$WORK/debootstrap.log" >&2; fail "debootstrap"; }
  # Trim it the way the official slim image is trimmed (no apt lists or caches, no docs,
  # man pages or locales, now or on later installs), so image sizes here are comparable.
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin \
    "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/usr/share/man/* \
    "$rootfs"/usr/share/locale/* "$rootfs"/usr/share/info/*
  find "$rootfs/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
  printf '%s\n' 'path-exclude /usr/share/doc/*' 'path-include /usr/share/doc/*/copyright' \
    'path-exclude /usr/share/man/*' 'path-exclude /usr/share/info/*' \
    'path-exclude /usr/share/locale/*' >"$rootfs/etc/dpkg/dpkg.cfg.d/docker"
  printf '%s\n' 'DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/*.bin || true"; };' \
    'APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/*.bin || true"; };' \
    'Dir::Cache::pkgcache ""; Dir::Cache::srcpkgcache "";' >"$rootfs/etc/apt/apt.conf.d/docker-clean"
  tar -C "$rootfs" -c . | podman import - localhost/debian:bookworm-slim >/dev/null
  podman tag localhost/debian:bookworm-slim "$TIDEPOOL_BASE_IMAGE"
  rm -rf "$rootfs"
  log "base image ready in $(( $(date +%s) - t ))s"
}

PODMAN_BUILD=(podman build --isolation chroot --pull=never --format docker)

# podman_build_tidepool SRC [--build-arg K=V ...]: the image from the repository's own
# Dockerfile (layers are cached between runs). The builder and rootfs stages are tagged too,
# so their layers (the -dev packages, the runtime packages) stay cached; after the build,
# untagged leftovers of earlier tidepool builds (and only those) are pruned. Sets BUILD_S.
podman_build_tidepool() {
  local src=$1 t title
  shift
  log "podman build $src"
  t=$(date +%s)
  # buildah 1.28 (Debian 12) leaves build-arg values out of the cache key of LABEL steps, so a
  # cached final stage keeps the revision and date of an earlier build. That stage is only a
  # copy: remove the previous image (every tag of it) so that it is rebuilt.
  local tags
  tags=$(podman image inspect "$TIDEPOOL_IMAGE" --format '{{range .RepoTags}}{{.}} {{end}}' \
           2>/dev/null || true)
  # shellcheck disable=SC2086  # one tag per word
  [[ -z $tags ]] || podman image rm $tags >/dev/null 2>&1 || true
  { nice -n 15 "${PODMAN_BUILD[@]}" --target builder -t "$TIDEPOOL_IMAGE-builder" "$src" \
      && nice -n 15 "${PODMAN_BUILD[@]}" --target rootfs -t "$TIDEPOOL_IMAGE-rootfs" "$src" \
      && nice -n 15 "${PODMAN_BUILD[@]}" "$@" -t "$TIDEPOOL_IMAGE" "$src"; } >"$WORK/build.log" 2>&1 \
    || { tail -40 "$WORK/build.log" >&2; fail "podman build"; }
  BUILD_S=$(( $(date +%s) - t ))
  for title in tidepool tidepool-builder tidepool-rootfs; do
    podman image prune -f --filter "label=org.opencontainers.image.title=$title" >/dev/null 2>&1 || true
  done
}
