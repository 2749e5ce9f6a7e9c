//! The harness every end-to-end module shares: ports, scratch directories, waiting, real
//! servers' prerequisites, and the processes a test starts.
//!
//! - `mod.rs`: ports ([`free_port`]), scratch directories ([`temp_dir`]), polling
//!   ([`wait_until`]), aiosmtpd's python ([`aiosmtpd`]), a command's output for a message
//!   ([`text`]), the time ([`now_ms`]), a child killed on drop ([`Killed`]), loopback servers
//!   running a behaviour per connection ([`serve`], [`silent`]) and a closed port
//!   ([`closed_port`]);
//! - `checker.rs`: running a checker as Nagios does and normalising its times, and an echo
//!   server ([`checker::run`], [`checker::normalise`], [`checker::echo`]);
//! - `daemon.rs`: a running `portwarden run` ([`Daemon`]) and its config ([`write_config`]);
//! - `netns.rs`: a network namespace of the test's own ([`Netns`]);
//! - `small_disk.rs`: a tmpfs in a private mount namespace, to fill under a daemon
//!   ([`SmallDisk`]).

pub mod checker;
mod daemon;
mod netns;
mod small_disk;

pub use daemon::{api_addr, write_config, Daemon, FAST_DEFAULTS};
pub use netns::Netns;
pub use small_disk::SmallDisk;

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Output};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A port no other test of this binary gets: counted up from a per-process base below the
/// kernel's ephemeral range, so neither the kernel nor a parallel test hands it out again
/// while a stopped service keeps it reserved.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let base = 20_000 + (std::process::id() % 500) as u16 * 20;
    loop {
        let port = base + NEXT.fetch_add(1, Ordering::SeqCst) % 10_000;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// An empty scratch directory for `tag`, unique to this test process.
pub fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pw-e2e-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Polls `done` every 50 ms for at most `secs` seconds; panics naming `what` on timeout.
pub fn wait_until(what: &str, secs: u64, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if done() {
            return;
        }
        thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out waiting for {what}");
}

/// Debian's python3 with aiosmtpd (a real SMTP server); `None` (the test skips) when it is
/// missing, except under `CI=true`, where that fails.
pub fn aiosmtpd() -> Option<&'static str> {
    let python = "/usr/bin/python3";
    let ok = std::process::Command::new(python)
        .args(["-c", "import aiosmtpd"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "python3-aiosmtpd is missing (scripts/install-test-deps installs it)"
        );
        eprintln!("skipped: python3-aiosmtpd is not installed");
        return None;
    }
    Some(python)
}

/// A command's exit code, stdout and stderr, for an assertion's message.
pub fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Unix milliseconds now.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// A child process killed (by its own handle) and reaped on drop.
pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A loopback server whose every connection runs `behaviour` (in a thread of its own); lives
/// until the test process ends. Its port.
pub fn serve(behaviour: fn(TcpStream)) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            thread::spawn(move || behaviour(conn));
        }
    });
    port
}

/// A [`serve`] behaviour: accepts and says nothing for 4 s.
pub fn silent(c: TcpStream) {
    thread::sleep(Duration::from_secs(4));
    drop(c);
}

/// A loopback port nothing listens on (bound a moment, then released).
pub fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// The first line a child prints on stdout (its "ready", or the port it bound), once it is
/// ready to serve.
pub fn first_line(child: &mut Child) -> String {
    use std::io::{BufRead, BufReader};
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("the child's stdout is piped"))
        .read_line(&mut line)
        .unwrap();
    line
}
