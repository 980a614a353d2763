# tidepool: buffering ZeroMQ sidecar proxy.
#   docker build -t tidepool .
#   docker build -t tidepool --build-arg REVISION="$(git rev-parse HEAD)" \
#     --build-arg CREATED="$(date -u +%Y-%m-%dT%H:%M:%SZ)" .
#   docker run --rm -v ./tidepool.json:/etc/tidepool/tidepool.json:ro -p 9464:9464 tidepool
# Everything comes from Debian bookworm packages; nothing is downloaded from anywhere else.
# The runtime image holds the binary, the shared libraries it links against and their
# copyright files, and nothing else: no shell, no package manager (see "rootfs" below).

############################ builder ############################
FROM debian:bookworm-slim AS builder
LABEL org.opencontainers.image.title="tidepool-builder"

RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      g++ cmake ninja-build pkg-config \
      libzmq3-dev cppzmq-dev nlohmann-json3-dev prometheus-cpp-dev doctest-dev \
 && apt-get clean && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin

WORKDIR /src
# .dockerignore lets only CMakeLists.txt, cmake/, protocol/ and proxy/ into the context, so
# edits to tests, docs or deploy files do not invalidate the compile layer.
COPY . .

# Parallelism is capped because CI machines are small and shared.
ARG BUILD_JOBS=2
RUN cmake -S . -B build -G Ninja \
      -DCMAKE_BUILD_TYPE=Release -DTIDEPOOL_BUILD_TESTS=OFF \
 && cmake --build build --target tidepool --parallel "${BUILD_JOBS}" \
 && strip build/proxy/tidepool \
 && build/proxy/tidepool --version

# The version label below is written here, not derived (a LABEL cannot read a file): the
# build fails when it no longer matches the version CMake compiled in (project(VERSION)).
ARG VERSION=0.1.0
RUN build/proxy/tidepool --version | grep -q "^tidepool ${VERSION} " \
 || { echo "Dockerfile VERSION=${VERSION}, the binary: $(build/proxy/tidepool --version)" >&2; \
      exit 1; }

############################ rootfs ############################
# The runtime file system, assembled in /rootfs: the binary, exactly the libraries `ldd`
# resolves for it (libzmq5 and its dependencies, prometheus-cpp core, libstdc++, glibc and the
# dynamic loader), each library package's copyright file, and the few /etc files glibc and
# the non-root user need. No CA certificates: tidepool speaks ZMTP (CURVE at most) and plain
# HTTP, never TLS.
FROM debian:bookworm-slim AS rootfs
RUN apt-get update \
 && apt-get install -y --no-install-recommends libzmq5 libprometheus-cpp-core1.0 \
 && apt-get clean && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin

COPY --from=builder /src/build/proxy/tidepool /rootfs/usr/local/bin/tidepool

# Each library is copied (dereferenced) under its directory's real path, so the merged-/usr
# links (/lib -> usr/lib, /lib64 -> usr/lib64) are kept as links and the loader finds
# everything in its default directories, without an ld.so.cache. A package whose doc
# directory is a link (libstdc++6 -> gcc-12-base) gets the copyright of its source sibling.
RUN set -eu; \
    for link in /lib /lib32 /lib64 /libx32; do \
      if [ -L "$link" ]; then cp -a "$link" /rootfs/; fi; \
    done; \
    libs=$(ldd /rootfs/usr/local/bin/tidepool | grep -o '/[^ ]*'); \
    for lib in $libs; do \
      dir=$(readlink -f "$(dirname "$lib")"); \
      mkdir -p "/rootfs$dir"; \
      cp -L "$lib" "/rootfs$dir/$(basename "$lib")"; \
      real=$(readlink -f "$lib"); \
      pkg=$(dpkg -S "$lib" 2>/dev/null || dpkg -S "$real" 2>/dev/null || dpkg -S "${real#/usr}"); \
      pkg=${pkg%%[:,]*}; \
      copyright=/usr/share/doc/$pkg/copyright; \
      if [ ! -f "$copyright" ]; then \
        source=$(dpkg-query -W -f='${source:Package}' "$pkg"); \
        for other in $(dpkg-query -W -f='${Package} ${source:Package}\n' \
                       | awk -v s="$source" '$2 == s {print $1}'); do \
          if [ -f "/usr/share/doc/$other/copyright" ]; then \
            copyright=/usr/share/doc/$other/copyright; \
          fi; \
        done; \
      fi; \
      mkdir -p "/rootfs/usr/share/doc/$pkg"; \
      cp "$copyright" "/rootfs/usr/share/doc/$pkg/copyright"; \
    done; \
    if ldd /rootfs/usr/local/bin/tidepool | grep 'not found'; then exit 1; fi; \
    mkdir -p /rootfs/etc/tidepool /rootfs/var/lib/tidepool /rootfs/tmp; \
    chmod 1777 /rootfs/tmp; \
    chown 10001:10001 /rootfs/var/lib/tidepool; \
    chmod 0750 /rootfs/var/lib/tidepool; \
    printf '%s\n' 'root:x:0:0:root:/root:/usr/sbin/nologin' \
      'tidepool:x:10001:10001:tidepool:/var/lib/tidepool:/usr/sbin/nologin' >/rootfs/etc/passwd; \
    printf '%s\n' 'root:x:0:' 'tidepool:x:10001:' >/rootfs/etc/group; \
    printf '%s\n' 'passwd: files' 'group: files' 'hosts: files dns' >/rootfs/etc/nsswitch.conf; \
    chroot /rootfs /usr/local/bin/tidepool --version

############################ runtime ############################
FROM scratch
# Ownership comes along from the rootfs stage (/var/lib/tidepool belongs to tidepool).
COPY --from=rootfs /rootfs/ /

USER tidepool:tidepool
WORKDIR /var/lib/tidepool

# Metrics/status/health HTTP must be reachable from outside the container; an explicit
# TIDEPOOL_HTTP_LISTEN at `docker run -e` still wins. The binary reads
# /etc/tidepool/tidepool.json by itself when it is mounted, else its embedded default.
ENV PATH=/usr/local/bin TIDEPOOL_HTTP_LISTEN=0.0.0.0:9464
EXPOSE 9464

# No curl and no shell in the image: the binary probes its own /healthz (same address
# resolution).
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD ["tidepool", "healthcheck"]

# tidepool runs as PID 1 and handles SIGTERM itself: stop reading, drain, exit 0.
# Give `docker stop -t` more than shutdown.drain_timeout_ms (default 10 s).
STOPSIGNAL SIGTERM
ENTRYPOINT ["tidepool"]

# Last, so that a new revision or date changes nothing but the image's config.
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
ARG SOURCE=NOASSERTION
ARG LICENSES=NOASSERTION
LABEL org.opencontainers.image.title="tidepool" \
      org.opencontainers.image.description="Buffering ZeroMQ sidecar proxy with Prometheus metrics" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.licenses="${LICENSES}"
