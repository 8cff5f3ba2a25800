//! Fresh PostgreSQL databases for the server tests: each test that runs on PostgreSQL gets a
//! database of its own with a unique name, created through the admin URL in
//! `OBMEN_TEST_POSTGRES_URL` and dropped (`WITH (FORCE)`) when its guard goes away, so tests
//! running in parallel, and parallel test runs, never see each other's rows, sessions or locks.
//!
//! * variable unset → [`admin_url`] prints a notice and returns `None`: the PostgreSQL variant
//!   of a test returns early and says so (`.ci/run` always sets the variable);
//! * variable set but the server unreachable → [`TestDatabase::create`] panics: a PostgreSQL
//!   test never skips silently where PostgreSQL is expected.

use std::hash::{BuildHasher, Hasher};
use std::io::Write as _;
use std::sync::atomic::{AtomicU32, Ordering};

use sqlx::{Connection, Executor, PgConnection};

/// The variable naming the PostgreSQL server (and a database on it) tests may use.
pub const ENV: &str = "OBMEN_TEST_POSTGRES_URL";

/// Prefix of every database these tests create (to find leftovers of a killed run).
pub const PREFIX: &str = "obmen_test_";

/// The admin URL from [`ENV`], or `None` after printing that `test` does not run on
/// PostgreSQL because the variable is unset.
pub fn admin_url(test: &str) -> Option<String> {
    match std::env::var(ENV) {
        Ok(url) if !url.trim().is_empty() => Some(url.trim().to_owned()),
        _ => {
            // Straight to stderr, not `eprintln!`: the test harness would swallow that for a
            // passing test, and this notice must be seen.
            let _ = writeln!(
                std::io::stderr(),
                "notice: {ENV} is not set; {test} did not run on PostgreSQL (set it, e.g. \
                 {ENV}=postgres://postgres@127.0.0.1:5432/test, to run it)"
            );
            None
        }
    }
}

/// A database name no other test of this run, nor another run, will pick.
fn unique_name() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    format!(
        "{PREFIX}{}_{}_{:012x}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed),
        h.finish() & 0xffff_ffff_ffff
    )
}

/// `admin_url` with its database replaced by `name`.
fn url_of(admin_url: &str, name: &str) -> String {
    let mut url = reqwest::Url::parse(admin_url)
        .unwrap_or_else(|e| panic!("{ENV} is not a URL ({admin_url:?}): {e}"));
    url.set_path(&format!("/{name}"));
    url.to_string()
}

/// A fresh, empty database; dropped with its guard.
#[derive(Debug)]
pub struct TestDatabase {
    admin_url: String,
    name: String,
    url: String,
}

impl TestDatabase {
    /// Creates a uniquely named database on the server of `admin_url`. Panics when the server
    /// cannot be reached.
    pub async fn create(admin_url: &str) -> Self {
        let name = unique_name();
        let mut conn = PgConnection::connect(admin_url).await.unwrap_or_else(|e| {
            panic!("{ENV} is set but PostgreSQL at {admin_url} cannot be reached: {e}")
        });
        conn.execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .unwrap_or_else(|e| panic!("cannot create database {name}: {e}"));
        conn.close().await.ok();
        Self {
            admin_url: admin_url.to_owned(),
            url: url_of(admin_url, &name),
            name,
        }
    }

    /// The URL of the database (for `OBMEN_DATABASE_URL`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        // Drop may run inside the test's runtime: do the async work on a thread of its own.
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            rt.block_on(async {
                let mut conn = PgConnection::connect(&admin_url)
                    .await
                    .map_err(|e| e.to_string())?;
                // FORCE: a server still running (a test that panicked) holds connections.
                conn.execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
                    .await
                    .map_err(|e| e.to_string())?;
                conn.close().await.map_err(|e| e.to_string())
            })
        })
        .join();
        match dropped {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("warning: could not drop test database {}: {e}", self.name),
            Err(_) => eprintln!("warning: dropping test database {} panicked", self.name),
        }
    }
}
