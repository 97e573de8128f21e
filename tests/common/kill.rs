//! Child processes killed with SIGKILL in the middle of their work: the kill -9 fault
//! tests share this. A child prints one line per acknowledged operation; the parent reads
//! them, kills the child after enough of them, and then checks that every acknowledged
//! operation is stored exactly once.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::ExitStatusExt;
use std::process::Child;
use std::sync::mpsc;
use std::time::Instant;

/// Reads `child`'s stdout until `kill_after` acknowledgements (complete lines that `parse`
/// accepts), kills it with SIGKILL (most likely in the middle of its next operation), and
/// returns every acknowledgement it printed, those still in the pipe included (a line cut
/// short by the kill is none).
///
/// Panics, with the child's stderr, when it exits before it is killed, does not reach
/// `kill_after` acknowledgements before `deadline`, or ends otherwise than by the kill.
pub fn kill_after_acks<T>(
    mut child: Child,
    kill_after: usize,
    deadline: Instant,
    parse: impl Fn(&str) -> Option<T>,
) -> Vec<T> {
    let stdout = child.stdout.take().expect("the child's stdout is piped");
    let mut stderr = child.stderr.take().expect("the child's stderr is piped");
    let (tx, rx) = mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout);
        loop {
            let mut line = String::new();
            match lines.read_line(&mut line) {
                // A line cut short by the kill is no acknowledgement.
                Ok(0) | Err(_) => break,
                Ok(_) if line.ends_with('\n') => {
                    if tx.send(line).is_err() {
                        break;
                    }
                }
                Ok(_) => break,
            }
        }
    });
    let errors = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let mut acks = Vec::new();
    let mut failure = None;
    while acks.len() < kill_after {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => acks.extend(parse(&line)),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                failure = Some(format!(
                    "the child did not reach {kill_after} acknowledgements within the budget"
                ));
                break;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                failure = Some("the child exited before it was killed".to_owned());
                break;
            }
        }
    }
    let _ = child.kill();
    let status = child.wait().expect("wait for the child");
    reader.join().expect("stdout reader");
    // Acknowledgements printed before the kill are acknowledged too.
    acks.extend(rx.try_iter().filter_map(|line| parse(&line)));
    let stderr = errors.join().unwrap_or_default();
    if let Some(failure) = failure {
        panic!("{failure} ({status:?}); its stderr:\n{stderr}");
    }
    assert_eq!(
        status.signal(),
        Some(9),
        "the child ended otherwise than by SIGKILL: {status:?}\n{stderr}"
    );
    acks
}

/// The aggregate ids a parent passed to its child process in the variable `var`,
/// comma-separated.
pub fn ids_from_env(var: &str) -> Vec<uuid::Uuid> {
    std::env::var(var)
        .expect("ids")
        .split(',')
        .map(|s| uuid::Uuid::parse_str(s).expect("id"))
        .collect()
}
