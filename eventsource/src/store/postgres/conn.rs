//! What the sync and async adapters share about connections: options, the schema setting,
//! TLS, the store location, error mapping and integer conversions.

use std::time::Duration;

use tokio_postgres::config::{Host, SslMode};
use tokio_postgres::error::SqlState;

use crate::error::{Error, Result};
pub use crate::migrations::Layout;
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
    read_only: bool,
    tls: TlsMode,
    group_commit: bool,
    layout: Layout,
    move_from_default: bool,
    pipelined: usize,
}

impl Default for PgOptions {
    fn default() -> Self {
        Self {
            schema: None,
            pool_size: 8,
            checkout_timeout: Duration::from_secs(30),
            connect_timeout: None,
            migrate: true,
            read_only: false,
            tls: TlsMode::Disable,
            group_commit: false,
            layout: Layout::Default,
            move_from_default: false,
            pipelined: 0,
        }
    }
}

impl PgOptions {
    /// The defaults: the connection's own `search_path`, 8 connections, a 30 s wait for a
    /// free connection, migrations on connect, no TLS.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs every statement in this schema (it is created if missing, when the store
    /// migrates): each connection starts with `search_path` set to it.
    #[must_use]
    pub fn schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = Some(schema.into());
        self
    }

    /// The maximum number of connections a store keeps open (at least 1).
    #[must_use]
    pub fn pool_size(mut self, size: usize) -> Self {
        self.pool_size = size.max(1);
        self
    }

    /// How long an operation waits for a free connection before failing with
    /// [`Error::Store`].
    #[must_use]
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
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = Some(timeout);
        self
    }

    /// Whether to apply pending migrations on connect (default `true`). Without, the store
    /// only checks the schema, for databases whose DDL is applied by a DBA.
    #[must_use]
    pub fn migrate(mut self, migrate: bool) -> Self {
        self.migrate = migrate;
        self
    }

    /// Opens read-only sessions (default `false`): every connection starts with
    /// `default_transaction_read_only = on`, so the server refuses any write, and nothing is
    /// migrated (the schema is only checked, as with [`migrate(false)`](Self::migrate)).
    /// Reads and the monitoring queries work; appends and snapshot writes fail with
    /// [`Error::Store`]. For reporting tools that must never change a database.
    #[must_use]
    pub fn read_only(mut self, read_only: bool) -> Self {
        self.read_only = read_only;
        self
    }

    /// How to secure the connection (see [`TlsMode`]).
    #[must_use]
    pub fn tls(mut self, tls: TlsMode) -> Self {
        self.tls = tls;
        self
    }

    /// Whether concurrent appends through one sync store share one transaction and one
    /// commit (default off; the async stores append one at a time either way).
    ///
    /// The appends waiting at the same moment (at most 64) run on one pooled connection
    /// as `BEGIN`, the append statement of each, and one `COMMIT`. Each append is checked
    /// against its own expected version and fails alone, with its own
    /// [`Error::Conflict`] or [`Error::DuplicateEvent`]: a version conflict inserts
    /// nothing and raises nothing, and after a raised error (an id already stored) the
    /// batch runs again with a `SAVEPOINT` per append, the failed one rolled back to
    /// its savepoint. Each caller gets its answer after
    /// the commit returned, so an `Ok` is exactly as durable as without group commit. A
    /// lone writer's append runs exactly as without it.
    ///
    /// Off by default because PostgreSQL already shares one WAL flush among commits that
    /// arrive together from several connections: with as many pooled connections as
    /// writers, separate transactions measured as fast or faster (W3c in
    /// `docs/workload.md`), since the shared transaction runs its appends one after the
    /// other on one connection, one round trip each. Turn it on when writers outnumber
    /// the pool's connections by far, or to hold fewer connections. See
    /// `docs/reliability.md`, "Group commit".
    #[must_use]
    pub fn group_commit(mut self, on: bool) -> Self {
        self.group_commit = on;
        self
    }

    /// The table layout (default [`Layout::Default`], the reference guide's tables). With
    /// [`Layout::Partitioned`], a store migrating an empty schema creates `events` and
    /// `snapshots` hash-partitioned by `aggregate_id` (the layout Citus distributes, see
    /// `docs/scaling.md`); the partition count only matters then. Opening a database with
    /// the other layout fails with [`Error::SchemaMismatch`].
    ///
    /// ```
    /// use eventsource::store::postgres::{Layout, PgOptions};
    ///
    /// let options = PgOptions::new().layout(Layout::Partitioned { partitions: 16 });
    /// assert_eq!(options.get_layout(), Layout::Partitioned { partitions: 16 });
    /// ```
    #[must_use]
    pub fn layout(mut self, layout: Layout) -> Self {
        self.layout = layout;
        self
    }

    /// The configured table layout.
    #[must_use]
    pub fn get_layout(&self) -> Layout {
        self.layout
    }

    /// Whether opening a database of the default layout with [`Layout::Partitioned`]
    /// moves it to the partitioned layout (default `false`: it fails with
    /// [`Error::SchemaMismatch`]). The move runs in the migration transaction, under the
    /// migration lock: the old tables are set aside, the partitioned ones created, every
    /// event and snapshot copied with all its columns (global positions included), the
    /// sequences carried over, the old tables dropped; nothing changes if any step fails.
    /// It holds the tables locked while it copies: stop the writers first (see
    /// `docs/scaling.md`). A database already partitioned opens as usual.
    #[must_use]
    pub fn move_from_default_layout(mut self, on: bool) -> Self {
        self.move_from_default = on;
        self
    }

    /// Whether a database of the default layout is moved on open.
    #[must_use]
    pub fn get_move_from_default_layout(&self) -> bool {
        self.move_from_default
    }

    /// What the migration on open does about the layout.
    pub(crate) fn layout_request(&self) -> LayoutRequest {
        LayoutRequest {
            layout: self.layout,
            move_from_default: self.move_from_default,
        }
    }

    /// Whether group commit is on.
    #[must_use]
    pub fn is_group_commit(&self) -> bool {
        self.group_commit
    }

    /// Async stores only: runs the single-statement operations (loads, `load_many`'s
    /// batch reads, appends, snapshot reads, writes and deletes) over `connections`
    /// shared connections, opened beside the pool, with tokio-postgres pipelining: the
    /// tasks that use one connection send their statements without waiting for each
    /// other's replies, so a few connections serve many tasks. `0` (the default) turns it
    /// off: each operation then holds a pooled connection of its own for its round trip.
    ///
    /// Whatever runs in a transaction or streams a whole stream (`read_stream`,
    /// `replay_stream`, monitoring, bulk deletes, migrations) keeps taking a pooled
    /// connection of its own. Each statement is its own implicit transaction, so one
    /// task's failed statement (a conflict, say) does not touch the others'; when a shared
    /// connection dies, every operation in flight on it runs once more on a new one, as
    /// on a pooled connection (appends stay exactly-once through their event ids). The
    /// sync stores ignore this setting. Measured in W6 (`docs/workload.md`).
    #[must_use]
    pub fn pipelined_connections(mut self, connections: usize) -> Self {
        self.pipelined = connections;
        self
    }

    /// The number of shared, pipelined connections of the async stores (0: off).
    #[must_use]
    pub fn get_pipelined_connections(&self) -> usize {
        self.pipelined
    }

    /// The configured schema, if any.
    #[must_use]
    pub fn get_schema(&self) -> Option<&str> {
        self.schema.as_deref()
    }

    /// The configured pool size.
    #[must_use]
    pub fn get_pool_size(&self) -> usize {
        self.pool_size
    }

    /// The configured checkout timeout.
    #[must_use]
    pub fn get_checkout_timeout(&self) -> Duration {
        self.checkout_timeout
    }

    /// The connect timeout set with [`connect_timeout`](Self::connect_timeout), if any.
    #[must_use]
    pub fn get_connect_timeout(&self) -> Option<Duration> {
        self.connect_timeout
    }

    /// Whether the store migrates on connect (never in a [read-only](Self::read_only)
    /// session).
    #[must_use]
    pub fn get_migrate(&self) -> bool {
        self.migrate && !self.read_only
    }

    /// Whether sessions are read-only.
    #[must_use]
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// The configured TLS mode.
    #[must_use]
    pub fn get_tls(&self) -> &TlsMode {
        &self.tls
    }
}

/// The layout a store opens with, and whether to move a database of the default layout.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LayoutRequest {
    pub layout: Layout,
    pub move_from_default: bool,
}

/// Whether and how connections use TLS.
///
/// With the `postgres-tls` feature, [`TlsMode::Rustls`] encrypts connections with rustls
/// (ring provider) and verifies the server's certificate and host name.
/// [`TlsMode::webpki_roots`] trusts the Mozilla root certificates, which managed
/// PostgreSQL services chain to; pass your own `rustls::ClientConfig` for a private CA.
///
/// **TLS configured means TLS required.** With a TLS mode other than
/// [`TlsMode::Disable`], every connection runs with `sslmode=require`: a server that does
/// not offer TLS gets an error before it is sent anything else (no user name, no database
/// name), never a plain-text session. The connection's `sslmode` must agree:
///
/// | `sslmode` | TLS configured | no TLS configured |
/// | --- | --- | --- |
/// | not given | required | plain text |
/// | `prefer` | required (\*) | plain text |
/// | `require` | required | [`Error::InvalidConfig`]: nothing could encrypt it |
/// | `disable` | [`Error::InvalidConfig`]: a conflict | plain text |
///
/// (\*) A `tokio_postgres::Config` / `postgres::Config` cannot tell `prefer` written in
/// the string from the driver's default, which is `prefer`, so `from_config` raises both to
/// `require`. `connect_tls(url)`, which sees the string, refuses an explicit
/// `sslmode=prefer` (a fallback to plain text) as a conflict, like `sslmode=disable`.
///
/// PostgreSQL offers no TLS on Unix-domain sockets: with TLS configured, a socket directory
/// as host is [`Error::InvalidConfig`] (use [`TlsMode::Disable`] for a local socket).
#[derive(Clone, Default)]
#[non_exhaustive]
pub enum TlsMode {
    /// Plain connections: no TLS connector, so the connection string's `sslmode` may be
    /// `disable` or `prefer` (both give plain text) but not `require`, which is
    /// [`Error::InvalidConfig`] at open.
    #[default]
    Disable,
    /// TLS through rustls with this client configuration.
    #[cfg(feature = "postgres-tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "postgres-tls")))]
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
#[cfg_attr(docsrs, doc(cfg(feature = "postgres-tls")))]
impl TlsMode {
    /// rustls with the ring provider and the Mozilla root certificates (webpki-roots).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] when rustls cannot build the configuration.
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
///
/// A malformed string is [`Error::InvalidConnectionString`], whose message keeps the
/// driver's reason (`unknown option `foo``, `invalid value for option `port``, ...) and
/// whose `source()` is that reason.
pub(crate) fn parse_url(url: &str) -> Result<tokio_postgres::Config> {
    url.parse::<tokio_postgres::Config>().map_err(connection_string_error)
}

/// [`Error::InvalidConnectionString`] from the driver's parse error: the driver's own
/// error reads "invalid connection string: <reason>", so we keep only its cause (the
/// reason) and do not repeat the prefix.
fn connection_string_error(e: tokio_postgres::Error) -> Error {
    let source: Box<dyn std::error::Error + Send + Sync> = if std::error::Error::source(&e).is_some() {
        e.into_source()
            .unwrap_or_else(|| Box::from("invalid connection string"))
    } else {
        Box::new(e)
    };
    Error::InvalidConnectionString { source }
}

/// The `sslmode` a connection runs with, given the configured one, the hosts and the TLS
/// mode (see [`TlsMode`] for the table): TLS configured raises `prefer` (the driver's
/// default) to `require`, and refuses `disable` and Unix-socket hosts; no TLS configured
/// refuses `require`. Shared by the sync and async stores at open.
#[cfg_attr(any(not(feature = "postgres-tls"), not(unix)), allow(unused_variables))]
pub(crate) fn ssl_mode_for(mode: SslMode, hosts: &[Host], tls: &TlsMode) -> Result<SslMode> {
    match tls {
        TlsMode::Disable => match mode {
            SslMode::Require => Err(Error::InvalidConfig(
                "the connection string says sslmode=require, but no TLS is configured, so no connection could \
                 be encrypted: enable the `postgres-tls` feature and connect with `connect_tls(url)`, or pass \
                 `PgOptions::new().tls(TlsMode::webpki_roots()?)` (or `TlsMode::Rustls` with your own \
                 rustls::ClientConfig) to `from_config`"
                    .into(),
            )),
            other => Ok(other),
        },
        #[cfg(feature = "postgres-tls")]
        TlsMode::Rustls(_) => {
            #[cfg(unix)]
            if let Some(Host::Unix(path)) = hosts.iter().find(|h| matches!(h, Host::Unix(_))) {
                return Err(Error::InvalidConfig(format!(
                    "TLS is configured, but host {} is a Unix-domain socket, where PostgreSQL offers no TLS: \
                     use TlsMode::Disable for a local socket, or a TCP host",
                    path.display()
                )));
            }
            match mode {
                SslMode::Disable => Err(tls_conflict("disable", "connects in plain text")),
                SslMode::Prefer | SslMode::Require => Ok(SslMode::Require),
                other => Ok(other),
            }
        }
    }
}

/// [`Error::InvalidConfig`] for an `sslmode` that contradicts configured TLS.
#[cfg(feature = "postgres-tls")]
fn tls_conflict(mode: &str, meaning: &str) -> Error {
    Error::InvalidConfig(format!(
        "TLS is configured (PgOptions::tls or connect_tls), but the connection string says sslmode={mode}, \
         which {meaning}: remove `sslmode` (TLS is then required) or set sslmode=require"
    ))
}

/// `connect_tls`: the parsed string and rustls with Mozilla's roots. An explicit
/// `sslmode=disable` or `sslmode=prefer` in the string is [`Error::InvalidConfig`] (it
/// asks for plain text, or allows it); a missing one becomes `require` at open
/// ([`ssl_mode_for`]).
#[cfg(feature = "postgres-tls")]
pub(crate) fn tls_config(url: &str) -> Result<(tokio_postgres::Config, PgOptions)> {
    let config = parse_url(url)?;
    if scan(url).params.iter().any(|p| p.key == "sslmode") {
        match config.get_ssl_mode() {
            SslMode::Disable => return Err(tls_conflict("disable", "connects in plain text")),
            SslMode::Prefer => {
                return Err(tls_conflict(
                    "prefer",
                    "falls back to plain text when the server offers no TLS",
                ))
            }
            _ => {}
        }
    }
    Ok((config, PgOptions::new().tls(TlsMode::webpki_roots()?)))
}

/// A connection string with its password replaced by `***`: `password=***` in a key/value
/// string, `user:***@` (and `password=***` among the parameters) in a URL.
///
/// Use it wherever a connection string is shown (messages, logs, command output); the
/// `eventsource` command prints databases through it. The string is read the way the driver
/// reads it (quoted values, backslash escapes, percent-encoded URL parameter names), so
/// what the driver would take as the password is what is hidden. If the string stops
/// making sense part way, everything from there on is replaced by `***` too, since it may
/// hold a password the scanner could not find.
///
/// ```
/// use eventsource::store::postgres::redact_connection_string as redact;
///
/// assert_eq!(redact("host=db user=app password='s3 cr3t'"), "host=db user=app password=***");
/// assert_eq!(redact("postgresql://app:s3cr3t@db/orders"), "postgresql://app:***@db/orders");
/// assert_eq!(redact("host=db user=app"), "host=db user=app");
/// ```
#[must_use]
pub fn redact_connection_string(url: &str) -> String {
    let found = scan(url);
    let end = found.bad_from.unwrap_or(url.len());
    let mut out = String::with_capacity(url.len());
    let mut at = 0;
    for p in found.params.iter().filter(|p| p.key == "password") {
        out.push_str(&url[at..p.value.start]);
        out.push_str("***");
        at = p.value.end;
    }
    out.push_str(&url[at..end]);
    if end < url.len() {
        out.push_str("***");
    }
    out
}

/// A parameter of a connection string: its name (decoded) and where its raw value is.
#[derive(Debug, PartialEq, Eq)]
struct Param {
    key: String,
    value: std::ops::Range<usize>,
}

/// The parameters of a connection string, in order, read as tokio-postgres reads them;
/// `bad_from` is the byte offset where the text stops making sense, if it does.
#[derive(Debug)]
struct Scan {
    params: Vec<Param>,
    bad_from: Option<usize>,
}

fn scan(s: &str) -> Scan {
    for prefix in ["postgres://", "postgresql://"] {
        if s.starts_with(prefix) {
            return scan_url(s, prefix.len());
        }
    }
    scan_key_value(s)
}

/// `postgres://user:password@host,host:port/db?key=value&...`, as tokio-postgres's
/// `UrlParser` reads it: the credentials end at the first `@` of the whole string, the
/// password at the first `:` in them; the parameters start at the first `?` after that,
/// each name ends at the next `=` and each value at the next `&`.
fn scan_url(s: &str, start: usize) -> Scan {
    let mut params = Vec::new();
    let mut pos = start;
    if let Some(at) = s[start..].find('@') {
        if let Some(colon) = s[start..start + at].find(':') {
            params.push(Param {
                key: "password".into(),
                value: start + colon + 1..start + at,
            });
        }
        pos = start + at + 1;
    }
    let Some(q) = s[pos..].find('?') else {
        return Scan { params, bad_from: None };
    };
    pos += q + 1;
    while pos < s.len() {
        let Some(eq) = s[pos..].find('=') else {
            return Scan {
                params,
                bad_from: Some(pos),
            };
        };
        let key = percent_decode(&s[pos..pos + eq]);
        let value_start = pos + eq + 1;
        let value_end = s[value_start..].find('&').map_or(s.len(), |amp| value_start + amp);
        params.push(Param {
            key,
            value: value_start..value_end,
        });
        pos = value_end + 1;
    }
    Scan { params, bad_from: None }
}

/// `key = value key='quoted \' value'`, as tokio-postgres's key/value `Parser` reads it.
fn scan_key_value(s: &str) -> Scan {
    let mut params = Vec::new();
    let mut it = s.char_indices().peekable();
    let end_of = |it: &mut std::iter::Peekable<std::str::CharIndices<'_>>| it.peek().map_or(s.len(), |&(i, _)| i);
    let skip_ws = |it: &mut std::iter::Peekable<std::str::CharIndices<'_>>| {
        while it.next_if(|&(_, c)| c.is_whitespace()).is_some() {}
    };
    loop {
        skip_ws(&mut it);
        let key_start = end_of(&mut it);
        while it.next_if(|&(_, c)| !c.is_whitespace() && c != '=').is_some() {}
        let key_end = end_of(&mut it);
        if key_start == key_end {
            // The driver stops at an empty name; anything left is not read as options.
            let bad_from = (key_start < s.len()).then_some(key_start);
            return Scan { params, bad_from };
        }
        skip_ws(&mut it);
        if it.next_if(|&(_, c)| c == '=').is_none() {
            return Scan {
                params,
                bad_from: Some(key_start),
            };
        }
        skip_ws(&mut it);
        let value_start = end_of(&mut it);
        let quoted = it.next_if(|&(_, c)| c == '\'').is_some();
        let mut closed = !quoted;
        while let Some(&(_, c)) = it.peek() {
            if quoted && c == '\'' {
                it.next();
                closed = true;
                break;
            }
            if !quoted && c.is_whitespace() {
                break;
            }
            it.next();
            if c == '\\' {
                it.next();
            }
        }
        let value_end = end_of(&mut it);
        if !closed || value_end == value_start {
            return Scan {
                params,
                bad_from: Some(key_start),
            };
        }
        params.push(Param {
            key: s[key_start..key_end].to_owned(),
            value: value_start..value_end,
        });
    }
}

/// `%XX` decoding of a URL parameter name (invalid escapes kept as they are, invalid UTF-8
/// replaced, so a name the driver would reject never matches `password` by accident).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(hi), Some(lo)) => {
                out.push(u8::try_from(hi * 16 + lo).unwrap_or(b'?'));
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Quotes an SQL identifier (`"name"`, inner quotes doubled).
pub(crate) fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The planner settings every session of the stores starts with (see [`session_options`]).
pub(crate) const PLANNER_SESSION: &str =
    "-c plan_cache_mode=force_generic_plan -c enable_seqscan=off -c enable_bitmapscan=off -c enable_sort=off -c jit=off";

/// The connection `options` our stores run with:
///
/// - first the planner settings of the hot statements, so that a setting of the caller's
///   (which comes after them) wins: [`PLANNER_SESSION`]. Every hot statement of the stores
///   is prepared once per connection and selects by stream key through an index, so one
///   generic plan is right, and it saves re-planning on each execution (about 15 µs per
///   statement, measured on loopback; see docs/benchmarks.md). But a plan is made from the
///   statistics of its time: a generic plan made while a table was tiny is a sequential scan
///   (or an index scan through `aggregate_type`) that stays cached while the table grows.
///   Without sequential scans, bitmap scans and sorts, the only plan left to each hot
///   statement is the index scan by key in the order it reads, whatever the statistics
///   (the `plans` tests prove it). JIT is off: these statements never last long
///   enough to gain from it, and the disabled paths' cost would trigger it. Statements over
///   whole tables (monitoring, bulk deletes) run with the planner's defaults instead
///   ([`Plan::PerExecution`](super::sql::Plan::PerExecution)).
/// - the caller's own `options`;
/// - `-c search_path=<schema>` when a schema is configured: it applies from the
///   connection's first statement, and survives `RESET ALL` / `DISCARD ALL`;
/// - `-c default_transaction_read_only=on` last for a [read-only](PgOptions::read_only)
///   session, so that nothing the caller set can turn it off.
///
/// PostgreSQL splits `options` at white space and takes a backslash as escaping the next
/// character; the schema is quoted as an identifier so any name works.
pub(crate) fn session_options(existing: Option<&str>, options: &PgOptions) -> String {
    let schema = options.get_schema();
    let mut out = String::from(PLANNER_SESSION);
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
    if options.is_read_only() {
        out.push_str(" -c default_transaction_read_only=on");
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

/// What a lease (sync or async) does about a failed statement: classifies it, drops the
/// connection's prepared statements on a stale statement (`clear_statements`), and returns
/// whether the connection is broken and which failure, if any, allows one more run.
pub(crate) fn on_failure(e: &tokio_postgres::Error, clear_statements: impl FnOnce()) -> (bool, Option<Failure>) {
    let failure = classify(e);
    if failure == Failure::StaleStatement {
        tracing::debug!(target: TARGET, code = ?e.code(), "dropping the connection's prepared statements");
        clear_statements();
    }
    (failure == Failure::Connection, failure.retryable().then_some(failure))
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

/// An [`Error::Store`] saying what failed (with the SQLSTATE of a server error); the
/// driver's error, and through it the server's message, is its `source`.
pub(crate) fn store_error(what: &str, e: tokio_postgres::Error) -> Error {
    let message = match e.as_db_error() {
        Some(db) => format!("{what} (SQLSTATE {})", db.code().code()),
        None => what.to_owned(),
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

/// The constraint of our tables a constraint of a partition or shard stands for: the
/// partitioned layout names each partition's copy `<name>_p<N>`, Citus each shard's
/// `<name>_<shard id>`; other names are returned as they are.
pub(crate) fn table_constraint(name: &str) -> &str {
    match name.rsplit_once('_') {
        Some((base, suffix)) => {
            let digits = suffix.strip_prefix('p').unwrap_or(suffix);
            if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) && !base.is_empty() {
                base
            } else {
                name
            }
        }
        None => name,
    }
}

/// The unique constraint behind an [`Error::Store`] made by [`store_error`], if any.
pub(crate) fn violated_constraint(e: &Error) -> Option<&str> {
    match e {
        Error::Store {
            source: Some(source), ..
        } => source
            .downcast_ref::<tokio_postgres::Error>()
            .and_then(violated_unique)
            .map(table_constraint),
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
    fn a_partitions_or_shards_constraint_stands_for_the_tables() {
        assert_eq!(
            table_constraint("uq_events_stream_version_p3"),
            "uq_events_stream_version"
        );
        assert_eq!(table_constraint("uq_events_event_id_p12"), "uq_events_event_id");
        assert_eq!(table_constraint("uq_events_event_id_102008"), "uq_events_event_id");
        assert_eq!(table_constraint("uq_events_event_id"), "uq_events_event_id");
        assert_eq!(table_constraint("uq_snapshots_aggregate"), "uq_snapshots_aggregate");
        assert_eq!(table_constraint("events_pkey"), "events_pkey");
        assert_eq!(table_constraint("x_p"), "x_p");
        assert_eq!(table_constraint("_1"), "_1");
    }

    #[test]
    fn session_options_put_the_callers_after_ours_and_escape_the_schema() {
        let schema = |name: &str| PgOptions::new().schema(name);
        assert_eq!(
            session_options(None, &schema("es_1")),
            format!("{PLANNER_SESSION} -c search_path=\"es_1\"")
        );
        assert_eq!(
            session_options(Some("-c statement_timeout=5s"), &schema("my schema")),
            format!("{PLANNER_SESSION} -c statement_timeout=5s -c search_path=\"my\\ schema\"")
        );
        assert_eq!(
            session_options(Some("  "), &schema("a\"b")),
            format!("{PLANNER_SESSION} -c search_path=\"a\"\"b\"")
        );
        assert_eq!(session_options(None, &PgOptions::new()), PLANNER_SESSION);
    }

    #[test]
    fn a_read_only_session_ends_with_the_setting_and_never_migrates() {
        let options = PgOptions::new().read_only(true);
        assert_eq!(
            session_options(Some("-c default_transaction_read_only=off"), &options),
            format!("{PLANNER_SESSION} -c default_transaction_read_only=off -c default_transaction_read_only=on")
        );
        assert!(!options.get_migrate() && options.is_read_only());
        assert!(PgOptions::new().get_migrate());
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
    fn redaction_hides_the_password_of_key_value_strings() {
        let redact = redact_connection_string;
        assert_eq!(
            redact("host=db password=s3cr3t user=app"),
            "host=db password=*** user=app"
        );
        assert_eq!(redact("password = 's3 cr\\'3t' dbname=x"), "password = *** dbname=x");
        assert_eq!(redact("password=s3\\ cr3t"), "password=***");
        assert_eq!(redact("password=a password=b"), "password=*** password=***");
        assert_eq!(redact("host=db user=app"), "host=db user=app");
        assert_eq!(redact(""), "");
        // What the scanner cannot follow is hidden from there on.
        assert_eq!(redact("host=db oops password=s3cr3t"), "host=db ***");
        assert_eq!(redact("host=db password='s3cr3t"), "host=db ***");
        assert_eq!(redact("host=db =x password=s3cr3t"), "host=db ***");
        for s in [
            "host=db password=s3cr3t user=app",
            "password = 's3 cr\\'3t' dbname=x",
            "host=db password='s3cr3t",
            "host=db oops password=s3cr3t",
        ] {
            assert!(!redact(s).contains("s3"), "{s} -> {}", redact(s));
        }
    }

    #[test]
    fn redaction_hides_the_password_of_urls() {
        let redact = redact_connection_string;
        assert_eq!(
            redact("postgresql://app:s3cr3t@db:5432/orders"),
            "postgresql://app:***@db:5432/orders"
        );
        assert_eq!(redact("postgres://app@db/orders"), "postgres://app@db/orders");
        assert_eq!(
            redact("postgres://db/orders?user=app&password=s3cr3t&sslmode=require"),
            "postgres://db/orders?user=app&password=***&sslmode=require"
        );
        // A percent-encoded parameter name is still `password` to the driver.
        assert_eq!(
            redact("postgres://db/x?pass%77ord=s3cr3t"),
            "postgres://db/x?pass%77ord=***"
        );
        // The driver ends the credentials at the first `@`, wherever it is.
        assert_eq!(redact("postgres://app:s3:cr3t@db/x"), "postgres://app:***@db/x");
        assert_eq!(redact("postgres://db/x?password"), "postgres://db/x?***");
        // Not a URL prefix the driver knows: read as key/value, where it does not parse.
        assert_eq!(redact("POSTGRES://app:s3cr3t@db"), "***");
    }

    #[test]
    fn the_scanner_reads_what_the_driver_reads() {
        // For strings the driver accepts, the scanner finds the same password.
        for s in [
            "host=db password=s3cr3t user=app",
            "password = 'it\\'s' dbname=x",
            "user=a password=\\ x",
            "postgresql://app:p%40ss@db/orders",
            "postgres://db/orders?password=a%20b&user=app",
            "postgres://db/x?pass%77ord=zz",
        ] {
            let config = parse_url(s).unwrap_or_else(|e| panic!("{s}: {e}"));
            let found = scan(s);
            assert_eq!(found.bad_from, None, "{s}");
            let password = found
                .params
                .iter()
                .rfind(|p| p.key == "password")
                .map(|p| &s[p.value.clone()]);
            assert!(config.get_password().is_some() && password.is_some(), "{s}");
        }
    }

    #[test]
    fn a_malformed_string_names_the_bad_option() {
        for (s, reason) in [
            ("host=db foo=bar", "unknown option `foo`"),
            ("host=db sslmode=sometimes", "invalid value for option `sslmode`"),
            ("host=db port=fivefourthreetwo", "invalid value for option `port`"),
            ("postgresql://db:notaport/x", "invalid value for option `port`"),
            ("postgresql://db/x?foo=1", "unknown option `foo`"),
            ("host='db", "unterminated quoted connection parameter value"),
        ] {
            match parse_url(s) {
                Err(e @ Error::InvalidConnectionString { .. }) => {
                    assert_eq!(e.to_string(), "invalid PostgreSQL connection string", "{s}");
                    assert_eq!(
                        e.report().to_string(),
                        format!("invalid PostgreSQL connection string: {reason}"),
                        "{s}"
                    );
                    let source = std::error::Error::source(&e).map(ToString::to_string);
                    assert_eq!(source.as_deref(), Some(reason), "{s}");
                }
                other => panic!("{s}: expected InvalidConnectionString, got {other:?}"),
            }
        }
    }

    #[test]
    fn sslmode_without_tls() {
        let tcp = [Host::Tcp("db".into())];
        assert_eq!(
            ssl_mode_for(SslMode::Prefer, &tcp, &TlsMode::Disable).ok(),
            Some(SslMode::Prefer)
        );
        assert_eq!(
            ssl_mode_for(SslMode::Disable, &tcp, &TlsMode::Disable).ok(),
            Some(SslMode::Disable)
        );
        match ssl_mode_for(SslMode::Require, &tcp, &TlsMode::Disable) {
            Err(Error::InvalidConfig(m)) => {
                assert!(
                    m.contains("sslmode=require") && m.contains("no TLS is configured"),
                    "{m}"
                );
                assert!(m.contains("connect_tls") && m.contains("PgOptions::new().tls"), "{m}");
            }
            other => panic!("expected InvalidConfig, got {other:?}"),
        }
    }

    #[cfg(feature = "postgres-tls")]
    #[test]
    fn tls_configured_means_tls_required() -> Result<()> {
        let tls = TlsMode::webpki_roots()?;
        let tcp = [Host::Tcp("db".into())];
        assert_eq!(ssl_mode_for(SslMode::Prefer, &tcp, &tls)?, SslMode::Require);
        assert_eq!(ssl_mode_for(SslMode::Require, &tcp, &tls)?, SslMode::Require);
        match ssl_mode_for(SslMode::Disable, &tcp, &tls) {
            Err(Error::InvalidConfig(m)) => {
                assert!(m.contains("TLS is configured") && m.contains("sslmode=disable"), "{m}")
            }
            other => panic!("expected InvalidConfig, got {other:?}"),
        }
        #[cfg(unix)]
        assert!(matches!(
            ssl_mode_for(SslMode::Prefer, &[Host::Unix("/run/postgresql".into())], &tls),
            Err(Error::InvalidConfig(m)) if m.contains("Unix-domain socket")
        ));
        // connect_tls: no sslmode becomes require at open; an explicit fallback is refused.
        let (config, options) = tls_config("host=db user=app")?;
        assert_eq!(
            ssl_mode_for(config.get_ssl_mode(), config.get_hosts(), options.get_tls())?,
            SslMode::Require
        );
        let (config, _) = tls_config("postgresql://app@db/x?sslmode=require")?;
        assert_eq!(config.get_ssl_mode(), SslMode::Require);
        for (s, mode) in [
            ("host=db sslmode=disable", "sslmode=disable"),
            ("host=db sslmode=prefer", "sslmode=prefer"),
            ("postgresql://app@db/x?sslmode=prefer", "sslmode=prefer"),
            ("postgresql://app@db/x?ssl%6Dode=disable", "sslmode=disable"),
        ] {
            match tls_config(s) {
                Err(Error::InvalidConfig(m)) => {
                    assert!(m.contains(mode) && m.contains("TLS is configured"), "{s}: {m}")
                }
                other => panic!("{s}: expected InvalidConfig, got {:?}", other.map(|_| ())),
            }
        }
        Ok(())
    }

    /// A server on 127.0.0.1 that answers `N` ("no TLS") to every SSLRequest and records,
    /// per connection, the first 8 bytes and whatever the client sends after the `N`.
    #[cfg(feature = "postgres-tls")]
    mod no_tls_server {
        use std::io::{ErrorKind, Read, Write};
        use std::net::TcpListener;
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::Arc;
        use std::thread::JoinHandle;
        use std::time::{Duration, Instant};

        /// The SSLRequest: length 8, code 80877103.
        pub const SSL_REQUEST: [u8; 8] = [0, 0, 0, 8, 4, 210, 22, 47];

        pub struct Server {
            pub port: u16,
            stop: Arc<AtomicBool>,
            handle: JoinHandle<Vec<(Vec<u8>, Vec<u8>)>>,
        }

        pub fn start() -> Server {
            let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
            listener.set_nonblocking(true).expect("nonblocking");
            let port = listener.local_addr().expect("addr").port();
            let stop = Arc::new(AtomicBool::new(false));
            let flag = Arc::clone(&stop);
            let handle = std::thread::spawn(move || {
                let mut seen = Vec::new();
                let deadline = Instant::now() + Duration::from_secs(60);
                while !flag.load(Ordering::SeqCst) && Instant::now() < deadline {
                    match listener.accept() {
                        Ok((mut socket, _)) => {
                            socket.set_nonblocking(false).expect("blocking");
                            socket.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
                            let mut request = [0u8; 8];
                            let mut first = Vec::new();
                            if socket.read_exact(&mut request).is_ok() {
                                first.extend_from_slice(&request);
                                let _ = socket.write_all(b"N");
                            }
                            // Everything until the client hangs up (or 5 s pass).
                            let mut after = Vec::new();
                            let _ = socket.read_to_end(&mut after);
                            seen.push((first, after));
                        }
                        Err(e) if e.kind() == ErrorKind::WouldBlock => std::thread::sleep(Duration::from_millis(5)),
                        Err(e) => panic!("accept: {e}"),
                    }
                }
                seen
            });
            Server { port, stop, handle }
        }

        impl Server {
            /// Stops accepting; returns what each connection sent.
            pub fn finish(self) -> Vec<(Vec<u8>, Vec<u8>)> {
                self.stop.store(true, Ordering::SeqCst);
                self.handle.join().expect("server thread")
            }
        }
    }

    #[cfg(feature = "postgres-tls")]
    fn assert_nothing_after_the_ssl_request(seen: &[(Vec<u8>, Vec<u8>)]) {
        assert!(!seen.is_empty(), "the client never connected");
        for (first, after) in seen {
            assert_eq!(
                first.as_slice(),
                no_tls_server::SSL_REQUEST.as_slice(),
                "not an SSLRequest"
            );
            assert!(
                after.is_empty(),
                "the client went on in plain text after the server refused TLS: {:?}",
                String::from_utf8_lossy(after)
            );
        }
    }

    #[cfg(feature = "postgres-tls")]
    fn refusing_config(port: u16) -> tokio_postgres::Config {
        let mut config = tokio_postgres::Config::new();
        config
            .host("127.0.0.1")
            .port(port)
            .user("secret_user")
            .dbname("secret_db")
            .connect_timeout(Duration::from_secs(5));
        config
    }

    #[cfg(feature = "postgres-tls")]
    #[test]
    fn sync_store_with_tls_never_sends_the_startup_to_a_server_without_tls() -> Result<()> {
        let server = no_tls_server::start();
        let options = PgOptions::new()
            .tls(TlsMode::webpki_roots()?)
            .checkout_timeout(Duration::from_secs(10));
        let opened = super::super::PostgresEventStore::from_config(
            postgres::Config::from(refusing_config(server.port)),
            crate::JsonCodec,
            options,
        );
        let seen = server.finish();
        assert_nothing_after_the_ssl_request(&seen);
        match opened {
            Err(e) => assert!(e.report().to_string().contains("server does not support TLS"), "{e:?}"),
            Ok(store) => panic!("opened {store:?} without TLS"),
        }
        Ok(())
    }

    #[cfg(feature = "postgres-tls")]
    #[test]
    fn async_store_with_tls_never_sends_the_startup_to_a_server_without_tls() -> Result<()> {
        let server = no_tls_server::start();
        let options = PgOptions::new()
            .tls(TlsMode::webpki_roots()?)
            .checkout_timeout(Duration::from_secs(10));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let opened = runtime.block_on(super::super::AsyncPostgresEventStore::from_config(
            refusing_config(server.port),
            crate::JsonCodec,
            options,
        ));
        drop(runtime);
        let seen = server.finish();
        assert!(opened.is_err(), "opened without TLS");
        assert_nothing_after_the_ssl_request(&seen);
        Ok(())
    }

    #[test]
    fn schema_names_are_checked() {
        assert!(check_schema_name("ok").is_ok());
        assert!(check_schema_name("").is_err());
        assert!(check_schema_name(&"x".repeat(64)).is_err());
    }
}
