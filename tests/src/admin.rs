//! The host's admin listener, spoken to over HTTP the way an operator's `curl` or a
//! deployment script does: health, the handler list with versions, reload requests.
//!
//! Requests go through a small blocking client on a blocking thread, so a test's runtime
//! (and an in-process host on it) keeps running while a slow reload compiles. Any status is
//! an answer: a `422` is what a refusal test expects, not an error.

use std::time::Duration;

use serde_json::Value;

use crate::cli::RunningProcess;
use crate::config::HostConfig;
use crate::wait::{PATIENCE, eventually};

/// How long one request may take: a reload compiles the new component and may run a canary
/// on a debug build.
const REQUEST_DEADLINE: Duration = Duration::from_secs(120);

/// A client of one host's admin listener.
#[derive(Clone)]
pub struct Admin {
    base: String,
    agent: ureq::Agent,
}

impl std::fmt::Debug for Admin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admin").field("base", &self.base).finish()
    }
}

/// One HTTP answer.
#[derive(Debug, Clone)]
pub struct Reply {
    /// `METHOD path`, for messages.
    pub request: String,
    /// The status code.
    pub status: u16,
    /// The body as text.
    pub body: String,
}

impl Reply {
    /// The answer to `request` (`METHOD path`), read whole; `Err` when none came.
    pub(crate) fn read(
        request: String,
        response: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<Reply, String> {
        let mut response = response.map_err(|err| format!("{request}: {err}"))?;
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .read_to_string()
            .map_err(|err| format!("{request}: reading the body: {err}"))?;
        Ok(Reply {
            request,
            status,
            body,
        })
    }

    /// The body as JSON; panics showing the reply if it is not.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|err| {
            panic!(
                "{} answered with a body that is not JSON ({err}): {self:?}",
                self.request
            )
        })
    }

    /// The string field `field` of the JSON body; panics showing the reply if it is missing.
    pub fn text(&self, field: &str) -> String {
        match self.json().get(field) {
            Some(Value::String(text)) => text.clone(),
            _ => panic!(
                "{}: no string `{field}` in the reply: {self:?}",
                self.request
            ),
        }
    }

    /// Panics showing the reply unless its status is `status`; returns `self`.
    pub fn assert_status(self, status: u16) -> Reply {
        assert_eq!(self.status, status, "status of {}: {self:?}", self.request);
        self
    }
}

/// One entry of `GET /admin/handlers`.
#[derive(Debug, Clone)]
pub struct HandlerStatus {
    /// The handler's name.
    pub name: String,
    /// The short label of the live version.
    pub version: String,
    /// The sha256 of the live version.
    pub digest: String,
    /// The component file.
    pub component: String,
    /// When the live version was loaded.
    pub loaded_at: String,
    /// Every version this host has run for the handler, newest first.
    pub versions: Vec<VersionStatus>,
}

impl HandlerStatus {
    /// The entry of `version` in [`HandlerStatus::versions`]; panics listing them if absent.
    pub fn version_entry(&self, version: &str) -> &VersionStatus {
        self.versions
            .iter()
            .find(|v| v.version == version)
            .unwrap_or_else(|| panic!("{}: no version {version} in {:?}", self.name, self.versions))
    }
}

/// What one version of a handler has done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionStatus {
    /// Its short label.
    pub version: String,
    /// When it was loaded.
    pub loaded_at: String,
    /// Calls it finished successfully.
    pub handled: u64,
    /// Calls of it that failed.
    pub failed: u64,
}

impl Admin {
    /// A client of the listener at `addr` (`host:port`).
    pub fn new(addr: &str) -> Admin {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(REQUEST_DEADLINE))
            .build()
            .into();
        Admin {
            base: format!("http://{addr}"),
            agent,
        }
    }

    /// A client of the listener `config` sets; panics unless it names a fixed port
    /// ([`HostConfig::admin_on_free_port`]).
    pub fn of(config: &HostConfig) -> Admin {
        let addr = config
            .admin_addr()
            .filter(|addr| !addr.ends_with(":0"))
            .expect("the config gives the admin listener a fixed port: use admin_on_free_port()");
        Admin::new(addr)
    }

    /// `http://host:port`, as `watchtower reload --admin-url` takes it.
    pub fn url(&self) -> &str {
        &self.base
    }

    /// Sends `METHOD path`; `Err` when no answer came (nothing listening, connection reset).
    pub async fn try_request(&self, method: &'static str, path: &str) -> Result<Reply, String> {
        let url = format!("{}{path}", self.base);
        let request = format!("{method} {path}");
        let agent = self.agent.clone();
        tokio::task::spawn_blocking(move || {
            let response = match method {
                "GET" => agent.get(&url).call(),
                "POST" => agent.post(&url).send_empty(),
                other => panic!("the admin client does not send {other}"),
            };
            Reply::read(request, response)
        })
        .await
        .expect("the HTTP request task does not panic")
    }

    /// `GET path`; panics if nothing answers.
    pub async fn get(&self, path: &str) -> Reply {
        self.try_request("GET", path)
            .await
            .unwrap_or_else(|err| panic!("{err}"))
    }

    /// `POST path` with an empty body; panics if nothing answers.
    pub async fn post(&self, path: &str) -> Reply {
        self.try_request("POST", path)
            .await
            .unwrap_or_else(|err| panic!("{err}"))
    }

    /// `POST /admin/handlers/{name}/reload`.
    pub async fn reload(&self, name: &str) -> Reply {
        self.post(&format!("/admin/handlers/{name}/reload")).await
    }

    /// `GET /admin/handlers`, parsed.
    pub async fn handlers(&self) -> Vec<HandlerStatus> {
        let reply = self.get("/admin/handlers").await.assert_status(200);
        let list = reply.json();
        let items = list
            .as_array()
            .unwrap_or_else(|| panic!("GET /admin/handlers is not a JSON array: {reply:?}"));
        items.iter().map(handler_status).collect()
    }

    /// The entry of `name` in `GET /admin/handlers`; panics listing the others if absent.
    pub async fn handler(&self, name: &str) -> HandlerStatus {
        let all = self.handlers().await;
        let names: Vec<String> = all.iter().map(|h| h.name.clone()).collect();
        all.into_iter()
            .find(|h| h.name == name)
            .unwrap_or_else(|| panic!("GET /admin/handlers has no {name:?} (has {names:?})"))
    }

    /// Waits until `GET /admin/handlers` shows `version` as the live version of `name`.
    pub async fn wait_for_version(&self, name: &str, version: &str) -> HandlerStatus {
        eventually(
            PATIENCE,
            &format!("{name} serving version {version}"),
            || async move {
                let status = self.handler(name).await;
                if status.version == version {
                    Ok(status)
                } else {
                    Err(format!("version {}", status.version))
                }
            },
        )
        .await
    }

    /// Waits until `GET /readyz` answers 200 (the host's consumers run); panics with the
    /// host's log if `host` exits first.
    pub async fn wait_ready(&self, host: &mut RunningProcess) {
        eventually(
            PATIENCE,
            &format!("{}/readyz to answer 200", self.base),
            || {
                let exited = host.has_exited();
                let log = exited.then(|| host.stderr_so_far());
                async move {
                    if let Some(log) = log {
                        panic!("the host exited before it was ready:\n{log}");
                    }
                    match self.try_request("GET", "/readyz").await {
                        Ok(reply) if reply.status == 200 => Ok(()),
                        Ok(reply) => Err(format!("{reply:?}")),
                        Err(err) => Err(err),
                    }
                }
            },
        )
        .await;
    }
}

/// One entry of `GET /admin/handlers` from its JSON.
fn handler_status(value: &Value) -> HandlerStatus {
    let versions = value
        .get("versions")
        .and_then(Value::as_array)
        .unwrap_or_else(|| panic!("no `versions` array in {value}"))
        .iter()
        .map(|v| VersionStatus {
            version: text(v, "version"),
            loaded_at: text(v, "loaded_at"),
            handled: number(v, "handled"),
            failed: number(v, "failed"),
        })
        .collect();
    HandlerStatus {
        name: text(value, "name"),
        version: text(value, "version"),
        digest: text(value, "digest"),
        component: text(value, "component"),
        loaded_at: text(value, "loaded_at"),
        versions,
    }
}

fn text(value: &Value, field: &str) -> String {
    match value.get(field) {
        Some(Value::String(text)) => text.clone(),
        _ => panic!("no string `{field}` in {value}"),
    }
}

fn number(value: &Value, field: &str) -> u64 {
    value
        .get(field)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("no count `{field}` in {value}"))
}
