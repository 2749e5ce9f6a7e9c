//! `check_smtp` as monitoring-plugins 2.3.3 has it: its options, its dialog and its output.
//!
//! The dialog: read the greeting, send `HELO` (`EHLO` with `-S`/`-A`, `LHLO` with `-L`)
//! with the local host name (`-F`), read the reply; with `-S` ask for `STARTTLS`, upgrade,
//! send `EHLO` again (and with `-D` judge the certificate and stop there); look for the `-e`
//! string (default `220`) in the greeting and the last HELO reply; `MAIL FROM` (`-f`); each
//! `-C` command with its `-R` regex; `AUTH LOGIN` (`-A LOGIN -U -P`); `QUIT`. Then one line:
//! `SMTP OK - 0.016 sec. response time|time=0.016488s;;;0.000000`.
//!
//! Its quirks are kept on purpose, since Nagios configurations depend on them: a greeting
//! or `-e` problem prints a line without the `SMTP` prefix; a failed `-R` prints a line of its
//! own and the dialog goes on, and a later `-R` that matches makes the result OK again; a
//! refused connection prints netutils' line and then `SMTP CRITICAL - 0.000 sec. …`.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use clap::Parser;
use portwarden_probe::State;

use super::net::{self, Conn, ConnectError, Family, IoError};
use super::tls::{self, CertDays};

/// netutils' `MAX_INPUT_BUFFER`: no reply may be longer.
const MAX_REPLY: usize = 8191;

/// check_smtp's options, letter for letter.
#[derive(Debug, Parser)]
#[command(
    name = "check_smtp",
    disable_help_flag = true,
    disable_version_flag = true,
    args_override_self = true,
    override_usage = "check_smtp -H host [-p port] [-4|-6] [-e expect] [-C command] [-R response] \
[-f from addr] [-A authtype -U authuser -P authpass] [-w warn] [-c crit] [-t timeout] [-q] \
[-F fqdn] [-S] [-L] [-D warn days cert expire[,crit days cert expire]] [-v]"
)]
struct SmtpArgs {
    #[arg(short = 'H', long = "hostname")]
    hostname: Option<String>,
    #[arg(short = 'p', long, default_value = "25", value_parser = parse_port)]
    port: u16,
    /// String to expect in the greeting or HELO reply.
    #[arg(short = 'e', long, default_value = "220")]
    expect: String,
    /// SMTP command (repeatable).
    #[arg(short = 'C', long = "command", action = clap::ArgAction::Append)]
    commands: Vec<String>,
    /// Expected reply to the command of the same position, a POSIX extended regex.
    #[arg(short = 'R', long = "response", action = clap::ArgAction::Append)]
    responses: Vec<String>,
    /// FROM address for a MAIL command.
    #[arg(short = 'f', long)]
    from: Option<String>,
    /// Name to send with HELO/EHLO (default: this host's name).
    #[arg(short = 'F', long)]
    fqdn: Option<String>,
    #[arg(short = 'A', long)]
    authtype: Option<String>,
    #[arg(short = 'U', long)]
    authuser: Option<String>,
    #[arg(short = 'P', long)]
    authpass: Option<String>,
    /// STARTTLS.
    #[arg(short = 'S', long)]
    starttls: bool,
    /// Certificate days WARN[,CRIT] (implies -S).
    #[arg(short = 'D', long, value_parser = tls::parse_cert_days)]
    certificate: Option<CertDays>,
    /// Ignore a failure to send QUIT.
    #[arg(short = 'q', long = "ignore-quit-failure")]
    ignore_quit_failure: bool,
    /// LMTP: LHLO instead of HELO.
    #[arg(short = 'L', long)]
    lmtp: bool,
    #[arg(short = 'w', long, value_parser = parse_nonnegative)]
    warning: Option<f64>,
    #[arg(short = 'c', long, value_parser = parse_nonnegative)]
    critical: Option<f64>,
    #[arg(short = 't', long, default_value = "10")]
    timeout: u32,
    #[arg(short = '4', long = "use-ipv4")]
    ipv4: bool,
    #[arg(short = '6', long = "use-ipv6")]
    ipv6: bool,
    #[arg(short = 'v', long, action = clap::ArgAction::Count)]
    verbose: u8,
    /// `-h`, `-V`, and the host if not given with -H (whatever follows it is ignored).
    #[command(flatten)]
    tail: super::Tail,
}

fn parse_port(text: &str) -> Result<u16, String> {
    match text.parse::<u16>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err("Port must be a positive integer".into()),
    }
}

fn parse_nonnegative(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(v) if v >= 0.0 && v.is_finite() => Ok(v),
        _ => Err(format!("must be a non-negative number, got {text:?}")),
    }
}

/// The whole run's outcome: what was printed and the exit code.
struct Run {
    out: String,
    verbose: bool,
}

impl Run {
    fn line(&mut self, text: &str) {
        self.out.push_str(text);
        self.out.push('\n');
    }

    fn finish(self, state: State) -> i32 {
        print!("{}", self.out);
        state.exit_code()
    }
}

/// Reads check_smtp's options and compiles its `-R` patterns as [`run`] does, without
/// connecting: the fuzz targets' entry (`crate::fuzzing`).
pub(super) fn parse_only(args: Vec<OsString>) {
    if let Ok(a) = super::parse_options("check_smtp", args, |a: &SmtpArgs| &a.tail) {
        for r in &a.responses {
            let _ = posix_regex(r);
        }
    }
}

/// Runs check_smtp with `args` (its options, no program name); returns the exit code.
pub(super) fn run(args: Vec<OsString>) -> i32 {
    let a: SmtpArgs = match super::parse_options("check_smtp", args, |a: &SmtpArgs| &a.tail) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let host = a
        .hostname
        .clone()
        .or_else(|| a.tail.positional.first().cloned())
        .unwrap_or_else(|| "127.0.0.1".into());
    if portwarden_probe::Host::parse(&host).is_err() {
        println!("check_smtp: Invalid hostname/address - {host}");
        return State::Unknown.exit_code();
    }
    let responses = match a
        .responses
        .iter()
        .map(|r| posix_regex(r))
        .collect::<Result<Vec<_>, _>>()
    {
        Ok(r) => r,
        Err(()) => {
            // check_smtp compiles each -R when its command runs and exits with ERROR (-1).
            print!("Could Not Compile Regular Expression");
            return 255;
        }
    };
    let mut run = Run {
        out: String::new(),
        verbose: a.verbose > 0,
    };
    let started = Instant::now();
    // `-t 0` switches check_smtp's alarm off; every run here stays bounded.
    let seconds = if a.timeout == 0 { 10 } else { a.timeout };
    let deadline = started + Duration::from_secs(u64::from(seconds));
    let family = match (a.ipv4, a.ipv6) {
        (_, true) => Family::V6,
        (true, _) => Family::V4,
        _ => Family::Any,
    };
    let mut buffer = Vec::new();
    let (mut state, error_msg) = match net::connect(&host, a.port, family, deadline) {
        Ok(conn) => match dialog(&a, &responses, conn, &mut run, &mut buffer) {
            Dialog::Done { state, error } => (state, error),
            Dialog::Exit(s) => return run.finish(s),
            Dialog::Timeout => {
                run.line(&net::timeout_line(seconds));
                return run.finish(State::Critical);
            }
        },
        Err(ConnectError::Timeout) => {
            run.line(&net::timeout_line(seconds));
            return run.finish(State::Critical);
        }
        Err(ConnectError::Connect(line)) => {
            run.line(&line);
            (State::Critical, String::new())
        }
        Err(ConnectError::Resolve(line)) => {
            run.line(&line);
            (State::Unknown, String::new())
        }
    };
    let elapsed = started.elapsed().as_secs_f64();
    if state == State::Ok {
        if a.critical.is_some_and(|c| elapsed > c) {
            state = State::Critical;
        } else if a.warning.is_some_and(|w| elapsed > w) {
            state = State::Warning;
        }
    }
    let mut line = format!("SMTP {state} - {error_msg}{elapsed:.3} sec. response time");
    if run.verbose {
        let _ = write!(line, ", {}", String::from_utf8_lossy(&buffer));
    }
    let _ = write!(
        line,
        "|{}",
        super::fperfdata(elapsed, a.warning, a.critical, Some(0.0), None)
    );
    run.line(&line);
    run.finish(state)
}

/// How the dialog ended.
enum Dialog {
    /// It ran to the QUIT: the state so far and check_smtp's `error_msg`.
    Done { state: State, error: String },
    /// It stopped early with this state; its line is printed already.
    Exit(State),
    /// The deadline passed.
    Timeout,
}

/// check_smtp's `recvlines`: one reply, continuation lines (`250-…`) included; `None` when
/// the connection ends (or fails) first.
fn recv_reply(conn: &mut Conn) -> Result<Option<Vec<u8>>, IoError> {
    let mut reply = Vec::new();
    loop {
        let line = match conn.recv_line(MAX_REPLY - reply.len()) {
            Ok(Some(line)) => line,
            Ok(None) | Err(IoError::Failed) => return Ok(None),
            Err(IoError::Timeout) => return Err(IoError::Timeout),
        };
        let continues =
            line.len() > 3 && line[..3].iter().all(u8::is_ascii_digit) && line[3] == b'-';
        reply.extend_from_slice(&line);
        if !continues {
            return Ok(Some(reply));
        }
    }
}

/// The plugins' `strip`: trailing spaces, tabs, CRs and LFs off.
fn strip(text: &[u8]) -> String {
    let end = text
        .iter()
        .rposition(|b| !matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
        .map_or(0, |i| i + 1);
    String::from_utf8_lossy(&text[..end]).into_owned()
}

/// A POSIX extended regex with REG_NEWLINE, in the regex crate's syntax (close enough for
/// the reply patterns people write: `^250`, `2\.1\.0`, `OK|Accepted`).
fn posix_regex(pattern: &str) -> Result<regex::Regex, ()> {
    regex::RegexBuilder::new(pattern)
        .multi_line(true)
        .build()
        .map_err(|_| ())
}

/// Sends QUIT and reads the reply, whatever it is (check_smtp's `smtp_quit`). `Some` when
/// check_smtp would die here (QUIT could not be sent and `-q` was not given).
fn quit(a: &SmtpArgs, conn: &mut Conn, run: &mut Run, buffer: &mut Vec<u8>) -> Option<State> {
    if conn.send(b"QUIT\r\n").is_err() {
        if a.ignore_quit_failure {
            if run.verbose {
                run.line("Connection closed by server before sending QUIT command");
            }
            return None;
        }
        run.line("Connection closed by server before sending QUIT command");
        return Some(State::Unknown);
    }
    if run.verbose {
        run.line("sent QUIT");
    }
    match recv_reply(conn) {
        Ok(Some(reply)) => {
            if run.verbose {
                let _ = writeln!(run.out, "received {}", String::from_utf8_lossy(&reply));
            }
            *buffer = reply;
        }
        _ if run.verbose => run.out.push_str("Connection reset by peer."),
        _ => {}
    }
    None
}

fn local_host_name() -> String {
    rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned()
}

fn dialog(
    a: &SmtpArgs,
    responses: &[regex::Regex],
    mut conn: Conn,
    run: &mut Run,
    buffer: &mut Vec<u8>,
) -> Dialog {
    macro_rules! io {
        ($e:expr) => {
            match $e {
                Ok(v) => v,
                Err(IoError::Timeout) => return Dialog::Timeout,
                Err(IoError::Failed) => None,
            }
        };
    }
    let use_ssl = a.starttls || a.certificate.is_some();
    let use_ehlo = use_ssl || a.authtype.is_some();
    let name = a.fqdn.clone().unwrap_or_else(local_host_name);
    let verb = if a.lmtp {
        "LHLO"
    } else if use_ehlo {
        "EHLO"
    } else {
        "HELO"
    };
    let helo = format!("{verb} {name}\r\n");
    if run.verbose {
        let _ = write!(run.out, "HELOCMD: {helo}");
    }
    let from_cmd = a.from.as_ref().map(|f| {
        let f = f.trim_start_matches('<');
        let f = f.split('>').next().unwrap_or_default();
        format!("MAIL FROM:<{f}>\r\n")
    });
    if let (true, Some(cmd)) = (run.verbose, &from_cmd) {
        let _ = write!(run.out, "FROM CMD: {cmd}");
    }

    let Some(greeting) = io!(recv_reply(&mut conn)) else {
        run.line("recv() failed");
        return Dialog::Exit(State::Warning);
    };
    let mut server_response = greeting;
    // check_smtp's send() result is not looked at; the read after it tells.
    if let Err(IoError::Timeout) = conn.send(helo.as_bytes()) {
        return Dialog::Timeout;
    }
    let Some(reply) = io!(recv_reply(&mut conn)) else {
        run.line("recv() failed");
        return Dialog::Exit(State::Warning);
    };
    *buffer = reply;
    let supports_tls = (use_ehlo || a.lmtp) && {
        let text = String::from_utf8_lossy(buffer);
        text.contains("250 STARTTLS") || text.contains("250-STARTTLS")
    };
    if use_ssl && !supports_tls {
        run.line("WARNING - TLS not supported by server");
        if let Some(s) = quit(a, &mut conn, run, buffer) {
            return Dialog::Exit(s);
        }
        return Dialog::Exit(State::Warning);
    }
    if use_ssl {
        if let Err(IoError::Timeout) = conn.send(b"STARTTLS\r\n") {
            return Dialog::Timeout;
        }
        if let Some(reply) = io!(recv_reply(&mut conn)) {
            *buffer = reply;
        }
        if !String::from_utf8_lossy(buffer).contains("220") {
            run.line("Server does not support STARTTLS");
            if let Some(s) = quit(a, &mut conn, run, buffer) {
                return Dialog::Exit(s);
            }
            return Dialog::Exit(State::Unknown);
        }
        let chain;
        (conn, chain) = match conn.start_tls() {
            Ok(upgraded) => upgraded,
            Err(IoError::Timeout) => return Dialog::Timeout,
            Err(IoError::Failed) => {
                run.line("CRITICAL - Cannot make SSL connection.");
                run.line("CRITICAL - Cannot create SSL context.");
                return Dialog::Exit(State::Critical);
            }
        };
        // RFC 3207 4.2: what EHLO said before TLS no longer counts; say it again.
        match conn.send(helo.as_bytes()) {
            Ok(()) => {}
            Err(IoError::Timeout) => return Dialog::Timeout,
            Err(IoError::Failed) => {
                run.line("SMTP UNKNOWN - Cannot send EHLO command via TLS.");
                return Dialog::Exit(State::Unknown);
            }
        }
        if run.verbose {
            let _ = write!(run.out, "sent {helo}");
        }
        let Some(reply) = io!(recv_reply(&mut conn)) else {
            run.line("SMTP UNKNOWN - Cannot read EHLO response via TLS.");
            return Dialog::Exit(State::Unknown);
        };
        *buffer = reply;
        if run.verbose {
            run.out.push_str(&String::from_utf8_lossy(buffer));
        }
        if let Some(days) = a.certificate {
            let now = time::OffsetDateTime::now_utc().unix_timestamp();
            let (state, line) = tls::check_certificate(&chain, days, now);
            run.line(&line);
            // check_smtp ignores a failed QUIT here (-D sets -q).
            let _ = conn.send(b"QUIT\r\n");
            let _ = recv_reply(&mut conn);
            return Dialog::Exit(state);
        }
    }
    if run.verbose {
        run.out.push_str(&String::from_utf8_lossy(buffer));
    }
    server_response.extend_from_slice(buffer);
    let server_response = strip(&server_response);
    if !server_response.contains(a.expect.as_str()) {
        if a.port == 25 {
            run.line(&format!(
                "Invalid SMTP response received from host: {server_response}"
            ));
        } else {
            run.line(&format!(
                "Invalid SMTP response received from host on port {}: {server_response}",
                a.port
            ));
        }
        return Dialog::Exit(State::Warning);
    }

    let mut state = State::Ok;
    if let Some(cmd) = &from_cmd {
        if let Err(IoError::Timeout) = conn.send(cmd.as_bytes()) {
            return Dialog::Timeout;
        }
        if let Some(reply) = io!(recv_reply(&mut conn)) {
            if run.verbose {
                run.out.push_str(&String::from_utf8_lossy(&reply));
            }
            *buffer = reply;
        }
    }
    for (n, command) in a.commands.iter().enumerate() {
        if let Err(IoError::Timeout) = conn.send(format!("{command}\r\n").as_bytes()) {
            return Dialog::Timeout;
        }
        if let Some(reply) = io!(recv_reply(&mut conn)) {
            if run.verbose {
                run.out.push_str(&String::from_utf8_lossy(&reply));
            }
            *buffer = reply;
        }
        let text = strip(buffer);
        if let Some(re) = responses.get(n) {
            if re.is_match(&text) {
                state = State::Ok;
            } else {
                state = State::Warning;
                run.line(&format!(
                    "SMTP WARNING - Invalid response '{text}' to command '{command}'"
                ));
            }
        }
    }
    let mut error = String::new();
    if let Some(authtype) = &a.authtype {
        match auth(a, authtype, &mut conn, run, buffer) {
            Ok(None) => {}
            Ok(Some((s, e))) => {
                state = s;
                error = e;
            }
            Err(IoError::Timeout) => return Dialog::Timeout,
            Err(IoError::Failed) => {}
        }
    }
    if let Some(s) = quit(a, &mut conn, run, buffer) {
        return Dialog::Exit(s);
    }
    Dialog::Done { state, error }
}

/// check_smtp's AUTH: only LOGIN, user and password base64-encoded; `Some` names the
/// failure as check_smtp's `error_msg` (with its trailing `, `).
fn auth(
    a: &SmtpArgs,
    authtype: &str,
    conn: &mut Conn,
    run: &mut Run,
    buffer: &mut Vec<u8>,
) -> Result<Option<(State, String)>, IoError> {
    let fail = |s: State, m: &str| Ok(Some((s, format!("{m}, "))));
    if authtype != "LOGIN" {
        return fail(State::Critical, "only authtype LOGIN is supported");
    }
    let Some(user) = &a.authuser else {
        return fail(State::Critical, "no authuser specified");
    };
    let Some(pass) = &a.authpass else {
        return fail(State::Critical, "no authpass specified");
    };
    let user = format!("{}\r\n", base64(user.as_bytes()));
    let pass = format!("{}\r\n", base64(pass.as_bytes()));
    let steps: [(&[u8], &str, State, &str, &str); 3] = [
        (
            b"AUTH LOGIN\r\n",
            "334",
            State::Warning,
            "recv() failed after AUTH LOGIN",
            "invalid response received after AUTH LOGIN",
        ),
        (
            user.as_bytes(),
            "334",
            State::Critical,
            "recv() failed after sending authuser",
            "invalid response received after authuser",
        ),
        (
            pass.as_bytes(),
            "235",
            State::Critical,
            "recv() failed after sending authpass",
            "invalid response received after authpass",
        ),
    ];
    for (send, code, recv_state, recv_failed, invalid) in steps {
        conn.send(send)?;
        if run.verbose {
            let sent = String::from_utf8_lossy(send);
            let sent = if sent.starts_with("AUTH LOGIN") {
                "AUTH LOGIN".into()
            } else {
                sent
            };
            run.line(&format!("sent {sent}"));
        }
        let Some(reply) = recv_reply(conn)? else {
            return fail(recv_state, recv_failed);
        };
        *buffer = reply;
        if run.verbose {
            run.line(&format!("received {}", String::from_utf8_lossy(buffer)));
        }
        if !buffer.starts_with(code.as_bytes()) {
            return fail(State::Critical, invalid);
        }
    }
    Ok(None)
}

/// Standard base64 with padding (RFC 4648), as AUTH LOGIN wants it.
fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain.as_bytes()), encoded);
        }
    }

    #[test]
    fn strip_removes_trailing_whitespace_only() {
        assert_eq!(strip(b" 220 x \r\n\t"), " 220 x");
        assert_eq!(strip(b"\r\n"), "");
    }

    #[test]
    fn options_parse_as_check_smtp_reads_them() {
        let a = SmtpArgs::try_parse_from([
            "check_smtp",
            "-H",
            "mx",
            "-C",
            "NOOP",
            "-R",
            "^250",
            "-C",
            "RSET",
            "-D",
            "30,10",
            "-e",
            "a",
            "-e",
            "b",
            "-q",
        ])
        .expect("parses");
        assert_eq!(a.commands, ["NOOP", "RSET"]);
        assert_eq!(a.responses, ["^250"]);
        assert_eq!(a.expect, "b", "the last -e wins, as with getopt");
        assert_eq!(a.port, 25);
        assert!(a.ignore_quit_failure);
        assert_eq!(
            a.certificate,
            Some(CertDays {
                warning: 30,
                critical: 10
            })
        );
        assert!(SmtpArgs::try_parse_from(["check_smtp", "-p", "0"]).is_err());
        assert!(SmtpArgs::try_parse_from(["check_smtp", "-w", "-1"]).is_err());
    }
}
