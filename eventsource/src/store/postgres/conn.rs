//! What the sync and async adapters share about connections: options, the schema setting,
//! TLS, the store location, error mapping and integer conversions.

use std::time::Duration;

use tokio_postgres::config::Host;
use tokio_postgres::error::SqlState;

use crate::error::{Error, Result};
use crate::store::StoreLocation;

/// The backend name in [`Error::Store`].
pub(crate) const BACKEND: &str = "postgres";
/// The tracing target of the PostgreSQL stores.
pub(crate) const TARGET: &str = "eventsource::store::postgres";

/// How the stores connect: schema, pool size, waiting, connect timeout, migrations and TLS.
///
/// ```
/// use std::time::Duration;
/// use eventsource::store::postgres::PgOptions;
///
/// let options = PgOptions::new()
///     .schema("orders")              // every statement runs in schema `orders`
///     .pool_size(16)                 // at most 16 connections per store
///     .checkout_timeout(Duration::from_secs(5))
///     .connect_timeout(Duration::from_secs(3)); // a server that never answers: an error in 3 s
/// assert_eq!(options.get_schema(), Some("orders"));
/// assert_eq!(options.get_connect_timeout(), Some(Duration::from_secs(3)));
/// ```
#[derive(Debug, Clone)]
pub struct PgOptions {
    schema: Option<String>,
    pool_size: usize,
    checkout_timeout: Duration,
    connect_timeout: Option<Duration>,
    migrate: bool,
    tls: TlsMode,
}

impl Default for PgOptions {
    fn default() -> Self {
        Self {
            schema: None,
            pool_size: 8,
            checkout_timeout: Duration::from_secs(30),
            connect_timeout: None,
            migrate: true,
            tls: TlsMode::Disable,
        }
    }
}

impl PgOptions {
    /// The defaults: the connection's own `search_path`, 8 connections, a 30 s wait for a
    /// free connection, migrations on connect, no TLS.
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs every statement in this schema (it is created if missing, when the store
    /// migrates): each connection starts with `search_path` set to it.
    pub fn schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = Some(schema.into());
        self
    }

    /// The maximum number of connections a store keeps open (at least 1).
    pub fn pool_size(mut self, size: usize) -> Self {
        self.pool_size = size.max(1);
        self
    }

    /// How long an operation waits for a free connection before failing with
    /// [`Error::Store`].
    pub fn checkout_timeout(mut self, timeout: Duration) -> Self {
        self.checkout_timeout = timeout;
        self
    }

    /// How long opening one connection may take, from the TCP connect to the server's
    /// "ready" (TLS, authentication, startup included), on both APIs. A server that accepts
    /// the connection and never answers fails the open (or the operation that needed a new
    /// connection) with [`Error::Store`] after this long.
    ///
    /// Without it, the connection string's `connect_timeout` (seconds) applies to the whole
    /// setup when it has one, else the [checkout timeout](Self::checkout_timeout).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = Some(timeout);
        self
    }

    /// Whether to apply pending migrations on connect (default `true`). Without, the store
    /// only checks the schema, for databases whose DDL is applied by a DBA.
    pub fn migrate(mut self, migrate: bool) -> Self {
        self.migrate = migrate;
        self
    }

    /// How to secure the connection (see [`TlsMode`]).
    pub fn tls(mut self, tls: TlsMode) -> Self {
        self.tls = tls;
        self
    }

    /// The configured schema, if any.
    pub fn get_schema(&self) -> Option<&str> {
        self.schema.as_deref()
    }

    /// The configured pool size.
    pub fn get_pool_size(&self) -> usize {
        self.pool_size
    }

    /// The configured checkout timeout.
    pub fn get_checkout_timeout(&self) -> Duration {
        self.checkout_timeout
    }

    /// The connect timeout set with [`connect_timeout`](Self::connect_timeout), if any.
    pub fn get_connect_timeout(&self) -> Option<Duration> {
        self.connect_timeout
    }

    /// Whether the store migrates on connect.
    pub fn get_migrate(&self) -> bool {
        self.migrate
    }

    /// The configured TLS mode.
    pub fn get_tls(&self) -> &TlsMode {
        &self.tls
    }
}

/// Whether and how connections use TLS.
///
/// With the `postgres-tls` feature, [`TlsMode::Rustls`] encrypts connections with rustls
/// (ring provider) and verifies the server's certificate and host name.
/// [`TlsMode::webpki_roots`] trusts the Mozilla root certificates, which managed
/// PostgreSQL services chain to; pass your own `rustls::ClientConfig` for a private CA.
/// The connection string's `sslmode` still applies: `prefer` (the default) falls back to
/// plain text when the server does not offer TLS, `require` refuses to.
#[derive(Clone, Default)]
#[non_exhaustive]
pub enum TlsMode {
    /// Plain connections (`sslmode=require` in the connection string then fails to connect).
    #[default]
    Disable,
    /// TLS through rustls with this client configuration.
    #[cfg(feature = "postgres-tls")]
    Rustls(std::sync::Arc<rustls::ClientConfig>),
}

impl std::fmt::Debug for TlsMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TlsMode::Disable => f.write_str("Disable"),
            #[cfg(feature = "postgres-tls")]
            TlsMode::Rustls(_) => f.write_str("Rustls(..)"),
        }
    }
}

#[cfg(feature = "postgres-tls")]
impl TlsMode {
    /// rustls with the ring provider and the Mozilla root certificates (webpki-roots).
    pub fn webpki_roots() -> Result<Self> {
        let roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        let config =
            rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .map_err(|e| Error::InvalidConfig(format!("rustls: {e}")))?
                .with_root_certificates(roots)
                .with_no_client_auth();
        Ok(TlsMode::Rustls(std::sync::Arc::new(config)))
    }
}

/// The TLS connector of a connection, made from a [`TlsMode`].
#[derive(Clone)]
pub(crate) enum Connector {
    Plain,
    #[cfg(feature = "postgres-tls")]
    Rustls(tokio_postgres_rustls::MakeRustlsConnect),
}

impl Connector {
    pub(crate) fn new(mode: &TlsMode) -> Self {
        match mode {
            TlsMode::Disable => Connector::Plain,
            #[cfg(feature = "postgres-tls")]
            TlsMode::Rustls(config) => Connector::Rustls(tokio_postgres_rustls::MakeRustlsConnect::new(
                rustls::ClientConfig::clone(config),
            )),
        }
    }
}

/// Parses a connection string (`host=... user=...` or `postgresql://...`); the sync stores
/// convert the result into a `postgres::Config`.
pub(crate) fn parse_url(url: &str) -> Result<tokio_postgres::Config> {
    url.parse::<tokio_postgres::Config>()
        .map_err(|e| Error::InvalidConfig(format!("invalid PostgreSQL connection string: {e}")))
}

/// `connect_tls`: the parsed string with `sslmode` `prefer` (the default) raised to
/// `require`, and rustls with Mozilla's roots.
#[cfg(feature = "postgres-tls")]
pub(crate) fn tls_config(url: &str) -> Result<(tokio_postgres::Config, PgOptions)> {
    let mut config = parse_url(url)?;
    if config.get_ssl_mode() == tokio_postgres::config::SslMode::Prefer {
        config.ssl_mode(tokio_postgres::config::SslMode::Require);
    }
    Ok((config, PgOptions::new().tls(TlsMode::webpki_roots()?)))
}

/// Quotes an SQL identifier (`"name"`, inner quotes doubled).
pub(crate) fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The connection `options` our stores run with:
///
/// - `-c plan_cache_mode=force_generic_plan` first, so that a setting of the caller's
///   (which comes after it) wins. Every statement of the stores is prepared once per
///   connection and selects by stream key through an index, so the generic plan is the
///   right one, and it saves re-planning on each execution (about 15 µs per statement,
///   measured on loopback; see docs/benchmarks.md).
/// - the caller's own `options`;
/// - `-c search_path=<schema>` when a schema is configured: it applies from the
///   connection's first statement, and survives `RESET ALL` / `DISCARD ALL`.
///
/// PostgreSQL splits `options` at white space and takes a backslash as escaping the next
/// character; the schema is quoted as an identifier so any name works.
pub(crate) fn session_options(existing: Option<&str>, schema: Option<&str>) -> String {
    let mut out = String::from("-c plan_cache_mode=force_generic_plan");
    if let Some(existing) = existing.map(str::trim).filter(|s| !s.is_empty()) {
        out.push(' ');
        out.push_str(existing);
    }
    if let Some(schema) = schema {
        out.push_str(" -c search_path=");
        for c in quote_ident(schema).chars() {
            if c.is_whitespace() || c == '\\' {
                out.push('\\');
            }
            out.push(c);
        }
    }
    out
}

/// Validates a schema name given in [`PgOptions::schema`].
pub(crate) fn check_schema_name(schema: &str) -> Result<()> {
    if schema.is_empty() || schema.len() > 63 || schema.contains('\0') {
        return Err(Error::InvalidConfig(format!(
            "PostgreSQL schema name {schema:?} must be 1 to 63 bytes without NUL"
        )));
    }
    Ok(())
}

/// What the server says about where a connection is.
#[derive(Debug, Clone)]
pub(crate) struct ServerInfo {
    pub database: String,
    pub schema: Option<String>,
    pub address: Option<String>,
    pub port: Option<i32>,
}

/// `postgres:<host>:<port>/<database>/<schema>`: the server's own address when it reports
/// one (TCP), else the configured host (a Unix socket directory).
pub(crate) fn location(info: &ServerInfo, hosts: &[Host], ports: &[u16]) -> StoreLocation {
    let host = info.address.clone().unwrap_or_else(|| match hosts.first() {
        Some(Host::Tcp(h)) => h.clone(),
        #[cfg(unix)]
        Some(Host::Unix(path)) => path.display().to_string(),
        None => "localhost".to_owned(),
    });
    let port = info
        .port
        .map(|p| p.to_string())
        .unwrap_or_else(|| ports.first().copied().unwrap_or(5432).to_string());
    StoreLocation(format!(
        "postgres:{host}:{port}/{}/{}",
        info.database,
        info.schema.as_deref().unwrap_or("")
    ))
}

/// What a failed statement means for its connection and its operation: the one
/// classification both the sync and the async stores use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    /// The connection is unusable: closed, I/O, anything that is not an error reported by
    /// the server (where a reconnect costs little), SQLSTATE class 08 (connection
    /// exception), 57P01 (`admin_shutdown`, `pg_terminate_backend`), 57P02
    /// (`crash_shutdown`), 57P03 (`cannot_connect_now`), or a `FATAL` / `PANIC`. The
    /// connection is discarded, never returned to the pool; the operation may run once
    /// more on a fresh connection.
    Connection,
    /// The connection's prepared statements no longer fit the server: 0A000 (a cached plan
    /// whose result type changed, after an `ALTER TABLE`) or 26000 (the prepared statement
    /// is gone, after a `DISCARD ALL` by a pooler). The connection's statement cache is
    /// dropped; the operation may run once more on the same connection.
    StaleStatement,
    /// The statement's own error (a constraint, bad data...): the connection stays good and
    /// the error is the operation's answer.
    Statement,
}

impl Failure {
    /// Whether the operation may be run once more after this failure.
    pub(crate) fn retryable(self) -> bool {
        self != Failure::Statement
    }
}

/// Classifies a driver error (see [`Failure`]).
pub(crate) fn classify(e: &tokio_postgres::Error) -> Failure {
    if e.is_closed() {
        return Failure::Connection;
    }
    match e.as_db_error() {
        None => Failure::Connection,
        Some(db) => classify_db(db.code(), db.severity()),
    }
}

fn classify_db(code: &SqlState, severity: &str) -> Failure {
    if code.code().starts_with("08")
        || *code == SqlState::ADMIN_SHUTDOWN
        || *code == SqlState::CRASH_SHUTDOWN
        || *code == SqlState::CANNOT_CONNECT_NOW
        || matches!(severity, "FATAL" | "PANIC")
    {
        Failure::Connection
    } else if *code == SqlState::FEATURE_NOT_SUPPORTED || *code == SqlState::INVALID_SQL_STATEMENT_NAME {
        Failure::StaleStatement
    } else {
        Failure::Statement
    }
}

/// How long opening one connection may take: [`PgOptions::connect_timeout`], else the
/// connection string's `connect_timeout`, else the checkout timeout.
pub(crate) fn setup_timeout(options: &PgOptions, from_string: Option<Duration>) -> Duration {
    options
        .get_connect_timeout()
        .or(from_string)
        .unwrap_or_else(|| options.get_checkout_timeout())
}

/// The error of a connection whose setup did not finish in time.
pub(crate) fn connect_timed_out(timeout: Duration) -> Error {
    Error::Store {
        backend: BACKEND,
        message: format!(
            "connect: the PostgreSQL server did not complete the connection setup within {timeout:?} \
             (raise PgOptions::connect_timeout or the connection string's connect_timeout if it is slow)"
        ),
        source: None,
    }
}

/// An [`Error::Store`] saying what failed, with the server's message when there is one.
pub(crate) fn store_error(what: &str, e: tokio_postgres::Error) -> Error {
    let message = match e.as_db_error() {
        Some(db) => format!("{what}: {}: {} ({})", db.severity(), db.message(), db.code().code()),
        None => match std::error::Error::source(&e) {
            Some(cause) => format!("{what}: {e}: {cause}"),
            None => format!("{what}: {e}"),
        },
    };
    Error::Store {
        backend: BACKEND,
        message,
        source: Some(Box::new(e)),
    }
}

/// The unique constraint a failed statement violated, if that is why it failed.
pub(crate) fn violated_unique(e: &tokio_postgres::Error) -> Option<&str> {
    let db = e.as_db_error()?;
    if *db.code() == SqlState::UNIQUE_VIOLATION {
        db.constraint()
    } else {
        None
    }
}

/// The unique constraint behind an [`Error::Store`] made by [`store_error`], if any.
pub(crate) fn violated_constraint(e: &Error) -> Option<&str> {
    match e {
        Error::Store {
            source: Some(source), ..
        } => source.downcast_ref::<tokio_postgres::Error>().and_then(violated_unique),
        _ => None,
    }
}

/// `u64` to `BIGINT`.
pub(crate) fn to_i64(what: &'static str, value: u64) -> Result<i64> {
    i64::try_from(value).map_err(|_| Error::OutOfRange {
        what,
        value: value.to_string(),
    })
}

/// A lower bound (`> bound`) as `BIGINT`: above `i64::MAX` nothing qualifies, exactly as
/// with `i64::MAX`, so the bound saturates instead of failing.
pub(crate) fn bound_to_i64(bound: u64) -> i64 {
    i64::try_from(bound).unwrap_or(i64::MAX)
}

/// `u64` to `INTEGER`.
pub(crate) fn to_i32(what: &'static str, value: u64) -> Result<i32> {
    i32::try_from(value).map_err(|_| Error::OutOfRange {
        what,
        value: value.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_options_put_the_callers_after_ours_and_escape_the_schema() {
        assert_eq!(
            session_options(None, Some("es_1")),
            "-c plan_cache_mode=force_generic_plan -c search_path=\"es_1\""
        );
        assert_eq!(
            session_options(Some("-c statement_timeout=5s"), Some("my schema")),
            "-c plan_cache_mode=force_generic_plan -c statement_timeout=5s -c search_path=\"my\\ schema\""
        );
        assert_eq!(
            session_options(Some("  "), Some("a\"b")),
            "-c plan_cache_mode=force_generic_plan -c search_path=\"a\"\"b\""
        );
        assert_eq!(session_options(None, None), "-c plan_cache_mode=force_generic_plan");
    }

    #[test]
    fn conversions_are_checked() {
        assert_eq!(to_i64("version", 5).ok(), Some(5));
        assert!(matches!(to_i64("version", u64::MAX), Err(Error::OutOfRange { .. })));
        assert!(matches!(to_i32("version", 1 << 31), Err(Error::OutOfRange { .. })));
        assert_eq!(to_i32("version", (1 << 31) - 1).ok(), Some(i32::MAX));
    }

    #[test]
    fn location_prefers_the_server_address() {
        let info = ServerInfo {
            database: "test".into(),
            schema: Some("s".into()),
            address: Some("127.0.0.1".into()),
            port: Some(5432),
        };
        assert_eq!(location(&info, &[], &[]).0, "postgres:127.0.0.1:5432/test/s");
        let socket = ServerInfo {
            address: None,
            port: None,
            ..info
        };
        assert_eq!(
            location(&socket, &[Host::Tcp("db".into())], &[6543]).0,
            "postgres:db:6543/test/s"
        );
    }

    #[cfg(feature = "postgres-tls")]
    #[test]
    fn rustls_with_webpki_roots_builds() {
        match TlsMode::webpki_roots() {
            Ok(mode @ TlsMode::Rustls(_)) => {
                assert_eq!(format!("{mode:?}"), "Rustls(..)");
                assert!(matches!(Connector::new(&mode), Connector::Rustls(_)));
            }
            other => panic!("expected a rustls mode, got {other:?}"),
        }
    }

    #[test]
    fn failures_are_classified_once_for_both_apis() {
        let fatal = |code: &SqlState| classify_db(code, "FATAL");
        let error = |code: &SqlState| classify_db(code, "ERROR");
        assert_eq!(fatal(&SqlState::ADMIN_SHUTDOWN), Failure::Connection);
        assert_eq!(error(&SqlState::ADMIN_SHUTDOWN), Failure::Connection);
        assert_eq!(error(&SqlState::CRASH_SHUTDOWN), Failure::Connection);
        assert_eq!(error(&SqlState::CANNOT_CONNECT_NOW), Failure::Connection);
        assert_eq!(error(&SqlState::CONNECTION_FAILURE), Failure::Connection);
        assert_eq!(error(&SqlState::PROTOCOL_VIOLATION), Failure::Connection);
        assert_eq!(error(&SqlState::FEATURE_NOT_SUPPORTED), Failure::StaleStatement);
        assert_eq!(error(&SqlState::INVALID_SQL_STATEMENT_NAME), Failure::StaleStatement);
        assert_eq!(error(&SqlState::UNIQUE_VIOLATION), Failure::Statement);
        assert_eq!(error(&SqlState::QUERY_CANCELED), Failure::Statement);
        assert!(Failure::Connection.retryable() && Failure::StaleStatement.retryable());
        assert!(!Failure::Statement.retryable());
    }

    #[test]
    fn the_setup_timeout_prefers_the_option_then_the_string() {
        let base = PgOptions::new().checkout_timeout(Duration::from_secs(7));
        assert_eq!(setup_timeout(&base, None), Duration::from_secs(7));
        assert_eq!(
            setup_timeout(&base, Some(Duration::from_secs(3))),
            Duration::from_secs(3)
        );
        let set = base.connect_timeout(Duration::from_millis(500));
        assert_eq!(set.get_connect_timeout(), Some(Duration::from_millis(500)));
        assert_eq!(
            setup_timeout(&set, Some(Duration::from_secs(3))),
            Duration::from_millis(500)
        );
    }

    #[test]
    fn schema_names_are_checked() {
        assert!(check_schema_name("ok").is_ok());
        assert!(check_schema_name("").is_err());
        assert!(check_schema_name(&"x".repeat(64)).is_err());
    }
}
