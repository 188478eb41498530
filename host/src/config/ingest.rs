//! `[ingest]`, `[webhooks.SOURCE]` and the secrets they (and `[admin] token`) hold, validated.
//!
//! Secrets can sit in the file (`secret = "…"`) or in the environment (`secret_env = "NAME"`),
//! so a file checked into a repository need not carry them. Either way they are read once,
//! here, and a missing variable is a config error, not a 401 at the first request.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;

use axum::http::HeaderName;

use super::file::{IngestSection, WebhookSection};
use super::{ConfigError, Validator};

/// Body size limit of an ingest request when the file sets none: 1 MiB.
pub const DEFAULT_MAX_BODY_BYTES: u64 = 1 << 20;
/// The header a webhook sender puts its signature in when the source names none.
pub const DEFAULT_SIGNATURE_HEADER: &str = "x-signature-256";

/// A value that must not end up in a log line: `Debug` prints `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The value itself, for the one place that compares or signs with it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// `[ingest]` with its `[webhooks.*]` tables: the HTTP listener that publishes events.
#[derive(Debug, Clone, PartialEq)]
pub struct IngestConfig {
    /// Listener address (ingest is off when `[ingest] listen` is absent).
    pub listen: SocketAddr,
    /// Largest request body accepted; larger ones get 413 and publish nothing.
    pub max_body_bytes: usize,
    /// Accept only the eight built-in event types on `POST /events/{type}`.
    pub strict: bool,
    /// Accept webhooks from sources without a `[webhooks.SOURCE]` table, unchecked.
    pub allow_unsigned_webhooks: bool,
    /// The configured webhook sources, by the `{source}` of their URL.
    pub webhooks: BTreeMap<String, WebhookSource>,
}

/// One `[webhooks.SOURCE]`.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookSource {
    /// Key of the HMAC-SHA256 signature every request must carry; `None` only when
    /// `allow_unsigned_webhooks` is on.
    pub secret: Option<Secret>,
    /// Header holding the signature, lowercase.
    pub signature_header: HeaderName,
    /// Request headers copied into the event besides `content-type` and `user-agent`,
    /// lowercase.
    pub forward_headers: Vec<HeaderName>,
}

impl Validator<'_> {
    /// `[ingest]` and `[webhooks.*]`; `None` when ingest is off (no `listen`).
    pub(super) fn ingest(
        &self,
        raw: IngestSection,
        webhooks: BTreeMap<String, WebhookSection>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Option<IngestConfig>, ConfigError> {
        let Some(listen_text) = raw.listen else {
            return Ok(None);
        };
        let listen = listen_text.parse().map_err(|_| {
            self.invalid(
                "[ingest] `listen`",
                format!("`{listen_text}` is not an address like 127.0.0.1:9465"),
            )
        })?;
        let max_body_bytes = usize::try_from(self.positive(
            "[ingest] `max_body_bytes`",
            raw.max_body_bytes.unwrap_or(DEFAULT_MAX_BODY_BYTES),
        )?)
        .map_err(|_| self.invalid("[ingest] `max_body_bytes`", "too large for this machine"))?;
        let allow_unsigned_webhooks = raw.allow_unsigned_webhooks.unwrap_or(false);
        let mut sources = BTreeMap::new();
        for (name, section) in webhooks {
            let source = self.webhook(&name, section, allow_unsigned_webhooks, env)?;
            sources.insert(name, source);
        }
        Ok(Some(IngestConfig {
            listen,
            max_body_bytes,
            strict: raw.strict.unwrap_or(true),
            allow_unsigned_webhooks,
            webhooks: sources,
        }))
    }

    fn webhook(
        &self,
        name: &str,
        raw: WebhookSection,
        allow_unsigned: bool,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<WebhookSource, ConfigError> {
        let at = |field: &str| format!("[webhooks.{name}] `{field}`");
        if !is_source_name(name) {
            return Err(self.invalid(
                &format!("[webhooks.{name}]"),
                "a source name must match [a-z0-9][a-z0-9_-]* (it is the last part of the URL)",
            ));
        }
        let secret = self.secret(
            (&at("secret"), raw.secret),
            (&at("secret_env"), raw.secret_env),
            env,
        )?;
        if secret.is_none() && !allow_unsigned {
            return Err(self.invalid(
                &format!("[webhooks.{name}]"),
                "needs `secret` or `secret_env` (or [ingest] `allow_unsigned_webhooks = true` \
                 to accept its requests unchecked)",
            ));
        }
        let signature_header = self.header_name(
            &at("signature_header"),
            raw.signature_header
                .as_deref()
                .unwrap_or(DEFAULT_SIGNATURE_HEADER),
        )?;
        let forward_headers = raw
            .forward_headers
            .iter()
            .map(|header| self.header_name(&at("forward_headers"), header))
            .collect::<Result<_, _>>()?;
        Ok(WebhookSource {
            secret,
            signature_header,
            forward_headers,
        })
    }

    /// A secret given either inline (`value`) or as the name of an environment variable
    /// (`from_env`), each with the key it sits at; neither is `None`, both is an error.
    pub(super) fn secret(
        &self,
        (value_key, value): (&str, Option<String>),
        (env_key, from_env): (&str, Option<String>),
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Option<Secret>, ConfigError> {
        match (value, from_env) {
            (None, None) => Ok(None),
            (Some(_), Some(_)) => {
                Err(self.invalid(value_key, format!("set either it or {env_key}, not both")))
            }
            (Some(value), None) if value.is_empty() => Err(self.invalid(value_key, "is empty")),
            (Some(value), None) => Ok(Some(Secret(value))),
            (None, Some(name)) => match env(&name).filter(|v| !v.is_empty()) {
                Some(value) => Ok(Some(Secret(value))),
                None => Err(self.invalid(
                    env_key,
                    format!("the environment variable `{name}` is not set or empty"),
                )),
            },
        }
    }

    fn header_name(&self, key: &str, name: &str) -> Result<HeaderName, ConfigError> {
        // `HeaderName` lowercases, so lookups match however the sender spells it.
        HeaderName::try_from(name)
            .map_err(|_| self.invalid(key, format!("`{name}` is not a valid HTTP header name")))
    }
}

/// The `{source}` names a webhook URL may carry: `[a-z0-9][a-z0-9_-]*`, at most 64 bytes.
pub fn is_source_name(name: &str) -> bool {
    name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::Config;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::from_toml_str(text, Path::new("/etc/watchtower.toml"))
    }

    fn err(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    #[test]
    fn ingest_is_off_without_listen() {
        assert_eq!(parse("").unwrap().ingest, None);
        assert_eq!(parse("[ingest]\nstrict = false\n").unwrap().ingest, None);
    }

    #[test]
    fn defaults_fill_an_ingest_section_with_only_listen() {
        let ingest = parse("[ingest]\nlisten = \"127.0.0.1:9465\"\n")
            .unwrap()
            .ingest
            .unwrap();
        assert_eq!(ingest.listen.to_string(), "127.0.0.1:9465");
        assert_eq!(ingest.max_body_bytes, 1 << 20);
        assert!(ingest.strict);
        assert!(!ingest.allow_unsigned_webhooks);
        assert!(ingest.webhooks.is_empty());
    }

    #[test]
    fn a_webhook_source_takes_its_secret_header_and_forwarded_headers() {
        let text = r#"
[ingest]
listen = "127.0.0.1:9465"
[webhooks.github]
secret = "s3cret"
signature_header = "X-Hub-Signature-256"
forward_headers = ["X-GitHub-Event", "x-github-delivery"]
"#;
        let ingest = parse(text).unwrap().ingest.unwrap();
        let github = &ingest.webhooks["github"];
        assert_eq!(github.secret.as_ref().map(Secret::expose), Some("s3cret"));
        assert_eq!(github.signature_header.as_str(), "x-hub-signature-256");
        let forwarded: Vec<&str> = github.forward_headers.iter().map(|h| h.as_str()).collect();
        assert_eq!(forwarded, ["x-github-event", "x-github-delivery"]);
    }

    #[test]
    fn signature_header_defaults_to_x_signature_256() {
        let text = "[ingest]\nlisten = \"127.0.0.1:0\"\n[webhooks.fleet]\nsecret = \"k\"\n";
        let ingest = parse(text).unwrap().ingest.unwrap();
        assert_eq!(
            ingest.webhooks["fleet"].signature_header.as_str(),
            DEFAULT_SIGNATURE_HEADER
        );
    }

    #[test]
    fn a_source_without_secret_needs_unsigned_webhooks_allowed() {
        let text = "[ingest]\nlisten = \"127.0.0.1:0\"\n[webhooks.fleet]\nforward_headers = []\n";
        let msg = err(text);
        assert!(msg.contains("[webhooks.fleet]"), "{msg}");
        assert!(msg.contains("`secret`"), "{msg}");
        let allowed = text.replace("[webhooks", "allow_unsigned_webhooks = true\n[webhooks");
        let ingest = parse(&allowed).unwrap().ingest.unwrap();
        assert_eq!(ingest.webhooks["fleet"].secret, None);
    }

    #[test]
    fn secret_and_secret_env_together_are_refused() {
        let msg = err(
            "[ingest]\nlisten = \"127.0.0.1:0\"\n[webhooks.fleet]\nsecret = \"a\"\nsecret_env = \"B\"\n",
        );
        assert!(msg.contains("[webhooks.fleet] `secret`"), "{msg}");
        assert!(msg.contains("not both"), "{msg}");
    }

    #[test]
    fn a_secret_env_that_is_not_set_is_refused_naming_the_variable() {
        let msg = err(
            "[ingest]\nlisten = \"127.0.0.1:0\"\n[webhooks.fleet]\nsecret_env = \"WATCHTOWER_TEST_NEVER_SET_7F3A\"\n",
        );
        assert!(msg.contains("`secret_env`"), "{msg}");
        assert!(msg.contains("WATCHTOWER_TEST_NEVER_SET_7F3A"), "{msg}");
    }

    #[test]
    fn a_secret_env_is_read_through_the_lookup() {
        let v = Validator {
            file: Path::new("w.toml"),
        };
        let lookup = |name: &str| (name == "HOOK_KEY").then(|| "from-env".to_owned());
        let secret = v
            .secret(("s", None), ("e", Some("HOOK_KEY".into())), &lookup)
            .unwrap();
        assert_eq!(secret.as_ref().map(Secret::expose), Some("from-env"));
    }

    #[test]
    fn bad_values_name_their_key() {
        let cases = [
            ("[ingest]\nlisten = \"nowhere\"\n", "[ingest] `listen`"),
            (
                "[ingest]\nlisten = \"127.0.0.1:0\"\nmax_body_bytes = 0\n",
                "[ingest] `max_body_bytes`: must be > 0",
            ),
            (
                "[ingest]\nlisten = \"127.0.0.1:0\"\n[webhooks.fleet]\nsecret = \"\"\n",
                "[webhooks.fleet] `secret`: is empty",
            ),
            (
                "[ingest]\nlisten = \"127.0.0.1:0\"\n[webhooks.fleet]\nsecret = \"k\"\nsignature_header = \"bad header\"\n",
                "[webhooks.fleet] `signature_header`",
            ),
            (
                "[ingest]\nlisten = \"127.0.0.1:0\"\n[webhooks.fleet]\nsecret = \"k\"\nforward_headers = [\"a:b\"]\n",
                "[webhooks.fleet] `forward_headers`",
            ),
            (
                "[ingest]\nlisten = \"127.0.0.1:0\"\n[webhooks.Fleet]\nsecret = \"k\"\n",
                "[webhooks.Fleet]",
            ),
            (
                "[ingest]\nlisten = \"127.0.0.1:0\"\n[webhooks.fleet]\nsecret = \"k\"\nsecrett = \"x\"\n",
                "unknown field `secrett`",
            ),
        ];
        for (text, expected) in cases {
            let msg = err(text);
            assert!(msg.contains(expected), "{expected:?} not in {msg:?}");
            assert!(msg.contains("watchtower.toml"), "{msg}");
        }
    }

    #[test]
    fn secrets_do_not_show_in_debug_output() {
        let text = "[admin]\ntoken = \"admin-pass\"\n[ingest]\nlisten = \"127.0.0.1:0\"\n[webhooks.fleet]\nsecret = \"hook-pass\"\n";
        let shown = format!("{:?}", parse(text).unwrap());
        assert!(!shown.contains("admin-pass"), "{shown}");
        assert!(!shown.contains("hook-pass"), "{shown}");
    }

    #[test]
    fn the_admin_token_is_optional_and_never_both_inline_and_from_env() {
        assert_eq!(parse("").unwrap().admin.token, None);
        let cfg = parse("[admin]\ntoken = \"t0ken\"\n").unwrap();
        assert_eq!(cfg.admin.token.as_ref().map(Secret::expose), Some("t0ken"));
        let msg = err("[admin]\ntoken = \"a\"\ntoken_env = \"B\"\n");
        assert!(msg.contains("[admin] `token`"), "{msg}");
        let msg = err("[admin]\ntoken_env = \"WATCHTOWER_TEST_NEVER_SET_7F3A\"\n");
        assert!(msg.contains("[admin] `token_env`"), "{msg}");
    }

    #[test]
    fn ingest_cannot_share_the_admin_address() {
        let msg =
            err("[admin]\nlisten = \"127.0.0.1:9464\"\n[ingest]\nlisten = \"127.0.0.1:9464\"\n");
        assert!(msg.contains("[ingest] `listen`"), "{msg}");
        assert!(msg.contains("admin"), "{msg}");
    }

    #[test]
    fn source_names_are_url_segments() {
        assert!(is_source_name("github"));
        assert!(is_source_name("fleet-api_2"));
        assert!(!is_source_name(""));
        assert!(!is_source_name("-x"));
        assert!(!is_source_name("GitHub"));
        assert!(!is_source_name("a.b"));
        assert!(!is_source_name(&"a".repeat(65)));
    }
}
