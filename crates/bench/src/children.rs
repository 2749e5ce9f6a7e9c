//! What the end-to-end benchmarks share for the processes they start: children killed (by
//! their own handles) when the run ends, free loopback ports, and a child's output lines
//! stamped on arrival, so a benchmark can time when the daemon said something.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// Children killed on drop, and a scratch directory removed.
pub struct Guarded(pub Vec<Child>, pub Option<PathBuf>);

impl Drop for Guarded {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
        if let Some(dir) = &self.1 {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// A loopback port free at the moment.
pub fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Lines of a child's pipe, each stamped on arrival.
pub fn stamped(pipe: impl std::io::Read + Send + 'static) -> mpsc::Receiver<(Instant, String)> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            if tx.send((Instant::now(), line)).is_err() {
                break;
            }
        }
    });
    rx
}

/// The first line that `matches` (with its arrival time) within 20 s.
pub fn wait_for(
    rx: &mpsc::Receiver<(Instant, String)>,
    what: &str,
    matches: impl Fn(&str) -> bool,
) -> anyhow::Result<(Instant, String)> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok((at, line)) if matches(&line) => return Ok((at, line)),
            Ok(_) => {}
            Err(_) => bail!("timed out waiting for {what}"),
        }
    }
}

/// The portwarden binary a benchmark runs: `given` (`--portwarden`), else the one next to
/// this bench binary (e.g. `target/release/portwarden`); an error says how to build it.
pub fn portwarden_binary(given: Option<&Path>) -> anyhow::Result<PathBuf> {
    let path = match given {
        Some(p) => p.to_path_buf(),
        None => std::env::current_exe()
            .context("locating the bench binary")?
            .with_file_name("portwarden"),
    };
    if !path.exists() {
        bail!(
            "{} not found: build it first (cargo build --release -p portwarden)",
            path.display()
        );
    }
    Ok(path)
}
