# syntax=docker/dockerfile:1
#
# The Watchtower host as a container: the `watchtower` binary, the example handler components
# and a configuration for them (deploy/watchtower.toml), run as an unprivileged user.
#
#   docker build -t watchtower .
#   docker compose up --build          # with Redis, see compose.yaml
#
# `just container-check` runs the same build steps natively (CI has no Docker engine).

FROM rust:1.95-bookworm AS builder
RUN rustup target add wasm32-wasip2
WORKDIR /src
COPY . .
# The registry and both target folders are cache mounts, so rebuilds after a source change
# compile only what changed; what the final stage needs is copied out of them into /out.
# Every component is checked against the host's world before it is shipped.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    --mount=type=cache,target=/src/guest-examples/target \
    set -eux; \
    cargo build --release -p watchtower --locked; \
    cd guest-examples; \
    cargo build --release --locked --target wasm32-wasip2 -p speed-alert -p trip-tracker; \
    cd ..; \
    mkdir -p /out/handlers; \
    cp target/release/watchtower /out/watchtower; \
    for name in speed-alert trip-tracker; do \
        cp "guest-examples/target/wasm32-wasip2/release/$(echo "$name" | tr - _).wasm" \
           "/out/handlers/$name.wasm"; \
        /out/watchtower check "/out/handlers/$name.wasm"; \
    done; \
    /out/watchtower --help > /dev/null

FROM debian:bookworm-slim
# No shell tools are needed at run time: the health check is the binary's own subcommand.
RUN set -eux; \
    groupadd --system --gid 10001 watchtower; \
    useradd --system --uid 10001 --gid watchtower --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin watchtower; \
    install -d -o watchtower -g watchtower /var/cache/watchtower
COPY --from=builder /out/watchtower /usr/local/bin/watchtower
COPY --from=builder /out/handlers/ /opt/watchtower/handlers/
COPY deploy/watchtower.toml /etc/watchtower/watchtower.toml
ENV WATCHTOWER_CONFIG=/etc/watchtower/watchtower.toml
USER watchtower:watchtower
EXPOSE 9464
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["watchtower", "healthcheck"]
# The binary is PID 1 and handles SIGTERM itself: batches in flight commit, then it exits 0.
ENTRYPOINT ["watchtower"]
CMD ["run"]
