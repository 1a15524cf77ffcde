//! Databases of the API tests: a template migrated once per run (named after the migrations'
//! checksums, built under an advisory lock), and a clone of it per test, dropped with it.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::str::FromStr;
use std::time::Duration;

use secrecy::ExposeSecret;
use sqlx::postgres::PgConnectOptions;
use sqlx::{AssertSqlSafe, ConnectOptions, Connection, PgPool};
use tokio::sync::OnceCell;
use vrooli::config::Settings;

use super::random_suffix;

/// A database of this test's own, cloned from the migrated template.
pub struct TestDb {
    pub name: String,
    pub url: String,
    pub pool: PgPool,
    admin: PgConnectOptions,
}

impl TestDb {
    /// A migrated database (a clone of the template).
    pub async fn new(settings: &Settings) -> Self {
        Self::create(settings, true).await
    }

    /// A database with nothing in it, for testing migrations themselves.
    pub async fn empty(settings: &Settings) -> Self {
        Self::create(settings, false).await
    }

    async fn create(settings: &Settings, migrated: bool) -> Self {
        let base = PgConnectOptions::from_str(settings.database.url.expose_secret())
            .expect("database.url");
        let admin = base.clone().database("postgres");
        let template = if migrated {
            template(&admin).await
        } else {
            "template0".to_string()
        };
        let name = format!("vrooli_test_{}", random_suffix());
        let mut conn = admin.connect().await.expect("connect as admin");
        // Clones from one template can collide while PostgreSQL copies it; retry briefly.
        let mut attempt = 0;
        loop {
            let sql = format!(r#"CREATE DATABASE "{name}" TEMPLATE "{template}""#);
            match sqlx::query(AssertSqlSafe(sql)).execute(&mut conn).await {
                Ok(_) => break,
                Err(e)
                    if attempt < 20 && e.to_string().contains("being accessed by other users") =>
                {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("clone test database: {e}"),
            }
        }
        let options = base.database(&name);
        let url = options.to_url_lossy().to_string();
        let pool = PgPool::connect_with(options)
            .await
            .expect("connect to test database");
        Self {
            name,
            url,
            pool,
            admin,
        }
    }

    /// Drops this database now, as if it had vanished under the server.
    pub async fn drop_now(&self) {
        drop_database(&self.admin, &self.name).await;
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let admin = self.admin.clone();
        let name = self.name.clone();
        // Drop runs outside async; give the cleanup its own thread and runtime.
        let _ = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("cleanup runtime")
                .block_on(drop_database(&admin, &name));
        })
        .join();
    }
}

async fn drop_database(admin: &PgConnectOptions, name: &str) {
    if let Ok(mut conn) = admin.connect().await {
        let _ = sqlx::query(AssertSqlSafe(format!(
            r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#
        )))
        .execute(&mut conn)
        .await;
    }
}

static TEMPLATE: OnceCell<String> = OnceCell::const_new();

async fn template(admin: &PgConnectOptions) -> String {
    TEMPLATE
        .get_or_init(|| async {
            let mut hasher = DefaultHasher::new();
            for migration in vrooli::db::MIGRATOR.iter() {
                migration.version.hash(&mut hasher);
                migration.checksum.hash(&mut hasher);
            }
            let hash = hasher.finish();
            let name = format!("vrooli_tpl_{:012x}", hash & 0xffff_ffff_ffff);
            let mut conn = admin.connect().await.expect("connect as admin");
            // One builder across all test processes; the others wait here, then find it built.
            sqlx::query("SELECT pg_advisory_lock($1)")
                .bind(hash as i64)
                .execute(&mut conn)
                .await
                .expect("lock");
            let exists: bool =
                sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
                    .bind(&name)
                    .fetch_one(&mut conn)
                    .await
                    .expect("look up template");
            if !exists {
                // Build under a temporary name and rename when complete, so a crash mid-way never
                // leaves a half-migrated template behind.
                let building = format!("{name}_build");
                drop_database(admin, &building).await;
                sqlx::query(AssertSqlSafe(format!(r#"CREATE DATABASE "{building}""#)))
                    .execute(&mut conn)
                    .await
                    .expect("create template");
                let pool = PgPool::connect_with(admin.clone().database(&building))
                    .await
                    .expect("connect template");
                vrooli::db::migrate(&pool).await.expect("migrate template");
                pool.close().await;
                sqlx::query(AssertSqlSafe(format!(
                    r#"ALTER DATABASE "{building}" RENAME TO "{name}""#
                )))
                .execute(&mut conn)
                .await
                .expect("rename template");
            }
            sqlx::query("SELECT pg_advisory_unlock($1)")
                .bind(hash as i64)
                .execute(&mut conn)
                .await
                .expect("unlock");
            let _ = conn.close().await;
            name
        })
        .await
        .clone()
}
