//! The `obmen` command line: a thin dispatcher into the library.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// obmen — order exchange between online stores and 1C:Enterprise.
#[derive(Debug, Parser)]
#[command(name = "obmen", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Read CommerceML files and report what they hold.
    Validate(obmen::validate::Args),
    /// Rewrite a CommerceML file in another schema version or encoding.
    Convert(obmen::convert::Args),
    /// Play 1C against an exchange URL (one session), or run the 1C HTTP-service stand-in.
    #[command(name = "emulate-1c")]
    EmulateOneC(onec_emulator::cli::Args),
    /// Run the gateway: the 1C exchange endpoint, the store API, /healthz and /metrics.
    Serve(obmen::startup::ServeArgs),
    /// Print or check the configuration.
    #[command(subcommand)]
    Config(obmen::config::Command),
    /// Bulk operations on orders.
    #[command(subcommand)]
    Orders(obmen::orders::Command),
    /// The real-time push outbox: list entries, re-queue dead letters.
    #[command(subcommand)]
    Outbox(obmen::push::Command),
    /// Show a whole exchange on one screen: a temporary gateway, a few orders, two 1C sessions.
    Demo(obmen::demo::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Validate(args) => obmen::validate::run(&args),
        Command::Convert(args) => obmen::convert::run(&args),
        Command::EmulateOneC(args) => onec_emulator::cli::run(&args),
        Command::Serve(args) => obmen::startup::serve_command(&args),
        Command::Config(command) => obmen::config::run(&command),
        Command::Orders(command) => obmen::orders::run(&command),
        Command::Outbox(command) => {
            obmen::push::run(&command, std::sync::Arc::new(exchange::clock::SystemClock))
        }
        Command::Demo(args) => obmen::demo::run(&args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
