//! `watchtower healthcheck`: asks a host's admin listener whether it answers, for container
//! health checks in images that carry no HTTP client of their own.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::Args;
use watchtower::config::{DEFAULT_ADMIN_LISTEN, apply_env_overrides};

use super::read_raw;

/// Arguments of `healthcheck`.
#[derive(Debug, Args)]
pub struct HealthcheckArgs {
    /// URL to ask [default: /healthz on `[admin] listen` of the config file or
    /// `WATCHTOWER_ADMIN_LISTEN`, else http://127.0.0.1:9464/healthz].
    #[arg(long)]
    pub url: Option<String>,
    /// Config file to read `[admin] listen` from (used only if it exists).
    #[arg(
        long,
        short,
        env = "WATCHTOWER_CONFIG",
        default_value = "watchtower.toml"
    )]
    pub config: PathBuf,
    /// Seconds to wait for the answer.
    #[arg(long, default_value_t = 3)]
    pub timeout: u64,
}

/// Succeeds (exit status 0) when the URL answers 200; prints nothing then.
pub async fn run(args: HealthcheckArgs) -> anyhow::Result<()> {
    let url = match args.url {
        Some(url) => url,
        None => {
            let mut file = read_raw(&args.config)?;
            apply_env_overrides(&mut file, |name| std::env::var(name).ok());
            let listen = file
                .admin
                .listen
                .unwrap_or_else(|| DEFAULT_ADMIN_LISTEN.to_owned());
            let addr: SocketAddr = listen.parse().with_context(|| {
                format!("{}: [admin] `listen` = `{listen}`", args.config.display())
            })?;
            format!("http://{}/healthz", reachable(addr))
        }
    };
    let timeout = Duration::from_secs(args.timeout.max(1));
    let status = tokio::task::spawn_blocking({
        let url = url.clone();
        move || -> Result<u16, ureq::Error> {
            let agent: ureq::Agent = ureq::Agent::config_builder()
                .http_status_as_error(false)
                .timeout_global(Some(timeout))
                .build()
                .into();
            Ok(agent.get(&url).call()?.status().as_u16())
        }
    })
    .await?
    .with_context(|| format!("asking {url}"))?;
    if status != 200 {
        bail!("{url} answered HTTP {status}");
    }
    Ok(())
}

/// Where to reach a listener bound to `addr`: a wildcard address (`0.0.0.0`, `::`) is
/// reached on loopback.
fn reachable(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => (Ipv4Addr::LOCALHOST, addr.port()).into(),
        IpAddr::V6(ip) if ip.is_unspecified() => (Ipv6Addr::LOCALHOST, addr.port()).into(),
        _ => addr,
    }
}

#[cfg(test)]
mod tests {
    use super::reachable;

    #[test]
    fn wildcard_listeners_are_asked_on_loopback() {
        let at = |s: &str| reachable(s.parse().unwrap()).to_string();
        assert_eq!(at("0.0.0.0:9464"), "127.0.0.1:9464");
        assert_eq!(at("[::]:9464"), "[::1]:9464");
        assert_eq!(at("10.1.2.3:80"), "10.1.2.3:80");
    }
}
