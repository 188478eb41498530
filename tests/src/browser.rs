//! A real browser for the pages the host serves: headless Chromium (Debian's `chromium`
//! package, which `.ci/run` installs) loads a page, runs its scripts, and hands back the DOM
//! as it stands afterwards, so a test sees what a person would see.
//!
//! Where Chromium is not installed, [`dump_dom`] returns `None` and the test says it was
//! skipped; everything else about the page is tested without a browser.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

/// How long Chromium may take to start, load the page and write the DOM.
const BROWSER_DEADLINE: Duration = Duration::from_secs(90);

/// Milliseconds of page time Chromium lets pass before writing the DOM: time enough for a
/// page's first fetches and a few of its timers. Virtual time runs ahead when the page is
/// idle, so this costs far less than five seconds.
const VIRTUAL_TIME_BUDGET_MS: u32 = 5_000;

/// The Chromium binary on `PATH`, if any.
pub fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| ["chromium", "chromium-browser"].map(|name| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

/// Loads `url` in headless Chromium and returns the DOM after its scripts ran, or `None`
/// when Chromium is not installed. Panics with Chromium's output if it fails.
pub async fn dump_dom(url: &str) -> Option<String> {
    let chromium = chromium()?;
    let profile = tempfile::Builder::new()
        .prefix("watchtower-chromium-")
        .tempdir()
        .expect("create a temporary Chromium profile");
    let mut command = Command::new(&chromium);
    command
        .args([
            "--headless",
            // The tests run as root in CI, where Chromium's sandbox cannot start.
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--virtual-time-budget={VIRTUAL_TIME_BUDGET_MS}"))
        .arg("--dump-dom")
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let output = tokio::time::timeout(BROWSER_DEADLINE, command.output())
        .await
        .unwrap_or_else(|_| {
            panic!(
                "{} did not load {url} in {BROWSER_DEADLINE:?}",
                chromium.display()
            )
        })
        .unwrap_or_else(|err| panic!("start {}: {err}", chromium.display()));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success() && !stdout.trim().is_empty(),
        "{} --dump-dom {url} failed ({})\n--- stderr ---\n{}",
        chromium.display(),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    Some(stdout)
}
