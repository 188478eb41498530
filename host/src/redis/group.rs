//! Consumer groups: created on first use, left alone when they exist.

use redis::RedisResult;
use redis::aio::ConnectionLike;

use crate::config::StartFrom;

/// Creates `group` on `stream` (and the stream itself if missing) starting at `start`.
/// Returns `false` when the group already existed: it then keeps its position.
pub async fn ensure_group<C: ConnectionLike>(
    conn: &mut C,
    stream: &str,
    group: &str,
    start: StartFrom,
) -> RedisResult<bool> {
    let id = match start {
        StartFrom::Oldest => "0",
        StartFrom::Latest => "$",
    };
    create_group(conn, stream, group, id).await
}

/// Creates `group` on `stream` (and the stream if missing) with its last-delivered id at
/// `id`; `false` when the group already existed (it is left as it is).
pub async fn create_group<C: ConnectionLike>(
    conn: &mut C,
    stream: &str,
    group: &str,
    id: &str,
) -> RedisResult<bool> {
    let created: RedisResult<()> = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(stream)
        .arg(group)
        .arg(id)
        .arg("MKSTREAM")
        .query_async(conn)
        .await;
    match created {
        Ok(()) => Ok(true),
        Err(e) if e.code() == Some("BUSYGROUP") => Ok(false),
        Err(e) => Err(e),
    }
}
