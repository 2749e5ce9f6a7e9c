//! webhook, slack, discord, teams, telegram, ntfy and pagerduty against a recording receiver on
//! 127.0.0.1: the body each service expects, headers, signatures, the status → retryable rule,
//! timeouts and hostile receivers.

mod common;

use std::time::{Duration, Instant};

use common::{grouped, notifier, single, Behaviour, Receiver};
use portwarden_notify::{Kind, Notification};
use serde_json::json;

#[tokio::test]
async fn webhook_posts_the_notification_as_json_with_headers_and_a_verifiable_signature() {
    let rx = Receiver::start(Behaviour::Answer(200, "accepted, thanks".into())).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "s3cret\n").expect("write");
    let n = notifier(json!({
        "type": "webhook",
        "url": rx.url("/hook?x=1"),
        "headers": {"Authorization": "Bearer abc", "X-Team": "ops"},
        "secret_file": secret.display().to_string(),
    }));
    let sent = single(Kind::Down, "web");
    let d = n.send(&sent).await.expect("delivered");
    assert_eq!(d.response, "HTTP 200: accepted, thanks");
    let r = rx.only_request();
    assert_eq!(r.method, "POST");
    assert_eq!(r.path, "/hook?x=1");
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("authorization"), Some("Bearer abc"));
    assert_eq!(r.header("x-team"), Some("ops"));
    assert_eq!(r.header("idempotency-key"), Some("db1-web-down"));
    assert_eq!(r.header("x-portwarden-kind"), Some("down"));
    let back: Notification = serde_json::from_slice(&r.body).expect("body is the notification");
    assert_eq!(back, sent);
    assert_eq!(
        r.header("x-portwarden-signature").map(str::to_string),
        Some(portwarden_notify::webhook::signature(b"s3cret", &r.body))
    );
}

#[tokio::test]
async fn webhook_body_template_and_content_type() {
    let rx = Receiver::start(Behaviour::Answer(204, String::new())).await;
    let n = notifier(json!({
        "type": "webhook",
        "url": rx.url("/"),
        "body": "{{ host }}: {% for i in items %}{{ i.subject }}={{ i.label }} {% endfor %}",
        "content_type": "text/plain; charset=utf-8",
    }));
    let d = n.send(&grouped(2, 1)).await.expect("delivered");
    assert_eq!(d.response, "HTTP 204");
    let r = rx.only_request();
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
    assert_eq!(
        String::from_utf8_lossy(&r.body),
        "db1: svc0=DOWN svc1=DOWN ok0=UP "
    );
    assert!(r.header("x-portwarden-signature").is_none());
}

#[tokio::test]
async fn webhook_5xx_is_retryable_and_4xx_is_not_and_both_quote_the_receiver() {
    let rx = Receiver::start(Behaviour::Answer(500, "database on fire".into())).await;
    let n = notifier(json!({"type": "webhook", "url": rx.url("/")}));
    let e = n.send(&single(Kind::Down, "web")).await.unwrap_err();
    assert!(e.retryable);
    assert_eq!(
        e.message,
        format!("webhook to {}: HTTP 500: database on fire", rx.addr)
    );

    for (status, retryable) in [(400, false), (404, false), (408, true), (429, true)] {
        let rx = Receiver::start(Behaviour::Answer(status, "no".into())).await;
        let n = notifier(json!({"type": "webhook", "url": rx.url("/")}));
        let e = n.send(&single(Kind::Down, "web")).await.unwrap_err();
        assert_eq!(e.retryable, retryable, "{status}: {e:?}");
        assert!(e.message.contains(&format!("HTTP {status}: no")), "{e:?}");
    }
}

#[tokio::test]
async fn webhook_timeout_is_honoured_against_a_silent_receiver() {
    let rx = Receiver::start(Behaviour::Silent).await;
    let n = notifier(json!({"type": "webhook", "url": rx.url("/"), "timeout": "700ms"}));
    let t = Instant::now();
    let e = n.send(&single(Kind::Down, "web")).await.unwrap_err();
    let took = t.elapsed();
    assert!(e.retryable, "{e:?}");
    assert!(took < Duration::from_secs(3), "took {took:?}");
    assert!(took >= Duration::from_millis(600), "took {took:?}");
    assert!(e.message.starts_with("webhook"), "{e:?}");
}

#[tokio::test]
async fn connection_refused_is_retryable_and_names_the_server() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let n = notifier(json!({"type": "webhook", "url": format!("http://127.0.0.1:{port}/x")}));
    let e = n.send(&single(Kind::Down, "web")).await.unwrap_err();
    assert!(e.retryable);
    assert!(
        e.message
            .starts_with(&format!("webhook to 127.0.0.1:{port}: cannot connect")),
        "{e:?}"
    );
}

#[tokio::test]
async fn missing_secret_env_is_a_clear_permanent_send_error() {
    let rx = Receiver::start(Behaviour::Answer(200, "ok".into())).await;
    let n = notifier(json!({
        "type": "webhook", "url": rx.url("/"),
        "secret_env": "PORTWARDEN_TEST_WEBHOOK_SECRET_NEVER_SET",
    }));
    let e = n.send(&single(Kind::Down, "web")).await.unwrap_err();
    assert!(!e.retryable);
    assert_eq!(
        e.message,
        "webhook: secret_env: environment variable PORTWARDEN_TEST_WEBHOOK_SECRET_NEVER_SET is not set"
    );
    assert!(rx.requests().is_empty());
}

#[tokio::test]
async fn hostile_receivers_never_panic_and_answers_are_capped() {
    let rx = Receiver::start(Behaviour::Huge(20 * 1024 * 1024)).await;
    let n = notifier(json!({"type": "webhook", "url": rx.url("/")}));
    let d = n.send(&single(Kind::Down, "web")).await.expect("delivered");
    assert!(
        d.response.starts_with("HTTP 200: AAAA"),
        "{}",
        &d.response[..20]
    );
    assert!(d.response.len() < 300, "{} bytes", d.response.len());

    let rx = Receiver::start(Behaviour::Close).await;
    let n = notifier(json!({"type": "webhook", "url": rx.url("/")}));
    let e = n.send(&single(Kind::Down, "web")).await.unwrap_err();
    assert!(e.retryable, "{e:?}");
    assert!(
        e.message.starts_with(&format!("webhook to {}", rx.addr)),
        "{e:?}"
    );

    // Messages with control characters, replacement characters and odd Unicode.
    let rx = Receiver::start(Behaviour::Answer(200, "\u{fffd}\u{0}ok\r\n".into())).await;
    let mut weird = single(Kind::Down, "w\u{0}eb\r\nBcc: x@y");
    weird.items[0].received = Some(String::from_utf8_lossy(b"\xff\xfe\x00bin\x1b[31m").into());
    weird.id = "id with spaces\nand newline".into();
    for spec in [
        json!({"type": "webhook", "url": rx.url("/")}),
        json!({"type": "slack", "url": rx.url("/")}),
        json!({"type": "discord", "url": rx.url("/")}),
        json!({"type": "teams", "url": rx.url("/")}),
    ] {
        let d = notifier(spec).send(&weird).await.expect("delivered");
        assert_eq!(d.response, "HTTP 200: \u{fffd} ok");
    }
    let ids: Vec<String> = rx
        .requests()
        .iter()
        .filter_map(|r| r.header("idempotency-key").map(str::to_string))
        .collect();
    assert_eq!(ids, vec!["id%20with%20spaces%0Aand%20newline".to_string()]);
}

#[tokio::test]
async fn slack_gets_text_with_escapes_and_optional_blocks() {
    let rx = Receiver::start(Behaviour::Answer(200, "ok".into())).await;
    let mut n1 = single(Kind::Down, "web");
    n1.items[0].message = "<!channel> & friends".into();
    notifier(json!({"type": "slack", "url": rx.url("/services/T/B/X"), "blocks": true, "channel": "#ops"}))
        .send(&n1)
        .await
        .expect("delivered");
    let body = rx.only_request().json();
    let text = body["text"].as_str().expect("text");
    assert!(
        text.starts_with("*web on db1 is DOWN: refused*\n"),
        "{text}"
    );
    assert!(text.contains("&lt;!channel&gt; &amp; friends"), "{text}");
    assert!(!text.contains("<!channel>"));
    assert_eq!(body["channel"], "#ops");
    assert_eq!(body["blocks"][0]["type"], "header");
    assert_eq!(
        body["blocks"][0]["text"]["text"],
        "web on db1 is DOWN: refused"
    );
}

#[tokio::test]
async fn discord_content_is_cut_to_2000_characters_without_mentions() {
    let rx = Receiver::start(Behaviour::Answer(204, String::new())).await;
    let big = grouped(200, 0);
    let d = notifier(json!({"type": "discord", "url": rx.url("/api/webhooks/1/x")}))
        .send(&big)
        .await
        .expect("delivered");
    assert_eq!(d.response, "HTTP 204");
    let body = rx.only_request().json();
    let content = body["content"].as_str().expect("content");
    assert_eq!(content.chars().count(), 2000);
    assert!(content.starts_with("**200 monitors on db1 changed: 200 DOWN**\n"));
    assert!(content.ends_with('…'));
    assert_eq!(body["allowed_mentions"], json!({"parse": []}));
}

#[tokio::test]
async fn teams_gets_an_adaptive_card_or_a_message_card() {
    let rx = Receiver::start(Behaviour::Answer(202, "1".into())).await;
    notifier(json!({"type": "teams", "url": rx.url("/wf")}))
        .send(&single(Kind::Up, "web"))
        .await
        .expect("delivered");
    notifier(json!({"type": "teams", "url": rx.url("/mc"), "format": "message_card"}))
        .send(&single(Kind::Down, "web"))
        .await
        .expect("delivered");
    let r = rx.requests();
    let adaptive = r[0].json();
    assert_eq!(adaptive["type"], "message");
    let att = &adaptive["attachments"][0];
    assert_eq!(
        att["contentType"],
        "application/vnd.microsoft.card.adaptive"
    );
    assert_eq!(att["content"]["type"], "AdaptiveCard");
    assert_eq!(
        att["content"]["body"][0]["text"],
        "web on db1 is UP again after 4m 12s"
    );
    let mc = r[1].json();
    assert_eq!(mc["@type"], "MessageCard");
    assert_eq!(mc["title"], "web on db1 is DOWN: refused");
    assert_eq!(mc["themeColor"], "D70000");
}

#[tokio::test]
async fn telegram_calls_send_message_and_keeps_the_token_out_of_errors() {
    let rx = Receiver::start(Behaviour::Answer(
        200,
        r#"{"ok":true,"result":{"message_id":7}}"#.into(),
    ))
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let token = dir.path().join("token");
    std::fs::write(&token, "123:ABCsecret\n").expect("write");
    let spec = |api: String| {
        json!({"type": "telegram", "bot_token_file": token.display().to_string(),
               "chat_id": -1001234, "api_url": api})
    };
    let d = notifier(spec(rx.url("")))
        .send(&single(Kind::Down, "web"))
        .await
        .expect("delivered");
    assert_eq!(
        d.response,
        r#"HTTP 200: {"ok":true,"result":{"message_id":7}}"#
    );
    let r = rx.only_request();
    assert_eq!(r.path, "/bot123:ABCsecret/sendMessage");
    let body = r.json();
    assert_eq!(body["chat_id"], -1001234);
    assert!(body["text"]
        .as_str()
        .expect("text")
        .starts_with("web on db1 is DOWN: refused\n\n"));

    let rx = Receiver::start(Behaviour::Answer(
        400,
        r#"{"ok":false,"error_code":400,"description":"Bad Request: chat not found"}"#.into(),
    ))
    .await;
    let e = notifier(spec(rx.url("")))
        .send(&single(Kind::Down, "web"))
        .await
        .unwrap_err();
    assert!(!e.retryable);
    assert!(e.message.contains("Bad Request: chat not found"), "{e:?}");
    assert!(!e.message.contains("ABCsecret"), "{e:?}");
}

#[tokio::test]
async fn ntfy_publishes_json_to_the_server_root_with_title_priority_tags_and_token() {
    let rx = Receiver::start(Behaviour::Answer(200, r#"{"id":"x1"}"#.into())).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let token = dir.path().join("t");
    std::fs::write(&token, "tk_abc").expect("write");
    notifier(
        json!({"type": "ntfy", "url": rx.url("/alerts"), "tags": ["db"],
                    "token_file": token.display().to_string()}),
    )
    .send(&single(Kind::Down, "web"))
    .await
    .expect("delivered");
    notifier(json!({"type": "ntfy", "url": rx.url("/alerts"), "priority": "min"}))
        .send(&single(Kind::Up, "web"))
        .await
        .expect("delivered");
    let r = rx.requests();
    assert_eq!(r[0].path, "/");
    assert_eq!(r[0].header("authorization"), Some("Bearer tk_abc"));
    let down = r[0].json();
    assert_eq!(down["topic"], "alerts");
    assert_eq!(down["title"], "web on db1 is DOWN: refused");
    assert_eq!(down["priority"], 4);
    assert_eq!(down["tags"], json!(["rotating_light", "db"]));
    assert!(down["message"]
        .as_str()
        .expect("message")
        .contains("127.0.0.1:8080"));
    let up = r[1].json();
    assert_eq!(up["priority"], 1);
    assert_eq!(up["tags"], json!(["white_check_mark"]));
    assert!(r[1].header("authorization").is_none());
}

#[tokio::test]
async fn pagerduty_triggers_then_resolves_the_same_dedup_key() {
    let rx = Receiver::start(Behaviour::Answer(
        202,
        r#"{"status":"success","message":"Event processed","dedup_key":"db1/web"}"#.into(),
    ))
    .await;
    let var = "PORTWARDEN_TEST_PD_KEY_1";
    std::env::set_var(var, "R0UTINGKEY");
    let n = notifier(
        json!({"type": "pagerduty", "routing_key_env": var, "api_url": rx.url("/v2/enqueue")}),
    );
    let d = n.send(&single(Kind::Down, "web")).await.expect("delivered");
    assert!(
        d.response.starts_with("HTTP 202: {\"status\":\"success\""),
        "{}",
        d.response
    );
    n.send(&single(Kind::Up, "web")).await.expect("delivered");
    let r = rx.requests();
    assert_eq!(r.len(), 2);
    assert_eq!(r[0].path, "/v2/enqueue");
    let trigger = r[0].json();
    assert_eq!(trigger["routing_key"], "R0UTINGKEY");
    assert_eq!(trigger["event_action"], "trigger");
    assert_eq!(trigger["dedup_key"], "db1/web");
    assert_eq!(trigger["payload"]["summary"], "web on db1 is DOWN: refused");
    assert_eq!(trigger["payload"]["severity"], "critical");
    assert_eq!(trigger["payload"]["source"], "db1");
    assert_eq!(trigger["payload"]["component"], "web");
    assert_eq!(
        trigger["payload"]["custom_details"]["received"],
        "HTTP/1.0 503 Busy"
    );
    let resolve = r[1].json();
    assert_eq!(resolve["event_action"], "resolve");
    assert_eq!(resolve["dedup_key"], "db1/web");
}

#[tokio::test]
async fn pagerduty_sends_one_event_per_grouped_item() {
    let rx = Receiver::start(Behaviour::Answer(202, r#"{"status":"success"}"#.into())).await;
    let var = "PORTWARDEN_TEST_PD_KEY_2";
    std::env::set_var(var, "K");
    let n = notifier(json!({"type": "pagerduty", "routing_key_env": var, "api_url": rx.url("/")}));
    let d = n.send(&grouped(2, 1)).await.expect("delivered");
    assert!(
        d.response.starts_with("3 events sent, last: HTTP 202"),
        "{}",
        d.response
    );
    let events: Vec<(String, String)> = rx
        .requests()
        .iter()
        .map(|r| {
            let j = r.json();
            (
                j["event_action"].as_str().unwrap_or("").to_string(),
                j["dedup_key"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert_eq!(
        events,
        vec![
            ("trigger".to_string(), "db1/svc0".to_string()),
            ("trigger".to_string(), "db1/svc1".to_string()),
            ("resolve".to_string(), "db1/ok0".to_string()),
        ]
    );
}

#[tokio::test]
async fn pagerduty_rejection_is_permanent_and_quoted() {
    let rx = Receiver::start(Behaviour::Answer(
        400,
        r#"{"status":"invalid event","message":"Event object is invalid","errors":["Length of 'routing_key' is incorrect (should be 32 characters)"]}"#.into(),
    ))
    .await;
    let var = "PORTWARDEN_TEST_PD_KEY_3";
    std::env::set_var(var, "short");
    let n = notifier(json!({"type": "pagerduty", "routing_key_env": var, "api_url": rx.url("/")}));
    let e = n.send(&single(Kind::Down, "web")).await.unwrap_err();
    assert!(!e.retryable);
    assert!(e
        .message
        .starts_with(&format!("pagerduty to {}: HTTP 400: ", rx.addr)));
    assert!(e.message.contains("Event object is invalid"), "{e:?}");
}

#[tokio::test]
async fn chat_templates_override_the_default_texts() {
    let rx = Receiver::start(Behaviour::Answer(200, "ok".into())).await;
    notifier(json!({"type": "slack", "url": rx.url("/"),
                    "subject": "ALERT {{ item.subject }}", "body": "see {{ item.target }}"}))
    .send(&single(Kind::Down, "web"))
    .await
    .expect("delivered");
    assert_eq!(
        rx.only_request().json()["text"],
        "*ALERT web*\nsee 127.0.0.1:8080"
    );
}

#[tokio::test]
async fn broken_templates_and_bad_urls_are_refused_when_built() {
    for (spec, want) in [
        (
            json!({"type": "slack", "url": "http://127.0.0.1/", "body": "{% if %}"}),
            "body template: syntax error",
        ),
        (
            json!({"type": "discord", "url": "http://127.0.0.1/", "subject": "{{ nope }}"}),
            "subject template: undefined value",
        ),
        (json!({"type": "webhook", "url": "not a url"}), "url: "),
        (
            json!({"type": "webhook"}),
            "missing url, url_env or url_file",
        ),
        (
            json!({"type": "ntfy", "url": "http://127.0.0.1/"}),
            "url: no topic",
        ),
        (
            json!({"type": "webhook", "url": "http://127.0.0.1/", "timeout": "soon"}),
            "timeout: ",
        ),
    ] {
        let spec: portwarden_notify::NotifierSpec = serde_json::from_value(spec).expect("parses");
        let e = portwarden_notify::Notifier::new("t", spec).unwrap_err();
        assert!(e.starts_with(want), "{e:?} should start with {want:?}");
    }
}

#[tokio::test]
async fn log_notifier_always_delivers() {
    let n = notifier(json!({"type": "log"}));
    assert_eq!(n.kind(), "log");
    let d = n.send(&grouped(3, 1)).await.expect("logged");
    assert_eq!(d.response, "logged");
}
