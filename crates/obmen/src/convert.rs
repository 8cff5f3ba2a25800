//! `obmen convert FILE --schema V --encoding E [-o OUT]`.

use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `obmen convert`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The CommerceML file to read.
    pub file: PathBuf,
}

/// Runs the command.
pub fn run(_args: &Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not implemented yet")
}
