//! `watchtower check FILE.wasm`.

use std::path::PathBuf;

use clap::Args;

/// Arguments of `check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The component to check.
    pub file: PathBuf,
}

/// Loads the component as the host would and says whether it fits the world.
pub fn run(args: CheckArgs) -> anyhow::Result<()> {
    let loaded = watchtower::supervisor::check_component(&args.file)?;
    println!(
        "{}: ok, a watchtower:handler/handler component (version {}, sha256 {})",
        args.file.display(),
        loaded.version(),
        loaded.digest
    );
    Ok(())
}
