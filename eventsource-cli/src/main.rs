//! `eventsource`: the operations command (see `eventsource --help` and
//! docs/operations.md).
//!
//! ```text
//! eventsource schema --backend postgres --codec json --table snapshots
//! eventsource migrate sqlite:app.db
//! eventsource coverage sqlite:app.db
//! eventsource stale sqlite:app.db --min-events 100
//! eventsource top sqlite:app.db --type Order --min-events 500
//! eventsource versions sqlite:app.db --json
//! eventsource invalidate sqlite:app.db --type Order --below 2 --dry-run
//! eventsource delete sqlite:app.db --type Order --id 01936f... --yes
//! ```
//!
//! This binary has no aggregate types registered, so `prepopulate`, `verify` and
//! `rebuild` explain how to build one that has (`eventsource_cli::Ops`).
#![warn(missing_docs)]

fn main() -> std::process::ExitCode {
    eventsource_cli::Ops::new("eventsource").run()
}
