//! Test helpers shared by the integration-test binaries: a fresh, migrated database per test,
//! on SQLite or PostgreSQL.
//!
//! Use it from a test binary with `mod common;`, then:
//!
//! ```ignore
//! let Some(db) = common::fresh_database(common::Backend::Postgres).await else {
//!     return; // PostgreSQL not configured on this machine (never happens under CI)
//! };
//! let store = db.connect().await;        // a DynStore on that database, migrated
//! let url = db.url();                    // or hand the URL to the server under test
//! // `db` drops the database (PostgreSQL) or deletes the file (SQLite) when it goes out of scope.
//! ```
//!
//! `fresh_store(backend)` does both steps at once. To run one test body on both databases,
//! write it once as `async fn body(store: DynStore, db: &FreshDb)` and generate a `#[tokio::test]`
//! per backend (see the `store_test!` macro in `tests/store.rs`).
//!
//! PostgreSQL: set `HOTLINE_TEST_DATABASE_URL` to a server where the role may create databases,
//! e.g. `postgres://postgres@127.0.0.1:5432/test`. Each test gets its own database
//! `hotline_test_<pid>_<time>_<n>`, created from that URL and dropped (best effort, `WITH (FORCE)`)
//! when the [`FreshDb`] is dropped, even if the test panicked. Without the variable the
//! PostgreSQL tests are skipped with a note on stderr — except when `CI` is set, where they fail:
//! CI must never pass by silently testing one database only.
#![allow(dead_code)] // each test binary uses its own subset of these helpers

#[macro_use]
pub mod server;

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use hotline::store::DynStore;
use sqlx::Connection;

/// The environment variable naming the PostgreSQL server for tests.
pub const PG_URL_VAR: &str = "HOTLINE_TEST_DATABASE_URL";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The PostgreSQL server URL for tests, or `None` when none is configured.
///
/// # Panics
/// When `CI` is set and [`PG_URL_VAR`] is not: CI must run the PostgreSQL tests.
pub fn pg_url() -> Option<String> {
    match std::env::var(PG_URL_VAR) {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ if std::env::var_os("CI").is_some() => panic!(
            "CI is set but {PG_URL_VAR} is not: the PostgreSQL half of the test-suite cannot run. \
             Start PostgreSQL and set {PG_URL_VAR}=postgres://postgres@127.0.0.1:5432/test"
        ),
        _ => None,
    }
}

/// A fresh database for one test. Dropping it removes the database.
pub struct FreshDb {
    backend: Backend,
    url: String,
    cleanup: Cleanup,
}

enum Cleanup {
    /// The SQLite file lives in this directory; dropping it deletes both.
    Sqlite(tempfile::TempDir),
    /// Drop `database` through a connection to the server's `admin_url`.
    Postgres { admin_url: String, database: String },
}

impl FreshDb {
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The URL to give `hotline::store::connect` (or the server's configuration).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Connects (and migrates) a store on this database. Call again to "reopen" it.
    pub async fn connect(&self) -> DynStore {
        hotline::store::connect(&self.url)
            .await
            .unwrap_or_else(|e| panic!("connecting to the test database {}: {e}", self.url))
    }

    /// Runs SQL on the database behind the store's back (to plant corrupt rows or triggers).
    pub async fn execute(&self, statement: &str) {
        let statement = || sqlx::raw_sql(sqlx::AssertSqlSafe(statement.to_owned()));
        match self.backend {
            Backend::Sqlite => {
                let mut conn = sqlx::SqliteConnection::connect(&self.url).await.unwrap();
                statement().execute(&mut conn).await.unwrap();
                conn.close().await.unwrap();
            }
            Backend::Postgres => {
                let mut conn = sqlx::PgConnection::connect(&self.url).await.unwrap();
                statement().execute(&mut conn).await.unwrap();
                conn.close().await.unwrap();
            }
        }
    }
}

impl Drop for FreshDb {
    fn drop(&mut self) {
        let Cleanup::Postgres {
            admin_url,
            database,
        } = &self.cleanup
        else {
            return; // the TempDir deletes itself
        };
        // Drop may run inside the test's runtime (which cannot block on a future), so drop the
        // database from a thread with a runtime of its own. FORCE ends the store's connections.
        let (admin_url, database) = (admin_url.clone(), database.clone());
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime to drop the test database");
            runtime.block_on(async {
                let mut admin = sqlx::PgConnection::connect(&admin_url).await?;
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS \"{database}\" WITH (FORCE)"
                )))
                .execute(&mut admin)
                .await?;
                admin.close().await
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("note: could not drop the test database {}", self.url);
        }
    }
}

/// A new, empty database (not yet migrated: `connect` migrates). `None` only for PostgreSQL when
/// no server is configured outside CI (see [`pg_url`]); the caller should then skip the test.
pub async fn fresh_database(backend: Backend) -> Option<FreshDb> {
    match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().expect("a temporary directory");
            // A subdirectory that does not exist yet: `connect` must create it.
            let path = dir.path().join("data").join("hotline.db");
            Some(FreshDb {
                backend,
                url: format!("sqlite://{}", path.display()),
                cleanup: Cleanup::Sqlite(dir),
            })
        }
        Backend::Postgres => {
            let admin_url = pg_url()?;
            let database = unique_name();
            let mut admin = sqlx::PgConnection::connect(&admin_url)
                .await
                .unwrap_or_else(|e| panic!("connecting to {PG_URL_VAR}={admin_url}: {e}"));
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                "CREATE DATABASE \"{database}\""
            )))
            .execute(&mut admin)
            .await
            .unwrap_or_else(|e| panic!("creating the test database {database}: {e}"));
            let _ = admin.close().await;
            Some(FreshDb {
                backend,
                url: with_database(&admin_url, &database),
                cleanup: Cleanup::Postgres {
                    admin_url,
                    database,
                },
            })
        }
    }
}

/// A PostgreSQL database name that does not exist yet (for testing that `connect` creates it),
/// guarded like [`fresh_database`]'s: dropped at the end if something created it.
pub fn uncreated_postgres_database() -> Option<FreshDb> {
    let admin_url = pg_url()?;
    let database = unique_name();
    Some(FreshDb {
        backend: Backend::Postgres,
        url: with_database(&admin_url, &database),
        cleanup: Cleanup::Postgres {
            admin_url,
            database,
        },
    })
}

/// A fresh, migrated store and the guard that removes its database. `None` as in
/// [`fresh_database`].
pub async fn fresh_store(backend: Backend) -> Option<(DynStore, FreshDb)> {
    let db = fresh_database(backend).await?;
    let store = db.connect().await;
    Some((store, db))
}

/// Runs `body` on a fresh store of `backend`, or reports the skip (PostgreSQL not configured,
/// outside CI only). The database is removed afterwards, also when `body` panics.
pub async fn run<F, Fut>(backend: Backend, body: F)
where
    F: FnOnce(DynStore, FreshDb) -> Fut,
    Fut: Future<Output = ()>,
{
    match fresh_store(backend).await {
        Some((store, db)) => body(store, db).await,
        None => eprintln!("skipped: set {PG_URL_VAR} to run the PostgreSQL tests"),
    }
}

/// `hotline_test_<pid>_<unix ms>_<n>`: unique across the parallel tests of one binary and
/// across binaries running at the same time.
fn unique_name() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default();
    format!(
        "hotline_test_{}_{}_{}",
        std::process::id(),
        millis,
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// `url` with its database (the path) replaced: `postgres://u@h:5432/test?x=y` → `…/name?x=y`.
fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[authority_start..]
        .find('/')
        .map_or(base.len(), |i| authority_start + i);
    let mut out = format!("{}/{database}", &base[..host_end]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

#[test]
fn database_names_replace_the_path() {
    assert_eq!(
        with_database("postgres://postgres@127.0.0.1:5432/test", "x"),
        "postgres://postgres@127.0.0.1:5432/x"
    );
    assert_eq!(
        with_database("postgres://u:p@h/test?sslmode=disable", "x"),
        "postgres://u:p@h/x?sslmode=disable"
    );
    assert_eq!(with_database("postgresql://h", "x"), "postgresql://h/x");
}
