//! What a command can fail with, and the exit code each failure means.

use std::process::ExitCode;

/// The exit status of a command (documented in `--help` and docs/operations.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Exit {
    /// 0: the command did what it was asked.
    Success,
    /// 1: the database cannot be opened or read, has no eventsource schema, or a query
    /// failed.
    Error,
    /// 2: bad arguments, an unknown database form, no database given, or a command or
    /// aggregate type this binary has no code for.
    Usage,
    /// 3: nothing was done: refused without `--yes` on a non-terminal, declined at the
    /// prompt, or nothing matched.
    NothingDone,
    /// 4: the command ran and found problems: verification mismatches or aggregates that
    /// could not be verified or snapshotted.
    Problems,
}

impl Exit {
    /// The process exit code.
    pub fn code(self) -> u8 {
        match self {
            Exit::Success => 0,
            Exit::Error => 1,
            Exit::Usage => 2,
            Exit::NothingDone => 3,
            Exit::Problems => 4,
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> Self {
        ExitCode::from(exit.code())
    }
}

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The command line is wrong (exit code 2).
    #[error("{0}")]
    Usage(String),
    /// The database has no eventsource tables (exit code 1).
    #[error("no eventsource schema found in {database}; run `{program} migrate` first")]
    NoSchema {
        /// The database, as it may be printed (password hidden).
        database: String,
        /// The program's name, for the advice.
        program: String,
    },
    /// The file is not there (exit code 1).
    #[error("{0}: no such database file")]
    NoSuchFile(String),
    /// The file is not an SQLite database (exit code 1).
    #[error("{0} is not an SQLite database")]
    NotSqlite(String),
    /// The database failed (exit code 1).
    #[error(transparent)]
    Store(#[from] eventsource::Error),
    /// Reading the answer to a prompt or writing output failed (exit code 1).
    #[error("terminal: {0}")]
    Io(#[from] std::io::Error),
    /// Nothing was done, on purpose (exit code 3).
    #[error("{0}")]
    NothingDone(String),
}

impl CliError {
    /// The exit status this failure means.
    pub fn exit(&self) -> Exit {
        match self {
            CliError::Usage(_) => Exit::Usage,
            CliError::NothingDone(_) => Exit::NothingDone,
            CliError::NoSchema { .. }
            | CliError::NoSuchFile(_)
            | CliError::NotSqlite(_)
            | CliError::Store(_)
            | CliError::Io(_) => Exit::Error,
        }
    }
}

/// What commands return.
pub type Result<T, E = CliError> = std::result::Result<T, E>;
