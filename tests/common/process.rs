//! Running the `newsriver` binary from tests: the command, its output lines
//! read on a thread, and signals.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command};
use std::sync::mpsc::Receiver;

/// The binary under test, logging warnings only unless the test says more.
pub fn newsriver() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_newsriver"));
    cmd.env("RUST_LOG", "warn");
    cmd
}

/// The lines of a child's stdout or stderr, read on a thread so a test can
/// wait for one with a deadline.
pub fn lines_of(output: impl Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(output).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    rx
}

/// Sends `signal` (e.g. "-TERM") to the child.
pub fn kill(signal: &str, child: &Child) {
    let status = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill {signal} failed");
}
