//! The host side of `wit/handler.wit`, generated once here and used everywhere else.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "handler",
    imports: {
        // A kv read that cannot reach Redis must fail the call (and leave the entry for a
        // retry) rather than answer "not set" and let the handler commit wrong state.
        "watchtower:handler/host.kv-get": async | trappable,
        default: async,
    },
    exports: { default: async },
});

pub use watchtower::handler::types::{LogLevel, PublishError};
