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
