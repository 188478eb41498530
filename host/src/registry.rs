//! The handlers a host runs, by name, each with the component version that serves it now.
//!
//! Swap rule: [`HandlerEntry::current`] hands out an `Arc` of the version at that moment, so
//! a call keeps the version it started with even if another is swapped in meanwhile; every
//! call that starts after [`HandlerEntry::swap`] returns uses the new one.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use arc_swap::ArcSwap;

use crate::config::{HandlerConfig, Isolation, Rollback};
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
    /// Versions that have served, newest first (the current one included).
    history: Mutex<Vec<Arc<LoadedHandler>>>,
    /// The judgement a freshly swapped-in version is under, if any.
    probation: Mutex<Option<Probation>>,
}

/// A new version's first calls, watched for a rollback.
struct Probation {
    version: Arc<LoadedHandler>,
    previous: Arc<LoadedHandler>,
    rule: Rollback,
    calls: u64,
    failed: u64,
}

/// Versions kept in a handler's history.
const HISTORY: usize = 10;

impl HandlerEntry {
    /// A handler served by `loaded`.
    pub fn new(config: HandlerConfig, context: Arc<HandlerContext>, loaded: LoadedHandler) -> Self {
        let loaded = Arc::new(loaded);
        HandlerEntry {
            config,
            context,
            current: ArcSwap::new(loaded.clone()),
            idle: Mutex::new(Vec::new()),
            history: Mutex::new(vec![loaded]),
            probation: Mutex::new(None),
        }
    }

    /// Versions that have served, newest first.
    pub fn history(&self) -> Vec<Arc<LoadedHandler>> {
        lock(&self.history).clone()
    }

    /// Counts a call of `version`; while that version is on probation, rolls back to the
    /// previous one as soon as its failures exceed the allowed share of its first calls.
    /// Returns whether this call caused a rollback.
    pub fn record_call(&self, version: &Arc<LoadedHandler>, ok: bool) -> bool {
        version.stats.record(ok);
        let mut probation = lock(&self.probation);
        let Some(p) = probation.as_mut() else {
            return false;
        };
        if !Arc::ptr_eq(&p.version, version) {
            return false;
        }
        p.calls += 1;
        if !ok {
            p.failed += 1;
        }
        let allowed = p.rule.max_error_rate * p.rule.window as f64;
        if p.failed as f64 > allowed {
            tracing::warn!(
                handler = %self.config.name,
                version = p.version.version(),
                back_to = p.previous.version(),
                failed = p.failed,
                calls = p.calls,
                "rolled back: the new version failed {} of its first {} calls (more than {:.0}% of {})",
                p.failed,
                p.calls,
                p.rule.max_error_rate * 100.0,
                p.rule.window
            );
            self.install(p.previous.clone());
            *probation = None;
            return true;
        } else if p.calls >= p.rule.window {
            tracing::info!(
                handler = %self.config.name,
                version = p.version.version(),
                failed = p.failed,
                calls = p.calls,
                "new version passed its probation"
            );
            *probation = None;
        }
        false
    }

    /// An idle instance of `version`, if one is warm. Instances of other versions found on
    /// the way are dropped: they belong to a version that has been swapped out.
    pub fn take_instance(&self, version: &Arc<LoadedHandler>) -> Option<Instance> {
        let mut idle = lock(&self.idle);
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
        if keep && Arc::ptr_eq(&instance.version, &self.current.load()) {
            lock(&self.idle).push(instance);
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

    /// Makes `next` serve every call from now on; returns the version it replaced. With a
    /// rollback rule, `next` is on probation for its first calls.
    pub fn swap(&self, next: Arc<LoadedHandler>) -> Arc<LoadedHandler> {
        let previous = self.install(next.clone());
        *lock(&self.probation) = self.config.rollback.map(|rule| Probation {
            version: next,
            previous: previous.clone(),
            rule,
            calls: 0,
            failed: 0,
        });
        previous
    }

    fn install(&self, next: Arc<LoadedHandler>) -> Arc<LoadedHandler> {
        let mut history = lock(&self.history);
        history.retain(|v| !Arc::ptr_eq(v, &next));
        history.insert(0, next.clone());
        history.truncate(HISTORY);
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

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// All handlers of a host. Handlers come and go when the configuration is reloaded, so the
/// map is behind a lock; it is only read briefly (never across an await).
#[derive(Default)]
pub struct HandlerRegistry {
    handlers: std::sync::RwLock<BTreeMap<String, Arc<HandlerEntry>>>,
}

impl HandlerRegistry {
    /// Adds (or replaces) a handler.
    pub fn insert(&self, entry: Arc<HandlerEntry>) {
        self.handlers
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(entry.name().to_owned(), entry);
    }

    /// Removes the handler called `name`.
    pub fn remove(&self, name: &str) -> Option<Arc<HandlerEntry>> {
        self.handlers
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(name)
    }

    /// The handler called `name`.
    pub fn get(&self, name: &str) -> Option<Arc<HandlerEntry>> {
        self.handlers
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .cloned()
    }

    /// All handlers, by name.
    pub fn list(&self) -> Vec<Arc<HandlerEntry>> {
        self.handlers
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect()
    }
}
