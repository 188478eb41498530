//! The loop of one (handler, stream) pair: make sure the group exists, re-handle this
//! consumer's own pending entries, then read new entries, handle each batch and commit the
//! successful ones together with their acknowledgements.
//!
//! Cancellation is checked only between batches and while waiting for entries: a batch that
//! has started is handled and committed before the loop stops, and anything read but not
//! committed stays pending for this consumer name (or for whoever takes it over).

use std::time::Duration;

use anyhow::Context as _;
use futures::future::join_all;
use redis::aio::ConnectionManager;
use tokio_util::sync::CancellationToken;

use crate::config::StartFrom;
use crate::dispatch::{Dispatcher, Handled, Outcome, lanes};
use crate::redis::{CommitItem, Committer, ReadFrom, StreamEntry, ensure_group, read_group};
use crate::wasm::KvOverlay;

/// Where a consumer reads and who it is.
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
}

/// Consumes one stream for one handler.
pub struct Consumer {
    settings: ConsumerSettings,
    dispatcher: Dispatcher,
    committer: Committer,
    reader: ConnectionManager,
    writer: ConnectionManager,
    /// Consecutive failed runs; reset by the first successful read after them.
    failures: u32,
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
        let committer = Committer::new(
            settings.stream.clone(),
            settings.group.clone(),
            dispatcher.handler().context.kv_key.clone(),
        );
        Consumer {
            settings,
            dispatcher,
            committer,
            reader,
            writer,
            failures: 0,
        }
    }

    /// Runs until `cancel` fires. Returns an error only for failures a restart may fix
    /// (the supervisor restarts the consumer after a pause).
    pub async fn run(&mut self, cancel: &CancellationToken) -> anyhow::Result<()> {
        let s = &self.settings;
        let created = ensure_group(&mut self.writer, &s.stream, &s.group, s.start_from)
            .await
            .with_context(|| format!("creating group `{}` on `{}`", s.group, s.stream))?;
        tracing::info!(
            handler = %self.dispatcher.handler().name(),
            stream = %s.stream,
            group = %s.group,
            consumer = %s.name,
            created,
            "consumer started"
        );

        // Own pending entries first (left by an earlier run under this name), then new ones.
        let mut from = ReadFrom::OwnPending("0".to_owned());
        loop {
            let entries = tokio::select! {
                _ = cancel.cancelled() => return Ok(()),
                read = self.next_batch(&from) => read?,
            };
            if self.failures > 0 {
                tracing::info!(
                    handler = %self.dispatcher.handler().name(),
                    stream = %self.settings.stream,
                    "consumer recovered after {} failed attempts", self.failures
                );
                self.failures = 0;
            }
            if let ReadFrom::OwnPending(_) = from {
                match entries.last() {
                    Some(last) => from = ReadFrom::OwnPending(last.id.clone()),
                    None => {
                        from = ReadFrom::New(self.settings.block);
                        continue;
                    }
                }
            }
            if !entries.is_empty() {
                let handled = self.dispatch(entries).await;
                self.commit(&handled).await?;
            }
        }
    }

    async fn next_batch(&mut self, from: &ReadFrom) -> anyhow::Result<Vec<StreamEntry>> {
        let s = &self.settings;
        read_group(
            &mut self.reader,
            &s.stream,
            &s.group,
            &s.name,
            from,
            s.batch_size,
        )
        .await
        .with_context(|| format!("reading `{}` as `{}` in `{}`", s.stream, s.name, s.group))
    }

    /// Handles a batch, lane by lane in parallel when the handler's concurrency allows.
    async fn dispatch(&self, entries: Vec<StreamEntry>) -> Vec<Handled> {
        let config = &self.dispatcher.handler().config;
        let lanes = lanes::assign(
            entries,
            config.concurrency.get(),
            config.ordering_key.as_deref(),
        );
        // The batch commits as one unit, so later calls must see earlier calls' kv writes.
        let overlay = KvOverlay::default();
        let runs = lanes.into_iter().map(|lane| {
            let dispatcher = self.dispatcher.clone();
            let overlay = overlay.clone();
            async move {
                let mut done = Vec::with_capacity(lane.len());
                for entry in &lane {
                    done.push(dispatcher.handle(entry, &overlay).await);
                }
                done
            }
        });
        join_all(runs).await.into_iter().flatten().collect()
    }

    /// Commits the acknowledged entries of a batch in one atomic unit and logs the others.
    async fn commit(&mut self, handled: &[Handled]) -> anyhow::Result<()> {
        let handler = self.dispatcher.handler().name().to_owned();
        let stream = &self.settings.stream;
        let mut items = Vec::with_capacity(handled.len());
        for h in handled {
            match &h.outcome {
                Outcome::Ack => items.push(CommitItem {
                    entry_id: &h.entry_id,
                    effects: &h.effects,
                }),
                Outcome::Retry { reason, .. } => tracing::warn!(
                    handler, stream, entry = %h.entry_id, event_id = h.event_id.as_deref(),
                    "handling failed, entry left pending for another attempt: {reason}"
                ),
                Outcome::DeadLetter { reason } => tracing::error!(
                    handler, stream, entry = %h.entry_id, event_id = h.event_id.as_deref(),
                    "entry cannot be handled, left pending: {reason}"
                ),
            }
        }
        let applied = self
            .committer
            .commit(&mut self.writer, &items)
            .await
            .with_context(|| {
                format!(
                    "committing {} entries of `{stream}` for {handler}",
                    items.len()
                )
            })?;
        for (item, applied) in items.iter().zip(applied) {
            if applied {
                tracing::debug!(handler, stream, entry = %item.entry_id, "handled");
            } else {
                tracing::info!(
                    handler, stream, entry = %item.entry_id,
                    "entry was no longer pending (handled by another consumer); effects dropped"
                );
            }
        }
        Ok(())
    }
}

/// Runs `consumer` until `cancel` fires, restarting it after failures with a growing pause
/// (capped at 5 s). Logs the first failure of a streak, then only when it recovers.
pub async fn supervise(mut consumer: Consumer, cancel: CancellationToken) {
    let handler = consumer.dispatcher.handler().name().to_owned();
    let stream = consumer.settings.stream.clone();
    loop {
        match consumer.run(&cancel).await {
            Ok(()) => return,
            Err(error) => {
                consumer.failures += 1;
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
