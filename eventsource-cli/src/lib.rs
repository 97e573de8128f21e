//! The eventsource operations command, as a library: the `eventsource` binary is
//! [`Ops::new("eventsource").run()`](Ops::run), and your own binary registers your
//! aggregate types to get the commands that need their code as well (`prepopulate`,
//! `verify`, `rebuild`):
//!
//! ```no_run
//! # use eventsource::{Aggregate, Apply, DomainEvent};
//! # use serde::{Deserialize, Serialize};
//! # #[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
//! # pub struct ItemAdded { pub qty: u32 }
//! # #[derive(Debug, Default, PartialEq, Serialize, Deserialize, Aggregate)]
//! # #[aggregate(type = "Order", schema_version = 1, events(ItemAdded))]
//! # pub struct Order { pub items: u64 }
//! # impl Apply<ItemAdded> for Order { fn apply(&mut self, e: &ItemAdded) { self.items += u64::from(e.qty) } }
//! fn main() -> std::process::ExitCode {
//!     eventsource_cli::Ops::new("myapp-ops").aggregate::<Order>().run()
//! }
//! ```
//!
//! ```text
//! myapp-ops coverage sqlite:app.db
//! myapp-ops prepopulate sqlite:app.db --type Order --min-events 500
//! myapp-ops verify sqlite:app.db --type Order --json
//! myapp-ops rebuild sqlite:app.db --type Order --id 0193... --yes
//! ```
//!
//! Every command, the accepted database forms, the environment variables, the exit codes
//! ([`Exit`]) and the safety rules are in `--help` and in docs/operations.md. In short:
//! reporting commands and dry runs open the database read-only and never create or
//! migrate anything; deleting commands ask on a terminal and need `--yes` elsewhere; a
//! PostgreSQL password is never printed.
#![warn(missing_docs)]

mod aggregates;
mod args;
mod db;
mod error;
mod output;

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};
use eventsource::{Aggregate, Codec, JsonCodec};

use aggregates::{AggregateOps, Registered};
use args::{Cli, OutputFormat};

pub use error::{CliError, Exit};

/// The operations command, with the aggregate types it knows: build it, register your
/// aggregates, and [`run`](Self::run) it from your binary's `main`.
///
/// The codec is JSON unless built with [`with_codec`](Self::with_codec) (the one your
/// repositories use); the reporting and deleting commands read a database of either
/// format whatever it is, since they never decode a body.
pub struct Ops<C: Codec = JsonCodec> {
    name: String,
    codec: C,
    aggregates: Vec<Box<dyn AggregateOps<C>>>,
}

impl Ops<JsonCodec> {
    /// The command named `name` (as `--help` and messages show it), JSON codec, no
    /// aggregate registered yet.
    pub fn new(name: impl Into<String>) -> Self {
        Self::with_codec(name, JsonCodec)
    }
}

impl<C: Codec> Ops<C> {
    /// The command named `name`, for databases of `codec`'s format.
    pub fn with_codec(name: impl Into<String>, codec: C) -> Self {
        Self {
            name: name.into(),
            codec,
            aggregates: Vec::new(),
        }
    }

    /// Registers an aggregate type for `prepopulate`, `verify` and `rebuild` (`--type`
    /// takes its `Aggregate::TYPE`). `verify` compares states, hence `PartialEq`.
    /// Registering a type twice keeps one.
    pub fn aggregate<A: Aggregate + PartialEq>(mut self) -> Self {
        self.aggregates.retain(|a| a.type_name() != A::TYPE);
        self.aggregates.push(Box::new(Registered::<A>::new()));
        self
    }

    /// The aggregate types registered, in registration order.
    pub fn aggregate_types(&self) -> Vec<&'static str> {
        self.aggregates.iter().map(|a| a.type_name()).collect()
    }

    /// Parses the process's arguments, runs the command on the process's standard
    /// streams, and returns the exit code for `main`.
    pub fn run(&self) -> ExitCode {
        self.run_from(std::env::args_os()).into()
    }

    /// Like [`run`](Self::run) with the given arguments (the first is the program name),
    /// returning the [`Exit`] status.
    pub fn run_from<I, T>(&self, args: I) -> Exit
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let stdin = std::io::stdin();
        let interactive = stdin.is_terminal();
        let progress = std::io::stderr().is_terminal();
        let (mut input, mut out, mut err) = (stdin.lock(), std::io::stdout().lock(), std::io::stderr().lock());
        let mut console = Console::new(&mut input, &mut out, &mut err)
            .interactive(interactive)
            .progress(progress);
        self.run_with(args, &mut console)
    }

    /// Like [`run_from`](Self::run_from), on the streams of `console`: for tests, and for
    /// embedding the commands in another tool.
    pub fn run_with<I, T>(&self, args: I, console: &mut Console<'_>) -> Exit
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let command = Cli::command().name(self.name.clone()).bin_name(self.name.clone());
        let cli = match command
            .try_get_matches_from(args)
            .and_then(|m| Cli::from_arg_matches(&m))
        {
            Ok(cli) => cli,
            Err(e) => {
                let (exit, stream) = match e.kind() {
                    clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                        (Exit::Success, &mut console.out)
                    }
                    _ => (Exit::Usage, &mut console.err),
                };
                let _ = write!(stream, "{}", e.render());
                return exit;
            }
        };
        let json = cli.json || cli.format == OutputFormat::Json;
        let outcome = output::execute(self, &cli.command, console);
        let written = match &outcome {
            Ok(report) => report.print(json, console.out),
            Err(e) => report_error(&self.name, e, json, console.err),
        };
        match (outcome, written) {
            (Ok(report), Ok(())) => report.exit,
            (Ok(_), Err(_)) => Exit::Error,
            (Err(e), _) => e.exit(),
        }
    }

    fn find(&self, aggregate_type: &str) -> Result<&dyn AggregateOps<C>, CliError> {
        if self.aggregates.is_empty() {
            return Err(CliError::Usage(format!(
                "`{}` has no aggregate types registered: prepopulate, verify and rebuild load aggregates, which \
                 needs their code. Build your own binary: `eventsource_cli::Ops::new(\"myapp-ops\")\
                 .aggregate::<Order>().run()` (see docs/operations.md), or call \
                 `AggregateRepository::prepopulate` / `verify_many` from your application",
                self.name
            )));
        }
        self.aggregates
            .iter()
            .find(|a| a.type_name() == aggregate_type)
            .map(|a| &**a)
            .ok_or_else(|| {
                CliError::Usage(format!(
                    "`{}` knows no aggregate type `{aggregate_type}` (registered: {})",
                    self.name,
                    self.aggregate_types().join(", ")
                ))
            })
    }
}

impl<C: Codec> std::fmt::Debug for Ops<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ops")
            .field("name", &self.name)
            .field("codec", &C::NAME)
            .field("aggregates", &self.aggregate_types())
            .finish()
    }
}

/// The streams a command runs on: where it reads a confirmation, whether that is a
/// terminal (a person who can answer), where results and errors go, and whether to draw a
/// progress bar.
pub struct Console<'a> {
    input: &'a mut dyn BufRead,
    out: &'a mut dyn Write,
    err: &'a mut dyn Write,
    interactive: bool,
    progress: bool,
}

impl<'a> Console<'a> {
    /// A console on these streams: not interactive (deleting commands then need `--yes`),
    /// no progress bar.
    pub fn new(input: &'a mut dyn BufRead, out: &'a mut dyn Write, err: &'a mut dyn Write) -> Self {
        Self {
            input,
            out,
            err,
            interactive: false,
            progress: false,
        }
    }

    /// Whether `input` is a person at a terminal: deleting commands then ask for
    /// confirmation on `err` and read the answer from `input`.
    pub fn interactive(mut self, interactive: bool) -> Self {
        self.interactive = interactive;
        self
    }

    /// Whether to draw a progress bar on the process's stderr during `prepopulate`,
    /// `verify` and `rebuild`.
    pub fn progress(mut self, progress: bool) -> Self {
        self.progress = progress;
        self
    }

    /// Asks `question`; `Ok(())` when confirmed. Refuses without asking when the input is
    /// not a terminal.
    fn confirm(&mut self, question: &str) -> Result<(), CliError> {
        if !self.interactive {
            return Err(CliError::NothingDone(format!(
                "refusing to {question} without confirmation: stdin is not a terminal. Pass --yes to confirm, or \
                 --dry-run to see what would be deleted"
            )));
        }
        write!(self.err, "{}? [y/N] ", capitalized(question))?;
        self.err.flush()?;
        let mut answer = String::new();
        self.input.read_line(&mut answer)?;
        match answer.trim().to_ascii_lowercase().as_str() {
            "y" | "yes" => Ok(()),
            _ => Err(CliError::NothingDone("not confirmed: nothing was deleted".into())),
        }
    }
}

fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

fn report_error(program: &str, e: &CliError, json: bool, err: &mut dyn Write) -> std::io::Result<()> {
    // The whole chain in one line: the library's errors say what failed, their sources why.
    let line = eventsource::error::Report::new(e).to_string();
    if json {
        let value = serde_json::json!({ "error": line, "exit_code": e.exit().code() });
        writeln!(err, "{value}")
    } else {
        writeln!(err, "{program}: {line}")
    }
}
