//! `check_ssh` as monitoring-plugins 2.3.3 has it: connect, read once, the answer must
//! start with `SSH`; split the identification into protocol and server software, answer
//! with our own identification, compare with `-r` / `-P`, and print
//! `SSH OK - OpenSSH_9.2p1 Debian-2+deb12u3 (protocol 2.0) | time=0.007437s;;;0.000000;10.000000`.

use std::ffi::OsString;
use std::time::{Duration, Instant};

use clap::Parser;
use portwarden_probe::State;

use super::net::{self, ConnectError, Family, IoError};

/// check_ssh's `BUFF_SZ`: what its one read takes at most.
const MAX_READ: usize = 256;

/// check_ssh's options, letter for letter.
#[derive(Debug, Parser)]
#[command(
    name = "check_ssh",
    disable_help_flag = true,
    disable_version_flag = true,
    args_override_self = true,
    override_usage = "check_ssh  [-4|-6] [-t <timeout>] [-r <remote version>] [-p <port>] <host>"
)]
struct SshArgs {
    #[arg(short = 'H', long = "hostname", alias = "host")]
    hostname: Option<String>,
    #[arg(short = 'p', long, value_parser = parse_port)]
    port: Option<u16>,
    #[arg(short = 't', long, default_value = "10")]
    timeout: i64,
    /// The server software must be exactly this (`OpenSSH_9.2p1 Debian-2+deb12u3`).
    #[arg(short = 'r', long = "remote-version")]
    remote_version: Option<String>,
    /// The protocol version must be exactly this (`2.0`).
    #[arg(short = 'P', long = "remote-protocol", alias = "remote-protcol")]
    remote_protocol: Option<String>,
    #[arg(short = '4', long = "use-ipv4")]
    ipv4: bool,
    #[arg(short = '6', long = "use-ipv6")]
    ipv6: bool,
    #[arg(short = 'v', long)]
    verbose: bool,
    /// `-h`, `-V`, and HOST [PORT] when not given with -H / -p.
    #[command(flatten)]
    tail: super::Tail,
}

fn parse_port(text: &str) -> Result<u16, String> {
    match text.parse::<u16>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(format!("Port number must be a positive integer - {text}")),
    }
}

fn usage() -> i32 {
    println!("check_ssh: Could not parse arguments");
    println!("Usage:");
    println!("check_ssh  [-4|-6] [-t <timeout>] [-r <remote version>] [-p <port>] <host>");
    State::Unknown.exit_code()
}

/// Reads check_ssh's options as [`run`] does, without connecting: the fuzz targets' entry
/// (`crate::fuzzing`).
pub(super) fn parse_only(args: Vec<OsString>) {
    let _ = super::parse_options("check_ssh", args, |a: &SshArgs| &a.tail);
}

/// Runs check_ssh with `args` (its options, no program name); returns the exit code.
pub(super) fn run(args: Vec<OsString>) -> i32 {
    let a: SshArgs = match super::parse_options("check_ssh", args, |a: &SshArgs| &a.tail) {
        Ok(a) => a,
        Err(code) => return code,
    };
    // check_ssh takes a stray host, then a stray port, from the arguments left over.
    let mut rest = a.tail.positional.iter();
    let host = match a.hostname.clone() {
        Some(h) => h,
        None => match rest.next() {
            Some(h) if portwarden_probe::Host::parse(h).is_ok() => h.clone(),
            _ => return usage(),
        },
    };
    if portwarden_probe::Host::parse(&host).is_err() {
        println!("check_ssh: Invalid hostname/address - {host}");
        return State::Unknown.exit_code();
    }
    let port = match (a.port, rest.next()) {
        (Some(p), _) => p,
        (None, Some(p)) => match parse_port(p) {
            Ok(p) => p,
            Err(_) => return usage(),
        },
        (None, None) => 22,
    };
    let family = match (a.ipv4, a.ipv6) {
        (_, true) => Family::V6,
        (true, _) => Family::V4,
        _ => Family::Any,
    };
    // A timeout of 0 or less switches check_ssh's alarm off; every run here stays bounded.
    let seconds = u32::try_from(a.timeout)
        .ok()
        .filter(|&s| s > 0)
        .unwrap_or(10);
    let started = Instant::now();
    let deadline = started + Duration::from_secs(u64::from(seconds));
    let timed_out = || {
        println!("{}", net::timeout_line(seconds));
        State::Critical.exit_code()
    };
    let mut conn = match net::connect(&host, port, family, deadline) {
        Ok(conn) => conn,
        Err(ConnectError::Timeout) => return timed_out(),
        Err(ConnectError::Connect(line)) => {
            println!("{line}");
            return State::Critical.exit_code();
        }
        Err(ConnectError::Resolve(line)) => {
            println!("{line}");
            return State::Unknown.exit_code();
        }
    };
    let answer = match conn.recv_once(MAX_READ) {
        Ok(data) => data,
        Err(IoError::Timeout) => return timed_out(),
        Err(IoError::Failed) => Vec::new(),
    };
    // check_smtp's C string ends at the first NUL byte.
    let answer = answer.split(|&b| b == 0).next().unwrap_or_default();
    if !answer.starts_with(b"SSH") {
        print!("Server answer: {}", String::from_utf8_lossy(answer));
        return State::Critical.exit_code();
    }
    let ident = String::from_utf8_lossy(answer);
    let ident = ident.trim_end_matches([' ', '\t', '\r', '\n']);
    if a.verbose {
        println!("{ident}");
    }
    let after_ssh = ident.get(4..).unwrap_or_default();
    let server = after_ssh.trim_start_matches(|c: char| "-0123456789. ".contains(c));
    let proto_len = after_ssh
        .find(|c: char| !"0123456789. ".contains(c))
        .unwrap_or(after_ssh.len());
    let proto = &after_ssh[..proto_len];
    let ours = format!("SSH-{proto}-portwarden_{}\r\n", env!("CARGO_PKG_VERSION"));
    // Sent and not waited for, as check_ssh does (MSG_DONTWAIT); the server is told who
    // called before the connection closes.
    let _ = conn.send(ours.as_bytes());
    if a.verbose {
        println!("{ours}");
    }
    if let Some(expected) = a.remote_version.as_deref().filter(|v| *v != server) {
        println!(
            "SSH CRITICAL - {server} (protocol {proto}) version mismatch, expected '{expected}'"
        );
        return State::Critical.exit_code();
    }
    if let Some(expected) = a.remote_protocol.as_deref().filter(|p| *p != proto) {
        println!(
            "SSH CRITICAL - {server} (protocol {proto}) protocol version mismatch, expected '{expected}'"
        );
        return State::Critical.exit_code();
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "SSH OK - {server} (protocol {proto}) | {}",
        super::fperfdata(elapsed, None, None, Some(0.0), Some(f64::from(seconds)))
    );
    State::Ok.exit_code()
}
