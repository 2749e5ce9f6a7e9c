//! Consecutive expect steps are decided from the data already received: replies that arrive
//! in one read, one read per line or byte by byte give the same verdict. Each case runs
//! against a real server on loopback that writes its replies in all three ways.

// Helpers and server closures are not `#[test]` functions, but a panic there is the
// test's failure report all the same.
#![expect(
    clippy::unwrap_used,
    reason = "a test file: its helpers outside #[test] may unwrap too (STYLE.md)"
)]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use portwarden_probe::expect::ReplyParser;
use portwarden_probe::{
    DialogEvent, ExpectEnd, Expectation, Matcher, Probe, ProbeResult, ProbeSpec, Reason, StartTls,
    State, Step,
};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::time::sleep;

/// How a server cuts what it writes.
#[derive(Debug, Clone, Copy)]
enum Split {
    /// Everything in one write.
    Whole,
    /// One write per line.
    Lines,
    /// One write per byte.
    Bytes,
}

const SPLITS: [Split; 3] = [Split::Whole, Split::Lines, Split::Bytes];

/// One turn of a scripted server: optionally wait for a line from the client, then write.
#[derive(Debug, Clone, Copy)]
struct Turn {
    after_client_line: bool,
    reply: &'static [u8],
}

/// Writes first (a banner).
fn says(reply: &'static [u8]) -> Turn {
    Turn {
        after_client_line: false,
        reply,
    }
}

/// Writes after reading one line from the client.
fn answers(reply: &'static [u8]) -> Turn {
    Turn {
        after_client_line: true,
        reply,
    }
}

/// What the server does once its script is done.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Then {
    /// Keeps the connection open, reading and discarding.
    StayOpen,
    /// Closes the connection (FIN).
    Close,
}

async fn write_split(s: &mut TcpStream, data: &[u8], split: Split) {
    match split {
        Split::Whole => {
            let _ = s.write_all(data).await;
        }
        Split::Lines => {
            for line in data.split_inclusive(|&b| b == b'\n') {
                let _ = s.write_all(line).await;
                sleep(Duration::from_millis(5)).await;
            }
        }
        Split::Bytes => {
            for b in data {
                let _ = s.write_all(std::slice::from_ref(b)).await;
                sleep(Duration::from_millis(1)).await;
            }
        }
    }
}

/// A server that plays `script`, cutting every write as `split` says.
async fn scripted(script: Vec<Turn>, split: Split, then: Then) -> SocketAddr {
    serve(move |mut s| {
        let script = script.clone();
        async move {
            let _ = s.set_nodelay(true);
            for turn in script {
                if turn.after_client_line && read_line(&mut s).await.is_none() {
                    return;
                }
                write_split(&mut s, turn.reply, split).await;
            }
            if then == Then::StayOpen {
                drain(&mut s).await;
            }
        }
    })
    .await
}

fn dialog(addr: SocketAddr, steps: Vec<Step>) -> ProbeSpec {
    let mut spec = spec(addr);
    spec.steps = steps;
    spec
}

fn expect(m: Matcher) -> Step {
    Step::Expect(Expectation::one(m))
}

fn line(re: &str) -> Step {
    expect(Matcher::line_regex(re).unwrap())
}

fn send(text: &str) -> Step {
    Step::Send(text.as_bytes().to_vec())
}

fn reply(name: &'static str, parse: fn(&[u8]) -> portwarden_probe::Verdict) -> Step {
    expect(Matcher::Reply(ReplyParser { name, parse }))
}

async fn run_each_split(
    script: &[Turn],
    then: Then,
    steps: impl Fn(SocketAddr) -> ProbeSpec,
) -> Vec<(Split, ProbeResult)> {
    let mut results = Vec::new();
    for split in SPLITS {
        let addr = scripted(script.to_vec(), split, then).await;
        let result = Probe::new(steps(addr)).unwrap().run_traced().await;
        results.push((split, result));
    }
    results
}

fn assert_all_ok(results: &[(Split, ProbeResult)]) {
    for (split, r) in results {
        assert_eq!(
            (r.state, r.reason),
            (State::Ok, None),
            "{split:?}: {} (transcript {:?})",
            r.message,
            r.transcript
        );
    }
}

const TWO_LINES: &[u8] = b"220-first line\r\n220 second line\r\n";

#[tokio::test]
async fn second_expect_is_decided_from_the_line_already_received() {
    // The issue's example: both lines in one write made the second step wait for new
    // bytes until the deadline.
    let results = run_each_split(&[says(TWO_LINES)], Then::StayOpen, |addr| {
        dialog(
            addr,
            vec![expect(prefix("220-first")), expect(contains("220 second"))],
        )
    })
    .await;
    assert_all_ok(&results);
}

#[tokio::test]
async fn a_prefix_after_a_prefix_starts_at_the_next_line() {
    // The first match ends inside its line; the rest of that line is not the next reply,
    // however the line was cut.
    let results = run_each_split(&[says(TWO_LINES)], Then::StayOpen, |addr| {
        dialog(
            addr,
            vec![expect(prefix("220-first")), expect(prefix("220 second"))],
        )
    })
    .await;
    assert_all_ok(&results);
}

#[tokio::test]
async fn three_expects_on_one_multi_line_reply_match_in_order() {
    let script = [says(b"220-a\r\n220-b\r\n220 c\r\n")];
    let results = run_each_split(&script, Then::StayOpen, |addr| {
        dialog(
            addr,
            vec![
                expect(Matcher::regex("220-a").unwrap()),
                expect(prefix("220-b")),
                expect(prefix("220 c")),
            ],
        )
    })
    .await;
    assert_all_ok(&results);
}

#[tokio::test]
async fn an_expect_never_matches_data_an_earlier_step_used_up() {
    // The second step wants "220-first" again: it was used up by the first step, and the
    // rest does not contain it, so the step fails (at the idle timeout) instead of
    // re-matching old data.
    let results = run_each_split(&[says(TWO_LINES)], Then::StayOpen, |addr| {
        dialog(
            addr,
            vec![expect(prefix("220-first")), expect(contains("220-first"))],
        )
    })
    .await;
    for (split, r) in results {
        assert_eq!(r.reason, Some(Reason::UnexpectedResponse), "{split:?}");
        assert_eq!(r.expect_end, Some(ExpectEnd::Idle), "{split:?}");
        assert!(
            r.message.contains(r#"got "220 second line\r\n""#),
            "{split:?}: {}",
            r.message
        );
    }
}

/// The ESMTP exchange of blackbox_exporter's usual STARTTLS module, line regexes and all,
/// without the handshake itself.
#[tokio::test]
async fn smtp_capability_lines_are_matched_line_by_line() {
    let script = [
        says(b"220 mail.test ESMTP\r\n"),
        answers(b"250-mail.test\r\n250-SIZE 1000\r\n250-STARTTLS\r\n250 HELP\r\n"),
        answers(b"220 Ready to start TLS\r\n"),
    ];
    let results = run_each_split(&script, Then::StayOpen, |addr| {
        dialog(
            addr,
            vec![
                line("^220 "),
                send("EHLO prober\n"),
                line("^250-STARTTLS"),
                line("^250 "),
                send("STARTTLS\n"),
                line("^220"),
            ],
        )
    })
    .await;
    assert_all_ok(&results);
    // The transcript says which step matched what.
    let (_, r) = &results[0];
    let matched: Vec<(usize, &str)> = r
        .transcript
        .iter()
        .filter_map(|e| match e {
            DialogEvent::Matched { step, used, .. } => Some((*step, used.as_str())),
            _ => None,
        })
        .collect();
    assert_eq!(
        matched,
        vec![
            (0, r"220 mail.test ESMTP\r\n"),
            (2, r"250-mail.test\r\n250-SIZE 1000\r\n250-STARTTLS\r\n"),
            (3, r"250 HELP\r\n"),
            (5, r"220 Ready to start TLS\r\n"),
        ]
    );
}

#[tokio::test]
async fn reply_parsers_use_up_only_their_reply() {
    // A multi-line greeting decided by the SMTP reply parser, then a line right behind it
    // in the same write.
    let script = [says(b"220-mail\r\n220 ready\r\n250 next\r\n")];
    let results = run_each_split(&script, Then::StayOpen, |addr| {
        dialog(
            addr,
            vec![
                reply("smtp greeting 220", portwarden_probe::reply::code_is::<220>),
                reply("smtp reply 250", portwarden_probe::reply::code_is::<250>),
            ],
        )
    })
    .await;
    assert_all_ok(&results);
}

#[tokio::test]
async fn starttls_negotiation_replies_are_read_however_they_are_cut() {
    // The SMTP STARTTLS preset's own negotiation, against an EHLO reply in many lines.
    let script = [
        says(b"220-mail.test\r\n220 ESMTP\r\n"),
        answers(b"250-mail.test\r\n250-PIPELINING\r\n250-STARTTLS\r\n250 8BITMIME\r\n"),
        answers(b"220 2.0.0 Ready to start TLS\r\n"),
    ];
    let results = run_each_split(&script, Then::StayOpen, |addr| {
        let mut steps = vec![reply(
            "smtp greeting 220",
            portwarden_probe::reply::code_is::<220>,
        )];
        steps.extend(StartTls::Smtp.negotiation());
        dialog(addr, steps)
    })
    .await;
    assert_all_ok(&results);
}

#[tokio::test]
async fn binary_patterns_use_up_exactly_their_bytes() {
    // No line ends in a binary handshake: the second pattern follows the first directly.
    let script = [says(&[0x00, 0x01, 0x02, 0x03, 0x04])];
    let results = run_each_split(&script, Then::StayOpen, |addr| {
        dialog(
            addr,
            vec![
                expect(Matcher::Prefix(vec![0x00, 0x01])),
                expect(Matcher::Prefix(vec![0x02, 0x03])),
                expect(Matcher::Prefix(vec![0x04])),
            ],
        )
    })
    .await;
    assert_all_ok(&results);
}

#[tokio::test]
async fn an_unterminated_last_line_matches_once_the_server_closes() {
    let results = run_each_split(&[says(b"220 ready")], Then::Close, |addr| {
        dialog(addr, vec![line("^220 ready$")])
    })
    .await;
    assert_all_ok(&results);
}

#[tokio::test]
async fn an_unterminated_line_is_not_a_line_while_the_connection_stays_open() {
    // blackbox's line reader waits for the line end until its deadline; so does a line
    // regex, and says so.
    let results = run_each_split(&[says(b"220 ready")], Then::StayOpen, |addr| {
        let mut spec = dialog(addr, vec![line("^220 ready$")]);
        spec.limits.idle_timeout = spec.limits.deadline;
        spec
    })
    .await;
    for (split, r) in results {
        assert_eq!(r.reason, Some(Reason::UnexpectedResponse), "{split:?}");
        assert_eq!(r.expect_end, Some(ExpectEnd::Deadline), "{split:?}");
    }
}

#[tokio::test]
async fn how_an_unmatched_expect_ended_is_recorded() {
    // Closed before a match: the answer was wrong.
    let addr = scripted(vec![says(b"554 go away\r\n")], Split::Whole, Then::Close).await;
    let r = Probe::new(dialog(addr, vec![line("^220")]))
        .unwrap()
        .run_traced()
        .await;
    assert_eq!(r.expect_end, Some(ExpectEnd::Closed));
    assert!(r.expect_end.unwrap().answer_was_wrong());
    assert!(matches!(
        r.transcript.last(),
        Some(DialogEvent::Unmatched { step: 0, received, end: ExpectEnd::Closed, .. })
            if received == r"554 go away\r\n"
    ));
    // Decided by the data: also wrong.
    let addr = scripted(vec![says(b"554 go away\r\n")], Split::Whole, Then::StayOpen).await;
    let r = Probe::new(dialog(addr, vec![expect(prefix("220"))]))
        .unwrap()
        .run()
        .await;
    assert_eq!(r.expect_end, Some(ExpectEnd::Mismatch));
    assert!(r.transcript.is_empty(), "untraced runs record nothing");
    // Silence after non-matching data: a limit ended the wait, not the answer.
    let r = Probe::new(dialog(addr, vec![line("^220")]))
        .unwrap()
        .run()
        .await;
    assert_eq!(r.expect_end, Some(ExpectEnd::Idle));
    assert!(!r.expect_end.unwrap().answer_was_wrong());
    // Closed without a word: wrong as well (no data at all).
    let addr = scripted(vec![], Split::Whole, Then::Close).await;
    let r = Probe::new(dialog(addr, vec![line("^220")]))
        .unwrap()
        .run()
        .await;
    assert_eq!(r.reason, Some(Reason::NoData));
    assert_eq!(r.expect_end, Some(ExpectEnd::Closed));
}

#[tokio::test]
async fn capture_groups_expand_from_the_matched_line_only() {
    // A line regex expands its groups against the line it matched, not the lines skipped
    // before it.
    let (recorder, seen) = {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let tx = std::sync::Mutex::new(Some(tx));
        let addr = serve(move |mut s| {
            let tx = tx.lock().unwrap().take();
            async move {
                let _ = s.write_all(b"100 skip me\r\n220 host-a ready\r\n").await;
                let got = read_line(&mut s).await;
                if let (Some(tx), Some(got)) = (tx, got) {
                    let _ = tx.send(got);
                }
            }
        })
        .await;
        (addr, rx)
    };
    let spec = dialog(
        recorder,
        vec![
            line(r"^220 (?P<host>\S+)"),
            Step::SendExpanded(b"HELO ${host}\n".to_vec()),
        ],
    );
    let r = Probe::new(spec).unwrap().run().await;
    assert_eq!(r.state, State::Ok, "{}", r.message);
    assert_eq!(seen.await.unwrap(), b"HELO host-a\n");
}

#[tokio::test]
async fn a_send_drops_the_rest_of_a_reply_no_expect_used() {
    // The dialog of docs/config.md: the EHLO reply is matched at its STARTTLS line, and the
    // STARTTLS negotiation's own EHLO must read its own reply, not the first one's last line.
    let script = [
        says(b"220 mail.test ESMTP\r\n"),
        answers(b"250-mail.test\r\n250-STARTTLS\r\n250 HELP\r\n"),
        answers(b"250-mail.test\r\n250-STARTTLS\r\n250 HELP\r\n"),
        answers(b"220 Ready to start TLS\r\n"),
    ];
    let addr = scripted(script.to_vec(), Split::Whole, Then::StayOpen).await;
    let mut steps = vec![
        expect(prefix("220")),
        send("EHLO portwarden\r\n"),
        Step::Expect(any(vec![
            contains("250-STARTTLS"),
            contains("250 STARTTLS"),
        ])),
    ];
    steps.extend(StartTls::Smtp.negotiation());
    let r = Probe::new(dialog(addr, steps)).unwrap().run_traced().await;
    assert_eq!(
        (r.state, r.reason),
        (State::Ok, None),
        "{} {:?}",
        r.message,
        r.transcript
    );
}

#[tokio::test]
async fn line_dialogs_keep_unread_lines_across_a_send_as_blackbox_does() {
    // blackbox's reader keeps what it has not read: after the send, the next expect finds
    // the greeting's last line, still unread, before the answer to the send.
    let script = [says(b"220-a\r\n220 b\r\n"), answers(b"250 ok\r\n")];
    let addr = scripted(script.to_vec(), Split::Whole, Then::StayOpen).await;
    let steps = vec![
        line("^220-a"),
        send("NOOP\n"),
        line("^220 b"),
        line("^250 ok"),
    ];
    let r = Probe::new(dialog(addr, steps)).unwrap().run_traced().await;
    assert_eq!(
        (r.state, r.reason),
        (State::Ok, None),
        "{} {:?}",
        r.message,
        r.transcript
    );
}
