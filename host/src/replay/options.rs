//! What a replay is asked to do ([`ReplayOptions`]) and what can stop it ([`ReplayError`]).

use std::path::PathBuf;

use super::range::BadBound;
use crate::config::{Config, HandlerConfig};
use crate::error::LoadError;

/// What to replay and how; built with [`ReplayOptions::new`] and the setters.
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    pub(super) handler: String,
    pub(super) event_type: Option<String>,
    pub(super) from: String,
    pub(super) to: String,
    pub(super) component: Option<PathBuf>,
    pub(super) commit: bool,
}

impl ReplayOptions {
    /// Replays the whole stream of the handler's first event type through its configured
    /// component, as a dry run.
    pub fn new(handler: impl Into<String>) -> Self {
        ReplayOptions {
            handler: handler.into(),
            event_type: None,
            from: "-".to_owned(),
            to: "+".to_owned(),
            component: None,
            commit: false,
        }
    }

    /// Replays the stream of `event_type`, one of the handler's `events`.
    pub fn event_type(mut self, event_type: impl Into<String>) -> Self {
        self.event_type = Some(event_type.into());
        self
    }

    /// Starts at this entry id or RFC 3339 time (see [`parse_bound`]).
    pub fn from(mut self, bound: impl Into<String>) -> Self {
        self.from = bound.into();
        self
    }

    /// Stops at this entry id (included) or before this RFC 3339 time.
    pub fn to(mut self, bound: impl Into<String>) -> Self {
        self.to = bound.into();
        self
    }

    /// Runs this `.wasm` instead of the handler's configured component; the handler's
    /// settings (limits, sandbox, `[handler.config]`, kv hash) still apply.
    pub fn component(mut self, path: impl Into<PathBuf>) -> Self {
        self.component = Some(path.into());
        self
    }

    /// Applies the effects instead of discarding them.
    pub fn commit(mut self, commit: bool) -> Self {
        self.commit = commit;
        self
    }

    /// The event type to replay: the one asked for, which `handler` must consume, or the
    /// handler's first.
    pub(super) fn event_type_of(&self, handler: &HandlerConfig) -> Result<String, ReplayError> {
        match &self.event_type {
            None => Ok(handler.events.first().cloned().unwrap_or_default()),
            Some(t) if handler.events.contains(t) => Ok(t.clone()),
            Some(t) => Err(ReplayError::NotItsStream {
                handler: handler.name.clone(),
                event_type: t.clone(),
                events: handler.events.join(", "),
            }),
        }
    }

    /// The configured handler these options name.
    pub(super) fn handler_in(&self, config: &Config) -> Result<HandlerConfig, ReplayError> {
        let known = || match config.handlers.len() {
            0 => "none".to_owned(),
            _ => config
                .handlers
                .iter()
                .map(|h| h.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        };
        config
            .handlers
            .iter()
            .find(|h| h.name == self.handler)
            .cloned()
            .ok_or_else(|| ReplayError::UnknownHandler {
                config: config.source.clone(),
                name: self.handler.clone(),
                known: known(),
            })
    }
}

/// Why a replay could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The config has no handler of that name.
    #[error("{config}: no handler is called \"{name}\" (configured: {known})")]
    UnknownHandler {
        /// The config file.
        config: PathBuf,
        /// The name asked for.
        name: String,
        /// The names there are.
        known: String,
    },
    /// The event type is not one the handler consumes.
    #[error("handler \"{handler}\" does not consume `{event_type}` (its events: {events})")]
    NotItsStream {
        /// The handler.
        handler: String,
        /// The type asked for.
        event_type: String,
        /// The types it consumes.
        events: String,
    },
    /// `--from` or `--to` could not be read.
    #[error("--{flag}: {reason}")]
    Bound {
        /// `from` or `to`.
        flag: &'static str,
        /// What is wrong with it.
        reason: BadBound,
    },
    /// The component does not load.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The engine could not start, or the component cannot be instantiated.
    #[error("handler \"{handler}\": {reason}")]
    Runtime {
        /// The handler.
        handler: String,
        /// What failed.
        reason: String,
    },
    /// Redis could not be reached or refused a command.
    #[error("Redis, on `{key}`")]
    Redis {
        /// The key the command was about (or the URL when connecting).
        key: String,
        /// What Redis said.
        source: redis::RedisError,
    },
}

pub(super) fn redis_error(key: &str) -> impl FnOnce(redis::RedisError) -> ReplayError + '_ {
    move |source| ReplayError::Redis {
        key: key.to_owned(),
        source,
    }
}
