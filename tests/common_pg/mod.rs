//! PostgreSQL test support: one fresh schema per test, so tests run in parallel.
//!
//! The server comes from `EVENTSOURCE_PG_URL` (default
//! `host=127.0.0.1 port=5432 user=postgres dbname=test`). When it cannot be reached the test
//! prints a skip line and passes, unless `CI` is set: then it fails.
//!
//! Everything here uses the sync `postgres` driver on a thread of its own, so it works the
//! same from a plain `#[test]` and from inside a tokio runtime (where the sync driver may
//! not block).
#![allow(dead_code)]

pub mod proxy;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use eventsource::store::postgres::{async_driver, driver, Layout, PgOptions};
use postgres::{Client, NoTls};

/// The default server when `EVENTSOURCE_PG_URL` is unset.
pub const DEFAULT_URL: &str = "host=127.0.0.1 port=5432 user=postgres dbname=test";

/// Schemas older than this (by the timestamp in their name) are dropped by the next test:
/// leftovers of killed test runs.
const STALE_AFTER: Duration = Duration::from_secs(3600);

/// The server's connection string.
pub fn url() -> String {
    std::env::var("EVENTSOURCE_PG_URL")
        .ok()
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_URL.to_owned())
}

/// Runs `f` on a fresh OS thread (no tokio context there, so the sync driver works).
pub fn off_runtime<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| match s.spawn(f).join() {
        Ok(v) => v,
        Err(panic) => std::panic::resume_unwind(panic),
    })
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A schema of its own for one test; dropped (with everything in it) when this drops.
#[derive(Debug)]
pub struct PgSchema {
    /// The schema's name (`es_test_<unix seconds>_<random>`).
    pub name: String,
    url: String,
    /// The table layout the stores opened through [`PgSchema::options`] use.
    pub layout: Layout,
}

/// The partitioned layout of the tests: four partitions per table.
pub const PARTITIONED: Layout = Layout::Partitioned { partitions: 4 };

/// A fresh schema, or `None` (after printing a skip line) when no server is reachable
/// outside CI. In CI (env `CI` set) an unreachable server panics: the test fails.
pub fn schema(test: &str) -> Option<PgSchema> {
    schema_with(test, Layout::Default)
}

/// A fresh schema whose stores use `layout`, as [`schema`].
pub fn schema_with(test: &str, layout: Layout) -> Option<PgSchema> {
    let url = url();
    let created = off_runtime(|| -> Result<String, String> {
        let mut client = Client::connect(&url, NoTls).map_err(|e| format!("{e}: {e:?}"))?;
        sweep(&mut client);
        let name = format!("es_test_{}_{}", now_secs(), uuid::Uuid::new_v4().simple());
        client
            .batch_execute(&format!("CREATE SCHEMA \"{name}\""))
            .map_err(|e| format!("create schema: {e:?}"))?;
        Ok(name)
    });
    match created {
        Ok(name) => Some(PgSchema { name, url, layout }),
        Err(e) => {
            if in_ci() {
                panic!("PostgreSQL at `{url}` is required in CI (set EVENTSOURCE_PG_URL): {e}");
            }
            eprintln!("SKIPPED {test}: no PostgreSQL at `{url}` ({e}); set EVENTSOURCE_PG_URL to run it");
            None
        }
    }
}

/// Whether the tests run in CI (`CI` set to anything but empty, `0` or `false`).
fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !matches!(v.trim(), "" | "0" | "false"))
}

/// Drops test schemas left over by runs that were killed before their guards ran.
fn sweep(client: &mut Client) {
    let Ok(rows) = client.query(
        "SELECT nspname::TEXT FROM pg_namespace WHERE nspname LIKE 'es\\_test\\_%'",
        &[],
    ) else {
        return;
    };
    let horizon = now_secs().saturating_sub(STALE_AFTER.as_secs());
    for row in rows {
        let name: String = row.get(0);
        let created = name
            .strip_prefix("es_test_")
            .and_then(|rest| rest.split('_').next())
            .and_then(|secs| secs.parse::<u64>().ok());
        if created.is_some_and(|t| t < horizon) {
            let _ = client.batch_execute(&format!("DROP SCHEMA IF EXISTS \"{name}\" CASCADE"));
        }
    }
}

impl PgSchema {
    /// The server's connection string (without the schema).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A sync driver config for the server, tagged with `application_name` so a test can
    /// find (and kill) its store's connections.
    pub fn config(&self, application_name: &str) -> driver::Config {
        let mut config: driver::Config = self.url.parse().expect("EVENTSOURCE_PG_URL parses");
        config.application_name(application_name);
        config
    }

    /// An async driver config for the server, tagged with `application_name`.
    pub fn async_config(&self, application_name: &str) -> async_driver::Config {
        let mut config: async_driver::Config = self.url.parse().expect("EVENTSOURCE_PG_URL parses");
        config.application_name(application_name);
        config
    }

    /// Store options putting every statement in this schema.
    pub fn options(&self) -> PgOptions {
        PgOptions::new().schema(&self.name).layout(self.layout)
    }

    /// An `application_name` unique to this schema, with a suffix.
    pub fn app(&self, suffix: &str) -> String {
        format!("{}_{suffix}", self.name)
    }

    /// Runs `f` with a plain client whose `search_path` is this schema, on its own thread.
    pub fn with_client<T: Send>(&self, f: impl FnOnce(&mut Client) -> T + Send) -> T {
        off_runtime(|| {
            let mut client = Client::connect(&self.url, NoTls).expect("connect");
            client
                .batch_execute(&format!("SET search_path TO \"{}\"", self.name))
                .expect("search_path");
            f(&mut client)
        })
    }

    /// Runs SQL statements in this schema.
    pub fn exec(&self, sql: &str) {
        self.with_client(|c| c.batch_execute(sql).unwrap_or_else(|e| panic!("{sql}: {e:?}")));
    }

    /// The first column of the first row of a query, as `i64`.
    pub fn scalar_i64(&self, sql: &str) -> i64 {
        self.with_client(|c| c.query_one(sql, &[]).unwrap_or_else(|e| panic!("{sql}: {e:?}")).get(0))
    }

    /// Terminates the backends whose `application_name` is `app`, waiting until at least one
    /// of them is in the given state (`active`, `idle`...) and waiting on a lock when
    /// `waiting_on_lock`; returns how many were terminated.
    pub fn kill(&self, app: &str, waiting_on_lock: bool) -> usize {
        self.kill_pids(app, waiting_on_lock, &[]).len()
    }

    /// Like [`kill`](Self::kill), ignoring the backends in `except` (already terminated ones
    /// that may not have exited yet); returns the pids terminated.
    pub fn kill_pids(&self, app: &str, waiting_on_lock: bool, except: &[i32]) -> Vec<i32> {
        let app = app.to_owned();
        let except = except.to_vec();
        self.with_client(move |c| {
            for _ in 0..500 {
                let rows = c
                    .query(
                        "SELECT pid FROM pg_stat_activity
                         WHERE application_name = $1
                           AND ($2 = FALSE OR wait_event_type = 'Lock')
                           AND pid <> ALL($3)",
                        &[&app, &waiting_on_lock, &except],
                    )
                    .expect("pg_stat_activity");
                if !rows.is_empty() {
                    let mut killed = Vec::new();
                    for row in rows {
                        let pid: i32 = row.get(0);
                        let ok: bool = c
                            .query_one("SELECT pg_terminate_backend($1)", &[&pid])
                            .expect("terminate")
                            .get(0);
                        if ok {
                            killed.push(pid);
                        }
                    }
                    return killed;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            Vec::new()
        })
    }
}

impl PgSchema {
    /// Terminates, without waiting, every backend whose `application_name` is `app`;
    /// returns how many were terminated.
    pub fn kill_now(&self, app: &str) -> usize {
        let app = app.to_owned();
        self.with_client(move |c| {
            c.query_one(
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity
                 WHERE application_name = $1 AND pid <> pg_backend_pid()",
                &[&app],
            )
            .map(|row| row.get::<_, i64>(0) as usize)
            .unwrap_or(0)
        })
    }

    /// The server's TCP address (for a proxy in front of it), when it is reached over TCP
    /// on a loopback address.
    pub fn server_addr(&self) -> Option<std::net::SocketAddr> {
        use std::net::ToSocketAddrs;
        let config: driver::Config = self.url.parse().ok()?;
        let host = match config.get_hosts().first()? {
            driver::Host::Tcp(h) => h.clone(),
            #[allow(unreachable_patterns)]
            _ => return None,
        };
        let port = config.get_ports().first().copied().unwrap_or(5432);
        (host.as_str(), port)
            .to_socket_addrs()
            .ok()?
            .find(|a| a.ip().is_loopback())
    }

    /// A sync driver config that reaches the server through `addr` (a proxy), with the same
    /// user, password and database, tagged with `application_name`.
    pub fn config_via(&self, addr: std::net::SocketAddr, application_name: &str) -> driver::Config {
        self.async_config_via(addr, application_name).into()
    }

    /// The async form of [`config_via`](Self::config_via).
    pub fn async_config_via(&self, addr: std::net::SocketAddr, application_name: &str) -> async_driver::Config {
        let base = self.async_config(application_name);
        let mut config = async_driver::Config::new();
        config.host(addr.ip().to_string()).port(addr.port());
        config.application_name(application_name);
        if let Some(user) = base.get_user() {
            config.user(user);
        }
        if let Some(password) = base.get_password() {
            config.password(password);
        }
        if let Some(dbname) = base.get_dbname() {
            config.dbname(dbname);
        }
        config
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let (url, name) = (self.url.clone(), self.name.clone());
        off_runtime(move || {
            if let Ok(mut client) = Client::connect(&url, NoTls) {
                // Other sessions of the test may still hold locks for a moment.
                for _ in 0..20 {
                    match client.batch_execute(&format!("DROP SCHEMA IF EXISTS \"{name}\" CASCADE")) {
                        Ok(()) => return,
                        Err(_) => std::thread::sleep(Duration::from_millis(100)),
                    }
                }
            }
        });
    }
}

/// Skips the test (returning early) when no server is reachable outside CI.
#[macro_export]
macro_rules! pg_schema_or_skip {
    ($test:expr) => {
        match $crate::common_pg::schema($test) {
            Some(s) => s,
            None => return,
        }
    };
    ($test:expr, $layout:expr) => {
        match $crate::common_pg::schema_with($test, $layout) {
            Some(s) => s,
            None => return,
        }
    };
}
