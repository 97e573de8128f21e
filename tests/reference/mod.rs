//! The reference guide's SQL, verbatim, in one place: its snapshots DDL for both backends
//! and its coverage, freshness and high-event queries (`*.sql` beside this file, copied
//! from `shared/reference/snapshotting-migration-guide.md`). The contract is that these
//! run unchanged against databases this project creates; `guide_text_is_verbatim` checks
//! the copies against the guide itself when it sits beside the workspace (it does in CI).
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

/// The guide, when the workspace sits beside `shared/` (as in CI and for developers).
pub fn guide() -> Option<String> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/reference/snapshotting-migration-guide.md"
    );
    std::fs::read_to_string(path).ok()
}

/// Asserts every copy is a verbatim part of the guide (skipped, saying so, without it).
pub fn assert_verbatim() {
    let Some(guide) = guide() else {
        eprintln!("SKIPPED: ../shared/reference/snapshotting-migration-guide.md not beside the workspace");
        return;
    };
    for (name, text) in [
        ("snapshots_postgres.sql", SNAPSHOTS_POSTGRES),
        ("snapshots_sqlite.sql", SNAPSHOTS_SQLITE),
        ("coverage.sql", COVERAGE),
        ("freshness.sql", FRESHNESS),
        ("high_event.sql", HIGH_EVENT),
    ] {
        assert!(
            guide.contains(text),
            "tests/reference/{name} is not verbatim in the guide"
        );
    }
}
