//! Watching handler component files: a change (written in place, in one or many chunks, or
//! replaced by a rename) triggers one reload once the file has been quiet for the debounce
//! time. The folders are watched rather than the files, so a file replaced by rename keeps
//! being watched.

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::Reloader;

/// A file, as (canonical folder, file name), so that events and config paths compare equal.
type FileKey = (PathBuf, OsString);

fn key_of(path: &Path) -> Option<FileKey> {
    let name = path.file_name()?.to_owned();
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let parent = parent.canonicalize().ok()?;
    Some((parent, name))
}

/// Starts watching the component of every handler; reloads run on `reloader` until
/// `cancel` fires.
pub fn watch(
    reloader: Arc<Reloader>,
    debounce: Duration,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    let mut files: HashMap<FileKey, Vec<String>> = HashMap::new();
    for handler in reloader.registry().list().into_iter() {
        let path = &handler.config.component;
        let key = key_of(path)
            .with_context(|| format!("watching {}: cannot resolve its folder", path.display()))?;
        files
            .entry(key)
            .or_default()
            .push(handler.name().to_owned());
    }
    let (tx, mut rx) = mpsc::unbounded_channel::<PathBuf>();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        // Reading the file (as every reload does) raises access events: only changes count.
        if let Ok(event) = event
            && !matches!(event.kind, notify::EventKind::Access(_))
        {
            for path in event.paths {
                let _ = tx.send(path);
            }
        }
    })
    .context("starting the file watcher")?;
    let mut folders: Vec<&PathBuf> = files.keys().map(|(folder, _)| folder).collect();
    folders.sort();
    folders.dedup();
    for folder in folders {
        watcher
            .watch(folder, RecursiveMode::NonRecursive)
            .with_context(|| format!("watching {}", folder.display()))?;
    }

    tokio::spawn(async move {
        // Keep the watcher alive as long as the task runs.
        let _watcher = watcher;
        let mut due: BTreeMap<FileKey, Instant> = BTreeMap::new();
        loop {
            let next = due.values().min().copied();
            tokio::select! {
                _ = cancel.cancelled() => return,
                changed = rx.recv() => match changed {
                    Some(path) => {
                        // Events for a renamed-over file name the final path; temp files
                        // of editors and copy tools are not in `files` and are ignored.
                        if let Some(key) = path.file_name().and_then(|name| {
                            let folder = path.parent()?.canonicalize().ok()?;
                            Some((folder, name.to_owned()))
                        }) && files.contains_key(&key)
                        {
                            due.insert(key, Instant::now() + debounce);
                        }
                    }
                    None => return,
                },
                _ = sleep_until(next) => {
                    let now = Instant::now();
                    let ready: Vec<FileKey> =
                        due.iter().filter(|(_, at)| **at <= now).map(|(k, _)| k.clone()).collect();
                    for key in ready {
                        due.remove(&key);
                        for name in files.get(&key).into_iter().flatten() {
                            let _ = reloader.reload(name, "file changed").await;
                        }
                    }
                }
            }
        }
    });
    Ok(())
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
