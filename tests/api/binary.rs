//! The real `bellbook` binary as a child process: a server that is killed
//! when its [`Server`] goes away, and the admin commands.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};

pub const BIN: &str = env!("CARGO_BIN_EXE_bellbook");

#[path = "../common/environment.rs"]
mod environment;
pub use environment::ENVIRONMENT;

/// A `bellbook serve` child, listening on a port of its own.
pub struct Server {
    pub child: Child,
    /// Kept open: the child never writes into a closed pipe.
    stdout: BufReader<ChildStdout>,
    /// What it printed on stdout up to and including `Listening on`.
    pub printed: Vec<String>,
    pub port: u16,
    /// `http://127.0.0.1:PORT/v1`
    pub base: String,
    stderr: PathBuf,
    _stderr_dir: tempfile::TempDir,
}

impl Server {
    /// Starts `bellbook serve --listen 127.0.0.1:0 --database-url URL
    /// FLAGS...` and returns once it has said where it listens.
    pub fn start(database_url: &str, flags: &[&str]) -> Server {
        let stderr_dir = tempfile::tempdir().expect("temp dir");
        let stderr = stderr_dir.path().join("stderr.log");
        let mut command = Command::new(BIN);
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--database-url"])
            .arg(database_url)
            .args(flags)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(File::create(&stderr).expect("stderr file"));
        for name in ENVIRONMENT {
            command.env_remove(name);
        }
        let mut child = command.spawn().expect("bellbook starts");
        let stdout = BufReader::new(child.stdout.take().expect("stdout is piped"));
        let mut server = Server {
            child,
            stdout,
            printed: Vec::new(),
            port: 0,
            base: String::new(),
            stderr,
            _stderr_dir: stderr_dir,
        };
        server.read_until_listening();
        server
    }

    pub fn read_until_listening(&mut self) {
        loop {
            let mut line = String::new();
            let read = self.stdout.read_line(&mut line).expect("read stdout");
            if read == 0 {
                let status = self.child.wait();
                panic!(
                    "bellbook exited ({status:?}) before listening\nstdout: {:?}\nstderr: {}",
                    self.printed,
                    self.log()
                );
            }
            let line = line.trim_end().to_owned();
            let port = line
                .strip_prefix("Listening on http://")
                .and_then(|address| address.rsplit_once(':'))
                .and_then(|(_, port)| port.parse().ok());
            self.printed.push(line);
            if let Some(port) = port {
                self.port = port;
                self.base = format!("http://127.0.0.1:{port}/v1");
                return;
            }
        }
    }

    /// The key a first run printed, on the line after the announcement.
    pub fn first_run_key(&self) -> Option<String> {
        let at = self
            .printed
            .iter()
            .position(|l| l == "Its API key, shown only this once:")?;
        self.printed.get(at + 1).cloned()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Everything the child wrote on stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Sends SIGTERM and waits for the exit; returns it and the log.
    pub fn terminate(mut self) -> (ExitStatus, String) {
        signal(self.child.id(), "TERM");
        let status = self.wait();
        (status, self.log())
    }

    pub fn wait(&mut self) -> ExitStatus {
        self.child.wait().expect("wait for bellbook")
    }

    /// `kill -9`, and the exit it causes.
    pub fn kill_9(&mut self) -> ExitStatus {
        signal(self.child.id(), "KILL");
        self.wait()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `kill -NAME PID`.
pub fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -{name} {pid} failed");
}

/// Runs an admin command on `database_url`, whatever its outcome.
pub fn admin_output(args: &[&str], database_url: &str) -> std::process::Output {
    let mut command = Command::new(BIN);
    command
        .args(args)
        .args(["--database-url", database_url])
        .stdin(Stdio::null());
    for name in ENVIRONMENT {
        command.env_remove(name);
    }
    command.output().expect("bellbook runs")
}

/// Runs an admin command on `database_url` and returns its stdout,
/// failing the test if it fails.
pub fn admin(args: &[&str], database_url: &str) -> String {
    let output = admin_output(args, database_url);
    assert!(
        output.status.success(),
        "bellbook {args:?} failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("stdout is UTF-8")
}

/// The one line a key-printing command writes.
#[track_caller]
pub fn only_line(stdout: &str) -> String {
    let lines: Vec<&str> = stdout.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line expected: {stdout:?}");
    lines[0].trim().to_owned()
}

/// The account rows of `accounts list` (its first line is a header).
pub fn account_rows(listing: &str) -> Vec<&str> {
    listing
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .collect()
}
