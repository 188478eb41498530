//! The handlers a host runs, by name, each with the component version that serves it now.
//!
//! Swap rule: [`HandlerEntry::current`] hands out an `Arc` of the version at that moment, so
//! a call keeps the version it started with even if another is swapped in meanwhile; every
//! call that starts after [`HandlerEntry::swap`] returns uses the new one.

use std::collections::BTreeMap;
use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::config::HandlerConfig;
use crate::wasm::{CallLimits, HandlerContext, LoadedHandler};

/// One configured handler and its live component.
pub struct HandlerEntry {
    /// Its validated configuration.
    pub config: HandlerConfig,
    /// What its calls share (name, kv key, config table, connection).
    pub context: Arc<HandlerContext>,
    current: ArcSwap<LoadedHandler>,
}

impl HandlerEntry {
    /// A handler served by `loaded`.
    pub fn new(config: HandlerConfig, context: Arc<HandlerContext>, loaded: LoadedHandler) -> Self {
        HandlerEntry {
            config,
            context,
            current: ArcSwap::from_pointee(loaded),
        }
    }

    /// The handler's name.
    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// The version serving new calls.
    pub fn current(&self) -> Arc<LoadedHandler> {
        self.current.load_full()
    }

    /// Makes `next` serve every call from now on; returns the version it replaced.
    pub fn swap(&self, next: Arc<LoadedHandler>) -> Arc<LoadedHandler> {
        self.current.swap(next)
    }

    /// The limits every call of this handler runs under.
    pub fn limits(&self) -> CallLimits {
        CallLimits {
            timeout: self.config.timeout,
            memory_limit_bytes: self.config.memory_limit_bytes,
            fuel: self.config.fuel,
        }
    }
}

/// All handlers of a host.
#[derive(Default)]
pub struct HandlerRegistry {
    handlers: BTreeMap<String, Arc<HandlerEntry>>,
}

impl HandlerRegistry {
    /// Adds a handler (names are unique: the config guarantees it).
    pub fn insert(&mut self, entry: HandlerEntry) {
        self.handlers
            .insert(entry.name().to_owned(), Arc::new(entry));
    }

    /// The handler called `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<HandlerEntry>> {
        self.handlers.get(name)
    }

    /// All handlers, by name.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<HandlerEntry>> {
        self.handlers.values()
    }
}
