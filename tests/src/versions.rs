//! Versions of a handler as an operator deploys them and as the host reports them.
//!
//! A test deploys a private copy of a component ([`deploy_copy`]) so it can change the file
//! under a running host the ways deploy tools do: rewritten in place ([`write_in_place`]),
//! written in several steps ([`write_in_chunks`]) or replaced by renaming a finished
//! temporary file over it ([`replace_by_rename`]).
//!
//! The host names a version by the sha256 of its file ([`digest`]) and labels it with the
//! first 12 hex digits ([`version_label`]); every event a handler publishes carries that label
//! in its metadata ([`handler_version`]), and its log says when it swapped, refused or rolled
//! back a version ([`swaps`], [`refusals`], [`rollbacks`], [`component_loads`]).

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::cli::{LogRecord, log_records};
use crate::streams::Entry;

/// The metadata key of the version that published an event.
pub const VERSION_METADATA: &str = "handler_version";

/// The sha256 of `bytes` in lowercase hex: the host's name for a version.
pub fn digest(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .fold(String::with_capacity(64), |mut hex, byte| {
            // Writing to a String cannot fail.
            let _ = write!(hex, "{byte:02x}");
            hex
        })
}

/// The short label of a version: the first 12 hex digits of its sha256.
pub fn version_label(bytes: &[u8]) -> String {
    digest(bytes)[..12].to_owned()
}

/// The label of the file at `path` as it is now.
pub fn label_of(path: &Path) -> String {
    version_label(&read(path))
}

/// Copies the component `source` into `dir` under the same file name and returns the copy's
/// path: a file the test may change under a running host.
pub fn deploy_copy(source: &Path, dir: &Path) -> PathBuf {
    let name = source.file_name().expect("a component file has a name");
    let target = dir.join(name);
    std::fs::copy(source, &target)
        .unwrap_or_else(|err| panic!("copy {} to {}: {err}", source.display(), target.display()));
    target
}

/// Truncates `path` and writes `bytes` into it, as `cp` over an existing file does.
pub fn write_in_place(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).unwrap_or_else(|err| panic!("write {}: {err}", path.display()));
}

/// Truncates `path` and writes `bytes` into it in `chunks` parts, flushed to disk one by one
/// with `pause` between them, as a slow copy or an upload does: a watcher sees a half-written
/// file first.
pub async fn write_in_chunks(path: &Path, bytes: &[u8], chunks: usize, pause: Duration) {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)
        .unwrap_or_else(|err| panic!("open {} for writing: {err}", path.display()));
    let size = bytes.len().div_ceil(chunks.max(1));
    for (i, chunk) in bytes.chunks(size).enumerate() {
        if i > 0 {
            // The gap between two writes of the copy tool, not a wait for the host.
            tokio::time::sleep(pause).await;
        }
        file.write_all(chunk)
            .and_then(|()| file.sync_data())
            .unwrap_or_else(|err| panic!("write chunk {i} of {}: {err}", path.display()));
    }
}

/// Writes `bytes` to a temporary file next to `path` and renames it over `path`, as editors,
/// `install` and most deploy tools do: the file is never seen half-written.
pub fn replace_by_rename(path: &Path, bytes: &[u8]) {
    let name = path
        .file_name()
        .expect("a component file has a name")
        .to_string_lossy();
    let temporary = path.with_file_name(format!(".{name}.partial"));
    std::fs::write(&temporary, bytes)
        .unwrap_or_else(|err| panic!("write {}: {err}", temporary.display()));
    std::fs::rename(&temporary, path).unwrap_or_else(|err| {
        panic!(
            "rename {} to {}: {err}",
            temporary.display(),
            path.display()
        )
    });
}

/// The `handler_version` in the metadata of an event a handler published; panics naming the
/// entry if it has none.
pub fn handler_version(entry: &Entry) -> String {
    let text = entry.field("metadata");
    let metadata: serde_json::Value = serde_json::from_str(text)
        .unwrap_or_else(|err| panic!("entry {}: `metadata` is not JSON ({err}): {text}", entry.id));
    match metadata.get(VERSION_METADATA).and_then(|v| v.as_str()) {
        Some(version) => version.to_owned(),
        None => panic!(
            "entry {} has no `{VERSION_METADATA}` in its metadata: {:?}",
            entry.id, entry.fields
        ),
    }
}

/// Whether `record` is about the handler `handler` (in its fields or those of its span).
fn about(record: &LogRecord, handler: &str) -> bool {
    record.line.contains(&format!("\"handler\":\"{handler}\""))
}

/// The log lines of `handler` whose message contains `text` (case-insensitively).
fn records_saying(log: &str, handler: &str, text: &str) -> Vec<LogRecord> {
    log_records(log)
        .into_iter()
        .filter(|r| about(r, handler) && r.message.to_lowercase().contains(text))
        .collect()
}

/// The successful swaps of `handler` in a host's JSON log: one line each, saying `swapped`
/// with the fields `version` and `previous`.
pub fn swaps(log: &str, handler: &str) -> Vec<LogRecord> {
    records_saying(log, handler, "swapped")
        .into_iter()
        .filter(|r| {
            !r.is_warning() && r.field("version").is_some() && r.field("previous").is_some()
        })
        .collect()
}

/// The refused reloads of `handler`: warnings saying `refused`, with the reason.
pub fn refusals(log: &str, handler: &str) -> Vec<LogRecord> {
    records_saying(log, handler, "refused")
        .into_iter()
        .filter(LogRecord::is_warning)
        .collect()
}

/// The automatic swaps back of `handler`: warnings saying `rolled back`.
pub fn rollbacks(log: &str, handler: &str) -> Vec<LogRecord> {
    records_saying(log, handler, "rolled back")
        .into_iter()
        .filter(LogRecord::is_warning)
        .collect()
}

/// The `component loaded` lines of `handler`, each with a `cache` field saying `hit` or
/// `miss`. A line is `handler`'s if it names the handler or its component file, which the
/// tests call `{handler}.wasm`.
pub fn component_loads(log: &str, handler: &str) -> Vec<LogRecord> {
    let file = format!("{handler}.wasm");
    log_records(log)
        .into_iter()
        .filter(|r| {
            (about(r, handler) || r.line.contains(&file))
                && r.message.to_lowercase().contains("component loaded")
        })
        .collect()
}

/// Joins log lines for a message.
pub fn show(records: &[LogRecord]) -> String {
    records
        .iter()
        .map(|r| r.line.as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|err| panic!("read {}: {err}", path.display()))
}
