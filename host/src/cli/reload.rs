//! `watchtower reload NAME`: asks a running host (through its admin listener) to load the
//! handler's component again and swap it in. Sends the admin bearer token when one is
//! configured (`--token`, `WATCHTOWER_ADMIN_TOKEN`, or `[admin] token`/`token_env`).

use std::path::PathBuf;

use anyhow::{Context as _, bail};
use clap::Args;
use serde_json::Value;
use watchtower::config::DEFAULT_ADMIN_LISTEN;
use watchtower::config::file::FileConfig;

use super::read_raw;

/// Arguments of `reload`.
#[derive(Debug, Args)]
pub struct ReloadArgs {
    /// The handler to reload.
    pub handler: String,
    /// Admin URL of the running host [default: from `[admin] listen` of the config file,
    /// else http://127.0.0.1:9464].
    #[arg(long, env = "WATCHTOWER_ADMIN_URL")]
    pub admin_url: Option<String>,
    /// Bearer token of the admin listener [default: `[admin] token` or `token_env` of the
    /// config file, else none].
    #[arg(long, env = "WATCHTOWER_ADMIN_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Config file to read `[admin] listen` from (used only if it exists).
    #[arg(
        long,
        short,
        env = "WATCHTOWER_CONFIG",
        default_value = "watchtower.toml"
    )]
    pub config: PathBuf,
}

/// Sends the request and prints the outcome; fails with the host's reason when refused.
pub async fn run(args: ReloadArgs) -> anyhow::Result<()> {
    let file = if args.admin_url.is_some() && args.token.is_some() {
        FileConfig::default()
    } else {
        read_raw(&args.config)?
    };
    let base = match args.admin_url {
        Some(url) => url,
        None => {
            let listen = file
                .admin
                .listen
                .unwrap_or_else(|| DEFAULT_ADMIN_LISTEN.to_owned());
            format!("http://{listen}")
        }
    };
    let token = args
        .token
        .or(file.admin.token)
        .or_else(|| {
            file.admin
                .token_env
                .and_then(|name| std::env::var(name).ok())
        })
        .filter(|token| !token.is_empty());
    let url = format!(
        "{}/admin/handlers/{}/reload",
        base.trim_end_matches('/'),
        args.handler
    );
    let (status, body) = tokio::task::spawn_blocking({
        let url = url.clone();
        move || -> anyhow::Result<(u16, String)> {
            let agent: ureq::Agent = ureq::Agent::config_builder()
                .http_status_as_error(false)
                .build()
                .into();
            let mut request = agent.post(&url);
            if let Some(token) = &token {
                request = request.header("Authorization", format!("Bearer {token}"));
            }
            let mut response = request.send_empty()?;
            let status = response.status().as_u16();
            Ok((status, response.body_mut().read_to_string()?))
        }
    })
    .await?
    .with_context(|| format!("asking the host at {url}"))?;
    let json: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    if status != 200 {
        let reason = json["error"].as_str().unwrap_or(body.trim());
        bail!("{reason} (HTTP {status})");
    }
    if json["swapped"].as_bool() == Some(true) {
        println!(
            "{}: swapped {} -> {}",
            args.handler,
            json["previous"].as_str().unwrap_or("?"),
            json["version"].as_str().unwrap_or("?")
        );
    } else {
        println!(
            "{}: unchanged, version {} keeps serving",
            args.handler,
            json["version"].as_str().unwrap_or("?")
        );
    }
    Ok(())
}
