//! Test databases: a temp SQLite file, or a fresh schema in the local PostgreSQL that is dropped afterwards.
//!
//! PostgreSQL comes from `ODD_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/test`). If it
//! cannot be reached, the test is skipped with a loud message, unless `ODD_REQUIRE_POSTGRES=1` (as in CI), which
//! makes it fail instead.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use odd_gateway::config::Config;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub struct TestDb {
    pub backend: Backend,
    pub dir: tempfile::TempDir,
    pub url: String,
    pub schema: Option<String>,
}

fn postgres_url() -> String {
    std::env::var("ODD_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string())
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

impl TestDb {
    pub async fn new(backend: Backend) -> Option<TestDb> {
        let dir = tempfile::tempdir().expect("temp dir");
        match backend {
            Backend::Sqlite => Some(TestDb {
                backend,
                url: format!("sqlite://{}", dir.path().join("odd.db").display()),
                dir,
                schema: None,
            }),
            Backend::Postgres => {
                let url = postgres_url();
                let reachable =
                    tokio::time::timeout(Duration::from_secs(5), sqlx::PgPool::connect(&url)).await;
                match reachable {
                    Ok(Ok(pool)) => pool.close().await,
                    other => {
                        let why = match other {
                            Ok(Err(e)) => e.to_string(),
                            _ => "timed out".to_string(),
                        };
                        if std::env::var("ODD_REQUIRE_POSTGRES").as_deref() == Ok("1") {
                            panic!("PostgreSQL at {url} is required (ODD_REQUIRE_POSTGRES=1) but unreachable: {why}");
                        }
                        eprintln!("\n!!! SKIPPED: PostgreSQL at {url} is unreachable ({why}); set ODD_REQUIRE_POSTGRES=1 to fail instead !!!\n");
                        return None;
                    }
                }
                let schema = format!(
                    "odd_test_{}_{}_{}",
                    std::process::id(),
                    COUNTER.fetch_add(1, Ordering::Relaxed),
                    rand::random::<u32>()
                );
                Some(TestDb {
                    backend,
                    dir,
                    url,
                    schema: Some(schema),
                })
            }
        }
    }

    /// A config for a gateway on this database, every listener on an ephemeral port.
    pub fn config(&self, tweak: fn(&mut Config)) -> Config {
        let mut c = Config::ephemeral(self.dir.path());
        c.database.url = self.url.clone();
        c.database.schema = self.schema.clone();
        tweak(&mut c);
        c
    }

    /// A second, independent connection to the same data (to check what really is in the store).
    pub async fn open_store(&self) -> odd_gateway::store::Store {
        odd_gateway::store::Store::open(&self.url, self.schema.as_deref())
            .await
            .expect("store opens")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some(schema) = self.schema.take() else {
            return;
        };
        let url = self.url.clone();
        // Drop runs outside async; a short-lived thread with its own runtime removes the schema.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                if let Ok(pool) = sqlx::PgPool::connect(&url).await {
                    let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                        .execute(&pool)
                        .await;
                    pool.close().await;
                }
            });
        })
        .join();
    }
}
