//! Waiting on conditions: the only way a test waits for the host.
//!
//! The host works asynchronously, so a test publishes and then waits until the effect is
//! visible in Redis. [`eventually`] polls a condition until it holds or a deadline passes; a
//! timeout panics with what was awaited and the last thing seen, so a slow machine costs time,
//! never a wrong verdict. A condition that must *not* become true is checked after waiting for
//! a later event that proves the host got past it (entries of a stream are handled in order).

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

/// The deadline for waits that should finish within a second on an idle machine; generous
/// because the first call of a handler includes compiling its component on a debug build.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// How often [`eventually`] re-checks its condition.
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// What a condition of [`eventually`] returns: whether it holds, and the value to hand back.
///
/// `bool` and `Option<T>` say "not yet" without detail; `Result<T, E>` carries the last
/// observation in `Err`, which the timeout panic shows.
pub trait Condition {
    /// What [`eventually`] returns once the condition holds.
    type Value;
    /// `Ok(value)` when the condition holds; otherwise the observation to report, if any.
    fn check(self) -> Result<Self::Value, Option<String>>;
}

impl Condition for bool {
    type Value = ();
    fn check(self) -> Result<(), Option<String>> {
        if self { Ok(()) } else { Err(None) }
    }
}

impl<T> Condition for Option<T> {
    type Value = T;
    fn check(self) -> Result<T, Option<String>> {
        self.ok_or(None)
    }
}

impl<T, E: Display> Condition for Result<T, E> {
    type Value = T;
    fn check(self) -> Result<T, Option<String>> {
        self.map_err(|observed| Some(observed.to_string()))
    }
}

/// Polls `condition` every 20 ms until it holds and returns its value; panics naming `what`
/// (and the last observation) if it still does not hold after `deadline`.
///
/// The condition is checked at least once, and once more after the deadline has passed, so
/// a condition that became true during the last interval is not reported as a timeout.
pub async fn eventually<F, Fut, C>(deadline: Duration, what: &str, mut condition: F) -> C::Value
where
    F: FnMut() -> Fut,
    Fut: Future<Output = C>,
    C: Condition,
{
    let give_up = Instant::now() + deadline;
    loop {
        let expired = Instant::now() >= give_up;
        match condition().await.check() {
            Ok(value) => return value,
            Err(observed) if expired => match observed {
                Some(observed) => {
                    panic!("timed out after {deadline:?} waiting for {what}; last seen: {observed}")
                }
                None => panic!("timed out after {deadline:?} waiting for {what}"),
            },
            Err(_) => tokio::time::sleep(POLL_INTERVAL).await,
        }
    }
}
