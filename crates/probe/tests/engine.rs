//! The probe engine against real servers on loopback, friendly and hostile: banners,
//! dialogs, silence, resets, floods, refusals, IPv6, source addresses, TLS and STARTTLS.
//!
//! Each test starts its own server as a tokio task on 127.0.0.1:0 (or [::1]:0). Timing
//! assertions are bounds ("finishes within the deadline plus slack"), not benchmarks.

// Helpers and server closures are not `#[test]` functions, but a panic there is the
// test's failure report all the same.
#![expect(
    clippy::unwrap_used,
    reason = "a test file: its helpers outside #[test] may unwrap too (STYLE.md)"
)]

mod common;

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use portwarden_probe::expect::ReplyParser;
use portwarden_probe::{
    CertDays, ClientCert, Expectation, Family, Matcher, Probe, ProbeResult, ProbeSpec, Reason,
    SpecError, StartTls, State, Step, Thresholds, TlsClient, TlsSpec, TlsVersion, Verify,
};
use tokio::io::AsyncWriteExt;
use tokio::sync::oneshot;
use tokio::time::{sleep, Instant};

/// Slack allowed past a deadline for scheduling and the test server.
const SLACK: Duration = Duration::from_millis(300);

async fn run(spec: ProbeSpec) -> ProbeResult {
    Probe::new(spec).unwrap().run().await
}

/// Runs `spec` and returns the result with the wall-clock time it took.
async fn run_timed(spec: ProbeSpec) -> (ProbeResult, Duration) {
    let probe = Probe::new(spec).unwrap();
    let began = Instant::now();
    let result = probe.run().await;
    (result, began.elapsed())
}

fn assert_ok(r: &ProbeResult) {
    assert_eq!(
        (r.state, r.reason),
        (State::Ok, None),
        "expected OK, got {}: {}",
        r.state,
        r.message
    );
}

fn assert_failed(r: &ProbeResult, state: State, reason: Reason) {
    assert_eq!(
        (r.state, r.reason),
        (state, Some(reason)),
        "unexpected verdict; message: {}",
        r.message
    );
}

fn smtp_reply(name: &'static str, parse: fn(&[u8]) -> portwarden_probe::Verdict) -> Matcher {
    Matcher::Reply(ReplyParser { name, parse })
}

// ---------------------------------------------------------------- banners and matchers

#[tokio::test]
async fn matches_banner_with_contains_prefix_regex_all_and_any() {
    let addr = banner_server(b"220 ready\r\n").await;
    let cases = [
        Expectation::one(contains("ready")),
        Expectation::one(prefix("220 ")),
        Expectation::one(Matcher::regex(r"^220 \w+\r\n$").unwrap()),
        all(vec![prefix("220"), contains("ready")]),
        any(vec![prefix("554"), prefix("220")]),
    ];
    for expectation in cases {
        let shown = expectation.to_string();
        let mut spec = spec(addr);
        spec.steps.push(Step::Expect(expectation));
        let (r, took) = run_timed(spec).await;
        assert_ok(&r);
        assert_eq!(r.received, r"220 ready\r\n", "{shown}");
        assert_eq!(r.bytes_received, 11, "{shown}");
        assert!(!r.truncated);
        assert!(r.timings.first_byte.is_some());
        // Decided by the data, not by the idle timeout (500 ms) of an open connection.
        assert!(took < Duration::from_millis(250), "{shown} took {took:?}");
    }
}

#[tokio::test]
async fn reports_mismatch_with_the_received_excerpt() {
    let addr = banner_server(b"554 go away\r\n").await;
    let cases = [
        Expectation::one(contains("ready")),
        Expectation::one(Matcher::regex("^220").unwrap()),
        all(vec![contains("554"), contains("ready")]),
        any(vec![contains("ready"), contains("welcome")]),
    ];
    for expectation in cases {
        let shown = expectation.to_string();
        let mut spec = spec(addr);
        spec.steps.push(Step::Expect(expectation));
        let r = run(spec).await;
        assert_failed(&r, State::Critical, Reason::UnexpectedResponse);
        assert!(r.message.contains(&shown), "{}", r.message);
        assert!(r.message.contains(r"554 go away\r\n"), "{}", r.message);
        assert_eq!(r.received, r"554 go away\r\n");
    }
}

#[tokio::test]
async fn decides_prefix_mismatch_without_waiting_for_a_timeout() {
    let addr = banner_server(b"554 go away\r\n").await;
    for expectation in [
        Expectation::one(prefix("220")),
        all(vec![prefix("220"), contains("never")]),
    ] {
        let mut spec = spec(addr);
        spec.limits.idle_timeout = Duration::from_secs(2);
        spec.limits.deadline = Duration::from_secs(4);
        spec.steps.push(Step::Expect(expectation));
        let (r, took) = run_timed(spec).await;
        assert_failed(&r, State::Critical, Reason::UnexpectedResponse);
        assert!(took < Duration::from_millis(300), "took {took:?}");
    }
}

#[tokio::test]
async fn undecided_expectation_ends_after_idle_timeout() {
    let addr = banner_server(b"220 ready\r\n").await;
    let mut spec = expecting(addr, contains("never"));
    spec.limits.idle_timeout = Duration::from_millis(200);
    let (r, took) = run_timed(spec).await;
    assert_failed(&r, State::Critical, Reason::UnexpectedResponse);
    assert!(r.message.contains("went quiet"), "{}", r.message);
    assert!(took >= Duration::from_millis(200), "took {took:?}");
    assert!(took < Duration::from_millis(200) + SLACK, "took {took:?}");
}

#[tokio::test]
async fn maps_mismatch_to_the_configured_state() {
    let addr = banner_server(b"554 go away\r\n").await;
    let mut spec = expecting(addr, prefix("220"));
    spec.states.mismatch = State::Warning;
    let r = run(spec).await;
    assert_failed(&r, State::Warning, Reason::UnexpectedResponse);
}

#[tokio::test]
async fn plain_connect_check_passes_without_reading() {
    let addr = banner_server(b"").await;
    let r = run(spec(addr)).await;
    assert_ok(&r);
    assert_eq!(r.peer, Some(addr));
    assert_eq!(r.bytes_received, 0);
    assert!(r.timings.connect.is_some());
}

// ---------------------------------------------------------------- silence and slowness

#[tokio::test]
async fn silent_server_times_out_within_the_deadline() {
    let addr = banner_server(b"").await;
    let mut spec = expecting(addr, contains("220"));
    spec.limits.deadline = Duration::from_millis(500);
    let (r, took) = run_timed(spec).await;
    assert_failed(&r, State::Critical, Reason::ReadTimeout);
    assert!(took >= Duration::from_millis(490), "took {took:?}");
    assert!(took < Duration::from_millis(500) + SLACK, "took {took:?}");
    assert_eq!(r.timings.first_byte, None);
}

#[tokio::test]
async fn waits_for_a_slow_banner_and_times_the_first_byte() {
    let addr = serve(|mut s| async move {
        sleep(Duration::from_millis(700)).await;
        let _ = s.write_all(b"220 finally\r\n").await;
        drain(&mut s).await;
    })
    .await;
    let r = run(expecting(addr, prefix("220 "))).await;
    assert_ok(&r);
    let first = r.timings.first_byte.unwrap();
    assert!(first >= Duration::from_millis(700), "first byte {first:?}");
    assert!(r.timings.total >= first);
}

#[tokio::test]
async fn slow_drip_ends_at_the_deadline_not_later() {
    let addr = serve(|mut s| async move {
        loop {
            if s.write_all(b"x").await.is_err() {
                return;
            }
            sleep(Duration::from_millis(300)).await;
        }
    })
    .await;
    let mut spec = expecting(addr, contains("never"));
    spec.limits.idle_timeout = Duration::from_secs(1);
    spec.limits.deadline = Duration::from_secs(2);
    let (r, took) = run_timed(spec).await;
    assert_failed(&r, State::Critical, Reason::UnexpectedResponse);
    assert!(r.message.contains("deadline"), "{}", r.message);
    // Each byte restarts the idle timer, so only the deadline can end this.
    assert!(took >= Duration::from_millis(1950), "took {took:?}");
    assert!(took < Duration::from_secs(2) + SLACK, "took {took:?}");
    assert!(r.bytes_received >= 5, "{} bytes", r.bytes_received);
}

#[tokio::test]
async fn response_time_thresholds_give_warning_then_critical() {
    let addr = serve(|mut s| async move {
        sleep(Duration::from_millis(300)).await;
        let _ = s.write_all(b"220 sleepy\r\n").await;
        drain(&mut s).await;
    })
    .await;
    let mut spec = expecting(addr, prefix("220"));
    spec.response_time = Thresholds {
        warning: Some(Duration::from_millis(100)),
        critical: None,
    };
    let r = run(spec.clone()).await;
    assert_failed(&r, State::Warning, Reason::SlowResponse);
    assert!(r.message.contains("response took"), "{}", r.message);

    spec.response_time.critical = Some(Duration::from_millis(200));
    let r = run(spec.clone()).await;
    assert_failed(&r, State::Critical, Reason::SlowResponse);

    spec.response_time = Thresholds {
        warning: Some(Duration::from_secs(1)),
        critical: Some(Duration::from_secs(2)),
    };
    assert_ok(&run(spec).await);
}

// ---------------------------------------------------------------- dialogs

#[tokio::test]
async fn echo_server_answers_a_send_step() {
    let addr = serve(|mut s| async move {
        let mut buf = [0u8; 256];
        while let Ok(n) = tokio::io::AsyncReadExt::read(&mut s, &mut buf).await {
            if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    })
    .await;
    let mut spec = spec(addr);
    spec.steps = vec![
        Step::Send(b"PING 42\r\n".to_vec()),
        Step::Expect(Expectation::one(contains("PING 42"))),
    ];
    let r = run(spec).await;
    assert_ok(&r);
    assert_eq!(r.received, r"PING 42\r\n");
}

#[tokio::test]
async fn runs_a_multi_step_dialog_on_one_connection() {
    let accepted = Counter::default();
    let seen = Arc::new(Mutex::new(Vec::<Vec<u8>>::new()));
    let (count, log) = (accepted.clone(), seen.clone());
    let addr = serve(move |mut s| {
        let (count, log) = (count.clone(), log.clone());
        async move {
            count.bump();
            while let Some(line) = read_line(&mut s).await {
                let answer: &[u8] = match line.as_slice() {
                    b"HELLO\r\n" => b"HI there\r\n",
                    b"BYE\r\n" => b"CIAO\r\n",
                    _ => b"ERR\r\n",
                };
                log.lock().unwrap().push(line);
                let _ = s.write_all(answer).await;
            }
        }
    })
    .await;
    let mut spec = spec(addr);
    spec.steps = vec![
        Step::Send(b"HELLO\r\n".to_vec()),
        Step::Expect(Expectation::one(prefix("HI"))),
        Step::Send(b"BYE\r\n".to_vec()),
        // Judged on the second answer only: the first one starts with "HI".
        Step::Expect(Expectation::one(prefix("CIAO"))),
    ];
    let r = run(spec).await;
    assert_ok(&r);
    assert_eq!(r.received, r"HI there\r\nCIAO\r\n");
    assert_eq!(accepted.get(), 1);
    assert_eq!(
        *seen.lock().unwrap(),
        vec![b"HELLO\r\n".to_vec(), b"BYE\r\n".to_vec()]
    );
}

#[tokio::test]
async fn reply_parser_decides_on_the_final_line_of_a_split_banner() {
    let addr = serve(|mut s| async move {
        for part in [
            &b"220-mail.test ESMTP\r\n"[..],
            b"220-no UCE\r\n220",
            b" ready\r\n",
        ] {
            let _ = s.write_all(part).await;
            sleep(Duration::from_millis(60)).await;
        }
        drain(&mut s).await;
    })
    .await;
    let mut spec = expecting(
        addr,
        smtp_reply("smtp reply 220", portwarden_probe::reply::code_is::<220>),
    );
    spec.limits.idle_timeout = Duration::from_secs(1);
    let (r, took) = run_timed(spec).await;
    assert_ok(&r);
    assert_eq!(
        r.received,
        r"220-mail.test ESMTP\r\n220-no UCE\r\n220 ready\r\n"
    );
    // It waited for the final line (two pauses) but not for the idle timeout.
    assert!(took >= Duration::from_millis(110), "took {took:?}");
    assert!(took < Duration::from_millis(600), "took {took:?}");
}

// ---------------------------------------------------------------- hang-ups and floods

#[tokio::test]
async fn accept_then_close_is_no_data() {
    let addr = serve(|s| async move { drop(s) }).await;
    let r = run(expecting(addr, prefix("220"))).await;
    assert_failed(&r, State::Critical, Reason::NoData);
    assert_eq!(r.bytes_received, 0);
}

#[tokio::test]
async fn close_mid_banner_is_a_mismatch_naming_the_close() {
    let addr = serve(|mut s| async move {
        let _ = s.write_all(b"220 rea").await;
    })
    .await;
    let r = run(expecting(addr, contains("220 ready"))).await;
    assert_failed(&r, State::Critical, Reason::UnexpectedResponse);
    assert!(r.message.contains("closed the connection"), "{}", r.message);
    assert_eq!(r.received, "220 rea");
}

/// A reset after part of a banner is a reset, not a wrong answer: the server did not get
/// to finish. The partial data is kept in the result and named in the message.
#[tokio::test]
async fn reset_mid_banner_is_reset_with_the_partial_data() {
    let addr = serve(|mut s| async move {
        let _ = s.write_all(b"220 rea").await;
        sleep(Duration::from_millis(100)).await;
        reset(s);
    })
    .await;
    let r = run(expecting(addr, contains("220 ready"))).await;
    assert_failed(&r, State::Critical, Reason::Reset);
    assert_eq!(r.received, "220 rea");
    assert!(r.message.contains("220 rea"), "{}", r.message);
}

#[tokio::test]
async fn stops_at_max_bytes_on_an_endless_stream() {
    let addr = serve(|mut s| async move {
        let chunk = [b'A'; 1000];
        while s.write_all(&chunk).await.is_ok() {}
    })
    .await;
    let mut spec = expecting(addr, contains("never"));
    spec.limits.max_bytes = 10_000;
    let (r, took) = run_timed(spec).await;
    assert_failed(&r, State::Critical, Reason::UnexpectedResponse);
    assert_eq!(r.bytes_received, 10_000);
    assert!(r.truncated);
    assert!(r.message.contains("max_bytes"), "{}", r.message);
    assert!(r.received.ends_with("..."), "excerpt is cut");
    assert!(took < Duration::from_secs(2), "took {took:?}");
}

#[tokio::test]
async fn max_bytes_counts_the_whole_dialog() {
    let addr = banner_server(b"220 ready\r\n").await;
    let mut spec = spec(addr);
    spec.limits.max_bytes = 8;
    spec.steps
        .push(Step::Expect(Expectation::one(prefix("220"))));
    spec.steps
        .push(Step::Expect(Expectation::one(contains("ready"))));
    let r = run(spec).await;
    assert_failed(&r, State::Critical, Reason::UnexpectedResponse);
    assert_eq!(r.bytes_received, 8);
    assert!(r.truncated);
}

// ---------------------------------------------------------------- refusals and negatives

#[tokio::test]
async fn refused_port_is_refused_and_maps_through_the_state_map() {
    let addr = closed_port();
    let r = run(expecting(addr, prefix("220"))).await;
    assert_failed(&r, State::Critical, Reason::Refused);
    assert_eq!(r.peer, None);
    assert_eq!(r.failed_attempts.len(), 1);
    assert_eq!(r.failed_attempts[0].addr, addr);
    assert_eq!(r.failed_attempts[0].reason, Reason::Refused);

    let mut spec = spec(addr);
    spec.states.refused = State::Ok;
    let r = run(spec).await;
    assert_failed(&r, State::Ok, Reason::Refused);
}

#[tokio::test]
async fn must_be_closed_is_ok_on_a_closed_port() {
    let mut spec = spec(closed_port());
    spec.must_be_closed = true;
    let r = run(spec).await;
    assert_ok(&r);
    assert!(r.message.contains("closed"), "{}", r.message);
}

#[tokio::test]
async fn must_be_closed_is_critical_on_an_open_port() {
    let addr = serve(|s| async move { drop(s) }).await;
    let mut spec = spec(addr);
    spec.must_be_closed = true;
    let r = run(spec).await;
    assert_failed(&r, State::Critical, Reason::MustBeClosedButOpen);
    assert_eq!(r.peer, Some(addr));
}

/// A listener with a full accept queue drops further SYNs, so a connect can time out on
/// loopback without any firewall.
#[tokio::test]
async fn connect_timeout_ends_the_attempt_when_syns_go_unanswered() {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket
        .bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
        .unwrap();
    socket.listen(0).unwrap();
    let addr = socket.local_addr().unwrap().as_socket().unwrap();
    let mut fillers = Vec::new();
    // Fill the queue until a connect goes unanswered (one filler on Linux).
    for _ in 0..4 {
        match std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(100)) {
            Ok(s) => fillers.push(s),
            Err(_) => break,
        }
    }
    let mut spec = expecting(addr, prefix("220"));
    spec.limits.connect_timeout = Duration::from_millis(300);
    let (r, took) = run_timed(spec).await;
    assert_failed(&r, State::Critical, Reason::ConnectTimeout);
    assert_eq!(r.failed_attempts.len(), 1);
    assert!(took >= Duration::from_millis(290), "took {took:?}");
    assert!(took < Duration::from_millis(300) + SLACK, "took {took:?}");
    drop(socket);
}

// ---------------------------------------------------------------- addresses

#[tokio::test]
async fn probes_an_ipv6_loopback_target() {
    let addr = serve_on("[::1]:0", |mut s| async move {
        let _ = s.write_all(b"SSH-2.0-test\r\n").await;
        drain(&mut s).await;
    })
    .await;
    let spec = expecting(addr, prefix("SSH-2.0-"));
    assert_eq!(spec.target.to_string(), format!("[::1]:{}", addr.port()));
    let r = run(spec).await;
    assert_ok(&r);
    assert_eq!(r.peer, Some(addr));
    assert_eq!(r.target, format!("[::1]:{}", addr.port()));
}

#[tokio::test]
async fn ipv4_family_on_an_ipv6_literal_fails_resolution() {
    let mut spec = spec("[::1]:9".parse().unwrap());
    spec.family = Family::V4;
    let r = run(spec).await;
    assert_failed(&r, State::Critical, Reason::ResolutionFailed);
    assert!(r.message.contains("IPv4"), "{}", r.message);
    assert!(r.failed_attempts.is_empty());
}

#[tokio::test]
async fn resolves_a_host_name_and_reports_the_peer() {
    let addr = banner_server(b"220 ready\r\n").await;
    let mut spec = expecting(addr, prefix("220"));
    spec.target = format!("localhost:{}", addr.port()).parse().unwrap();
    spec.family = Family::V4;
    let r = run(spec).await;
    assert_ok(&r);
    assert_eq!(r.peer, Some(addr));
    assert!(r.timings.resolve.is_some());
    assert_eq!(r.target, format!("localhost:{}", addr.port()));
}

// This host's /etc/hosts maps "localhost" to 127.0.0.1 only, so no name resolves to a
// refusing address followed by a listening one; the fallback over several addresses is
// pinned by `falls_back_to_the_next_address_after_a_refusal` in src/engine.rs, which
// hands the engine the address list directly.

#[tokio::test]
async fn connects_from_the_configured_source_address() {
    let (tx, rx) = oneshot::channel::<IpAddr>();
    let tx = Arc::new(Mutex::new(Some(tx)));
    let addr = serve(move |mut s| {
        if let (Some(tx), Ok(peer)) = (tx.lock().unwrap().take(), s.peer_addr()) {
            let _ = tx.send(peer.ip());
        }
        async move {
            let _ = s.write_all(b"220 ready\r\n").await;
            drain(&mut s).await;
        }
    })
    .await;
    let mut spec = expecting(addr, prefix("220"));
    spec.source = Some("127.0.0.2".parse().unwrap());
    let r = run(spec).await;
    assert_ok(&r);
    assert_eq!(rx.await.unwrap(), "127.0.0.2".parse::<IpAddr>().unwrap());
}

#[tokio::test]
async fn source_of_the_other_family_fails_resolution_without_connecting() {
    let addr = banner_server(b"220 ready\r\n").await;
    let mut spec = expecting(addr, prefix("220"));
    spec.source = Some("::1".parse().unwrap());
    let r = run(spec).await;
    assert_failed(&r, State::Critical, Reason::ResolutionFailed);
    assert!(r.message.contains("source"), "{}", r.message);
    assert!(r.failed_attempts.is_empty());
}

// ---------------------------------------------------------------- polite quit and close

/// A server that sends a banner, then records what it receives until a full line, EOF or
/// reset; it answers `QUIT` with 221 and hangs up first.
async fn recording_server() -> (SocketAddr, oneshot::Receiver<(Vec<u8>, SocketAddr)>) {
    let (tx, rx) = oneshot::channel();
    let tx = Arc::new(Mutex::new(Some(tx)));
    let addr = serve(move |mut s| {
        let tx = tx.lock().unwrap().take();
        async move {
            let peer = s.peer_addr().unwrap();
            let _ = s.write_all(b"220 ready\r\n").await;
            let got = read_line(&mut s).await.unwrap_or_default();
            if got == b"QUIT\r\n" {
                let _ = s.write_all(b"221 bye\r\n").await;
            }
            drop(s);
            if let Some(tx) = tx {
                let _ = tx.send((got, peer));
            }
        }
    })
    .await;
    (addr, rx)
}

#[tokio::test]
async fn sends_exactly_the_quit_string_after_the_verdict() {
    let (addr, rx) = recording_server().await;
    let mut spec = expecting(addr, prefix("220"));
    spec.quit = Some(b"QUIT\r\n".to_vec());
    let r = run(spec).await;
    assert_ok(&r);
    let (got, client) = rx.await.unwrap();
    assert_eq!(got, b"QUIT\r\n");
    // The answer to the quit is not part of the result.
    assert_eq!(r.received, r"220 ready\r\n");
    sleep(Duration::from_millis(50)).await;
    assert_eq!(active_close_state(client, addr), None);
}

#[tokio::test]
async fn sends_nothing_after_the_verdict_without_a_quit_string() {
    let (addr, rx) = recording_server().await;
    let r = run(expecting(addr, prefix("220"))).await;
    assert_ok(&r);
    let (got, client) = rx.await.unwrap();
    assert_eq!(got, b"");
    sleep(Duration::from_millis(50)).await;
    assert_eq!(active_close_state(client, addr), None);
}

#[tokio::test]
async fn quit_is_bounded_when_the_server_keeps_talking() {
    let addr = serve(|mut s| async move {
        let _ = s.write_all(b"220 ready\r\n").await;
        let chunk = [b'z'; 1000];
        while s.write_all(&chunk).await.is_ok() {}
    })
    .await;
    let mut spec = expecting(addr, prefix("220"));
    spec.quit = Some(b"QUIT\r\n".to_vec());
    spec.limits.deadline = Duration::from_secs(1);
    let (r, took) = run_timed(spec).await;
    assert_ok(&r);
    assert!(r.bytes_received <= 64 * 1024);
    assert!(took < Duration::from_secs(1) + SLACK, "took {took:?}");
}

// ---------------------------------------------------------------- TLS

/// A CA, a PEM file of it for `Verify::CaFile`, and the probe's TLS settings.
struct Pki {
    ca: TestCa,
    dir: TempDir,
    ca_file: std::path::PathBuf,
}

impl Pki {
    fn new(name: &str) -> Self {
        let ca = TestCa::new();
        let dir = TempDir::new(name);
        let ca_file = dir.write("ca.pem", &ca.pem());
        Self { ca, dir, ca_file }
    }

    fn tls_spec(&self) -> TlsSpec {
        TlsSpec {
            sni: Some("localhost".into()),
            verify: Verify::CaFile(self.ca_file.clone()),
            client_cert: None,
            cert_days: None,
            min_version: None,
            max_version: None,
        }
    }
}

fn tls_probe(addr: SocketAddr, tls: TlsSpec) -> ProbeSpec {
    let mut spec = expecting(addr, prefix("220"));
    spec.implicit_tls = true;
    spec.tls = tls;
    spec
}

#[tokio::test]
async fn verifies_a_chain_against_a_ca_file_and_reports_the_certificate() {
    let pki = Pki::new("valid");
    let leaf = pki.ca.issue(&["localhost"], Validity::days(90));
    let addr = tls_banner_server(server_config(&leaf, None), b"220 tls ready\r\n").await;
    let r = run(tls_probe(addr, pki.tls_spec())).await;
    assert_ok(&r);
    assert_eq!(r.received, r"220 tls ready\r\n");
    let tls = r.tls.expect("TLS details");
    assert_eq!(tls.version, "TLSv1.3");
    assert!(!tls.cipher.is_empty());
    assert_eq!(tls.sni.as_deref(), Some("localhost"));
    assert!(tls.verified);
    assert!(tls.subject.contains("CN=localhost"), "{}", tls.subject);
    assert!(
        tls.issuer.contains("CN=portwarden test CA"),
        "{}",
        tls.issuer
    );
    assert!(tls.not_after.len() >= 20, "RFC 3339: {}", tls.not_after);
    assert!((89..=90).contains(&tls.days_left), "{}", tls.days_left);
    assert_eq!(tls.chain_len, 1);
    assert!(r.timings.tls.is_some());
}

/// The test server keeps Nagle on, as most servers do: its banner waits for the ACK of
/// the TLS 1.3 session tickets it sent first. Regression: Linux delayed that ACK by 40 ms,
/// and every TLS probe measured it. Compared, in the same run, with a server that has Nagle
/// off (nothing to wait for), so a busy machine slows both alike.
#[tokio::test]
async fn tls_banner_after_session_tickets_is_not_held_by_a_delayed_ack() {
    let pki = Pki::new("quickack");
    let leaf = pki.ca.issue(&["localhost"], Validity::days(90));
    let config = server_config(&leaf, None);
    let nagle = tls_banner_server_with(config.clone(), b"220 tls ready\r\n", false).await;
    let nodelay = tls_banner_server_with(config, b"220 tls ready\r\n", true).await;
    let (mut with_nagle, mut without) = (Duration::MAX, Duration::MAX);
    for _ in 0..5 {
        let (r, took) = run_timed(tls_probe(nagle, pki.tls_spec())).await;
        assert_ok(&r);
        with_nagle = with_nagle.min(took);
        let (r, took) = run_timed(tls_probe(nodelay, pki.tls_spec())).await;
        assert_ok(&r);
        without = without.min(took);
    }
    assert!(
        with_nagle < without + Duration::from_millis(25),
        "fastest of 5 with Nagle on: {with_nagle:?}, off: {without:?}"
    );
}

#[tokio::test]
async fn rejects_an_expired_certificate() {
    let pki = Pki::new("expired");
    let leaf = pki.ca.issue(&["localhost"], Validity::expired(2));
    let addr = tls_banner_server(server_config(&leaf, None), b"220 tls ready\r\n").await;
    let r = run(tls_probe(addr, pki.tls_spec())).await;
    assert_failed(&r, State::Critical, Reason::TlsFailure);
    assert!(r.message.contains("expired"), "{}", r.message);
}

#[tokio::test]
async fn rejects_a_self_signed_certificate_with_system_roots() {
    let leaf = self_signed(&["localhost"]);
    let addr = tls_banner_server(server_config(&leaf, None), b"220 tls ready\r\n").await;
    let tls = TlsSpec {
        sni: Some("localhost".into()),
        ..TlsSpec::default()
    };
    let r = run(tls_probe(addr, tls)).await;
    assert_failed(&r, State::Critical, Reason::TlsFailure);
    assert!(r.message.contains("unknown issuer"), "{}", r.message);
}

#[tokio::test]
async fn rejects_a_certificate_for_another_name() {
    let pki = Pki::new("name");
    let leaf = pki.ca.issue(&["other.example"], Validity::days(90));
    let addr = tls_banner_server(server_config(&leaf, None), b"220 tls ready\r\n").await;
    let r = run(tls_probe(addr, pki.tls_spec())).await;
    assert_failed(&r, State::Critical, Reason::TlsFailure);
    assert!(r.message.contains("not valid for"), "{}", r.message);
}

#[tokio::test]
async fn insecure_mode_accepts_an_expired_certificate_but_cert_days_flag_it() {
    let pki = Pki::new("insecure");
    let leaf = pki.ca.issue(&["localhost"], Validity::expired(2));
    let addr = tls_banner_server(server_config(&leaf, None), b"220 tls ready\r\n").await;
    let mut tls = pki.tls_spec();
    tls.verify = Verify::Insecure;
    let r = run(tls_probe(addr, tls.clone())).await;
    assert_ok(&r);
    let info = r.tls.as_ref().unwrap();
    assert!(!info.verified);
    assert!(info.days_left < 0, "{}", info.days_left);

    tls.cert_days = Some(CertDays {
        warning: 30,
        critical: 7,
    });
    let r = run(tls_probe(addr, tls)).await;
    assert_failed(&r, State::Critical, Reason::CertificateExpiring);
    assert!(r.message.contains("expired 2 days ago"), "{}", r.message);
    assert!(r.tls.unwrap().days_left < 0);
}

#[tokio::test]
async fn warns_when_the_certificate_expires_within_the_warning_days() {
    let pki = Pki::new("expiring");
    let leaf = pki.ca.issue(&["localhost"], Validity::days(10));
    let addr = tls_banner_server(server_config(&leaf, None), b"220 tls ready\r\n").await;
    let mut tls = pki.tls_spec();
    tls.cert_days = Some(CertDays {
        warning: 30,
        critical: 5,
    });
    let r = run(tls_probe(addr, tls)).await;
    assert_failed(&r, State::Warning, Reason::CertificateExpiring);
    assert!(r.message.contains("expires in 10 days"), "{}", r.message);
}

#[tokio::test]
async fn presents_a_client_certificate_when_the_server_requires_one() {
    let pki = Pki::new("mtls");
    let leaf = pki.ca.issue(&["localhost"], Validity::days(90));
    let client = pki.ca.issue(&["prober"], Validity::days(90));
    let config = server_config(&leaf, Some(pki.ca.roots()));
    let addr = tls_banner_server(config, b"220 hello client\r\n").await;

    let mut tls = pki.tls_spec();
    tls.client_cert = Some(ClientCert {
        cert: pki.dir.write("client.pem", &client.cert_pem),
        key: pki.dir.write("client.key", &client.key_pem),
    });
    let r = run(tls_probe(addr, tls)).await;
    assert_ok(&r);
    assert_eq!(r.received, r"220 hello client\r\n");
}

/// In TLS 1.3 the client finishes its handshake before the server checks the client
/// certificate; the server's refusal arrives as an alert on the first read and must be
/// reported as a TLS failure, not as a reset.
#[tokio::test]
async fn fails_tls_without_a_required_client_certificate() {
    let pki = Pki::new("mtls-missing");
    let leaf = pki.ca.issue(&["localhost"], Validity::days(90));
    let config = server_config(&leaf, Some(pki.ca.roots()));
    let addr = tls_banner_server(config, b"220 hello client\r\n").await;
    let (r, took) = run_timed(tls_probe(addr, pki.tls_spec())).await;
    assert_failed(&r, State::Critical, Reason::TlsFailure);
    assert!(r.message.contains("alert"), "{}", r.message);
    assert!(took < Duration::from_secs(1), "took {took:?}");
}

#[tokio::test]
async fn plain_text_server_on_a_tls_probe_fails_tls_within_the_deadline() {
    let talking = banner_server(b"220 plain text here\r\n").await;
    let silent = banner_server(b"").await;
    let pki = Pki::new("plain");
    for addr in [talking, silent] {
        let mut spec = tls_probe(addr, pki.tls_spec());
        spec.limits.deadline = Duration::from_millis(700);
        let (r, took) = run_timed(spec).await;
        assert_failed(&r, State::Critical, Reason::TlsFailure);
        assert!(took < Duration::from_millis(700) + SLACK, "took {took:?}");
    }
}

/// rustls reports a TCP close without close_notify as `UnexpectedEof`; the engine must
/// read it as the server hanging up, like on a plain connection, not as a reset.
#[tokio::test]
async fn tls_server_hanging_up_without_close_notify_is_no_data() {
    let pki = Pki::new("hangup");
    let leaf = pki.ca.issue(&["localhost"], Validity::days(90));
    let acceptor = tokio_rustls::TlsAcceptor::from(server_config(&leaf, None));
    let addr = serve(move |s| {
        let acceptor = acceptor.clone();
        async move {
            if let Ok(tls) = acceptor.accept(s).await {
                drop(tls);
            }
        }
    })
    .await;
    let r = run(tls_probe(addr, pki.tls_spec())).await;
    assert_failed(&r, State::Critical, Reason::NoData);
    assert!(r.tls.is_some(), "the handshake itself succeeded");
}

/// A failed handshake must not leave the prober's socket in TIME_WAIT: the connection is
/// reset, whichever way the probe ends.
#[tokio::test]
async fn failed_tls_handshake_leaves_no_time_wait() {
    let pki = Pki::new("timewait");
    let leaf = pki.ca.issue(&["localhost"], Validity::expired(2));
    let acceptor = tokio_rustls::TlsAcceptor::from(server_config(&leaf, None));
    let (tx, rx) = oneshot::channel::<SocketAddr>();
    let tx = Arc::new(Mutex::new(Some(tx)));
    let addr = serve(move |s| {
        let acceptor = acceptor.clone();
        let tx = tx.lock().unwrap().take();
        async move {
            let peer = s.peer_addr().unwrap();
            // The server closes its side too, as real servers do after a failed handshake.
            let _ = acceptor.accept(s).await;
            sleep(Duration::from_millis(50)).await;
            if let Some(tx) = tx {
                let _ = tx.send(peer);
            }
        }
    })
    .await;
    let r = run(tls_probe(addr, pki.tls_spec())).await;
    assert_failed(&r, State::Critical, Reason::TlsFailure);
    let client = rx.await.unwrap();
    assert_eq!(active_close_state(client, addr), None);
}

// ---------------------------------------------------------------- STARTTLS

/// A small SMTP server: greeting, EHLO, STARTTLS (answered with `starttls_reply`), the TLS
/// handshake, and QUIT. Sends every command line it read when the session ends.
async fn smtp_server(
    config: Arc<rustls::ServerConfig>,
    starttls_reply: &'static [u8],
) -> (SocketAddr, oneshot::Receiver<Vec<String>>) {
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let (tx, rx) = oneshot::channel();
    let tx = Arc::new(Mutex::new(Some(tx)));
    let addr = serve(move |mut s| {
        let acceptor = acceptor.clone();
        let tx = tx.lock().unwrap().take();
        async move {
            let mut seen = Vec::new();
            let text = |l: &[u8]| String::from_utf8_lossy(l).trim_end().to_string();
            let _ = s.write_all(b"220 smtp.test ESMTP\r\n").await;
            if let Some(line) = read_line(&mut s).await {
                seen.push(text(&line));
                let _ = s.write_all(b"250-smtp.test\r\n").await;
                sleep(Duration::from_millis(20)).await;
                let _ = s.write_all(b"250-PIPELINING\r\n250 STARTTLS\r\n").await;
            }
            if let Some(line) = read_line(&mut s).await {
                seen.push(text(&line));
                let _ = s.write_all(starttls_reply).await;
            }
            if starttls_reply.starts_with(b"220") {
                if let Ok(mut tls) = acceptor.accept(s).await {
                    if let Some(line) = read_line(&mut tls).await {
                        seen.push(text(&line));
                        let _ = tls.write_all(b"221 bye\r\n").await;
                        let _ = tls.shutdown().await;
                    }
                }
            } else if let Some(line) = read_line(&mut s).await {
                seen.push(text(&line));
                let _ = s.write_all(b"221 bye\r\n").await;
            }
            if let Some(tx) = tx {
                let _ = tx.send(seen);
            }
        }
    })
    .await;
    (addr, rx)
}

fn starttls_spec(addr: SocketAddr, pki: &Pki) -> ProbeSpec {
    let mut spec = expecting(
        addr,
        smtp_reply("smtp reply 220", portwarden_probe::reply::code_is::<220>),
    );
    spec.steps.push(Step::StartTls(StartTls::Smtp));
    spec.tls = pki.tls_spec();
    spec.quit = Some(b"QUIT\r\n".to_vec());
    spec
}

#[tokio::test]
async fn upgrades_an_smtp_session_with_starttls_and_quits_inside_tls() {
    let pki = Pki::new("starttls");
    let leaf = pki.ca.issue(&["localhost"], Validity::days(90));
    let (addr, rx) = smtp_server(server_config(&leaf, None), b"220 go ahead\r\n").await;
    let r = run(starttls_spec(addr, &pki)).await;
    assert_ok(&r);
    let tls = r.tls.expect("TLS details after STARTTLS");
    assert!(tls.verified);
    assert!(tls.subject.contains("CN=localhost"), "{}", tls.subject);
    assert!(r.timings.tls.is_some());
    assert_eq!(
        rx.await.unwrap(),
        vec!["EHLO portwarden", "STARTTLS", "QUIT"]
    );
}

#[tokio::test]
async fn starttls_refusal_is_starttls_refused() {
    let pki = Pki::new("starttls-refused");
    let leaf = pki.ca.issue(&["localhost"], Validity::days(90));
    let (addr, rx) = smtp_server(
        server_config(&leaf, None),
        b"454 TLS not available due to temporary reason\r\n",
    )
    .await;
    let (r, took) = run_timed(starttls_spec(addr, &pki)).await;
    assert_failed(&r, State::Critical, Reason::StarttlsRefused);
    assert!(r.message.contains("454 TLS not available"), "{}", r.message);
    assert!(r.tls.is_none());
    assert!(took < Duration::from_secs(1), "took {took:?}");
    // The polite quit still goes out, on the plain connection.
    assert_eq!(
        rx.await.unwrap(),
        vec!["EHLO portwarden", "STARTTLS", "QUIT"]
    );
}

// ---------------------------------------------------------------- TLS in place (Step::Tls)

/// A server that speaks plain text, then TLS on the same connection when asked: banner
/// `220 plain`, reads `STARTTLS`, answers `go_ahead`, does the handshake, says
/// `250 secure` inside TLS and reports the line read there (e.g. `QUIT`). A client that
/// sends anything but `STARTTLS` gets `500 what?` and the plain connection stays open.
async fn plain_then_tls_server(
    config: Arc<rustls::ServerConfig>,
    go_ahead: &'static [u8],
) -> (SocketAddr, oneshot::Receiver<Vec<String>>) {
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let (tx, rx) = oneshot::channel();
    let tx = Arc::new(Mutex::new(Some(tx)));
    let addr = serve(move |mut s| {
        let acceptor = acceptor.clone();
        let tx = tx.lock().unwrap().take();
        async move {
            let mut seen = Vec::new();
            let text = |l: &[u8]| String::from_utf8_lossy(l).trim_end().to_string();
            let _ = s.write_all(b"220 plain\r\n").await;
            if let Some(line) = read_line(&mut s).await {
                seen.push(text(&line));
                if line.starts_with(b"STARTTLS") {
                    let _ = s.write_all(go_ahead).await;
                    if let Ok(mut tls) = acceptor.accept(s).await {
                        let _ = tls.write_all(b"250 secure\r\n").await;
                        let _ = tls.flush().await;
                        if let Some(line) = read_line(&mut tls).await {
                            seen.push(text(&line));
                        }
                    }
                } else {
                    let _ = s.write_all(b"500 what?\r\n").await;
                    drain(&mut s).await;
                }
            }
            if let Some(tx) = tx {
                let _ = tx.send(seen);
            }
        }
    })
    .await;
    (addr, rx)
}

/// blackbox_exporter's dialog: expect the banner, send STARTTLS, expect the go-ahead,
/// upgrade, expect inside TLS, send inside TLS.
fn tls_in_place_spec(addr: SocketAddr, tls: TlsSpec) -> ProbeSpec {
    let mut spec = expecting(addr, prefix("220 plain"));
    spec.steps.push(Step::Send(b"STARTTLS\n".to_vec()));
    spec.steps
        .push(Step::Expect(Expectation::one(prefix("220 go"))));
    spec.steps.push(Step::Tls);
    spec.steps
        .push(Step::Expect(Expectation::one(prefix("250 secure"))));
    spec.steps.push(Step::Send(b"QUIT\n".to_vec()));
    spec.tls = tls;
    spec
}

#[tokio::test]
async fn tls_step_upgrades_in_place_and_the_dialog_continues_inside_tls() {
    let pki = Pki::new("tls-step");
    let leaf = pki.ca.issue(&["localhost"], Validity::days(90));
    let (addr, rx) = plain_then_tls_server(server_config(&leaf, None), b"220 go ahead\r\n").await;
    let r = run(tls_in_place_spec(addr, pki.tls_spec())).await;
    assert_ok(&r);
    let tls = r.tls.expect("TLS details after the in-place upgrade");
    assert!(tls.verified);
    assert_eq!(tls.version, "TLSv1.3");
    assert_eq!(tls.leaf_dns_names, vec!["localhost".to_string()]);
    assert_eq!(tls.leaf_subject_rfc2253, "CN=localhost");
    assert_eq!(tls.leaf_issuer_rfc2253, "CN=portwarden test CA");
    assert_eq!(tls.leaf_sha256.len(), 64);
    assert!(r.timings.tls.is_some());
    // Both the plain and the TLS part of the dialog were read.
    assert!(
        r.received
            .starts_with(r"220 plain\r\n220 go ahead\r\n250 secure"),
        "{}",
        r.received
    );
    assert_eq!(rx.await.unwrap(), vec!["STARTTLS", "QUIT"]);
}

#[tokio::test]
async fn tls_step_reports_a_failed_handshake_as_tls_failure() {
    let pki = Pki::new("tls-step-untrusted");
    // Signed by nobody the probe trusts.
    let leaf = self_signed(&["localhost"]);
    let (addr, _rx) = plain_then_tls_server(server_config(&leaf, None), b"220 go ahead\r\n").await;
    let (r, took) = run_timed(tls_in_place_spec(addr, pki.tls_spec())).await;
    assert_failed(&r, State::Critical, Reason::TlsFailure);
    assert!(r.message.contains("unknown issuer"), "{}", r.message);
    assert!(r.tls.is_none());
    assert!(took < Duration::from_secs(1), "took {took:?}");
}

#[tokio::test]
async fn tls_step_after_a_refused_request_is_never_reached() {
    let pki = Pki::new("tls-step-refused");
    let leaf = pki.ca.issue(&["localhost"], Validity::days(90));
    let (addr, rx) = plain_then_tls_server(server_config(&leaf, None), b"220 go ahead\r\n").await;
    let mut spec = tls_in_place_spec(addr, pki.tls_spec());
    spec.steps[1] = Step::Send(b"HELLO\n".to_vec());
    let r = run(spec).await;
    assert_failed(&r, State::Critical, Reason::UnexpectedResponse);
    assert!(r.message.contains("500 what?"), "{}", r.message);
    assert!(r.tls.is_none());
    drop(rx);
}

#[tokio::test]
async fn tls_step_presents_the_client_certificate_the_server_requires() {
    let pki = Pki::new("tls-step-client");
    let leaf = pki.ca.issue(&["localhost"], Validity::days(90));
    let client = pki.ca.issue(&["prober"], Validity::days(90));
    let config = server_config(&leaf, Some(pki.ca.roots()));
    let (addr, _rx) = plain_then_tls_server(config.clone(), b"220 go ahead\r\n").await;
    let mut tls = pki.tls_spec();
    tls.client_cert = Some(ClientCert {
        cert: pki.dir.write("client.pem", &client.cert_pem),
        key: pki.dir.write("client.key", &client.key_pem),
    });
    assert_ok(&run(tls_in_place_spec(addr, tls)).await);
    // Without it the server's alert arrives on the first read inside TLS.
    let (addr, _rx) = plain_then_tls_server(config, b"220 go ahead\r\n").await;
    let r = run(tls_in_place_spec(addr, pki.tls_spec())).await;
    assert_failed(&r, State::Critical, Reason::TlsFailure);
}

#[tokio::test]
async fn tls_version_bounds_are_offered_and_checked() {
    let pki = Pki::new("tls-versions");
    let leaf = pki.ca.issue(&["localhost"], Validity::days(90));
    let addr = tls_banner_server(server_config(&leaf, None), b"220 tls ready\r\n").await;
    let mut tls = pki.tls_spec();
    tls.max_version = Some(TlsVersion::Tls12);
    let r = run(tls_probe(addr, tls.clone())).await;
    assert_ok(&r);
    assert_eq!(r.tls.unwrap().version, "TLSv1.2");
    tls.max_version = None;
    tls.min_version = Some(TlsVersion::Tls13);
    assert_eq!(
        run(tls_probe(addr, tls.clone())).await.tls.unwrap().version,
        "TLSv1.3"
    );
    tls.max_version = Some(TlsVersion::Tls12);
    let err = Probe::new(tls_probe(addr, tls)).unwrap_err();
    assert_eq!(
        err,
        SpecError::Tls("TLS max version TLS 1.2 is below min version TLS 1.3".into())
    );
}

#[tokio::test]
async fn a_shared_tls_client_reads_its_files_once() {
    let pki = Pki::new("tls-client-shared");
    let leaf = pki.ca.issue(&["localhost"], Validity::days(90));
    let addr = tls_banner_server(server_config(&leaf, None), b"220 tls ready\r\n").await;
    let client = TlsClient::new(&pki.tls_spec()).unwrap();
    // The CA file is gone: a probe built with the client does not look for it.
    std::fs::remove_file(&pki.ca_file).unwrap();
    let r = Probe::with_tls_client(tls_probe(addr, pki.tls_spec()), &client)
        .unwrap()
        .run()
        .await;
    assert_ok(&r);
    assert!(r.tls.unwrap().verified);
    assert!(matches!(
        Probe::new(tls_probe(addr, pki.tls_spec())),
        Err(SpecError::Tls(_))
    ));
}

// ---------------------------------------------------------------- capture expansion

/// A server that hands out a token in its banner and wants it back: `AUTH <token>`.
async fn token_server() -> SocketAddr {
    serve(|mut s| async move {
        let _ = s
            .write_all(b"220-hello\r\n220 token=abc123 ready\r\n")
            .await;
        if let Some(line) = read_line(&mut s).await {
            let reply: &[u8] = if line == b"AUTH abc123 $ end\n" {
                b"250 ok\r\n"
            } else {
                b"500 bad token\r\n"
            };
            let _ = s.write_all(reply).await;
        }
        drain(&mut s).await;
    })
    .await
}

fn token_spec(addr: SocketAddr, expect: &str, send: &str) -> ProbeSpec {
    let mut spec = expecting(addr, Matcher::regex(expect).unwrap());
    spec.steps
        .push(Step::SendExpanded(send.as_bytes().to_vec()));
    spec.steps
        .push(Step::Expect(Expectation::one(prefix("250 ok"))));
    spec
}

#[tokio::test]
async fn send_expanded_uses_the_capture_groups_of_the_previous_match() {
    let addr = token_server().await;
    for (expect, send) in [
        (
            r"(?mR)^220 token=(?P<tok>\w+) ready$",
            "AUTH ${tok} $$ end\n",
        ),
        (r"(?mR)^220 token=(\w+)", "AUTH $1 $$ end\n"),
    ] {
        let r = run(token_spec(addr, expect, send)).await;
        assert_ok(&r);
    }
    // A group that is not there expands to nothing: the server gets the wrong token.
    let r = run(token_spec(
        addr,
        r"(?m)^220 token=(\w+)",
        "AUTH $2 $$ end\n",
    ))
    .await;
    assert_failed(&r, State::Critical, Reason::UnexpectedResponse);
    assert!(r.message.contains("500 bad token"), "{}", r.message);
}

#[test]
fn send_expanded_needs_a_regex_expect_right_before() {
    let mut spec = expecting(closed_port(), prefix("220"));
    spec.steps.push(Step::SendExpanded(b"$1\n".to_vec()));
    assert_eq!(
        Probe::new(spec).unwrap_err(),
        SpecError::ExpansionWithoutRegex { step: 2 }
    );
    assert_eq!(
        SpecError::ExpansionWithoutRegex { step: 2 }.to_string(),
        "send step 2 expands capture groups, but step 1 is no regex expect"
    );
}

// ---------------------------------------------------------------- setup errors

#[test]
fn rejects_a_zero_deadline() {
    let mut spec = spec(closed_port());
    spec.limits.deadline = Duration::ZERO;
    let err = Probe::new(spec).unwrap_err();
    assert!(matches!(err, SpecError::BadLimit(_)), "{err:?}");
    assert!(err.to_string().contains("deadline"), "{err}");
}

#[test]
fn names_a_missing_ca_file_in_the_error() {
    let mut spec = spec(closed_port());
    spec.implicit_tls = true;
    let path = std::env::temp_dir().join("portwarden-no-such-dir/ca.pem");
    spec.tls.verify = Verify::CaFile(path.clone());
    let err = Probe::new(spec).unwrap_err();
    assert!(matches!(err, SpecError::Tls(_)), "{err:?}");
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
}

#[test]
fn a_ca_file_that_is_a_device_is_refused_without_reading_it() {
    // `/dev/zero` as the CA file used to be read until memory ran out.
    let mut spec = spec(closed_port());
    spec.implicit_tls = true;
    spec.tls.verify = Verify::CaFile("/dev/zero".into());
    let err = Probe::new(spec).unwrap_err();
    assert!(err.to_string().contains("character device"), "{err}");
}

#[test]
fn rejects_an_invalid_sni_name_at_setup() {
    let mut spec = spec(closed_port());
    spec.implicit_tls = true;
    spec.tls.sni = Some("not a host name".into());
    let err = Probe::new(spec).unwrap_err();
    assert!(matches!(err, SpecError::Tls(_)), "{err:?}");
    assert!(err.to_string().contains("not a host name"), "{err}");
}

#[tokio::test]
async fn failed_dialog_sends_no_quit_and_returns_at_once() {
    let (addr, rx) = recording_server().await;
    let mut spec = expecting(addr, prefix("554"));
    spec.quit = Some(b"QUIT\r\n".to_vec());
    let (r, took) = run_timed(spec).await;
    assert_failed(&r, State::Critical, Reason::UnexpectedResponse);
    let (got, _) = rx.await.unwrap();
    assert_eq!(
        got, b"",
        "the quit string went to a server that failed the check"
    );
    assert!(
        took < Duration::from_millis(300),
        "waited for a quit grace: {took:?}"
    );
}

#[tokio::test]
async fn must_be_closed_with_an_unusable_source_is_not_ok() {
    // 192.0.2.1 (TEST-NET-1) is not an address of this host: bind fails locally, nothing
    // is sent, and nothing about the port has been proven.
    let mut spec = spec(closed_port());
    spec.must_be_closed = true;
    spec.source = Some("192.0.2.1".parse().unwrap());
    let r = run(spec).await;
    assert_failed(&r, State::Critical, Reason::ConnectFailed);
}

#[test]
fn rejects_an_expect_step_without_matchers() {
    let mut spec = spec(closed_port());
    spec.steps = vec![
        Step::Send(b"x".to_vec()),
        Step::Expect(Expectation {
            matchers: vec![],
            mode: portwarden_probe::MatchMode::All,
        }),
    ];
    let err = Probe::new(spec).unwrap_err();
    assert_eq!(err, SpecError::EmptyExpectation { step: 2 });
}
