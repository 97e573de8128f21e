//! Security defaults of the PostgreSQL stores (issue 9, item 6), through the public API:
//!
//! - a malformed connection string names the bad option, from every constructor, sync and
//!   async, with the driver's reason as `source()`;
//! - `sslmode=require` without TLS configured is refused before any connection (the TLS
//!   side, a server answering "no TLS", is tested in the library's own unit tests under
//!   `--features postgres-tls`);
//! - a password in the connection string appears in no `Debug` output, log line or error;
//! - the schema-mismatch `Fix:` is SQL that works for a schema named with a space, a quote
//!   and upper case.

mod common;
#[macro_use]
mod common_pg;

use std::error::Error as _;
use std::time::Duration;

use common::logs::Captured;
use common::{item, Order, OrderCreated};
use eventsource::store::postgres::{
    async_driver, driver, AsyncPostgresEventStore, AsyncPostgresSnapshotStore, PgOptions, PostgresEventStore,
    PostgresSnapshotStore,
};
use eventsource::{AggregateRepository, Error, JsonCodec};
use uuid::Uuid;

/// A password that must show up nowhere.
const PASSWORD: &str = "Sup3rS3cretPw";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// Malformed strings and the reason the driver gives for each.
const MALFORMED: &[(&str, &str)] = &[
    ("host=127.0.0.1 foo=bar", "unknown option `foo`"),
    ("host=127.0.0.1 sslmode=sometimes", "invalid value for option `sslmode`"),
    ("host=127.0.0.1 port=fivefour", "invalid value for option `port`"),
    (
        "postgresql://app@127.0.0.1:notaport/db",
        "invalid value for option `port`",
    ),
    ("postgresql://127.0.0.1/db?colour=blue", "unknown option `colour`"),
    ("host='127.0.0.1", "unterminated quoted connection parameter value"),
];

fn assert_names_the_option(what: &str, s: &str, reason: &str, result: Result<(), Error>) {
    match result {
        Err(e @ Error::InvalidConnectionString { .. }) => {
            assert_eq!(e.to_string(), "invalid PostgreSQL connection string", "{what}({s})");
            assert_eq!(
                e.report().to_string(),
                format!("invalid PostgreSQL connection string: {reason}"),
                "{what}({s})"
            );
            // The reason is the source, and the message does not repeat the driver's own
            // "invalid connection string" prefix.
            assert_eq!(
                e.source().map(ToString::to_string).as_deref(),
                Some(reason),
                "{what}({s})"
            );
            assert_eq!(
                e.report().to_string().matches("invalid").count(),
                1 + reason.matches("invalid").count()
            );
        }
        other => panic!("{what}({s}): expected InvalidConnectionString, got {other:?}"),
    }
}

#[test]
fn malformed_connection_strings_name_the_bad_option_sync() {
    for (s, reason) in MALFORMED {
        assert_names_the_option(
            "PostgresEventStore::connect",
            s,
            reason,
            PostgresEventStore::connect(s).map(drop),
        );
        assert_names_the_option(
            "PostgresSnapshotStore::connect_with_codec",
            s,
            reason,
            PostgresSnapshotStore::connect_with_codec(s, JsonCodec).map(drop),
        );
    }
}

#[test]
fn malformed_connection_strings_name_the_bad_option_async() {
    runtime().block_on(async {
        for (s, reason) in MALFORMED {
            assert_names_the_option(
                "AsyncPostgresEventStore::connect",
                s,
                reason,
                AsyncPostgresEventStore::connect(s).await.map(drop),
            );
            assert_names_the_option(
                "AsyncPostgresSnapshotStore::connect_with_codec",
                s,
                reason,
                AsyncPostgresSnapshotStore::connect_with_codec(s, JsonCodec)
                    .await
                    .map(drop),
            );
        }
    });
}

fn assert_require_without_tls_refused(what: &str, result: Result<(), Error>) {
    match result {
        Err(Error::InvalidConfig(m)) => {
            assert!(
                m.contains("sslmode=require") && m.contains("no TLS is configured"),
                "{what}: {m}"
            );
            assert!(m.contains("connect_tls") && m.contains("postgres-tls"), "{what}: {m}");
        }
        other => panic!("{what}: expected InvalidConfig, got {other:?}"),
    }
}

/// Port 1 has no server: had the store tried to connect, the error would be a store error.
#[test]
fn sslmode_require_without_tls_is_refused_before_connecting() {
    let url = "host=127.0.0.1 port=1 user=app dbname=x sslmode=require";
    assert_require_without_tls_refused("sync connect", PostgresEventStore::connect(url).map(drop));
    let mut config: driver::Config = url.parse().expect("parses");
    config.connect_timeout(Duration::from_secs(5));
    assert_require_without_tls_refused(
        "sync from_config",
        PostgresSnapshotStore::from_config(config, JsonCodec, PgOptions::new()).map(drop),
    );
    runtime().block_on(async {
        assert_require_without_tls_refused("async connect", AsyncPostgresEventStore::connect(url).await.map(drop));
        let mut config: async_driver::Config = url.parse().expect("parses");
        config.connect_timeout(Duration::from_secs(5));
        assert_require_without_tls_refused(
            "async from_config",
            AsyncPostgresSnapshotStore::from_config(config, JsonCodec, PgOptions::new())
                .await
                .map(drop),
        );
    });
    // Without `sslmode`, or with `prefer`/`disable`, no TLS configured means plain text as
    // before: the failure is the connection's (nothing listens on port 1).
    for url in [
        "host=127.0.0.1 port=1 user=app",
        "host=127.0.0.1 port=1 sslmode=disable",
    ] {
        assert!(
            matches!(PostgresEventStore::connect(url), Err(Error::Store { .. })),
            "{url}"
        );
    }
}

fn assert_no_password(what: &str, text: &str) {
    assert!(!text.contains(PASSWORD), "{what} shows the password: {text}");
}

#[test]
fn no_password_in_debug_output_logs_or_errors() {
    let db = pg_schema_or_skip!("no_password_in_debug_output_logs_or_errors");
    let logs = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("eventsource=trace"))
        .with_writer(logs.clone())
        .with_ansi(false)
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        // Sync: open with a password (the test server trusts, so it is never asked for),
        // save, load, and print everything.
        let mut config = db.config(&db.app("sync"));
        config.password(PASSWORD);
        let options = db.options();
        assert_no_password("PgOptions Debug", &format!("{options:?}"));
        let events = PostgresEventStore::from_config(config, JsonCodec, options).expect("open");
        let repo = AggregateRepository::<Order, _>::new(events.clone())
            .with_snapshot_store(events.snapshot_store())
            .snapshot_threshold(2)
            .expect("threshold");
        let id = Uuid::now_v7();
        let mut order = repo.load_or_create(id).expect("load");
        order.record(OrderCreated { customer_id: id });
        order.record(item(1));
        order.record(item(2));
        repo.save(&mut order).expect("save");
        repo.flush().expect("flush");
        let loaded = repo.load(id).expect("load");
        assert_eq!(loaded.version(), 3);
        assert_no_password("store Debug", &format!("{events:?} {:?}", events.snapshot_store()));

        // Async: the same through the async store.
        runtime().block_on(async {
            let mut config = db.async_config(&db.app("async"));
            config.password(PASSWORD);
            let events = AsyncPostgresEventStore::from_config(config, JsonCodec, db.options())
                .await
                .expect("open");
            assert_no_password(
                "async store Debug",
                &format!("{events:?} {:?}", events.snapshot_store()),
            );
        });

        // Failures: nothing listens on port 1; the url carries the password both ways.
        for url in [
            format!("host=127.0.0.1 port=1 user=app password={PASSWORD} connect_timeout=5"),
            format!("postgresql://app:{PASSWORD}@127.0.0.1:1/x?connect_timeout=5"),
        ] {
            let err = PostgresEventStore::connect(&url).expect_err("nothing listens on port 1");
            assert_no_password("sync connect error", &format!("{err} {err:?}"));
            let err = runtime()
                .block_on(AsyncPostgresEventStore::connect(&url))
                .expect_err("nothing listens on port 1");
            assert_no_password("async connect error", &format!("{err} {err:?}"));
            // And a malformed string carrying it.
            let err = PostgresEventStore::connect(&format!("{url} foo=bar")).expect_err("malformed");
            assert_no_password("parse error", &format!("{err} {err:?}"));
        }
    });
    let logs = logs.text();
    assert!(
        logs.contains("eventsource::store::postgres"),
        "no PostgreSQL log lines: {logs}"
    );
    assert_no_password("logs", &logs);
}

/// Drops a schema of the test's own making.
struct DropSchema<'a>(&'a common_pg::PgSchema, String);

impl Drop for DropSchema<'_> {
    fn drop(&mut self) {
        let sql = format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.1.replace('"', "\"\""));
        self.0.with_client(|c| {
            let _ = c.batch_execute(&sql);
        });
    }
}

fn open_in(db: &common_pg::PgSchema, schema: &str) -> Result<PostgresEventStore, Error> {
    PostgresEventStore::from_config(
        db.config(&db.app("odd")),
        JsonCodec,
        PgOptions::new().schema(schema).pool_size(1),
    )
}

fn fix_of(result: Result<PostgresEventStore, Error>) -> String {
    match result {
        Err(Error::SchemaMismatch { fix, .. }) => fix,
        other => panic!("expected a schema mismatch, got {other:?}"),
    }
}

#[test]
fn schema_mismatch_fix_is_sql_that_works_for_any_schema_name() {
    let db = pg_schema_or_skip!("schema_mismatch_fix_is_sql_that_works_for_any_schema_name");
    // A space, a double quote and upper case; the prefix lets the leftover sweep find it.
    let odd = format!("{}_A \"b\" C", db.name);
    let _guard = DropSchema(&db, odd.clone());
    let quoted = format!("\"{}\"", odd.replace('"', "\"\""));
    drop(open_in(&db, &odd).expect("create and migrate"));

    // A column of the wrong type: the Fix is an ALTER that runs as printed.
    db.exec(&format!(
        "ALTER TABLE {quoted}.events ALTER COLUMN event_type TYPE TEXT"
    ));
    let fix = fix_of(open_in(&db, &odd));
    assert_eq!(
        fix,
        format!("ALTER TABLE {quoted}.\"events\" ALTER COLUMN \"event_type\" TYPE character varying")
    );
    db.exec(&fix);
    drop(open_in(&db, &odd).expect("fixed"));

    // A missing constraint: the same.
    db.exec(&format!(
        "ALTER TABLE {quoted}.events DROP CONSTRAINT uq_events_stream_version"
    ));
    let fix = fix_of(open_in(&db, &odd));
    assert!(
        fix.starts_with(&format!(
            "ALTER TABLE {quoted}.\"events\" ADD CONSTRAINT \"uq_events_stream_version\""
        )),
        "{fix}"
    );
    db.exec(&fix);
    drop(open_in(&db, &odd).expect("fixed"));
}
