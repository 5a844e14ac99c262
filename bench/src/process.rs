//! Child processes with bounded waits: servers that announce their port,
//! and commands whose output is wanted.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};

/// How long a server may take between starting and announcing its port.
const START_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a server may take to stop after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// A running server, killed if dropped before [`Server::stop`].
pub struct Server {
    child: Child,
    pub port: u16,
    what: String,
    stopped: bool,
}

impl Server {
    /// Starts `command`, its stderr written to `log`, and waits for the
    /// `Listening on http://HOST:PORT` line both bellbook and the raw HTTP
    /// server print on stdout.
    pub fn start(mut command: Command, what: &str, log: &Path) -> Result<Server> {
        let log_file =
            File::create(log).with_context(|| format!("cannot create {}", log.display()))?;
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log_file)
            .spawn()
            .with_context(|| format!("cannot start {what}: {command:?}"))?;
        let stdout = child.stdout.take().context("child stdout was not piped")?;
        let (lines, announced) = mpsc::channel();
        // The reader keeps draining stdout after the announcement so that
        // the server never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = lines.send(line);
            }
        });
        let mut server = Server {
            child,
            port: 0,
            what: what.to_owned(),
            stopped: false,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match announced.recv_timeout(left.min(Duration::from_millis(200))) {
                Ok(line) => {
                    if let Some(port) = listening_port(&line) {
                        server.port = port;
                        return Ok(server);
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = wait_bounded(&mut server.child, STOP_TIMEOUT)?;
                    server.stopped = true;
                    bail!(
                        "{what} exited ({status}) before listening; see {}",
                        log.display()
                    );
                }
            }
            if Instant::now() >= deadline {
                bail!(
                    "{what} did not listen within {} s; see {}",
                    START_TIMEOUT.as_secs(),
                    log.display()
                );
            }
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The server's peak resident set so far (`VmHWM`), in KiB.
    pub fn peak_rss_kib(&self) -> Result<u64> {
        let path = format!("/proc/{}/status", self.pid());
        let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .ok_or_else(|| anyhow!("no VmHWM in {path}"))
    }

    /// SIGTERM, then SIGKILL if it has not exited within 10 s.
    pub fn stop(mut self) -> Result<ExitStatus> {
        self.stopped = true;
        terminate(&mut self.child, &self.what)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if !self.stopped {
            let _ = terminate(&mut self.child, &self.what);
        }
    }
}

fn terminate(child: &mut Child, what: &str) -> Result<ExitStatus> {
    if let Some(status) = child.try_wait()? {
        return Ok(status);
    }
    let pid = libc::pid_t::try_from(child.id()).context("pid out of range")?;
    // SAFETY: kill(2) on our own child's pid, which has not been reaped
    // yet (try_wait above saw it running), so the pid cannot be reused.
    unsafe {
        libc::kill(pid, libc::SIGTERM);
    }
    match wait_bounded(child, STOP_TIMEOUT) {
        Ok(status) => Ok(status),
        Err(_) => {
            eprintln!("{what} ignored SIGTERM for 10 s; killing it");
            child.kill()?;
            Ok(child.wait()?)
        }
    }
}

/// Waits for `child` at most `timeout`; kills it when that is not enough.
pub fn wait_bounded(child: &mut Child, timeout: Duration) -> Result<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("still running after {} s; killed it", timeout.as_secs());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs `command` to completion within `timeout`, capturing its output.
pub fn run_bounded(command: &mut Command, timeout: Duration) -> Result<Output> {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run {command:?}"))?;
    // Both pipes are drained while the command runs, or a chatty command
    // would block on one of them and never end.
    let stdout = drain(child.stdout.take().context("stdout was not piped")?);
    let stderr = drain(child.stderr.take().context("stderr was not piped")?);
    let status = wait_bounded(&mut child, timeout).with_context(|| format!("{command:?}"))?;
    Ok(Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    })
}

fn drain(mut pipe: impl Read + Send + 'static) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        bytes
    })
}

fn listening_port(line: &str) -> Option<u16> {
    let address = line.trim().strip_prefix("Listening on http://")?;
    address
        .rsplit(':')
        .next()?
        .trim_end_matches('/')
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_announced_port() {
        assert_eq!(
            listening_port("Listening on http://127.0.0.1:38211"),
            Some(38211)
        );
        assert_eq!(listening_port("Demo account loaded: API key x"), None);
    }
}
