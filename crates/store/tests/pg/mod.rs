//! PostgreSQL test databases: each test gets its own schema with a random name in the database
//! named by `OBMEN_TEST_POSTGRES_URL`, dropped when the guard goes away, so parallel test runs
//! (and parallel tests) never see each other's rows.
//!
//! * variable unset → [`fresh`] prints a notice and returns `None` (the test passes without
//!   running; `.ci/run` always sets the variable);
//! * variable set but the database unreachable → [`fresh`] panics: a PostgreSQL test never
//!   skips silently where PostgreSQL is expected.

use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;

use sqlx::{Connection, Executor, PgConnection};
use store::Store;

/// The variable naming the PostgreSQL database tests may use.
pub const ENV: &str = "OBMEN_TEST_POSTGRES_URL";

/// The admin URL from [`ENV`], or `None` (with a notice) when it is unset or empty.
pub fn url() -> Option<String> {
    match std::env::var(ENV) {
        Ok(url) if !url.trim().is_empty() => Some(url.trim().to_owned()),
        _ => {
            eprintln!(
                "notice: {ENV} is not set; PostgreSQL store tests pass without running \
                 (set it, e.g. {ENV}=postgres://postgres@127.0.0.1:5432/test, to run them)"
            );
            None
        }
    }
}

/// A schema name no other run will pick.
fn random_schema() -> String {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    format!("obmen_test_{:016x}", h.finish())
}

/// `url` with the search path set to `schema`.
fn with_search_path(url: &str, schema: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}options[search_path]={schema}")
}

/// Drops the schema of a test store when it goes away.
pub struct SchemaGuard {
    admin_url: String,
    schema: String,
}

impl SchemaGuard {
    /// The URL of the store in this schema (for opening more instances on it).
    pub fn store_url(&self) -> String {
        with_search_path(&self.admin_url, &self.schema)
    }
}

impl Drop for SchemaGuard {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let schema = self.schema.clone();
        // Drop runs inside the test's runtime: do the async work on a thread of its own.
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            rt.block_on(async {
                let mut conn = PgConnection::connect(&admin_url)
                    .await
                    .map_err(|e| e.to_string())?;
                // A test that panicked mid-transaction may still hold locks for a moment.
                conn.execute("SET lock_timeout = '20s'")
                    .await
                    .map_err(|e| e.to_string())?;
                conn.execute(format!("DROP SCHEMA IF EXISTS {schema} CASCADE").as_str())
                    .await
                    .map_err(|e| e.to_string())?;
                conn.close().await.map_err(|e| e.to_string())
            })
        })
        .join();
        match dropped {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("warning: could not drop test schema {}: {e}", self.schema),
            Err(_) => eprintln!("warning: dropping test schema {} panicked", self.schema),
        }
    }
}

/// Creates a fresh schema and returns its URL with the guard that drops it. Panics when the
/// database cannot be reached.
pub async fn fresh_schema(admin_url: &str) -> SchemaGuard {
    let schema = random_schema();
    let mut conn = PgConnection::connect(admin_url).await.unwrap_or_else(|e| {
        panic!("{ENV} is set but PostgreSQL at {admin_url} cannot be reached: {e}")
    });
    conn.execute(format!("CREATE SCHEMA {schema}").as_str())
        .await
        .unwrap_or_else(|e| panic!("cannot create schema {schema}: {e}"));
    conn.close().await.ok();
    SchemaGuard {
        admin_url: admin_url.to_owned(),
        schema,
    }
}

/// A fresh, migrated PostgreSQL store opened through `store::open`, or `None` when
/// [`ENV`] is unset.
pub async fn fresh() -> Option<(Arc<dyn Store>, SchemaGuard)> {
    let admin_url = url()?;
    let guard = fresh_schema(&admin_url).await;
    let store = store::open(&guard.store_url())
        .await
        .unwrap_or_else(|e| panic!("cannot open the PostgreSQL store: {e}"));
    Some((store, guard))
}
