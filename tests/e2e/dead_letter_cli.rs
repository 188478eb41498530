//! `watchtower dlq …` against a live server: listing and showing a handler's dead letters,
//! re-driving chosen ones to the handler's private re-drive stream, and purging them.
//!
//! Dead letters are seeded here in the shape the consumer writes (built with
//! `dead_letter_fields`), so these tests cover the commands without a host. Keys are spelled
//! out rather than built by the library, so the tests hold the key layout itself.

use redis::aio::MultiplexedConnection;
use serde_json::Value;
use watchtower::redis::dlq::dead_letter_fields;
use watchtower_tests::fixtures::trip_status_changed;
use watchtower_tests::streams::stream_len;
use watchtower_tests::{CliOutput, RedisServer, publish, stream_key, watchtower};

const HANDLER: &str = "trip-tracker";
const EVENT_TYPE: &str = "trip.status_changed";

/// A server with `count` dead letters of [`HANDLER`] in namespace `ns`.
struct Seeded {
    redis: RedisServer,
    con: MultiplexedConnection,
    ns: &'static str,
    /// The published events' entry ids in `{ns}:events:trip.status_changed`.
    source_ids: Vec<String>,
    /// The dead letters' entry ids in `{ns}:dlq:trip-tracker`, oldest first.
    ids: Vec<String>,
    /// `{ns}:dlq:trip-tracker`.
    dlq_key: String,
    /// `{ns}:redrive:trip-tracker`.
    redrive_key: String,
}

impl Seeded {
    /// Publishes `count` events and dead-letters each of them by hand, as the consumer would
    /// after `reject("unknown trip N")`.
    async fn start(ns: &'static str, count: u64) -> Seeded {
        let redis = RedisServer::start().await;
        let mut con = redis.connection().await;
        let stream = stream_key(ns, EVENT_TYPE);
        let dlq_key = format!("{ns}:dlq:{HANDLER}");
        let mut source_ids = Vec::new();
        let mut ids = Vec::new();
        for n in 1..=count {
            let event = trip_status_changed(n, n, "planned", "done");
            let source_id = publish(&mut con, ns, &event).await;
            let original: Vec<(String, Vec<u8>)> = event
                .fields()
                .into_iter()
                .map(|(name, value)| (name.to_owned(), value.into_bytes()))
                .collect();
            let reason = format!("rejected: unknown trip {n}");
            let attempts = u32::try_from(n).unwrap();
            let fields =
                dead_letter_fields(&original, &reason, HANDLER, &stream, &source_id, attempts);
            let mut xadd = redis::cmd("XADD");
            xadd.arg(&dlq_key).arg("*");
            for (name, value) in fields {
                xadd.arg(name).arg(value);
            }
            ids.push(xadd.query_async(&mut con).await.unwrap());
            source_ids.push(source_id);
        }
        Seeded {
            redis,
            con,
            ns,
            source_ids,
            ids,
            dlq_key,
            redrive_key: format!("{ns}:redrive:{HANDLER}"),
        }
    }

    /// Runs `watchtower dlq SUBCOMMAND --handler trip-tracker ARGS… --redis-url … --namespace …`.
    async fn dlq(&self, subcommand: &str, args: &[&str]) -> CliOutput {
        let url = self.redis.url();
        let mut argv = vec!["dlq", subcommand, "--handler", HANDLER];
        argv.extend_from_slice(args);
        argv.extend_from_slice(&["--redis-url", &url, "--namespace", self.ns]);
        watchtower(argv).await
    }
}

/// Every entry of `stream` with its fields in stream order.
async fn ordered_entries(
    con: &mut MultiplexedConnection,
    stream: &str,
) -> Vec<(String, Vec<(String, String)>)> {
    let reply: Vec<(String, Vec<String>)> = redis::cmd("XRANGE")
        .arg(stream)
        .arg("-")
        .arg("+")
        .query_async(con)
        .await
        .unwrap_or_else(|err| panic!("XRANGE {stream}: {err}"));
    reply
        .into_iter()
        .map(|(id, flat)| {
            let pairs = flat
                .chunks(2)
                .map(|pair| (pair[0].clone(), pair[1].clone()))
                .collect();
            (id, pairs)
        })
        .collect()
}

/// The ids of the entries of `stream`, oldest first.
async fn ids_of(con: &mut MultiplexedConnection, stream: &str) -> Vec<String> {
    ordered_entries(con, stream)
        .await
        .into_iter()
        .map(|(id, _)| id)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_shows_each_dead_letter_oldest_first() {
    let seeded = Seeded::start("t_dlq_list", 3).await;

    let output = seeded.dlq("list", &[]).await.assert_success();
    let rows: Vec<&str> = output.stdout.lines().collect();
    assert!(rows[0].contains("REASON"), "a header row: {output}");
    for (n, id) in seeded.ids.iter().enumerate() {
        let row = rows[n + 1];
        assert!(row.starts_with(id.as_str()), "row {n} is {id}: {output}");
        assert!(
            row.contains(&format!("rejected: unknown trip {}", n + 1)),
            "{output}"
        );
        assert!(row.contains(EVENT_TYPE), "{output}");
    }

    let output = seeded
        .dlq("list", &["--count", "2", "--json"])
        .await
        .assert_success();
    let letters: Value = serde_json::from_str(&output.stdout)
        .unwrap_or_else(|err| panic!("`dlq list --json` prints JSON ({err}): {output}"));
    let letters = letters.as_array().expect("a JSON array");
    assert_eq!(letters.len(), 2, "--count 2 lists two: {output}");
    assert_eq!(letters[0]["id"], seeded.ids[0].as_str());
    assert_eq!(letters[0]["source_id"], seeded.source_ids[0].as_str());
    assert_eq!(letters[1]["attempts"], 2);
    assert_eq!(letters[1]["handler"], HANDLER);
    assert_eq!(letters[1]["event_type"], EVENT_TYPE);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_of_a_handler_without_dead_letters_says_so() {
    let seeded = Seeded::start("t_dlq_list_empty", 0).await;
    let output = seeded.dlq("list", &[]).await.assert_success();
    assert!(
        output.stdout.contains("no dead letters"),
        "an empty list is explained: {output}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn show_prints_why_where_from_and_every_field() {
    let seeded = Seeded::start("t_dlq_show", 2).await;
    let id = seeded.ids[1].as_str();

    let output = seeded.dlq("show", &[id]).await.assert_success();
    let text = &output.stdout;
    for expected in [
        id,
        "rejected: unknown trip 2",
        &stream_key(seeded.ns, EVENT_TYPE),
        &seeded.source_ids[1],
        "event_id",
        "timestamp",
        "2026-12-04T15:09:01.123Z",
    ] {
        assert!(text.contains(expected), "expected {expected:?} in {output}");
    }
    // `data` is pretty-printed: one payload key per line.
    assert!(
        text.lines()
            .any(|line| line.trim_start().starts_with(r#""new_status": "done""#)),
        "pretty-printed data in {output}"
    );

    let output = seeded.dlq("show", &[id, "--json"]).await.assert_success();
    let letter: Value = serde_json::from_str(&output.stdout)
        .unwrap_or_else(|err| panic!("`dlq show --json` prints JSON ({err}): {output}"));
    assert_eq!(letter["reason"], "rejected: unknown trip 2");
    let fields = letter["fields"].as_array().expect("fields are a list");
    assert!(
        fields
            .iter()
            .any(|pair| pair[0] == "event_type" && pair[1] == EVENT_TYPE),
        "{letter:#}"
    );
    assert!(
        fields
            .iter()
            .all(|pair| !pair[0].as_str().unwrap().starts_with("dlq_")),
        "the bookkeeping is in the top-level members, not the fields: {letter:#}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn show_of_an_unknown_id_fails() {
    let seeded = Seeded::start("t_dlq_show_missing", 1).await;
    let output = seeded.dlq("show", &["1-0"]).await.assert_failure();
    assert!(output.stderr.contains("1-0"), "names the id: {output}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requeue_moves_exactly_the_chosen_dead_letters_to_the_redrive_stream() {
    let mut seeded = Seeded::start("t_dlq_requeue", 3).await;
    let source_stream = stream_key(seeded.ns, EVENT_TYPE);
    let before = ordered_entries(&mut seeded.con, &seeded.dlq_key).await;
    let (first, third) = (seeded.ids[0].clone(), seeded.ids[2].clone());

    let output = seeded
        .dlq("requeue", &[&third, &first])
        .await
        .assert_success();
    assert!(output.stdout.contains("2 dead letters"), "{output}");

    assert_eq!(
        ids_of(&mut seeded.con, &seeded.dlq_key).await,
        [seeded.ids[1].clone()],
        "only the unchosen dead letter stays"
    );
    let redriven = ordered_entries(&mut seeded.con, &seeded.redrive_key).await;
    assert_eq!(redriven.len(), 2, "{redriven:?}");
    // In the order given on the command line.
    for ((_, fields), (dlq_id, source)) in redriven.iter().zip([(&third, 2), (&first, 0)]) {
        let (_, dead) = before.iter().find(|(id, _)| id == dlq_id).unwrap();
        let original: Vec<_> = dead
            .iter()
            .filter(|(name, _)| !name.starts_with("dlq_"))
            .cloned()
            .collect();
        assert_eq!(
            fields[..original.len()],
            original[..],
            "original fields first, verbatim"
        );
        let source_id = dead
            .iter()
            .find(|(name, _)| name == "dlq_id")
            .map(|(_, value)| value.clone())
            .unwrap();
        assert_eq!(
            fields[original.len()..],
            [
                ("redrive_stream".to_owned(), source_stream.clone()),
                ("redrive_id".to_owned(), source_id),
                ("redrive_dlq_id".to_owned(), dlq_id.clone()),
            ]
        );
        assert!(
            fields.iter().any(|(name, value)| name == "event_id"
                && *value == watchtower_tests::event_id(source + 1)),
            "{fields:?}"
        );
    }
    assert_eq!(
        stream_len(&mut seeded.con, &source_stream).await,
        3,
        "nothing is written to the original stream, which other groups read"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requeue_all_moves_every_dead_letter() {
    let mut seeded = Seeded::start("t_dlq_requeue_all", 3).await;
    let output = seeded.dlq("requeue", &["--all"]).await.assert_success();
    assert!(output.stdout.contains("3 dead letters"), "{output}");
    assert_eq!(stream_len(&mut seeded.con, &seeded.dlq_key).await, 0);
    let redriven = ordered_entries(&mut seeded.con, &seeded.redrive_key).await;
    let from: Vec<&str> = redriven
        .iter()
        .map(|(_, fields)| {
            let (_, id) = fields
                .iter()
                .find(|(name, _)| name == "redrive_dlq_id")
                .unwrap();
            id.as_str()
        })
        .collect();
    assert_eq!(from, seeded.ids, "oldest first");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requeue_of_unknown_ids_says_so() {
    let mut seeded = Seeded::start("t_dlq_requeue_missing", 1).await;

    let output = seeded.dlq("requeue", &["1-0"]).await.assert_failure();
    assert!(output.stderr.contains("1-0"), "names the id: {output}");
    assert_eq!(stream_len(&mut seeded.con, &seeded.redrive_key).await, 0);

    let known = seeded.ids[0].clone();
    let output = seeded
        .dlq("requeue", &["1-0", &known])
        .await
        .assert_success();
    assert!(
        output.stderr.contains("1-0"),
        "warns about the id: {output}"
    );
    assert!(output.stdout.contains("1 dead letter"), "{output}");
    assert_eq!(stream_len(&mut seeded.con, &seeded.redrive_key).await, 1);

    let output = seeded.dlq("requeue", &["not-an-id"]).await.assert_failure();
    assert!(output.stderr.contains("not-an-id"), "{output}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requeue_and_purge_need_ids_or_all() {
    let seeded = Seeded::start("t_dlq_select", 1).await;
    for subcommand in ["requeue", "purge"] {
        seeded.dlq(subcommand, &[]).await.assert_failure();
        let id = seeded.ids[0].as_str();
        seeded
            .dlq(subcommand, &[id, "--all"])
            .await
            .assert_failure();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purge_deletes_the_chosen_dead_letters_and_all_deletes_the_stream() {
    let mut seeded = Seeded::start("t_dlq_purge", 3).await;

    let second = seeded.ids[1].clone();
    let output = seeded.dlq("purge", &[&second]).await.assert_success();
    assert!(output.stdout.contains("1 dead letter"), "{output}");
    assert_eq!(
        ids_of(&mut seeded.con, &seeded.dlq_key).await,
        [seeded.ids[0].clone(), seeded.ids[2].clone()]
    );

    seeded.dlq("purge", &[&second]).await.assert_failure();

    let output = seeded.dlq("purge", &["--all"]).await.assert_success();
    assert!(output.stdout.contains("2 dead letters"), "{output}");
    let exists: bool = redis::cmd("EXISTS")
        .arg(seeded.dlq_key)
        .query_async(&mut seeded.con)
        .await
        .unwrap();
    assert!(!exists, "--all deletes the dead-letter stream");
    assert_eq!(
        stream_len(&mut seeded.con, &seeded.redrive_key).await,
        0,
        "purging re-drives nothing"
    );
}
