//! `[ingest]` and `[webhooks.SOURCE]` for tests: [`IngestConfig`] and [`WebhookConfig`].

use std::fmt::Write as _;

use super::{line, opt_line, quote};

/// An `[ingest]` section and the `[webhooks.*]` tables that go with it.
#[derive(Debug, Clone)]
pub struct IngestConfig {
    listen: String,
    max_body_bytes: Option<u64>,
    strict: Option<bool>,
    allow_unsigned_webhooks: Option<bool>,
    webhooks: Vec<WebhookConfig>,
}

impl IngestConfig {
    /// An ingest listener on a loopback port that is free at the moment of asking
    /// ([`IngestConfig::addr`] tells where).
    pub fn on_free_port() -> IngestConfig {
        let port = crate::redis_server::free_port();
        IngestConfig {
            listen: format!("127.0.0.1:{port}"),
            max_body_bytes: None,
            strict: None,
            allow_unsigned_webhooks: None,
            webhooks: Vec::new(),
        }
    }

    /// `host:port` of the listener.
    pub fn addr(&self) -> &str {
        &self.listen
    }

    /// `max_body_bytes`: larger request bodies get 413.
    pub fn max_body_bytes(mut self, bytes: u64) -> Self {
        self.max_body_bytes = Some(bytes);
        self
    }

    /// `strict`: whether only the eight built-in event types are accepted.
    pub fn strict(mut self, strict: bool) -> Self {
        self.strict = Some(strict);
        self
    }

    /// `allow_unsigned_webhooks`: accept sources without a table, unchecked.
    pub fn allow_unsigned_webhooks(mut self, allow: bool) -> Self {
        self.allow_unsigned_webhooks = Some(allow);
        self
    }

    /// Adds a `[webhooks.SOURCE]` table.
    pub fn webhook(mut self, webhook: WebhookConfig) -> Self {
        self.webhooks.push(webhook);
        self
    }

    /// Appends the section and its tables to `out`.
    pub(super) fn write_toml(&self, out: &mut String) {
        out.push_str("\n[ingest]\n");
        line(out, "listen", &quote(&self.listen));
        opt_line(out, "max_body_bytes", self.max_body_bytes);
        opt_line(out, "strict", self.strict);
        opt_line(out, "allow_unsigned_webhooks", self.allow_unsigned_webhooks);
        for webhook in &self.webhooks {
            webhook.write_toml(out);
        }
    }
}

/// One `[webhooks.SOURCE]` table.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    source: String,
    secret: Option<String>,
    signature_header: Option<String>,
    forward_headers: Vec<String>,
}

impl WebhookConfig {
    /// The table of `source` (the last part of `/webhooks/{source}`), with no keys yet.
    pub fn new(source: impl Into<String>) -> WebhookConfig {
        WebhookConfig {
            source: source.into(),
            secret: None,
            signature_header: None,
            forward_headers: Vec::new(),
        }
    }

    /// `secret`: the HMAC-SHA256 key requests are signed with.
    pub fn secret(mut self, secret: impl Into<String>) -> Self {
        self.secret = Some(secret.into());
        self
    }

    /// `signature_header`: where the signature is (default `X-Signature-256`).
    pub fn signature_header(mut self, header: impl Into<String>) -> Self {
        self.signature_header = Some(header.into());
        self
    }

    /// Appends to `forward_headers`.
    pub fn forward_header(mut self, header: impl Into<String>) -> Self {
        self.forward_headers.push(header.into());
        self
    }

    fn write_toml(&self, out: &mut String) {
        // Writing to a String cannot fail.
        let _ = write!(out, "\n[webhooks.{}]\n", self.source);
        if let Some(secret) = &self.secret {
            line(out, "secret", &quote(secret));
        }
        if let Some(header) = &self.signature_header {
            line(out, "signature_header", &quote(header));
        }
        let headers: Vec<String> = self.forward_headers.iter().map(|h| quote(h)).collect();
        line(out, "forward_headers", &format!("[{}]", headers.join(", ")));
    }
}
