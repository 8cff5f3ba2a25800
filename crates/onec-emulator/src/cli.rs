//! The `emulate-1c` command line: one exchange session against a site, or (`serve`) the 1C
//! HTTP-service stand-in.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;

use crate::client::{self, ClientOptions, Faults, UploadEncoding, ZipMode};
use crate::db::Database;
use crate::script::Script;
use crate::service::{self, ServiceOptions};

/// Play 1C against an exchange URL (one session), or run the 1C HTTP-service stand-in.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct Args {
    /// `serve`: the 1C HTTP-service stand-in.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Options of an exchange session.
    #[command(flatten)]
    pub session: SessionArgs,
}

/// Subcommands of `emulate-1c`.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Run the 1C HTTP-service stand-in that receives pushed orders.
    Serve(ServeArgs),
}

/// Zip uploads when the site offers it, or never.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ZipArg {
    /// Zip when `init` answers `zip=yes`.
    Auto,
    /// Never zip.
    Off,
}

/// Encoding of the uploaded files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EncodingArg {
    /// UTF-8 with a BOM.
    #[value(name = "utf-8")]
    Utf8,
    /// windows-1251.
    #[value(name = "windows-1251")]
    Windows1251,
}

/// Options of an exchange session.
#[derive(Debug, clap::Args)]
pub struct SessionArgs {
    /// Exchange URL, e.g. http://127.0.0.1:8080/exchange or https://shop/bitrix/admin/1c_exchange.php.
    #[arg(long, required = true)]
    pub url: Option<String>,
    /// Exchange login.
    #[arg(long, required = true)]
    pub user: Option<String>,
    /// Exchange password.
    #[arg(
        long,
        env = "OBMEN_1C_PASSWORD",
        hide_env_values = true,
        required = true
    )]
    pub password: Option<String>,
    /// The emulator's own "1C database" (SQLite file; created if missing).
    #[arg(long, default_value = "onec-emulator.db")]
    pub state: PathBuf,
    /// CommerceML version sent at init (2.08, 2.10, 3.1, …), or `none` for the legacy protocol.
    #[arg(long, default_value = "2.08")]
    pub version: String,
    /// Zip uploads when the site allows it.
    #[arg(long, value_enum, default_value = "auto")]
    pub zip: ZipArg,
    /// Encoding of the uploaded files.
    #[arg(long, value_enum, default_value = "utf-8")]
    pub encoding: EncodingArg,
    /// Script of what goes back (TOML, or JSON when the name ends in .json).
    #[arg(long)]
    pub script: Option<PathBuf>,
    /// Print the summary as one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Print the default script (a commented template) and exit.
    #[arg(long, exclusive = true)]
    pub print_script: bool,
    /// Fault: stop after `query` without `success`.
    #[arg(long)]
    pub no_success: bool,
    /// Fault: upload the same file again in a new run right after the first.
    #[arg(long)]
    pub replay_file: bool,
    /// Fault: cut the connection in the middle of the first upload chunk.
    #[arg(long)]
    pub cut_upload: bool,
    /// Fault: send a status nobody mapped in the first document.
    #[arg(long)]
    pub unmapped_status: bool,
    /// Run this many sessions at the same time (fault: concurrent sessions).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub sessions: u16,
    /// Send Basic credentials on every request, not only at checkauth.
    #[arg(long)]
    pub basic_always: bool,
    /// Refuse UTF-8 XML answers without a BOM, as some 1C builds do.
    #[arg(long)]
    pub require_utf8_bom: bool,
    /// Timeout of each request, in seconds.
    #[arg(long, default_value_t = 120)]
    pub timeout_secs: u64,
}

/// Options of the HTTP-service stand-in.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on, e.g. 127.0.0.1:8091 (port 0 picks a free one).
    #[arg(long)]
    pub listen: String,
    /// SQLite file of what was received (default: in memory).
    #[arg(long)]
    pub state: Option<PathBuf>,
    /// Answer every N-th request with 503.
    #[arg(long, default_value_t = 0)]
    pub fail_every: u64,
    /// Answer after this many milliseconds.
    #[arg(long, default_value_t = 0)]
    pub delay_ms: u64,
    /// Reject every order with 400.
    #[arg(long)]
    pub reject: bool,
}

/// Runs `emulate-1c`. Any protocol violation or failure of the site is an error.
pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    if args.session.print_script {
        print!("{}", crate::script::DEFAULT_SCRIPT);
        return Ok(ExitCode::SUCCESS);
    }
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    match &args.command {
        Some(Command::Serve(serve)) => runtime.block_on(run_serve(serve)),
        None => runtime.block_on(run_client(&args.session)),
    }
}

/// Builds client options from the command line.
pub fn client_options(a: &SessionArgs) -> anyhow::Result<ClientOptions> {
    let (Some(url), Some(user), Some(password)) = (&a.url, &a.user, &a.password) else {
        anyhow::bail!("--url, --user and --password are required");
    };
    let mut o = ClientOptions::new(url, user, password);
    o.version = match a.version.trim() {
        "none" | "" => None,
        v => {
            commerceml::SchemaVersion::parse(v)
                .with_context(|| format!("--version {v:?} is neither a version nor `none`"))?;
            Some(v.to_owned())
        }
    };
    o.zip = match a.zip {
        ZipArg::Auto => ZipMode::Auto,
        ZipArg::Off => ZipMode::Off,
    };
    o.encoding = match a.encoding {
        EncodingArg::Utf8 => UploadEncoding::Utf8,
        EncodingArg::Windows1251 => UploadEncoding::Windows1251,
    };
    if let Some(path) = &a.script {
        o.script = Script::load(path)?;
    }
    o.faults = Faults {
        no_success: a.no_success,
        replay_file: a.replay_file,
        cut_upload: a.cut_upload,
        unmapped_status: a.unmapped_status,
    };
    o.basic_always = a.basic_always;
    o.require_utf8_bom = a.require_utf8_bom;
    o.timeout = Duration::from_secs(a.timeout_secs.max(1));
    Ok(o)
}

async fn run_client(a: &SessionArgs) -> anyhow::Result<ExitCode> {
    let options = client_options(a)?;
    let state = a.state.to_string_lossy().into_owned();
    let db = Database::open(&state)
        .await
        .with_context(|| format!("opening the 1C database {state}"))?;
    let results = if a.sessions > 1 {
        client::run_parallel(&options, &db, usize::from(a.sessions)).await
    } else {
        vec![client::run_session(options, db).await]
    };
    let mut first_error = None;
    for r in results {
        match r {
            Ok(summary) if a.json => println!("{}", serde_json::to_string(&summary)?),
            Ok(summary) => println!("{}", summary.render()),
            Err(e) => {
                if first_error.is_none() {
                    first_error = Some(e);
                }
            }
        }
    }
    match first_error {
        Some(e) => Err(e.into()),
        None => Ok(ExitCode::SUCCESS),
    }
}

async fn run_serve(a: &ServeArgs) -> anyhow::Result<ExitCode> {
    let listener = tokio::net::TcpListener::bind(&a.listen)
        .await
        .with_context(|| format!("binding {}", a.listen))?;
    let options = ServiceOptions {
        state: a.state.as_ref().map_or_else(
            || ":memory:".to_owned(),
            |p| p.to_string_lossy().into_owned(),
        ),
        fail_every: a.fail_every,
        delay: Duration::from_millis(a.delay_ms),
        reject: a.reject,
    };
    let handle = service::serve(listener, options).await?;
    println!(
        "1C HTTP-service stand-in listening on http://{}",
        handle.addr()
    );
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    handle.shutdown().await?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Top {
        #[command(flatten)]
        args: Args,
    }

    #[test]
    fn session_flags_parse() {
        let t = Top::try_parse_from([
            "x",
            "--url",
            "http://h/x",
            "--user",
            "u",
            "--password",
            "p",
            "--version",
            "none",
            "--zip",
            "off",
            "--encoding",
            "windows-1251",
            "--json",
            "--no-success",
        ])
        .unwrap();
        let o = client_options(&t.args.session).unwrap();
        assert_eq!(o.version, None);
        assert_eq!(o.zip, ZipMode::Off);
        assert_eq!(o.encoding, UploadEncoding::Windows1251);
        assert!(o.faults.no_success);
        assert!(t.args.session.json);
    }

    #[test]
    fn serve_needs_no_url_and_url_is_required_otherwise() {
        let t = Top::try_parse_from(["x", "serve", "--listen", "127.0.0.1:0", "--fail-every", "3"])
            .unwrap();
        match t.args.command {
            Some(Command::Serve(s)) => assert_eq!(s.fail_every, 3),
            None => panic!("serve not parsed"),
        }
        assert!(Top::try_parse_from(["x", "--user", "u", "--password", "p"]).is_err());
        let t = Top::try_parse_from([
            "x",
            "--url",
            "http://h/",
            "--user",
            "u",
            "--password",
            "p",
            "--version",
            "abc",
        ])
        .unwrap();
        assert!(client_options(&t.args.session).is_err());
    }
}
