//! The `obmen` command line.
#![forbid(unsafe_code)]

use clap::Parser;

/// obmen — order exchange between online stores and 1C:Enterprise.
#[derive(Debug, Parser)]
#[command(name = "obmen", version, about)]
struct Cli {}

fn main() {
    let _cli = Cli::parse();
}
