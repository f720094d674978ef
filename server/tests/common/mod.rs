//! The real `dpo-server` binary, started for a test and killed (SIGKILL) when dropped.
#![allow(dead_code)]

use std::{
    io::{BufRead, BufReader},
    path::Path,
    process::{Child, Command, Stdio},
};

/// A running `dpo-server serve`.
pub struct Server {
    /// The process.
    pub child: Child,
    /// Its base URL, as it printed it.
    pub base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `dpo-server serve` on a free loopback port over `state`, with `extra` arguments.
pub fn serve(state: &Path, extra: &[&str]) -> Server {
    serve_command(Command::new(env!("CARGO_BIN_EXE_dpo-server")), state, extra)
}

/// Like [`serve`], started with a soft limit of `open_files` open files, as a service manager may
/// start it (the hard limit stays).
pub fn serve_with_open_files(state: &Path, open_files: u64, extra: &[&str]) -> Server {
    let mut command = Command::new("sh");
    command.args(["-c", &format!("ulimit -S -n {open_files} && exec \"$0\" \"$@\""), env!("CARGO_BIN_EXE_dpo-server")]);
    serve_command(command, state, extra)
}

fn serve_command(mut command: Command, state: &Path, extra: &[&str]) -> Server {
    let mut child = command
        .args(["serve", "--bind", "127.0.0.1:0", "--log-level", "error", "--retry-after", "1", "--state-dir"])
        .arg(state)
        .args(extra)
        .stdout(Stdio::piped())
        .spawn()
        .expect("dpo-server starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("it says where it listens");
    let base = line.trim().rsplit(' ').next().expect("a URL").to_string();
    Server { child, base }
}
