//! The embedded default store: one SQLite file (under `./data/` by default) in WAL mode.
//!
//! Durability: `synchronous = FULL`. In WAL mode that fsyncs the log at every commit, so a write
//! that returned `Ok` survives a power loss or a kernel crash, not only a crash of this process
//! (`NORMAL` would survive the latter only, and could lose the last commits on power loss). That
//! costs one fsync per commit — a few milliseconds, far below a hotline's write rate — and
//! "nothing lost" is the product's promise to callers in crisis.
//!
//! The queries live in [`super::sql`], shared with PostgreSQL.

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use super::{StoreResult, sql};

/// How long a writer waits for another's lock before giving up with "database is locked".
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Rows sqlx's worker thread may read ahead of the task that asked for them. sqlx's default
/// (50) makes a transcript batch's `RETURNING` (one row per line, up to 1,024) stop and wait for
/// the task several times over, and each wait is a hand-off between threads.
const ROW_BUFFER: usize = 2_048;

/// Two pools on one file: `pool` for everything, and `writer`, one connection for the hot writes
/// — the router's event log and the transcript writer. SQLite has one writer at a time anyway;
/// with their own connection those two queue for it in the pool instead of meeting SQLite's
/// lock, whose busy handler sleeps 1 ms and more before it retries, and that connection's page
/// cache stays warm from one commit to the next (SQLite drops a connection's cache when another
/// connection has written since its last transaction).
pub struct SqliteStore {
    pool: SqlitePool,
    writer: SqlitePool,
}

impl SqliteStore {
    /// Opens `url` (`sqlite://path`, `sqlite:path`, a bare path, or `sqlite::memory:`), creating
    /// the file and its parent directory if missing, and runs the migrations.
    pub async fn connect(url: &str) -> StoreResult<Self> {
        let in_memory = is_in_memory(url);
        let options = SqliteConnectOptions::from_str(url)
            .map_err(sql::error)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT)
            .row_buffer_size(ROW_BUFFER)
            .pragma("temp_store", "memory");

        if in_memory {
            // An in-memory database lives as long as its one connection: keep exactly one open
            // (several would share a cache with table-level locks rather than wait).
            let pool = SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
                .connect_with(options)
                .await
                .map_err(sql::error)?;
            sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
            tracing::info!(in_memory, "SQLite store open");
            return Ok(SqliteStore {
                writer: pool.clone(),
                pool,
            });
        }
        if let Some(dir) = options.get_filename().parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir).map_err(|e| sql::error(sqlx::Error::Io(e)))?;
        }
        // Opening (which may switch the file to WAL) and migrating are done by one process at a
        // time: two `hotline` commands started at once on a fresh file would otherwise both
        // create the tables, and one of them fail.
        let opening = lock_for_opening(options.get_filename()).await?;
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .test_before_acquire(false)
            .connect_with(options.clone())
            .await
            .map_err(sql::error)?;
        sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
        drop(opening);
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .test_before_acquire(false)
            .connect_with(options)
            .await
            .map_err(sql::error)?;
        tracing::info!(in_memory, "SQLite store open");
        Ok(SqliteStore { pool, writer })
    }

    /// The connection for the hot writes (the event log, transcript lines).
    fn writer(&self) -> &SqlitePool {
        &self.writer
    }

    /// Closes every connection, waiting for them to finish (and SQLite to checkpoint the WAL).
    /// Dropping the store closes them too, in the background.
    pub async fn close(&self) {
        self.writer.close().await;
        self.pool.close().await;
    }
}

/// Takes an exclusive lock on `<database>.lock` (created if missing, never removed, so that every
/// process locks the same file), waiting for another process that holds it; released on drop.
/// A file of its own: SQLite's locks on the database file itself are POSIX locks, which a second
/// descriptor on that file would release when closed.
async fn lock_for_opening(database: &std::path::Path) -> StoreResult<std::fs::File> {
    let mut path = database.as_os_str().to_owned();
    path.push(".lock");
    tokio::task::spawn_blocking(move || {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)?;
        file.lock()?;
        Ok(file)
    })
    .await
    .map_err(|e| sql::error(sqlx::Error::Io(std::io::Error::other(e))))?
    .map_err(|e| sql::error(sqlx::Error::Io(e)))
}

/// `sqlite::memory:`, `sqlite://:memory:` or `…?mode=memory`.
fn is_in_memory(url: &str) -> bool {
    let rest = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:");
    let (database, params) = rest.split_once('?').unwrap_or((rest, ""));
    database == ":memory:" || params.split('&').any(|p| p == "mode=memory")
}

sql::impl_store!(SqliteStore, dialect = "sqlite");
super::notes::impl_note_store!(SqliteStore, dialect = "sqlite");
super::paging::impl_paging_store!(SqliteStore, dialect = "sqlite");
super::quality::impl_quality_store!(SqliteStore, dialect = "sqlite");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_urls() {
        assert!(is_in_memory("sqlite::memory:"));
        assert!(is_in_memory("sqlite://:memory:"));
        assert!(is_in_memory("sqlite://x?mode=memory"));
        assert!(!is_in_memory("sqlite://data/hotline.db"));
        assert!(!is_in_memory("./data/hotline.db"));
    }
}
