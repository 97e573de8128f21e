//! The reference guide's SQL, verbatim, in one place: its snapshots DDL for both backends
//! and its coverage, freshness and high-event queries (`*.sql` beside this file, copied
//! verbatim from the snapshotting migration guide the project follows). The contract is
//! that these run unchanged against databases this project creates: the tests that
//! include this module run them, and compare the DDL with ours.
#![allow(dead_code)]

/// "Step 1 / PostgreSQL": the snapshots table and its indexes.
pub const SNAPSHOTS_POSTGRES: &str = include_str!("snapshots_postgres.sql");
/// "Step 1 / SQLite": the snapshots table and its indexes.
pub const SNAPSHOTS_SQLITE: &str = include_str!("snapshots_sqlite.sql");
/// "Monitoring the Migration / Check Snapshot Coverage" (labelled PostgreSQL in the guide;
/// standard SQL that SQLite runs too).
pub const COVERAGE: &str = include_str!("coverage.sql");
/// "Monitoring the Migration / Check Snapshot Freshness".
pub const FRESHNESS: &str = include_str!("freshness.sql");
/// "Prioritize High-Event Aggregates": the SQL inside the guide's Python string.
pub const HIGH_EVENT: &str = include_str!("high_event.sql");
