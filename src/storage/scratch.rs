//! Scratch databases for storage's own tests: a SQLite file in a temporary directory, or a
//! PostgreSQL database made for the test and dropped after it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use diesel::connection::SimpleConnection;
use diesel::Connection;

pub(crate) struct Scratch {
    url: String,
    /// The SQLite file's directory, removed on drop.
    _dir: Option<tempfile::TempDir>,
    /// For PostgreSQL: the server's maintenance URL and the database to drop.
    pg: Option<(String, String)>,
}

impl Scratch {
    pub(crate) fn sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("scratch.db").display());
        Self {
            url,
            _dir: Some(dir),
            pg: None,
        }
    }

    /// A fresh database on the server at `CROSSPROV_TEST_PG_URL`; `None` (said loudly) when
    /// no server answers, unless `CROSSPROV_TEST_PG_REQUIRED` is set, which fails instead.
    pub(crate) fn postgres(tag: &str) -> Option<Self> {
        let base = std::env::var("CROSSPROV_TEST_PG_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        let mut admin = match diesel::PgConnection::establish(&base) {
            Ok(c) => c,
            Err(e) if std::env::var_os("CROSSPROV_TEST_PG_REQUIRED").is_none() => {
                let shown = super::pg_url::redacted(&base);
                eprintln!("SKIPPED (PostgreSQL unreachable at {shown}: {e})");
                return None;
            }
            Err(e) => panic!(
                "PostgreSQL unreachable at {}: {e}",
                super::pg_url::redacted(&base)
            ),
        };
        let name = format!("crossprov_{tag}_{}", std::process::id());
        // One statement per call: several in one string run as one transaction block.
        for sql in [
            format!("DROP DATABASE IF EXISTS {name}"),
            format!("CREATE DATABASE {name}"),
        ] {
            admin.batch_execute(&sql).unwrap();
        }
        Some(Self {
            url: super::pg_url::naming_database(&base, &name).expect("a PostgreSQL URL"),
            _dir: None,
            pg: Some((base, name)),
        })
    }

    pub(crate) fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Some((base, name)) = &self.pg {
            if let Ok(mut admin) = diesel::PgConnection::establish(base) {
                let _ =
                    admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
            }
        }
    }
}

/// One storage test body, run on both backends: `<body>::sqlite` on a scratch SQLite file and
/// `<body>::postgres` on a scratch PostgreSQL database named after `tag` (skipped, or failed
/// when required, without a server). The body takes the database URL.
macro_rules! on_both_databases {
    ($body:ident, $tag:literal) => {
        mod $body {
            #[test]
            fn sqlite() {
                let db = $crate::storage::scratch::Scratch::sqlite();
                super::$body(db.url());
            }

            #[test]
            fn postgres() {
                if let Some(db) = $crate::storage::scratch::Scratch::postgres($tag) {
                    super::$body(db.url());
                }
            }
        }
    };
}
pub(crate) use on_both_databases;
