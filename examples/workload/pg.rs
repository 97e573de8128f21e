//! PostgreSQL for the workload and the benches: the benchmark database, a schema per run,
//! and the raw-driver floors (one `postgres::Client`: every floor runs on the same
//! connection, its statements prepared once).

#![allow(dead_code)] // the benches use the setup helpers only

use std::error::Error as StdError;

use eventsource::{Codec, EventSet, Format};
use postgres::fallible_iterator::FallibleIterator;
use postgres::types::{FromSql, IsNull, ToSql, Type};
use postgres::{Client, Config, NoTls, Statement};
use uuid::Uuid;

use super::domain::{self, Order, ORDER};
use super::measure::{Context, Res};
use super::raw::{decode_apply, Floors, FLOOR_TYPE};

/// The default server and database of the benchmarks (a database of their own).
pub const DEFAULT_URL: &str = "host=127.0.0.1 port=5432 user=postgres dbname=es_bench";

/// Parses a libpq-style string or URL.
pub fn config(url: &str) -> Res<Config> {
    url.parse::<Config>()
        .context(|| format!("parsing the PostgreSQL URL `{url}`"))
}

/// Creates the URL's database when it is missing (connecting to `postgres` to do so).
pub fn ensure_database(config: &Config) -> Res<()> {
    let db = config
        .get_dbname()
        .ok_or("the PostgreSQL URL names no database")?
        .to_owned();
    let mut admin = config.clone();
    admin.dbname("postgres");
    let mut client = admin
        .connect(NoTls)
        .context(|| "connecting to database `postgres`".into())?;
    let exists = client
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&db])
        .context(|| "looking for the benchmark database".into())?
        .is_some();
    if !exists {
        let quoted = format!("\"{}\"", db.replace('"', "\"\""));
        client
            .batch_execute(&format!("CREATE DATABASE {quoted}"))
            .context(|| format!("creating database {quoted}"))?;
    }
    Ok(())
}

/// Drops a schema of the benchmark database, with everything in it.
pub fn drop_schema(config: &Config, schema: &str) -> Res<()> {
    let mut client = config
        .connect(NoTls)
        .context(|| "connecting to the benchmark database".into())?;
    client
        .batch_execute(&format!(
            "DROP SCHEMA IF EXISTS \"{}\" CASCADE",
            schema.replace('"', "\"\"")
        ))
        .context(|| format!("dropping schema {schema}"))
}

/// A payload or state column as the codec stored it: `JSONB` (its binary wire format is a
/// version byte, 1, then the JSON text) or `BYTEA`.
pub struct Body<'a>(pub &'a [u8]);

impl<'a> FromSql<'a> for Body<'a> {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn StdError + Sync + Send>> {
        if *ty == Type::JSONB {
            match raw.split_first() {
                Some((1, json)) => Ok(Body(json)),
                _ => Err("unsupported JSONB wire version".into()),
            }
        } else {
            Ok(Body(raw))
        }
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::JSONB || *ty == Type::BYTEA
    }
}

/// Encoded bytes bound as `JSONB` or `BYTEA`.
#[derive(Debug)]
pub struct BodyOut<'a>(pub &'a [u8], pub Format);

impl ToSql for BodyOut<'_> {
    fn to_sql(&self, ty: &Type, out: &mut bytes::BytesMut) -> Result<IsNull, Box<dyn StdError + Sync + Send>> {
        if *ty == Type::JSONB {
            out.extend_from_slice(&[1]);
        }
        out.extend_from_slice(self.0);
        Ok(IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::JSONB || *ty == Type::BYTEA
    }

    postgres::types::to_sql_checked!();
}

/// The PostgreSQL floors, on one connection in the run's schema.
pub struct PgFloors<C: Codec> {
    codec: C,
    client: Client,
    replay: Statement,
    point: Statement,
    tail: Statement,
    insert: Statement,
    blob_get: Statement,
    blob_put: Statement,
    floor_id: Uuid,
    next_version: i64,
    payload: Vec<u8>,
}

impl<C: Codec> PgFloors<C> {
    /// Connects and prepares every statement (the stores have created the tables).
    pub fn connect(config: &Config, schema: &str, codec: C) -> Res<Self> {
        let mut client = config.connect(NoTls).context(|| "floors: connecting".into())?;
        client
            .batch_execute(&format!("SET search_path TO \"{}\"", schema.replace('"', "\"\"")))
            .context(|| "floors: search_path".into())?;
        let mut prepare = |sql: &str| client.prepare(sql).context(|| format!("floors: preparing {sql}"));
        let replay = prepare(
            "SELECT version, event_type, payload FROM events \
             WHERE aggregate_id = $1 AND aggregate_type = $2 ORDER BY version",
        )?;
        let point = prepare(
            "SELECT version, schema_version, state FROM snapshots WHERE aggregate_id = $1 AND aggregate_type = $2",
        )?;
        let tail = prepare(
            "SELECT version, event_type, payload FROM events \
             WHERE aggregate_id = $1 AND aggregate_type = $2 AND version > $3 ORDER BY version",
        )?;
        let insert = prepare(
            "INSERT INTO events (event_id, aggregate_id, aggregate_type, event_type, event_version, version, \
             timestamp, payload, metadata) VALUES ($1, $2, $3, 'ItemAdded', 1, $4, $5, $6, '{}')",
        )?;
        let blob_get = prepare("SELECT state FROM snapshots WHERE aggregate_id = $1 AND aggregate_type = $2")?;
        let blob_put = prepare(
            "INSERT INTO snapshots (aggregate_id, aggregate_type, version, schema_version, state, created_at) \
             VALUES ($1, $2, 1, 1, $3, $4)",
        )?;
        let payload = domain::event_at(2).encode_payload(&codec)?;
        Ok(Self {
            codec,
            client,
            replay,
            point,
            tail,
            insert,
            blob_get,
            blob_put,
            floor_id: Uuid::now_v7(),
            next_version: 0,
            payload,
        })
    }
}

impl<C: Codec> PgFloors<C> {
    /// The server's version and durability settings, for the report.
    pub fn server_settings(&mut self) -> Res<Option<String>> {
        let row = self
            .client
            .query_one(
                "SELECT current_setting('server_version'), current_setting('synchronous_commit'), \
                 current_setting('fsync'), current_setting('wal_sync_method'), current_setting('shared_buffers')",
                &[],
            )
            .context(|| "reading server settings".into())?;
        let get = |i: usize| row.try_get::<_, String>(i).unwrap_or_default();
        Ok(Some(format!(
            "PostgreSQL {} on loopback; synchronous_commit = {}, fsync = {}, wal_sync_method = {}, shared_buffers = {}",
            get(0),
            get(1),
            get(2),
            get(3),
            get(4)
        )))
    }
}

impl<C: Codec> Floors for PgFloors<C> {
    fn prepare_stream(&mut self, _: Uuid) -> Res<()> {
        Ok(())
    }

    fn replay(&mut self, id: Uuid) -> Res<(u64, Order)> {
        let params: [&(dyn ToSql + Sync); 2] = [&id, &ORDER];
        let mut rows = self
            .client
            .query_raw(&self.replay, params)
            .context(|| "bare replay".into())?;
        let mut state = Order::default();
        let mut n = 0u64;
        while let Some(row) = rows.next().context(|| "bare replay: next row".into())? {
            n += 1;
            let version: i64 = row.try_get(0).context(|| "version".into())?;
            if version != n as i64 {
                return Err(format!("bare replay: expected version {n}, found {version}").into());
            }
            let event_type: &str = row.try_get(1).context(|| "event_type".into())?;
            let payload: Body<'_> = row.try_get(2).context(|| "payload".into())?;
            decode_apply(&self.codec, &mut state, event_type, payload.0)?;
        }
        Ok((n, state))
    }

    fn point_read(&mut self, id: Uuid) -> Res<usize> {
        let row = self
            .client
            .query_one(&self.point, &[&id, &ORDER])
            .context(|| "point select".into())?;
        let _version: i32 = row.try_get(0).context(|| "version".into())?;
        let _schema: i32 = row.try_get(1).context(|| "schema_version".into())?;
        let state: Body<'_> = row.try_get(2).context(|| "state".into())?;
        Ok(state.0.to_vec().len())
    }

    fn tail_read(&mut self, id: Uuid, after: u64) -> Res<usize> {
        let mut read = self.point_read(id)?;
        let after = i64::try_from(after)?;
        let rows = self
            .client
            .query(&self.tail, &[&id, &ORDER, &after])
            .context(|| "range select".into())?;
        for row in &rows {
            let _version: i64 = row.try_get(0).context(|| "version".into())?;
            let _type: &str = row.try_get(1).context(|| "event_type".into())?;
            let payload: Body<'_> = row.try_get(2).context(|| "payload".into())?;
            read += payload.0.len();
        }
        Ok(read)
    }

    fn insert_commit(&mut self) -> Res<()> {
        self.next_version += 1;
        let body = BodyOut(&self.payload, C::FORMAT);
        self.client
            .execute(
                &self.insert,
                &[
                    &Uuid::now_v7(),
                    &self.floor_id,
                    &FLOOR_TYPE,
                    &self.next_version,
                    &chrono::Utc::now(),
                    &body,
                ],
            )
            .context(|| "floor insert".into())?;
        Ok(())
    }

    fn blob_get(&mut self, id: Uuid, aggregate_type: &str) -> Res<usize> {
        let row = self
            .client
            .query_one(&self.blob_get, &[&id, &aggregate_type])
            .context(|| "blob select".into())?;
        let state: Body<'_> = row.try_get(0).context(|| "state".into())?;
        Ok(state.0.to_vec().len())
    }

    fn blob_put(&mut self, state: &[u8]) -> Res<()> {
        let body = BodyOut(state, C::FORMAT);
        self.client
            .execute(
                &self.blob_put,
                &[&Uuid::now_v7(), &FLOOR_TYPE, &body, &chrono::Utc::now()],
            )
            .context(|| "floor blob insert".into())?;
        Ok(())
    }

    fn cleanup(&mut self) -> Res<()> {
        self.client
            .execute("DELETE FROM snapshots WHERE aggregate_type = $1", &[&FLOOR_TYPE])
            .context(|| "removing the floor's snapshot rows".into())?;
        Ok(())
    }

    fn settle(&mut self) -> Res<()> {
        self.client
            .batch_execute("VACUUM (ANALYZE) events, snapshots")
            .context(|| "VACUUM ANALYZE".into())
    }

    fn replay_label(&self) -> &'static str {
        "postgres read+decode+apply"
    }

    fn point_label(&self) -> &'static str {
        "postgres point SELECT"
    }

    fn insert_label(&self) -> &'static str {
        "postgres 1-row INSERT commit"
    }
}
