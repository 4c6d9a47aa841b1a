//! The production store: PostgreSQL. The queries live in [`super::sql`], shared with SQLite.
//!
//! Durability is PostgreSQL's own: a commit returns once its WAL record is flushed
//! (`synchronous_commit = on`, the server default — keep it so in production).

use std::time::Duration;

use sqlx::migrate::MigrateDatabase;
use sqlx::postgres::{PgPool, PgPoolOptions};

use super::{StoreResult, sql};

/// SQLSTATE `invalid_catalog_name`: the database named in the URL does not exist.
const UNKNOWN_DATABASE: &str = "3D000";

pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    /// Connects to `url` (`postgres://user@host:port/db`), creating the database if it does not
    /// exist (when the role may), and runs the migrations.
    pub async fn connect(url: &str) -> StoreResult<Self> {
        let pool = match Self::pool(url).await {
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some(UNKNOWN_DATABASE) => {
                sqlx::Postgres::create_database(url)
                    .await
                    .map_err(sql::error)?;
                tracing::info!("created the PostgreSQL database");
                Self::pool(url).await
            }
            other => other,
        }
        .map_err(sql::error)?;
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        tracing::info!("PostgreSQL store open");
        Ok(PgStore { pool })
    }

    async fn pool(url: &str) -> Result<PgPool, sqlx::Error> {
        PgPoolOptions::new()
            .max_connections(10)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await
    }

    /// The pool for the hot writes: the same pool (PostgreSQL has no single-writer lock).
    fn writer(&self) -> &PgPool {
        &self.pool
    }

    /// Closes every connection, waiting for them to finish.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

sql::impl_store!(PgStore, dialect = "postgres");
super::notes::impl_note_store!(PgStore, dialect = "postgres");
super::paging::impl_paging_store!(PgStore, dialect = "postgres");
super::quality::impl_quality_store!(PgStore, dialect = "postgres");
