//! Errors that callers branch on: a bad configuration and a component that cannot be loaded.
//!
//! Orchestration code wraps everything else in `anyhow` with context; these two are typed
//! because the CLI, the reload path and the tests each react to them differently.

use std::path::PathBuf;

/// A configuration file that cannot be used. Always names the file; for a bad value it names
/// the key and says what is wrong with it, e.g.
/// ``watchtower.toml: [[handler]] "speed-alert": `timeout_ms`: must be > 0``.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{file}: cannot read the config file: {source}")]
    Read {
        /// The config file.
        file: PathBuf,
        /// Why reading failed.
        source: std::io::Error,
    },
    /// The file is not valid TOML or has keys of the wrong type or unknown keys.
    #[error("{file}: {message}")]
    Parse {
        /// The config file.
        file: PathBuf,
        /// The TOML parser's explanation, with line and column.
        message: String,
    },
    /// A value is present but not acceptable.
    #[error("{file}: {key}: {reason}")]
    Invalid {
        /// The config file (or the environment variable the value came from).
        file: PathBuf,
        /// Where the value sits, e.g. `[[handler]] "speed-alert": \`timeout_ms\``.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// A component that cannot serve as a handler. Names the file and the reason.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("{path}: cannot read the component: {source}")]
    Read {
        /// The component file.
        path: PathBuf,
        /// Why reading failed.
        source: std::io::Error,
    },
    /// The file does not start with the WebAssembly magic number.
    #[error("{path}: not a WebAssembly file (no `\\0asm` header)")]
    NotWasm {
        /// The component file.
        path: PathBuf,
    },
    /// The file is a core WebAssembly module, not a component.
    #[error(
        "{path}: is a core WebAssembly module, not a component; build it for `wasm32-wasip2` \
         (or wrap it with `wasm-tools component new`)"
    )]
    CoreModule {
        /// The component file.
        path: PathBuf,
    },
    /// wasmtime could not validate or compile the component.
    #[error("{path}: not a valid component: {reason}")]
    Compile {
        /// The component file.
        path: PathBuf,
        /// wasmtime's explanation.
        reason: String,
    },
    /// The component imports something the host does not provide.
    #[error("{path}: does not fit the world `watchtower:handler/handler`: {reason}")]
    Imports {
        /// The component file.
        path: PathBuf,
        /// The missing or mismatched import.
        reason: String,
    },
    /// The component does not export `handle` with the expected signature.
    #[error(
        "{path}: does not fit the world `watchtower:handler/handler`: it must export \
         `handle: func(event: event) -> result<_, handle-error>`: {reason}"
    )]
    Exports {
        /// The component file.
        path: PathBuf,
        /// The missing or mismatched export.
        reason: String,
    },
}
