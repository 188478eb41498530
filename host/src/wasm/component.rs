//! Loading a `.wasm` file into a [`LoadedHandler`]: read, hash, compile and type-check it
//! against the linker, so that nothing that would fail at call time gets past loading.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use sha2::{Digest, Sha256};
use wasmtime::component::Component;

use super::bindings::HandlerPre;
use super::cache::CacheUse;
use super::engine::WasmRuntime;
use super::state::CallState;
use crate::error::LoadError;

/// A compiled, type-checked handler component, ready to instantiate.
///
/// Immutable once built: a new version of the file becomes a new `LoadedHandler`, and calls
/// that started on this one keep it alive until they finish.
pub struct LoadedHandler {
    /// Pre-instantiated against the host's linker; every call instantiates from it.
    pub pre: HandlerPre<CallState>,
    /// Hex sha256 of the file's bytes.
    pub digest: String,
    /// Where it was loaded from.
    pub path: PathBuf,
    /// When it was loaded.
    pub loaded_at: SystemTime,
    /// Calls this version has served.
    pub stats: VersionStats,
}

/// Outcome counts of the calls one version has served.
#[derive(Debug, Default)]
pub struct VersionStats {
    /// Calls that returned `ok`.
    pub handled: AtomicU64,
    /// Calls that failed in any way (retry, reject, trap, timeout, …).
    pub failed: AtomicU64,
}

impl VersionStats {
    /// Counts one call.
    pub fn record(&self, ok: bool) {
        let counter = if ok { &self.handled } else { &self.failed };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

impl LoadedHandler {
    /// Short version label (first 12 hex digits of the sha256), as shown in logs.
    pub fn version(&self) -> &str {
        &self.digest[..12]
    }
}

/// `\0asm` followed by the version/layer word of a core module (1) and a component (0xd, layer 1).
const WASM_MAGIC: [u8; 4] = *b"\0asm";
const CORE_VERSION: [u8; 4] = [1, 0, 0, 0];

impl WasmRuntime {
    /// Reads and loads the component at `path`.
    pub fn load_file(&self, path: &Path) -> Result<LoadedHandler, LoadError> {
        let bytes = std::fs::read(path).map_err(|source| LoadError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        self.load_bytes(path, &bytes)
    }

    /// Compiles `bytes` (named `path` in errors) and checks that it fits the world
    /// `watchtower:handler/handler`: every import is one the host provides and `handle` is
    /// exported with the right type.
    pub fn load_bytes(&self, path: &Path, bytes: &[u8]) -> Result<LoadedHandler, LoadError> {
        let path_buf = path.to_path_buf();
        if bytes.len() < 8 || bytes[..4] != WASM_MAGIC {
            return Err(LoadError::NotWasm { path: path_buf });
        }
        if bytes[4..8] == CORE_VERSION {
            return Err(LoadError::CoreModule { path: path_buf });
        }
        let digest = hex(&Sha256::digest(bytes));
        let cached = self
            .cache()
            .and_then(|cache| cache.get(self.engine(), &digest));
        let cache_use = if cached.is_some() {
            CacheUse::Hit
        } else {
            CacheUse::Miss
        };
        let component = match cached {
            Some(component) => component,
            None => {
                let component = Component::from_binary(self.engine(), bytes).map_err(|e| {
                    LoadError::Compile {
                        path: path_buf.clone(),
                        reason: format!("{e:#}"),
                    }
                })?;
                if let Some(cache) = self.cache() {
                    cache.put(&digest, &component);
                }
                component
            }
        };
        let instance_pre =
            self.linker()
                .instantiate_pre(&component)
                .map_err(|e| LoadError::Imports {
                    path: path_buf.clone(),
                    reason: format!("{e:#}"),
                })?;
        let pre = HandlerPre::new(instance_pre).map_err(|e| LoadError::Exports {
            path: path_buf.clone(),
            reason: format!("{e:#}"),
        })?;
        tracing::info!(
            component = %path.display(),
            version = &digest[..12],
            cache = cache_use.as_str(),
            "component loaded"
        );
        Ok(LoadedHandler {
            pre,
            digest,
            path: path_buf,
            loaded_at: SystemTime::now(),
            stats: VersionStats::default(),
        })
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}
