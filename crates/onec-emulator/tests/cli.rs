//! `emulate-1c` as the binary calls it: parsed arguments in, exit code or error out.

mod bitrix_site;

use std::process::ExitCode;

use bitrix_site::{Fault, Site, FULL_QUERY, PASSWORD, USER};
use clap::Parser;
use onec_emulator::cli::{run, Args};
use onec_emulator::Database;

#[derive(Debug, Parser)]
struct Top {
    #[command(flatten)]
    args: Args,
}

async fn run_cli(argv: Vec<String>) -> anyhow::Result<ExitCode> {
    let top = Top::try_parse_from(argv).unwrap();
    // `run` owns its runtime, so it runs outside the test's.
    tokio::task::spawn_blocking(move || run(&top.args))
        .await
        .unwrap()
}

fn argv(site: &Site, state: &std::path::Path, extra: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = vec![
        "emulate-1c".into(),
        "--url".into(),
        site.url(),
        "--user".into(),
        USER.into(),
        "--password".into(),
        PASSWORD.into(),
        "--state".into(),
        state.display().to_string(),
        "--json".into(),
    ];
    v.extend(extra.iter().map(|s| (*s).to_owned()));
    v
}

#[tokio::test]
async fn a_session_from_the_command_line() {
    let site = Site::start(true, 1024).await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("1c.db");
    let code = run_cli(argv(
        &site,
        &state,
        &["--version", "3.1", "--encoding", "windows-1251"],
    ))
    .await
    .unwrap();
    assert_eq!(code, ExitCode::SUCCESS);
    let init = site
        .requests()
        .into_iter()
        .find(|r| r.mode() == "init")
        .unwrap();
    assert_eq!(init.params.get("version").map(String::as_str), Some("3.1"));
    let db = Database::open(state.to_str().unwrap()).await.unwrap();
    assert_eq!(db.order_count().await.unwrap(), 2);
    let sessions = db.sessions().await.unwrap();
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0].outcome.as_deref(), Some("ok"));
    assert_eq!((sessions[0].created, sessions[0].sent), (2, 2));
}

#[tokio::test]
async fn no_success_and_legacy_from_the_command_line() {
    let site = Site::start(false, 0).await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("1c.db");
    run_cli(argv(&site, &state, &["--version", "none", "--no-success"]))
        .await
        .unwrap();
    assert_eq!(site.modes(), ["checkauth", "init", "query"]);
    assert_eq!(site.requests()[1].params.get("version"), None);
}

#[tokio::test]
async fn a_protocol_violation_is_an_error_exit() {
    let site = Site::start_with(
        true,
        0,
        FULL_QUERY.to_vec(),
        Some(("query", Fault::CharsetMismatch)),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let err = run_cli(argv(&site, &dir.path().join("1c.db"), &[]))
        .await
        .unwrap_err();
    let err = err.downcast::<onec_emulator::Error>().unwrap();
    assert!(err.is_violation(), "{err}");
    let db = Database::open(dir.path().join("1c.db").to_str().unwrap())
        .await
        .unwrap();
    let sessions = db.sessions().await.unwrap();
    assert!(sessions[0]
        .outcome
        .as_deref()
        .is_some_and(|o| o.starts_with("error: protocol violation at mode=query")));
}

#[test]
fn print_script_needs_no_url() {
    let top = Top::try_parse_from(["emulate-1c", "--print-script"]).unwrap();
    assert!(top.args.session.print_script);
    assert_eq!(run(&top.args).unwrap(), ExitCode::SUCCESS);
    assert!(Top::try_parse_from(["emulate-1c", "--print-script", "--json"]).is_err());
}
