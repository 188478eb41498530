//! The one place the SDK touches wit-bindgen: bindings generated from `wit/handler.wit`.
//!
//! Everything here is machine-generated and unstable; handler authors use the safe wrappers
//! in the other modules and [`export_handler!`](crate::export_handler). The module is public
//! only because the export macro expands in the handler's crate and must name these items.
//!
//! The export macro is made `pub` (`pub_export_macro`) so that it can be invoked from another
//! crate; `export_handler!` always passes `$crate::bindings` as the types path, so the
//! `default_bindings_module` below only matters to someone calling `export!` by hand.
//!
//! Off wasm32 (a native `cargo build` or `cargo clippy` of the workspace) the imports compile
//! to stubs that panic when called, so only logic that avoids the host can run natively.
//!
//! The generated glue is `unsafe` pointer work without docs, but the workspace's
//! `unsafe_code` and `missing_docs` lints stay quiet here: lints do not fire inside the
//! expansion of a macro from another crate. The module is `#[doc(hidden)]`: it is public
//! for the macro, not for handler authors.

wit_bindgen::generate!({
    path: "../wit",
    world: "handler",
    pub_export_macro: true,
    default_bindings_module: "watchtower_guest::bindings",
});
