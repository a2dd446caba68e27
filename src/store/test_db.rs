//! Test databases for the store suite: a fresh SQLite file always, and a fresh PostgreSQL
//! database (its own `CREATE DATABASE`, dropped afterwards, so tests run in parallel) when
//! `TRIAGE_TEST_DATABASE_URL` is set. Unset, PostgreSQL cases print why they are skipped, or
//! fail when `TRIAGE_REQUIRE_POSTGRES=1` (the test command starts one: `scripts/pg_test.sh`).

use super::pg::Pg;
use super::{Backend, Store, StoreConfig};
use std::path::PathBuf;

pub(crate) enum TestDb {
    Sqlite(PathBuf),
    Pg(Box<PgDb>),
}

pub(crate) struct PgDb {
    admin: postgres::Config,
    pub config: postgres::Config,
    pub name: String,
}

/// The admin URL of the test PostgreSQL, or None (with a message) when there is none.
pub(crate) fn pg_url(test: &str) -> Option<String> {
    match std::env::var("TRIAGE_TEST_DATABASE_URL") {
        Ok(u) if !u.trim().is_empty() => Some(u),
        _ => {
            assert!(
                std::env::var("TRIAGE_REQUIRE_POSTGRES").as_deref() != Ok("1"),
                "{test}: TRIAGE_REQUIRE_POSTGRES=1 but TRIAGE_TEST_DATABASE_URL is unset"
            );
            eprintln!(
                "{test}: PostgreSQL case skipped: no PostgreSQL (TRIAGE_TEST_DATABASE_URL unset)"
            );
            None
        }
    }
}

impl PgDb {
    /// A new empty database on the test server, or None when there is none.
    pub fn new(test: &str) -> Option<PgDb> {
        let url = pg_url(test)?;
        let admin: postgres::Config = url.parse().expect("TRIAGE_TEST_DATABASE_URL");
        let name = format!("triage_t_{}", rand::random::<u64>());
        let mut c = admin
            .connect(postgres::NoTls)
            .expect("connect to TRIAGE_TEST_DATABASE_URL");
        c.batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("create test database");
        let mut config = admin.clone();
        config.dbname(&name);
        Some(PgDb {
            admin,
            config,
            name,
        })
    }

    pub fn client(&self) -> postgres::Client {
        self.config.connect(postgres::NoTls).expect("connect")
    }

    pub fn open(&self, cfg: StoreConfig) -> anyhow::Result<Store> {
        let pg = Pg::connect(self.config.clone(), &format!("test:{}", self.name), &cfg)?;
        Ok(Store {
            backend: Backend::Postgres(pg),
            config: cfg,
        })
    }
}

impl PgDb {
    /// Drop the database, ending its connections (a lost database, for tests of recovery).
    pub fn drop_database(&self) {
        let mut c = self.admin.connect(postgres::NoTls).expect("connect");
        c.batch_execute(&format!("DROP DATABASE {} WITH (FORCE)", self.name))
            .expect("drop test database");
    }

    /// Create it again, empty, with the schema.
    pub fn recreate(&self) {
        let mut c = self.admin.connect(postgres::NoTls).expect("connect");
        c.batch_execute(&format!("CREATE DATABASE {}", self.name))
            .expect("create test database");
        super::pg::migrations::migrate(&mut self.client(), "test").expect("migrate");
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        if let Ok(mut c) = self.admin.connect(postgres::NoTls) {
            let _ = c.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

impl TestDb {
    /// SQLite, then PostgreSQL when configured.
    pub fn all(test: &str) -> Vec<TestDb> {
        let d = std::env::temp_dir().join(format!(
            "triage-store-{test}-{}-{}",
            std::process::id(),
            rand::random::<u32>()
        ));
        let _ = std::fs::remove_dir_all(&d);
        let mut v = vec![TestDb::Sqlite(d.join("t.sqlite"))];
        v.extend(PgDb::new(test).map(|d| TestDb::Pg(Box::new(d))));
        v
    }

    pub fn open(&self, cfg: StoreConfig) -> Store {
        match self {
            TestDb::Sqlite(p) => Store::open(p, cfg).expect("open sqlite"),
            TestDb::Pg(db) => db.open(cfg).expect("open postgres"),
        }
    }

    pub fn is_sqlite(&self) -> bool {
        matches!(self, TestDb::Sqlite(_))
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let TestDb::Sqlite(p) = self {
            if let Some(d) = p.parent() {
                let _ = std::fs::remove_dir_all(d);
            }
        }
    }
}
