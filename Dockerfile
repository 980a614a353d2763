# tidepool: buffering ZeroMQ sidecar proxy.
#   docker build -t tidepool .
#   docker run --rm -v ./tidepool.json:/etc/tidepool/tidepool.json:ro -p 9464:9464 tidepool
# Everything comes from Debian bookworm packages; nothing is downloaded from anywhere else.

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

############################ runtime ############################
FROM debian:bookworm-slim
LABEL org.opencontainers.image.title="tidepool" \
      org.opencontainers.image.description="Buffering ZeroMQ sidecar proxy with Prometheus metrics"

# Only the shared libraries the binary links against (libstdc++ is in the base image).
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      libzmq5 libprometheus-cpp-core1.0 \
 && apt-get clean && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin

COPY --from=builder /src/build/proxy/tidepool /usr/local/bin/tidepool

# Fail the build, not the first start, if a runtime library is missing.
RUN if ldd /usr/local/bin/tidepool | grep 'not found'; then exit 1; fi \
 && groupadd --system --gid 10001 tidepool \
 && useradd --system --uid 10001 --gid tidepool --home-dir /var/lib/tidepool \
      --no-create-home --shell /usr/sbin/nologin tidepool \
 && install -d -o tidepool -g tidepool -m 0750 /var/lib/tidepool \
 && install -d -m 0755 /etc/tidepool

USER tidepool:tidepool
WORKDIR /var/lib/tidepool

# Metrics/status/health HTTP must be reachable from outside the container; an explicit
# TIDEPOOL_HTTP_LISTEN at `docker run -e` still wins. The binary reads
# /etc/tidepool/tidepool.json by itself when it is mounted, else its embedded default.
ENV TIDEPOOL_HTTP_LISTEN=0.0.0.0:9464
EXPOSE 9464

# No curl in the image: the binary probes its own /healthz (same address resolution).
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD ["tidepool", "healthcheck"]

# tidepool runs as PID 1 and handles SIGTERM itself: stop reading, drain, exit 0.
# Give `docker stop -t` more than shutdown.drain_timeout_ms (default 10 s).
STOPSIGNAL SIGTERM
ENTRYPOINT ["tidepool"]
