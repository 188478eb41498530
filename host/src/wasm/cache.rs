//! The on-disk cache of compiled components, so that a restart or a swap back to a known
//! version skips compilation (~100 ms per component becomes ~0.2 ms).
//!
//! An entry is keyed by the component's sha256 and the engine's compatibility hash (which
//! changes with the wasmtime version and the engine settings). Its file starts with the
//! sha256 of the compiled bytes that follow; an entry whose checksum does not match, that
//! wasmtime refuses, or that cannot be read is ignored and rebuilt — never trusted blindly,
//! because loading compiled code skips wasm validation.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Bytes of the checksum at the start of an entry.
const CHECKSUM: usize = 32;

/// A folder of compiled components for one engine configuration.
#[derive(Debug, Clone)]
pub struct ComponentCache {
    dir: PathBuf,
    engine_key: String,
}

/// Whether a load used the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheUse {
    /// Deserialized from the cache.
    Hit,
    /// Compiled (and stored, when there is a cache).
    Miss,
}

impl CacheUse {
    /// `hit` or `miss`, for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            CacheUse::Hit => "hit",
            CacheUse::Miss => "miss",
        }
    }
}

impl ComponentCache {
    /// A cache in `dir` for components compiled by `engine`.
    pub fn new(dir: PathBuf, engine: &Engine) -> Self {
        let mut hasher = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        ComponentCache {
            dir,
            engine_key: format!("{:016x}", hasher.finish()),
        }
    }

    fn path(&self, digest: &str) -> PathBuf {
        self.dir.join(format!("{digest}-{}.cwasm", self.engine_key))
    }

    /// The compiled component with sha256 `digest`, if a sound entry exists.
    pub fn get(&self, engine: &Engine, digest: &str) -> Option<Component> {
        let path = self.path(digest);
        let bytes = std::fs::read(&path).ok()?;
        match verified(&bytes).and_then(|compiled| deserialize(engine, compiled)) {
            Some(component) => Some(component),
            None => {
                tracing::warn!(path = %path.display(), "ignoring a corrupt compiled-component cache entry");
                let _ = std::fs::remove_file(&path);
                None
            }
        }
    }

    /// Stores `component` under `digest` (atomically: written aside, then renamed). Failures
    /// are logged and otherwise ignored: the cache is an optimisation.
    pub fn put(&self, digest: &str, component: &Component) {
        if let Err(error) = self.try_put(digest, component) {
            tracing::warn!(dir = %self.dir.display(), "cannot store a compiled component: {error:#}");
        }
    }

    fn try_put(&self, digest: &str, component: &Component) -> anyhow::Result<()> {
        let compiled = component.serialize()?;
        std::fs::create_dir_all(&self.dir)?;
        let mut file = tempfile::NamedTempFile::new_in(&self.dir)?;
        let checksum = Sha256::digest(&compiled);
        std::io::Write::write_all(&mut file, &checksum)?;
        std::io::Write::write_all(&mut file, &compiled)?;
        file.persist(self.path(digest))?;
        Ok(())
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// The compiled bytes of an entry whose checksum matches.
fn verified(bytes: &[u8]) -> Option<&[u8]> {
    if bytes.len() <= CHECKSUM {
        return None;
    }
    let (checksum, compiled) = bytes.split_at(CHECKSUM);
    (Sha256::digest(compiled).as_slice() == checksum).then_some(compiled)
}

#[allow(
    unsafe_code,
    reason = "deserializing compiled code skips validation; the bytes were written by this \
              cache from `Component::serialize` and their checksum was verified just before"
)]
fn deserialize(engine: &Engine, compiled: &[u8]) -> Option<Component> {
    // SAFETY: `compiled` is exactly what `Component::serialize` produced for this engine
    // configuration (the file name carries its compatibility hash, the checksum proves the
    // bytes are unchanged); wasmtime additionally checks its own header and version.
    unsafe { Component::deserialize(engine, compiled) }.ok()
}

#[cfg(test)]
mod tests {
    use super::verified;

    #[test]
    fn entries_whose_checksum_does_not_match_are_refused() {
        use sha2::{Digest, Sha256};
        let compiled = b"compiled bytes".to_vec();
        let mut entry = Sha256::digest(&compiled).to_vec();
        entry.extend_from_slice(&compiled);
        assert_eq!(verified(&entry), Some(&compiled[..]));
        let last = entry.len() - 1;
        entry[last] ^= 1;
        assert_eq!(verified(&entry), None);
        assert_eq!(verified(b"short"), None);
    }
}
