# Watchtower tasks. `just` lists them.

# List the recipes.
default:
    @just --list

guest_names := "speed-alert trip-tracker chaos noop wrong-world"

# Build the example handler components into guest-examples/NAME.wasm.
guests:
    cd guest-examples && cargo build --release --target wasm32-wasip2
    for name in {{guest_names}}; do \
        file=$(echo "$name" | tr '-' '_'); \
        src="guest-examples/target/wasm32-wasip2/release/$file.wasm"; \
        [ -f "$src" ] || src="guest-examples/target/wasm32-wasip2/release/$name.wasm"; \
        cp "$src" "guest-examples/$name.wasm"; \
    done
    @ls -l guest-examples/*.wasm

# Build the host binary (debug).
build:
    cargo build -p watchtower --bin watchtower

# Run the demo: a private redis-server, the example handlers and a fleet scenario.
demo: guests
    cargo run --release -p watchtower --bin watchtower -- demo --components guest-examples

# Run every test: unit tests and end-to-end tests against real redis-server and components.
test: guests build
    cargo nextest run --workspace --no-fail-fast

# Unit tests only (no Redis, no components needed).
test-unit:
    cargo nextest run --workspace --lib --bins

# Benchmarks, never part of `just test` (BENCHMARKS.md); e.g. `just bench --quick`, `just bench --json bench.json`.
bench *ARGS: guests
    cargo build --release -p watchtower -p watchtower-bench
    target/release/watchtower-bench {{ARGS}}

# The Dockerfile's build steps without Docker, then the image's config run on a private redis-server until healthy.
container-check:
    #!/usr/bin/env bash
    set -euo pipefail
    cargo build --release -p watchtower --locked
    (cd guest-examples && cargo build --release --locked --target wasm32-wasip2 -p speed-alert -p trip-tracker)
    out=$(mktemp -d)
    trap '[ -f "$out/redis.pid" ] && kill "$(cat "$out/redis.pid")"; rm -rf "$out"' EXIT
    mkdir -p "$out/handlers"
    for name in speed-alert trip-tracker; do
        cp "guest-examples/target/wasm32-wasip2/release/$(echo "$name" | tr - _).wasm" "$out/handlers/$name.wasm"
        target/release/watchtower check "$out/handlers/$name.wasm"
    done
    target/release/watchtower --help > /dev/null
    # The image's config with the image's paths pointing here; Redis and the port by variable,
    # as compose.yaml sets them.
    sed -e "s#/opt/watchtower/handlers#$out/handlers#" -e "s#/var/cache/watchtower#$out/cache#" \
        deploy/watchtower.toml > "$out/watchtower.toml"
    redis_port=$((20000 + RANDOM % 10000))
    redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no --dir "$out" \
        --logfile "$out/redis.log" --pidfile "$out/redis.pid" --daemonize yes
    export WATCHTOWER_CONFIG="$out/watchtower.toml" WATCHTOWER_REDIS_URL="redis://127.0.0.1:$redis_port"
    export WATCHTOWER_ADMIN_LISTEN="127.0.0.1:$((redis_port + 10000))"
    target/release/watchtower run > "$out/host.log" 2>&1 &
    host=$!
    for _ in $(seq 1 150); do target/release/watchtower healthcheck 2> /dev/null && break; sleep 0.2; done
    target/release/watchtower healthcheck || { cat "$out/host.log"; exit 1; }
    kill -TERM "$host"
    wait "$host" || { cat "$out/host.log"; exit 1; }
    echo "container-check: the image's build steps and its configuration work"

# Lints: formatting and clippy with warnings as errors, host and guests.
lint:
    cargo fmt --all --check
    cargo clippy --workspace --all-targets -- -D warnings
    cd guest-examples && cargo fmt --all --check && cargo clippy --target wasm32-wasip2 -- -D warnings

# Format all code.
fmt:
    cargo fmt --all
    cd guest-examples && cargo fmt --all

# Start a throwaway redis-server on port 6379 in the foreground.
redis:
    redis-server --port 6379 --save "" --appendonly no
