//! The handlers a host runs, by name, each with the component version that serves it now.
//!
//! Swap rule: [`HandlerEntry::current`] hands out an `Arc` of the version at that moment, so
//! a call keeps the version it started with even if another is swapped in meanwhile; every
//! call that starts after [`HandlerEntry::swap`] returns uses the new one.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use arc_swap::ArcSwap;

use crate::config::{HandlerConfig, Isolation};
use crate::wasm::{CallLimits, HandlerContext, Instance, LoadedHandler};

/// One configured handler and its live component.
pub struct HandlerEntry {
    /// Its validated configuration.
    pub config: HandlerConfig,
    /// What its calls share (name, kv key, config table, connection).
    pub context: Arc<HandlerContext>,
    current: ArcSwap<LoadedHandler>,
    /// Idle warm instances (at most one per lane in flight, so the pool stays small).
    idle: Mutex<Vec<Instance>>,
}

impl HandlerEntry {
    /// A handler served by `loaded`.
    pub fn new(config: HandlerConfig, context: Arc<HandlerContext>, loaded: LoadedHandler) -> Self {
        HandlerEntry {
            config,
            context,
            current: ArcSwap::from_pointee(loaded),
            idle: Mutex::new(Vec::new()),
        }
    }

    /// An idle instance of `version`, if one is warm. Instances of other versions found on
    /// the way are dropped: they belong to a version that has been swapped out.
    pub fn take_instance(&self, version: &Arc<LoadedHandler>) -> Option<Instance> {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        while let Some(instance) = idle.pop() {
            if Arc::ptr_eq(&instance.version, version) {
                return Some(instance);
            }
        }
        None
    }

    /// Returns an instance after a call it survived, unless the handler's isolation says
    /// it must go (per-event mode, or it has served `recycle_after` calls).
    pub fn return_instance(&self, instance: Instance) {
        let keep = match self.config.isolation {
            Isolation::Reuse { recycle_after } => instance.calls < recycle_after,
            Isolation::PerEvent => false,
        };
        if keep {
            self.idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(instance);
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
