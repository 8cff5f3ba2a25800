//! `obmen validate FILE...`.

use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `obmen validate`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// CommerceML files to read.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

/// Runs the command.
pub fn run(_args: &Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not implemented yet")
}
