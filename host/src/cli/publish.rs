//! `watchtower publish TYPE JSON`.

use std::collections::BTreeMap;

use anyhow::Context as _;
use clap::Args;
use watchtower::publisher::{PublishOptions, publish};

use super::RedisArgs;

/// Arguments of `publish`.
#[derive(Debug, Args)]
pub struct PublishArgs {
    /// Event type, e.g. position.updated.
    pub event_type: String,
    /// Payload: a JSON object, e.g. '{"truck_id":"t1","truck_number":"T-1","lat":52.5,"lng":13.4,"speed":80}'.
    pub data: String,
    /// Correlation id to attach.
    #[arg(long)]
    pub correlation_id: Option<String>,
    /// Metadata entry KEY=VALUE (repeatable).
    #[arg(long = "meta", value_name = "KEY=VALUE")]
    pub metadata: Vec<String>,
    #[command(flatten)]
    pub redis: RedisArgs,
}

/// Publishes and prints the entry id.
pub async fn run(args: PublishArgs) -> anyhow::Result<()> {
    let mut metadata = BTreeMap::new();
    for item in &args.metadata {
        let (key, value) = item
            .split_once('=')
            .with_context(|| format!("--meta `{item}`: expected KEY=VALUE"))?;
        metadata.insert(key.to_owned(), value.to_owned());
    }
    let (mut conn, namespace) = args.redis.connect().await?;
    let options = PublishOptions {
        correlation_id: args.correlation_id,
        metadata,
    };
    let published = publish(&mut conn, &namespace, &args.event_type, &args.data, options).await?;
    println!("{}", published.entry_id);
    Ok(())
}
