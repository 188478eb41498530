//! `watchtower status`.

use clap::Args;

use super::RedisArgs;

/// Arguments of `status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub redis: RedisArgs,
}

/// Prints every event stream of the namespace with its groups.
pub async fn run(args: StatusArgs) -> anyhow::Result<()> {
    let (mut conn, namespace) = args.redis.connect().await?;
    let streams = watchtower::status::collect(&mut conn, &namespace).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&streams)?);
        return Ok(());
    }
    if streams.is_empty() {
        println!("no streams under `{namespace}:events:*`");
        return Ok(());
    }
    println!(
        "{:<44} {:>8}  {:<26} {:>9} {:>8} {:>8}",
        "STREAM", "LENGTH", "GROUP", "CONSUMERS", "PENDING", "LAG"
    );
    for stream in &streams {
        if stream.groups.is_empty() {
            println!("{:<44} {:>8}  {:<26}", stream.stream, stream.length, "-");
        }
        for group in &stream.groups {
            let lag = group.lag.map_or_else(|| "?".to_owned(), |l| l.to_string());
            println!(
                "{:<44} {:>8}  {:<26} {:>9} {:>8} {:>8}",
                stream.stream, stream.length, group.name, group.consumers, group.pending, lag
            );
        }
    }
    Ok(())
}
