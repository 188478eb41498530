//! The host's ingest listener over HTTP, spoken to as a service or a webhook sender does:
//! `POST /events/{type}` and `POST /webhooks/{source}` with any headers and body, and the
//! signature a sender computes over the body.
//!
//! Like [`crate::admin`], requests go through a blocking client on a blocking thread, and any
//! status is an answer ([`Reply`]).

use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::admin::Reply;
use crate::config::IngestConfig;
use crate::wait::{PATIENCE, eventually};

/// How long one request may take.
const REQUEST_DEADLINE: Duration = Duration::from_secs(30);

/// A client of one host's ingest listener (or of any listener, for a request with headers).
#[derive(Clone)]
pub struct Ingest {
    base: String,
    agent: ureq::Agent,
}

impl std::fmt::Debug for Ingest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ingest").field("base", &self.base).finish()
    }
}

impl Ingest {
    /// A client of the listener at `addr` (`host:port`).
    pub fn new(addr: &str) -> Ingest {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(REQUEST_DEADLINE))
            .build()
            .into();
        Ingest {
            base: format!("http://{addr}"),
            agent,
        }
    }

    /// A client of the listener `config` sets.
    pub fn of(config: &IngestConfig) -> Ingest {
        Ingest::new(config.addr())
    }

    /// `POST path` with `headers` and `body`; `Err` when no answer came.
    pub async fn try_post(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Vec<u8>>,
    ) -> Result<Reply, String> {
        let url = format!("{}{path}", self.base);
        let request = format!("POST {path}");
        let headers: Vec<(String, String)> = headers
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect();
        let body = body.into();
        let agent = self.agent.clone();
        tokio::task::spawn_blocking(move || {
            let mut builder = agent.post(&url);
            for (name, value) in &headers {
                builder = builder.header(name, value);
            }
            Reply::read(request, builder.send(&body[..]))
        })
        .await
        .expect("the HTTP request task does not panic")
    }

    /// `POST path` with `headers` and `body`; panics if nothing answers.
    pub async fn post(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Vec<u8>>,
    ) -> Reply {
        self.try_post(path, headers, body)
            .await
            .unwrap_or_else(|err| panic!("{err}"))
    }

    /// `GET path`; panics if nothing answers.
    pub async fn get(&self, path: &str) -> Reply {
        let url = format!("{}{path}", self.base);
        let request = format!("GET {path}");
        let agent = self.agent.clone();
        tokio::task::spawn_blocking(move || {
            let mut response = agent
                .get(&url)
                .call()
                .unwrap_or_else(|err| panic!("{request}: {err}"));
            let status = response.status().as_u16();
            let body = response.body_mut().read_to_string().unwrap_or_default();
            Reply {
                request,
                status,
                body,
            }
        })
        .await
        .expect("the HTTP request task does not panic")
    }

    /// `POST /events/{event_type}` with the JSON `body`.
    pub async fn event(&self, event_type: &str, body: &str) -> Reply {
        self.post(
            &format!("/events/{event_type}"),
            &[("content-type", "application/json")],
            body,
        )
        .await
    }

    /// Waits until the listener answers `GET /healthz` (the host binds it after connecting
    /// to Redis, in the background).
    pub async fn wait_ready(&self) {
        let url = format!("{}/healthz", self.base);
        eventually(PATIENCE, &format!("{url} to answer 200"), || {
            let agent = self.agent.clone();
            let url = url.clone();
            async move {
                tokio::task::spawn_blocking(move || match agent.get(&url).call() {
                    Ok(response) if response.status() == 200 => Ok(()),
                    Ok(response) => Err(format!("status {}", response.status())),
                    Err(err) => Err(err.to_string()),
                })
                .await
                .expect("the HTTP request task does not panic")
            }
        })
        .await;
    }
}

/// `sha256=<hex>`: the HMAC-SHA256 of `body` keyed with `secret`, as a webhook sender
/// computes it (`openssl dgst -sha256 -hmac SECRET` gives the same hex).
pub fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}
