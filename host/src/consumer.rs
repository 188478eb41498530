//! The loop of one (handler, stream) pair: make sure the group exists, re-handle this
//! consumer's own pending entries, then read new ones, take over entries dead consumers left
//! behind, handle each batch, commit it, and bring failed entries back after their backoff.
//!
//! Order: entries that share an ordering key (every entry, when `concurrency = 1`) are
//! handled in stream order. When one of them must be retried, the ones behind it are held
//! back (still pending for this consumer, kept from looking idle) until it succeeds or is
//! dead-lettered; entries with other keys keep flowing.
//!
//! Cancellation is checked only between batches and while waiting for entries: a batch that
//! has started is handled and committed before the loop stops, and anything read but not
//! committed stays pending for this consumer name (or for whoever takes it over).
//!
//! Pipelining: while a full batch is handled, the next one is read and decoded; when it is
//! there, the batch's commit is sent and the next batch handled while Redis applies it. At
//! most one commit is in flight: the next one is sent only after it has returned, so commits
//! apply in order, and a failed commit stops the loop before anything after it is
//! committed.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use futures::future::join_all;
use redis::aio::ConnectionManager;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::StartFrom;
use crate::dispatch::{Dispatcher, Handled, Outcome, Prepared, lanes};
use crate::metrics::Tally;
use crate::redis::claim::{autoclaim, claim_for_retry, remove_idle_consumers, touch};
use crate::redis::group::create_group;
use crate::redis::{CommitItem, Committer, ReadFrom, StreamEntry, ensure_group, read_group};
use crate::wasm::KvOverlay;

/// Where a consumer reads, who it is, and its timing.
#[derive(Debug, Clone)]
pub struct ConsumerSettings {
    /// Stream key.
    pub stream: String,
    /// Consumer group.
    pub group: String,
    /// This host's consumer name.
    pub name: String,
    /// Start of a group this consumer creates.
    pub start_from: StartFrom,
    /// Entries per read.
    pub batch_size: usize,
    /// Wait per read for new entries.
    pub block: Duration,
    /// Entries idle this long in another consumer are taken over.
    pub claim_idle: Duration,
    /// How often to look for such entries.
    pub claim_interval: Duration,
    /// Consumers owning nothing and idle this long are removed from the group.
    pub consumer_grace: Duration,
}

/// An entry read but not yet finished: waiting for its retry, or behind one.
#[derive(Debug)]
struct Held {
    prepared: Prepared,
    /// `Some`: failed, due again at this time. `None`: not attempted yet, waiting behind
    /// an earlier entry with the same ordering key.
    due: Option<Instant>,
}

/// Consumes one stream for one handler.
pub struct Consumer {
    settings: ConsumerSettings,
    dispatcher: Dispatcher,
    committer: Arc<Committer>,
    reader: ConnectionManager,
    writer: ConnectionManager,
    /// Consecutive failed runs; reset by the first successful read after them.
    failures: u32,
    held: VecDeque<Held>,
    last_claim: Option<Instant>,
    last_touch: Instant,
    /// Highest entry id read from the group, where a deleted group is recreated.
    last_read: Option<String>,
    /// The next batch of new entries, being read and decoded while the current one is
    /// handled.
    prefetched: Option<JoinHandle<redis::RedisResult<Vec<Prepared>>>>,
    /// The last batch's commit, applied by Redis while the next batch is handled.
    committing: Option<JoinHandle<anyhow::Result<()>>>,
    /// The kv writes of the last batch handled.
    last_overlay: KvOverlay,
}

impl Consumer {
    /// A consumer reading with `reader` (a connection of its own: reads block) and committing
    /// with `writer`.
    pub fn new(
        settings: ConsumerSettings,
        dispatcher: Dispatcher,
        reader: ConnectionManager,
        writer: ConnectionManager,
    ) -> Self {
        let committer = Arc::new(Committer::new(
            settings.stream.clone(),
            settings.group.clone(),
            dispatcher.handler().context.kv_key.clone(),
        ));
        Consumer {
            settings,
            dispatcher,
            committer,
            reader,
            writer,
            failures: 0,
            held: VecDeque::new(),
            last_claim: None,
            last_touch: Instant::now(),
            last_read: None,
            prefetched: None,
            committing: None,
            last_overlay: KvOverlay::default(),
        }
    }

    /// Starts reading and decoding the next batch of new entries without waiting for them,
    /// so that the read's round trip (and, with more than one worker thread, the decoding)
    /// overlaps the calls of the current batch.
    fn prefetch(&self) -> JoinHandle<redis::RedisResult<Vec<Prepared>>> {
        let mut reader = self.reader.clone();
        let s = self.settings.clone();
        let dispatcher = self.dispatcher.clone();
        tokio::spawn(async move {
            let entries = read_group(
                &mut reader,
                &s.stream,
                &s.group,
                &s.name,
                &ReadFrom::New(None),
                s.batch_size,
            )
            .await?;
            Ok(entries.into_iter().map(|e| dispatcher.prepare(e)).collect())
        })
    }

    fn prepare_all(&self, entries: Vec<StreamEntry>) -> Vec<Prepared> {
        entries
            .into_iter()
            .map(|e| self.dispatcher.prepare(e))
            .collect()
    }

    fn handler_name(&self) -> &str {
        self.dispatcher.handler().name()
    }

    /// Runs until `cancel` fires. Returns an error only for failures a restart may fix
    /// (the supervisor restarts the consumer after a pause).
    pub async fn run(&mut self, cancel: &CancellationToken) -> anyhow::Result<()> {
        // A commit sent by an earlier run may still be on its way; whatever it did, the
        // pending pass below sees the outcome.
        if let Err(error) = self.settled().await {
            tracing::debug!(handler = %self.handler_name(), "the last commit of the earlier run failed: {error:#}");
        }
        let s = &self.settings;
        let created = ensure_group(&mut self.writer, &s.stream, &s.group, s.start_from)
            .await
            .with_context(|| format!("creating group `{}` on `{}`", s.group, s.stream))?;
        tracing::info!(
            handler = %self.handler_name(),
            stream = %self.settings.stream,
            group = %self.settings.group,
            consumer = %self.settings.name,
            created,
            "consumer started"
        );
        // Entries held (or prefetched) by an earlier run are pending for this name: the
        // pending pass below reads them again.
        self.held.clear();
        if let Some(prefetched) = self.prefetched.take() {
            prefetched.abort();
        }

        // Own pending entries first (left by an earlier run under this name), then new ones.
        let mut pending_after = Some("0".to_owned());
        while !cancel.is_cancelled() {
            let mut batch = Vec::new();
            if let Some(after) = &pending_after {
                let entries = self
                    .read(&ReadFrom::OwnPending(after.clone()), cancel)
                    .await?;
                match entries.last() {
                    Some(last) => pending_after = Some(last.id.clone()),
                    None => pending_after = None,
                }
                batch.extend(self.prepare_all(entries));
            } else {
                batch.extend(self.due_retries().await?);
                let claimed = self.reclaim().await?;
                batch.extend(self.prepare_all(claimed));
                self.touch_held().await?;
                let entries = match self.prefetched.take() {
                    Some(prefetched) => prefetched.await??,
                    None => match self.read_wait(!batch.is_empty()) {
                        Some(wait) => {
                            let entries = self.read(&ReadFrom::New(wait), cancel).await?;
                            self.prepare_all(entries)
                        }
                        None => Vec::new(),
                    },
                };
                if let Some(last) = entries.last() {
                    self.last_read = Some(last.entry().id.clone());
                }
                // A full batch means more is waiting: read the next one while this one is
                // handled and committed.
                if entries.len() == self.settings.batch_size && self.held.is_empty() {
                    self.prefetched = Some(self.prefetch());
                }
                batch.extend(entries);
            }
            self.recovered();
            let ready = self.hold_back(batch);
            if !ready.is_empty() {
                let handled = self.dispatch(ready).await?;
                self.commit(handled).await?;
            } else if pending_after.is_none() && self.read_wait(false).is_none() {
                // Nothing can be read (too much held back) and nothing is due yet.
                self.sleep_until_due(cancel).await;
            }
        }
        self.settled().await
    }

    /// Waits for the commit in flight, if any.
    async fn settled(&mut self) -> anyhow::Result<()> {
        match self.committing.take() {
            Some(commit) => commit.await?,
            None => Ok(()),
        }
    }

    fn recovered(&mut self) {
        if self.failures > 0 {
            tracing::info!(
                handler = %self.handler_name(),
                stream = %self.settings.stream,
                "consumer recovered after {} failed attempts",
                self.failures
            );
            self.failures = 0;
        }
    }

    /// Reads entries; a group deleted under the host is recreated (at the last entry this
    /// consumer read, so nothing it handled is handled again) and the read retried once.
    async fn read(
        &mut self,
        from: &ReadFrom,
        cancel: &CancellationToken,
    ) -> anyhow::Result<Vec<StreamEntry>> {
        for attempt in 0..2 {
            let s = &self.settings;
            let read = tokio::select! {
                _ = cancel.cancelled() => return Ok(Vec::new()),
                read = read_group(&mut self.reader, &s.stream, &s.group, &s.name, from, s.batch_size) => read,
            };
            match read {
                Ok(entries) => return Ok(entries),
                Err(error) if error.code() == Some("NOGROUP") && attempt == 0 => {
                    let at = match (&self.last_read, s.start_from) {
                        (Some(id), _) => id.clone(),
                        (None, StartFrom::Oldest) => "0".to_owned(),
                        (None, StartFrom::Latest) => "$".to_owned(),
                    };
                    tracing::warn!(
                        handler = %self.handler_name(),
                        stream = %self.settings.stream,
                        group = %self.settings.group,
                        at = %at,
                        "consumer group was deleted; recreating it"
                    );
                    let s = &self.settings;
                    create_group(&mut self.writer, &s.stream, &s.group, &at)
                        .await
                        .with_context(|| {
                            format!("recreating group `{}` on `{}`", s.group, s.stream)
                        })?;
                    self.held.clear();
                }
                Err(error) => {
                    return Err(error).with_context(|| {
                        format!("reading `{}` as `{}` in `{}`", s.stream, s.name, s.group)
                    });
                }
            }
        }
        Ok(Vec::new())
    }

    /// How long the next read of new entries may wait: `None` when nothing should be read
    /// (too many entries held back), no wait when work is ready, otherwise until the next
    /// retry is due (at most `block`).
    fn read_wait(&self, work_ready: bool) -> Option<Option<Duration>> {
        if self.held.len() >= self.settings.batch_size * 4 {
            return None;
        }
        if work_ready {
            return Some(None);
        }
        let wait = match self.next_due() {
            Some(due) => due
                .saturating_duration_since(Instant::now())
                .min(self.settings.block),
            None => self.settings.block,
        };
        if wait.is_zero() {
            Some(None)
        } else {
            Some(Some(wait))
        }
    }

    fn next_due(&self) -> Option<Instant> {
        self.held.iter().filter_map(|h| h.due).min()
    }

    async fn sleep_until_due(&self, cancel: &CancellationToken) {
        let wait = self
            .next_due()
            .map_or(self.settings.block, |due| {
                due.saturating_duration_since(Instant::now())
            })
            .max(Duration::from_millis(1));
        tokio::select! {
            _ = cancel.cancelled() => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }

    /// Held entries whose turn has come: for each ordering key whose first held entry is
    /// due (or was never attempted), that entry and the ones behind it. Entries that failed
    /// before are claimed again first, which counts their next delivery.
    async fn due_retries(&mut self) -> anyhow::Result<Vec<Prepared>> {
        let now = Instant::now();
        let mut decided: Vec<(u64, bool)> = Vec::new();
        let mut taken = Vec::new();
        let mut kept = VecDeque::with_capacity(self.held.len());
        for held in self.held.drain(..) {
            let lane = held.prepared.lane;
            let go = match decided.iter().find(|(l, _)| *l == lane) {
                Some((_, go)) => *go,
                None => {
                    let go = held.due.is_none_or(|due| due <= now);
                    decided.push((lane, go));
                    go
                }
            };
            if go {
                taken.push(held);
            } else {
                kept.push_back(held);
            }
        }
        self.held = kept;
        if taken.is_empty() {
            return Ok(Vec::new());
        }

        let retried: Vec<&str> = taken
            .iter()
            .filter(|h| h.due.is_some())
            .map(|h| h.prepared.entry().id.as_str())
            .collect();
        let s = &self.settings;
        let still_pending =
            claim_for_retry(&mut self.writer, &s.stream, &s.group, &s.name, &retried)
                .await
                .with_context(|| format!("claiming entries of `{}` for a retry", s.stream))?;
        Ok(taken
            .into_iter()
            .filter_map(|held| match held.due {
                None => Some(held.prepared),
                Some(_) if still_pending.contains(&held.prepared.entry().id) => {
                    let mut prepared = held.prepared;
                    prepared.redelivered();
                    Some(prepared)
                }
                // Acknowledged or deleted meanwhile (e.g. by another consumer): done.
                Some(_) => None,
            })
            .collect())
    }

    /// Takes over entries idle longer than `claim_idle` in any consumer of the group, and
    /// removes consumers that are gone and own nothing. Runs every `claim_interval`.
    async fn reclaim(&mut self) -> anyhow::Result<Vec<StreamEntry>> {
        let s = &self.settings;
        if self
            .last_claim
            .is_some_and(|at| at.elapsed() < s.claim_interval)
        {
            return Ok(Vec::new());
        }
        self.last_claim = Some(Instant::now());
        let claimed = autoclaim(
            &mut self.writer,
            &s.stream,
            &s.group,
            &s.name,
            s.claim_idle,
            s.batch_size,
        )
        .await
        .with_context(|| format!("claiming idle entries of `{}`", s.stream))?;
        // Entries this consumer holds back are its own already.
        let holding: HashSet<&str> = self
            .held
            .iter()
            .map(|h| h.prepared.entry().id.as_str())
            .collect();
        let claimed: Vec<StreamEntry> = claimed
            .into_iter()
            .filter(|e| !holding.contains(e.id.as_str()))
            .collect();
        if !claimed.is_empty() {
            tracing::info!(
                handler = %self.dispatcher.handler().name(),
                stream = %s.stream,
                group = %s.group,
                claimed = claimed.len(),
                "took over entries idle for more than {} ms",
                s.claim_idle.as_millis()
            );
        }
        let removed = remove_idle_consumers(
            &mut self.writer,
            &s.stream,
            &s.group,
            &s.name,
            s.consumer_grace,
        )
        .await
        .with_context(|| format!("removing idle consumers of `{}`", s.group))?;
        if !removed.is_empty() {
            tracing::info!(
                stream = %s.stream,
                group = %s.group,
                removed = ?removed,
                "removed consumers that were idle and owned no entries"
            );
        }
        Ok(claimed)
    }

    /// Keeps held entries from looking idle, so that no other consumer takes them over
    /// while they wait for their turn here.
    async fn touch_held(&mut self) -> anyhow::Result<()> {
        if self.held.is_empty() || self.last_touch.elapsed() < self.settings.claim_idle / 3 {
            return Ok(());
        }
        self.last_touch = Instant::now();
        let ids: Vec<&str> = self
            .held
            .iter()
            .map(|h| h.prepared.entry().id.as_str())
            .collect();
        let s = &self.settings;
        touch(&mut self.writer, &s.stream, &s.group, &s.name, &ids)
            .await
            .with_context(|| format!("refreshing held entries of `{}`", s.stream))
    }

    /// Splits `entries` into those that may run now and those that must wait behind a held
    /// entry with the same ordering key (which join the held queue).
    fn hold_back(&mut self, entries: Vec<Prepared>) -> Vec<Prepared> {
        if self.held.is_empty() {
            return entries;
        }
        let blocked: HashSet<u64> = self.held.iter().map(|h| h.prepared.lane).collect();
        let mut ready = Vec::with_capacity(entries.len());
        for prepared in entries {
            if blocked.contains(&prepared.lane) {
                self.held.push_back(Held {
                    prepared,
                    due: None,
                });
            } else {
                ready.push(prepared);
            }
        }
        ready
    }

    /// Handles a batch, lane by lane in parallel (on as many threads) when the handler's
    /// concurrency allows. Within a lane, once an entry must be retried, later entries with
    /// its key are not attempted; they come back as held. Fails only if a lane's task
    /// panicked; the batch then stays pending and is read again.
    async fn dispatch(
        &mut self,
        entries: Vec<Prepared>,
    ) -> anyhow::Result<Vec<(Prepared, Option<Handled>)>> {
        let concurrency = self.dispatcher.handler().config.concurrency.get();
        let keyed: Vec<(u64, Prepared)> = entries.into_iter().map(|p| (p.lane, p)).collect();
        let mut lanes = lanes::assign(keyed, concurrency);
        // The batch commits as one unit, so later calls must see earlier calls' kv writes,
        // and those of the batch before while its commit is in flight.
        let overlay = match &self.committing {
            Some(_) => self.last_overlay.above(),
            None => KvOverlay::default(),
        };
        self.last_overlay = overlay.clone();
        if lanes.len() == 1 {
            let lane = lanes.pop().unwrap_or_default();
            return Ok(run_lane(self.dispatcher.clone(), overlay, lane).await);
        }
        let runs: Vec<_> = lanes
            .into_iter()
            .map(|lane| tokio::spawn(run_lane(self.dispatcher.clone(), overlay.clone(), lane)))
            .collect();
        let mut done = Vec::new();
        for run in join_all(runs).await {
            done.extend(run.context("a lane of the batch failed")?);
        }
        Ok(done)
    }

    /// Sends the commit of a batch's acknowledged and dead-lettered entries (one atomic
    /// unit) once the previous commit has returned, and holds retried entries (and those
    /// not attempted behind them) for later. The commit's outcome is collected by the next
    /// call, or when the loop ends.
    async fn commit(&mut self, results: Vec<(Prepared, Option<Handled>)>) -> anyhow::Result<()> {
        let handler = self.dispatcher.handler().name().to_owned();
        let stream = self.settings.stream.clone();
        let now = Instant::now();
        let mut finished = Vec::with_capacity(results.len());
        let mut tally = Tally::new(self.dispatcher.metrics());
        for (prepared, handled) in results {
            let entry = prepared.entry();
            if let Some(h) = &handled {
                tally.add(entry, &h.outcome);
            }
            match handled {
                None => self.held.push_back(Held {
                    prepared,
                    due: None,
                }),
                Some(h) => match &h.outcome {
                    Outcome::Retry { after, reason } => {
                        tracing::warn!(
                            handler, stream, entry = %h.entry_id, event_id = h.event_id.as_deref(),
                            attempt = entry.delivery_count,
                            retry_in_ms = u64::try_from(after.as_millis()).unwrap_or(u64::MAX),
                            "handling failed, will retry: {reason}"
                        );
                        self.held.push_back(Held {
                            prepared,
                            due: Some(now + *after),
                        });
                    }
                    Outcome::DeadLetter { reason } => {
                        tracing::error!(
                            handler, stream, entry = %h.entry_id, event_id = h.event_id.as_deref(),
                            attempts = entry.delivery_count,
                            "giving up on the entry, moving it to the dead-letter stream: {reason}"
                        );
                        finished.push(h);
                    }
                    Outcome::Ack => finished.push(h),
                },
            }
        }
        // Commits apply in order: the one in flight returns before this one is sent.
        self.settled().await?;
        let committer = self.committer.clone();
        let mut writer = self.writer.clone();
        let commit = async move {
            let items: Vec<CommitItem<'_>> = finished
                .iter()
                .map(|h| CommitItem {
                    entry_id: &h.entry_id,
                    effects: &h.effects,
                })
                .collect();
            let applied = committer
                .commit(&mut writer, &items)
                .await
                .with_context(|| {
                    format!(
                        "committing {} entries of `{stream}` for {handler}",
                        items.len()
                    )
                })?;
            tally.committed(&applied);
            for (item, applied) in items.iter().zip(applied) {
                if applied {
                    tracing::debug!(handler, stream, entry = %item.entry_id, "committed");
                } else {
                    tracing::info!(
                        handler, stream, entry = %item.entry_id,
                        "entry was no longer pending (handled by another consumer); effects dropped"
                    );
                }
            }
            Ok(())
        };
        if self.prefetched.is_some() {
            // The next batch is on its way: Redis applies this commit while it is handled.
            self.committing = Some(tokio::spawn(commit));
            Ok(())
        } else {
            // Nothing to handle meanwhile; a task of its own would only add a thread hop
            // to the latency of the entries just handled.
            commit.await
        }
    }
}

/// Handles the entries of one lane in order; once an entry must be retried, the later
/// entries with its key are not attempted (`None`).
async fn run_lane(
    dispatcher: Dispatcher,
    overlay: KvOverlay,
    lane: Vec<(u64, Prepared)>,
) -> Vec<(Prepared, Option<Handled>)> {
    let mut stopped: Vec<u64> = Vec::new();
    let mut done = Vec::with_capacity(lane.len());
    for (key, prepared) in lane {
        if stopped.contains(&key) {
            done.push((prepared, None));
            continue;
        }
        let handled = dispatcher.handle(&prepared, &overlay).await;
        if matches!(handled.outcome, Outcome::Retry { .. }) {
            stopped.push(key);
        }
        done.push((prepared, Some(handled)));
    }
    done
}

/// Runs `consumer` until `cancel` fires, restarting it after failures with a growing pause
/// (capped at 5 s). Logs the first failure of a streak, then only when it recovers.
pub async fn supervise(mut consumer: Consumer, cancel: CancellationToken) {
    let handler = consumer.handler_name().to_owned();
    let stream = consumer.settings.stream.clone();
    loop {
        match consumer.run(&cancel).await {
            Ok(()) => return,
            Err(error) => {
                consumer.failures += 1;
                if let Some(metrics) = consumer.dispatcher.metrics() {
                    metrics.host().redis_reconnected();
                }
                let failures = consumer.failures;
                if failures == 1 {
                    tracing::error!(handler, stream, "consumer failed, retrying: {error:#}");
                } else {
                    tracing::debug!(
                        handler,
                        stream,
                        failures,
                        "consumer still failing: {error:#}"
                    );
                }
            }
        }
        let pause =
            Duration::from_millis(100u64 << consumer.failures.min(6)).min(Duration::from_secs(5));
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(pause) => {}
        }
    }
}
