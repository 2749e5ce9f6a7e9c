//! Running a checker as Nagios does (ours, a link of ours, or the monitoring-plugins program
//! it stands in for) and comparing what they print.

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// A checker's exit code, its output without trailing blanks, and how long it ran.
pub struct Outcome {
    pub code: i32,
    pub stdout: String,
    pub elapsed: Duration,
}

/// Runs `program` with `args` and no stdin; a death by signal is code -1.
pub fn run(program: impl AsRef<OsStr>, args: &[&str]) -> Outcome {
    let started = Instant::now();
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run the checker");
    Outcome {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).trim_end().to_string(),
        elapsed: started.elapsed(),
    }
}

/// Replaces measured times (`0.016 sec.`, `0.001 second`, `time=0.016488s`) with `T`, so two
/// checkers' lines compare.
pub fn normalise(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        out.push_str(&rest[..digits]);
        rest = &rest[digits..];
        let len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number = &rest[..len];
        rest = &rest[len..];
        let is_time =
            out.ends_with("time=") || rest.starts_with(" sec") || rest.starts_with(" second");
        out.push_str(if is_time && number.contains('.') {
            "T"
        } else {
            number
        });
    }
    out
}

/// A server that sends back the first thing it reads, then holds the connection 3 s.
pub fn echo(mut c: TcpStream) {
    let _ = c.set_read_timeout(Some(Duration::from_secs(5)));
    let mut buf = [0u8; 512];
    if let Ok(n) = c.read(&mut buf) {
        let _ = c.write_all(&buf[..n]);
    }
    thread::sleep(Duration::from_secs(3));
}
