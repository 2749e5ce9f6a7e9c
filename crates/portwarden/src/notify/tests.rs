//! The dispatcher with a fake notifier and a real store in a temporary directory: order,
//! retries, grouping, restarts, reloads, silences and reminders. No network.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use portwarden_notify::{Delivery, Kind, Notification, SendError};
use tokio_util::sync::CancellationToken;

use super::dispatch::{Deliver, SendFuture, NOT_CONFIGURED};
use super::*;
use crate::config::NotifierConfig;
use crate::events::{EventBus, EventKind, MonitorChange};
use crate::state::Status;
use crate::store::{RowState, SilenceFile, Store};

/// Records what it is sent; refuses while `down` is set.
#[derive(Debug, Default)]
struct FakeReceiver {
    down: AtomicBool,
    /// Takes the notification and never answers (a daemon killed meanwhile).
    hang: AtomicBool,
    got: Mutex<Vec<Notification>>,
}

impl FakeReceiver {
    fn got(&self) -> Vec<Notification> {
        self.got.lock().unwrap().clone()
    }

    /// Every item received, as `subject:kind`, in order.
    fn items(&self) -> Vec<String> {
        self.got()
            .iter()
            .flat_map(|n| n.items.iter())
            .map(|i| format!("{}:{}", i.subject, crate::store::kind_name(i.kind)))
            .collect()
    }
}

#[derive(Debug)]
struct FakeNotifier(Arc<FakeReceiver>);

impl Deliver for FakeNotifier {
    fn deliver(self: Arc<Self>, n: Notification) -> SendFuture {
        Box::pin(async move {
            if self.0.down.load(Ordering::SeqCst) {
                return Err(SendError {
                    message: "connection refused".into(),
                    retryable: true,
                });
            }
            self.0.got.lock().unwrap().push(n);
            if self.0.hang.load(Ordering::SeqCst) {
                std::future::pending::<()>().await;
            }
            Ok(Delivery {
                response: "250 ok".into(),
            })
        })
    }
}

fn notifier(name: &str, window_ms: u64, remind_ms: Option<u64>) -> NotifierConfig {
    NotifierConfig {
        name: name.into(),
        spec: portwarden_notify::NotifierSpec::Log(Default::default()),
        remind_every: remind_ms.map(Duration::from_millis),
        group_window: Duration::from_millis(window_ms),
        group_wait: Duration::from_millis(50),
    }
}

struct Harness {
    dir: tempfile::TempDir,
    bus: EventBus,
    store: Store,
    receiver: Arc<FakeReceiver>,
    handle: DispatcherHandle,
    stop: CancellationToken,
    store_stop: CancellationToken,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Harness {
    async fn start(notifiers: Vec<NotifierConfig>) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        Self::start_in(dir, notifiers, Arc::new(FakeReceiver::default())).await
    }

    async fn start_in(
        dir: tempfile::TempDir,
        notifiers: Vec<NotifierConfig>,
        receiver: Arc<FakeReceiver>,
    ) -> Harness {
        let (store, task) = Store::open(dir.path().join("portwarden.db"));
        Self::start_with(dir, (store, task), notifiers, receiver).await
    }

    /// With a store opened by the test (another path, other options).
    async fn start_with(
        dir: tempfile::TempDir,
        (store, task): (Store, crate::store::StoreTask),
        notifiers: Vec<NotifierConfig>,
        receiver: Arc<FakeReceiver>,
    ) -> Harness {
        let store_stop = CancellationToken::new();
        let store_task = tokio::spawn(task.run(store_stop.clone()));
        let bus = EventBus::new();
        let r = receiver.clone();
        let (d, handle) = Dispatcher::new(DispatcherOptions {
            store: store.clone(),
            bus: bus.clone(),
            lookup: Arc::new(|name: &str| {
                Some(MonitorInfo {
                    target: "127.0.0.1:1".into(),
                    tags: vec![],
                    notify: if name.starts_with("quiet") {
                        vec![]
                    } else {
                        vec!["ops".into()]
                    },
                })
            }),
            build: Arc::new(move |_c: &NotifierConfig| {
                Ok(Arc::new(FakeNotifier(r.clone())) as Arc<dyn Deliver>)
            }),
            settings: Settings {
                notifiers,
                firewall_notify: vec!["ops".into()],
            },
            host: "h".into(),
            // As the daemon does: what was DOWN when the store was last written.
            carried_down: store.carried_down().await.unwrap_or_default(),
        });
        let stop = CancellationToken::new();
        let task = tokio::spawn(d.run(stop.clone()));
        Harness {
            dir,
            bus,
            store,
            receiver,
            handle,
            stop,
            store_stop,
            tasks: vec![task, store_task],
        }
    }

    /// Stops the dispatcher, then the store; returns the directory to start again in.
    async fn stop(self) -> (tempfile::TempDir, Arc<FakeReceiver>) {
        self.stop.cancel();
        let mut tasks = self.tasks.into_iter();
        tasks.next().unwrap().await.unwrap();
        self.store_stop.cancel();
        tasks.next().unwrap().await.unwrap();
        (self.dir, self.receiver)
    }

    fn change(&self, monitor: &str, from: Status, to: Status) {
        let c = MonitorChange {
            monitor: monitor.into(),
            from,
            to,
            reason: Some(portwarden_probe::Reason::Refused),
            message: "connection refused".into(),
            down_for: (to == Status::Ok).then(|| Duration::from_secs(1)),
        };
        self.bus.publish(c.into_event());
    }

    async fn wait_for(&self, what: &str, done: impl Fn(&FakeReceiver) -> bool) {
        for _ in 0..200 {
            if done(&self.receiver) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!(
            "timed out waiting for {what}; got {:?}",
            self.receiver.items()
        );
    }

    async fn outbox(&self) -> Vec<crate::store::OutboxRow> {
        self.store.outbox_rows().await.unwrap()
    }
}

#[tokio::test]
async fn down_then_up_wait_for_the_receiver_and_arrive_once_in_order() {
    let h = Harness::start(vec![notifier("ops", 0, None)]).await;
    h.receiver.down.store(true, Ordering::SeqCst);
    h.change("web", Status::Ok, Status::Down);
    h.change("web", Status::Down, Status::Ok);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let rows = h.outbox().await;
    assert_eq!(rows.len(), 2, "both are in the outbox");
    assert!(rows[0].attempts >= 1 && rows[0].last_error.is_some());
    h.receiver.down.store(false, Ordering::SeqCst);
    h.wait_for("down and up", |r| r.items().len() == 2).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(h.receiver.items(), ["web:down", "web:up"]);
    assert!(
        h.outbox().await.is_empty(),
        "delivered rows leave the outbox"
    );
    let log = h.store.notifications(10).await.unwrap();
    assert_eq!(log["ops"].delivered.len(), 2);
    assert_eq!(log["ops"].delivered[0].response, "250 ok");
    h.stop().await;
}

#[tokio::test]
async fn a_storm_goes_out_as_the_first_at_once_then_one_grouped_message() {
    let h = Harness::start(vec![notifier("ops", 1_000, None)]).await;
    let start = tokio::time::Instant::now();
    h.change("m000", Status::Ok, Status::Down);
    h.wait_for("the first", |r| r.got().len() == 1).await;
    assert!(start.elapsed() < Duration::from_millis(500));
    for i in 1..=50 {
        h.change(&format!("m{i:03}"), Status::Ok, Status::Down);
    }
    h.wait_for("the group", |r| r.got().len() == 2).await;
    assert!(
        start.elapsed() >= Duration::from_millis(900),
        "the window holds the rest"
    );
    let got = h.receiver.got();
    assert_eq!(got[0].kind, Kind::Down);
    assert_eq!(got[1].kind, Kind::Grouped);
    let expected: Vec<String> = (1..=50).map(|i| format!("m{i:03}")).collect();
    let subjects: Vec<String> = got[1].items.iter().map(|i| i.subject.clone()).collect();
    assert_eq!(subjects, expected);
    h.stop().await;
}

#[tokio::test]
async fn rows_left_from_before_a_restart_go_first_and_keep_their_schedule() {
    let h = Harness::start(vec![notifier("ops", 0, None)]).await;
    h.receiver.down.store(true, Ordering::SeqCst);
    h.change("a", Status::Ok, Status::Down);
    h.change("b", Status::Ok, Status::Down);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (dir, receiver) = h.stop().await;
    receiver.down.store(false, Ordering::SeqCst);
    let h = Harness::start_in(dir, vec![notifier("ops", 0, None)], receiver).await;
    h.change("c", Status::Ok, Status::Down);
    h.wait_for("all three", |r| r.items().len() == 3).await;
    assert_eq!(h.receiver.items(), ["a:down", "b:down", "c:down"]);
    h.stop().await;
}

#[tokio::test]
async fn a_notifier_removed_by_a_reload_keeps_its_rows_as_failing_and_gets_them_back() {
    let h = Harness::start(vec![notifier("ops", 0, None)]).await;
    let mut events = h.bus.subscribe();
    h.receiver.down.store(true, Ordering::SeqCst);
    h.change("a", Status::Ok, Status::Down);
    tokio::time::sleep(Duration::from_millis(200)).await;
    h.handle.reload(Settings::default()).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let rows = h.outbox().await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].state, RowState::Failing);
    assert_eq!(rows[0].last_error.as_deref(), Some(NOT_CONFIGURED));
    let mut reported = false;
    while let Ok(e) = events.try_recv() {
        if let EventKind::NotificationFailing { notifier, .. } = &e.kind {
            reported |= notifier == "ops";
        }
    }
    assert!(reported, "the failing notification is reported on the bus");
    let api = h.store.notifications(10).await.unwrap();
    assert_eq!(api["ops"].failing.len(), 1);
    // Back in the config (and the receiver fixed): delivered at once.
    h.receiver.down.store(false, Ordering::SeqCst);
    h.handle
        .reload(Settings {
            notifiers: vec![notifier("ops", 0, None)],
            firewall_notify: vec![],
        })
        .await;
    h.wait_for("the kept row", |r| r.items() == ["a:down"])
        .await;
    h.stop().await;
}

#[tokio::test]
async fn a_silenced_monitor_is_not_notified_and_its_recovery_neither() {
    let h = Harness::start(vec![notifier("ops", 0, None)]).await;
    let f = SilenceFile::open(&h.dir.path().join("portwarden.db")).unwrap();
    let now = crate::notify::items::unix_ms(std::time::SystemTime::now());
    f.add("db-*", now + 60_000, "maintenance", now).unwrap();
    // An expired silence ends by itself.
    f.add("web", now - 1, "old", now - 10_000).unwrap();
    h.change("db-1", Status::Ok, Status::Down);
    h.change("web", Status::Ok, Status::Down);
    h.change("db-1", Status::Down, Status::Ok);
    h.wait_for("web", |r| !r.items().is_empty()).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(h.receiver.items(), ["web:down"]);
    h.stop().await;
}

#[tokio::test]
async fn reminders_repeat_while_down_and_stop_on_recovery() {
    let h = Harness::start(vec![notifier("ops", 0, Some(300))]).await;
    h.change("web", Status::Ok, Status::Down);
    h.change("quiet", Status::Ok, Status::Down);
    h.wait_for("two reminders", |r| r.items().len() >= 3).await;
    assert_eq!(
        h.receiver.items()[..3],
        ["web:down", "web:reminder", "web:reminder"]
    );
    h.change("web", Status::Down, Status::Ok);
    h.wait_for("up", |r| r.items().last().is_some_and(|i| i == "web:up"))
        .await;
    let n = h.receiver.items().len();
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(h.receiver.items().len(), n, "no reminder after recovery");
    let reminder = &h.receiver.got()[1].items[0];
    assert!(
        reminder.message.starts_with("still down after"),
        "{reminder:?}"
    );
    h.stop().await;
}

#[tokio::test]
async fn firewall_events_reach_the_firewall_notifiers() {
    let h = Harness::start(vec![notifier("ops", 0, None)]).await;
    h.bus.publish(EventKind::FirewallViolation(
        crate::events::FirewallReport {
            backend: "nftables".into(),
            violations: vec!["firewall disabled".into()],
            ..Default::default()
        },
    ));
    h.wait_for("the violation", |r| {
        r.items() == ["firewall:firewall_violation"]
    })
    .await;
    h.stop().await;
}

#[tokio::test]
async fn after_a_restart_a_monitor_still_down_is_not_announced_again_and_its_recovery_is() {
    let h = Harness::start(vec![notifier("ops", 0, None)]).await;
    // Before the restart: both monitors went DOWN, and the store kept their incidents.
    let down_at = std::time::SystemTime::now() - Duration::from_secs(120);
    for m in ["still", "healed"] {
        h.change(m, Status::Ok, Status::Down);
        record_transition(&h.store, m, down_at, Status::Down).await;
    }
    h.store.flush().await;
    h.wait_for("both downs", |r| r.items().len() == 2).await;
    let (dir, receiver) = h.stop().await;

    let h = Harness::start_in(dir, vec![notifier("ops", 0, None)], receiver).await;
    // First verdicts after the restart.
    h.change("still", Status::Unknown, Status::Down);
    h.change("healed", Status::Unknown, Status::Ok);
    h.wait_for("the recovery", |r| r.items().len() == 3).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        h.receiver.items(),
        ["still:down", "healed:down", "healed:up"],
        "no second DOWN for `still`; `healed` recovers"
    );
    let up = h.receiver.got().last().unwrap().items[0].clone();
    let down_for = up.down_for_secs.unwrap();
    assert!(
        (119..=130).contains(&down_for),
        "the outage counts from before the restart: {down_for}s"
    );
    h.stop().await;
}

/// A store at `dir/state/portwarden.db` that retries every 200 ms; while `dir/state` is a
/// file, it cannot open.
fn store_under_state(dir: &std::path::Path) -> (Store, crate::store::StoreTask) {
    let opts = crate::store::Options {
        retry_every: Duration::from_millis(200),
        sweep_every: Duration::from_millis(100),
        ..Default::default()
    };
    Store::open_with(dir.join("state").join("portwarden.db"), opts)
}

async fn wait_store(store: &Store, state: crate::store::StoreState) {
    for _ in 0..400 {
        if store.health().state == state {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("store never {state:?}: {:?}", store.health());
}

#[tokio::test]
async fn notifications_queued_while_the_store_is_failed_reach_the_outbox_when_it_is_back() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("state");
    std::fs::write(&blocker, b"not a directory").unwrap();
    let store = store_under_state(dir.path());
    let receiver = Arc::new(FakeReceiver::default());
    receiver.down.store(true, Ordering::SeqCst);
    let h = Harness::start_with(dir, store, vec![notifier("ops", 0, None)], receiver).await;
    wait_store(&h.store, crate::store::StoreState::Failed).await;
    h.change("web", Status::Ok, Status::Down);
    h.change("web", Status::Down, Status::Ok);
    // Tried from memory meanwhile (the receiver refuses).
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    std::fs::remove_file(&blocker).unwrap();
    wait_store(&h.store, crate::store::StoreState::Ok).await;
    let mut rows = Vec::new();
    for _ in 0..200 {
        rows = h.outbox().await;
        if rows.len() == 2 && rows[0].attempts > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(rows.len(), 2, "{rows:?}");
    // With the attempts they had: a restart resumes the same message under the same key.
    assert!(
        rows[0].attempts > 0 && rows[0].last_error.is_some(),
        "{rows:?}"
    );
    let ids: Vec<String> = rows.iter().map(|r| r.notification.id.clone()).collect();

    // A restart (the same store now opens at once): what was sent from memory is not lost.
    let (dir, receiver) = h.stop().await;
    receiver.down.store(false, Ordering::SeqCst);
    let store = store_under_state(dir.path());
    let h = Harness::start_with(dir, store, vec![notifier("ops", 0, None)], receiver).await;
    h.wait_for("down and up", |r| r.items().len() == 2).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(h.receiver.items(), ["web:down", "web:up"]);
    let got: Vec<String> = h.receiver.got().iter().map(|n| n.id.clone()).collect();
    assert_eq!(got, ids);
    assert!(h.outbox().await.is_empty());
    h.stop().await;
}

#[tokio::test]
async fn a_delivery_while_the_store_is_locked_is_recorded_when_it_is_back_and_not_resent() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("state")).unwrap();
    let store = store_under_state(dir.path());
    let receiver = Arc::new(FakeReceiver::default());
    receiver.down.store(true, Ordering::SeqCst);
    let h = Harness::start_with(dir, store, vec![notifier("ops", 0, None)], receiver).await;
    wait_store(&h.store, crate::store::StoreState::Ok).await;
    h.change("web", Status::Ok, Status::Down);
    for _ in 0..200 {
        if h.outbox().await.first().is_some_and(|r| r.attempts > 0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    // Another process takes the database's write lock: the store fails (after its 5 s busy
    // timeout) while the row is in the outbox, and the receiver comes back meanwhile.
    let locker = rusqlite::Connection::open(h.dir.path().join("state/portwarden.db")).unwrap();
    locker.execute_batch("BEGIN IMMEDIATE").unwrap();
    h.receiver.down.store(false, Ordering::SeqCst);
    h.wait_for("the down", |r| r.items().len() == 1).await;
    wait_store(&h.store, crate::store::StoreState::Failed).await;
    locker.execute_batch("ROLLBACK").unwrap();
    drop(locker);
    wait_store(&h.store, crate::store::StoreState::Ok).await;
    let mut log = Default::default();
    for _ in 0..200 {
        log = h.store.notifications(10).await.unwrap();
        if log
            .get("ops")
            .is_some_and(|q: &crate::store::NotifierQueue| {
                q.pending.is_empty() && q.failing.is_empty() && q.delivered.len() == 1
            })
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let q = &log["ops"];
    assert!(q.pending.is_empty() && q.failing.is_empty(), "{q:?}");
    assert_eq!(q.delivered.len(), 1, "{q:?}");

    // After a restart nothing is sent again.
    let (dir, receiver) = h.stop().await;
    let store = store_under_state(dir.path());
    let h = Harness::start_with(dir, store, vec![notifier("ops", 0, None)], receiver).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(h.receiver.items(), ["web:down"]);
    h.stop().await;
}

#[tokio::test]
async fn after_a_restart_the_later_recovery_of_a_monitor_still_down_counts_from_its_first_start() {
    // Found by `bench chaos`: a monitor DOWN across a SIGKILL, still DOWN at the first check
    // after it, recovered later. Its UP carried the restarted state machine's outage (from
    // the first check after the restart), so `since_ms` named no incident the receiver had
    // heard of and `down_for` was too short.
    let h = Harness::start(vec![notifier("ops", 0, None)]).await;
    let down_at = std::time::SystemTime::now() - Duration::from_secs(120);
    h.change("still", Status::Ok, Status::Down);
    record_transition(&h.store, "still", down_at, Status::Down).await;
    h.wait_for("the down", |r| r.items().len() == 1).await;
    let (dir, receiver) = h.stop().await;

    let h = Harness::start_in(dir, vec![notifier("ops", 0, None)], receiver).await;
    h.change("still", Status::Unknown, Status::Down);
    // The state machine, started afresh, counts the outage from its own first check (1 s).
    h.change("still", Status::Down, Status::Ok);
    h.wait_for("the recovery", |r| r.items().len() == 2).await;
    assert_eq!(h.receiver.items(), ["still:down", "still:up"]);
    let up = h.receiver.got().last().unwrap().items[0].clone();
    assert_eq!(
        up.since_ms,
        u64::try_from(items::unix_ms(down_at)).ok(),
        "the UP names the outage's real start"
    );
    let down_for = up.down_for_secs.unwrap();
    assert!(
        (119..=130).contains(&down_for),
        "the outage counts from before the restart: {down_for}s"
    );
    h.stop().await;
}

/// What the store records of a state change (the daemon writes it on a path of its own,
/// batched, a moment apart from the outbox).
async fn record_transition(store: &Store, monitor: &str, at: std::time::SystemTime, to: Status) {
    store
        .transition(crate::store::TransitionRecord {
            monitor: monitor.into(),
            at,
            from: if to == Status::Down {
                Status::Ok
            } else {
                Status::Down
            },
            to,
            reason: Some(portwarden_probe::Reason::Refused),
            message: "connection refused".into(),
        })
        .await;
    store.flush().await;
}

#[tokio::test]
async fn a_recovery_the_store_recorded_but_a_sigkill_kept_from_the_outbox_is_sent_after_the_restart(
) {
    // Found by `bench chaos`: the store closed the incident, the daemon died before the
    // dispatcher queued the UP; after the restart no incident was open, so the UP was lost.
    let h = Harness::start(vec![notifier("ops", 0, None)]).await;
    record_transition(&h.store, "svc", std::time::SystemTime::now(), Status::Down).await;
    h.change("svc", Status::Ok, Status::Down);
    h.wait_for("the down", |r| r.items().len() == 1).await;
    record_transition(&h.store, "svc", std::time::SystemTime::now(), Status::Ok).await;
    let (dir, receiver) = h.stop().await;

    let h = Harness::start_in(dir, vec![notifier("ops", 0, None)], receiver).await;
    h.change("svc", Status::Unknown, Status::Ok);
    h.wait_for("the recovery", |r| r.items().len() == 2).await;
    assert_eq!(h.receiver.items(), ["svc:down", "svc:up"]);
    let got = h.receiver.got();
    assert_eq!(got[1].items[0].since_ms, got[0].items[0].since_ms);
    h.stop().await;
}

#[tokio::test]
async fn a_recovery_already_queued_is_not_sent_again_after_a_restart_the_store_missed_it_in() {
    // Found by `bench chaos`: the UP was queued (and delivered), the daemon died before the
    // store closed the incident; after the restart the open incident made a second UP under
    // a new key, which receivers cannot drop.
    let h = Harness::start(vec![notifier("ops", 0, None)]).await;
    record_transition(&h.store, "svc", std::time::SystemTime::now(), Status::Down).await;
    h.change("svc", Status::Ok, Status::Down);
    h.change("svc", Status::Down, Status::Ok);
    h.wait_for("down and up", |r| r.items().len() == 2).await;
    let (dir, receiver) = h.stop().await;

    let h = Harness::start_in(dir, vec![notifier("ops", 0, None)], receiver).await;
    h.change("svc", Status::Unknown, Status::Ok);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(h.receiver.items(), ["svc:down", "svc:up"], "one UP only");
    h.stop().await;
}

#[tokio::test]
async fn a_down_the_store_recorded_but_a_sigkill_kept_from_the_outbox_is_announced_from_its_start()
{
    // The store opened the incident, the daemon died before the dispatcher queued the DOWN;
    // after the restart the open incident read as "already announced", so nobody heard of
    // the outage until it ended.
    let h = Harness::start(vec![notifier("ops", 0, None)]).await;
    let down_at = std::time::SystemTime::now() - Duration::from_secs(60);
    record_transition(&h.store, "svc", down_at, Status::Down).await;
    let (dir, receiver) = h.stop().await;

    let h = Harness::start_in(dir, vec![notifier("ops", 0, None)], receiver).await;
    h.change("svc", Status::Unknown, Status::Down);
    h.wait_for("the down", |r| r.items().len() == 1).await;
    h.change("svc", Status::Down, Status::Ok);
    h.wait_for("the up", |r| r.items().len() == 2).await;
    assert_eq!(h.receiver.items(), ["svc:down", "svc:up"]);
    let got = h.receiver.got();
    let since = u64::try_from(items::unix_ms(down_at)).ok();
    assert_eq!(
        got[0].items[0].since_ms, since,
        "dated from the outage's start"
    );
    assert_eq!(got[1].items[0].since_ms, since);
    h.stop().await;
}

#[tokio::test]
async fn an_outage_that_ended_unannounced_gets_its_up_though_the_monitor_is_down_again() {
    // Found by `bench chaos`: DOWN queued, the store saw the recovery, the daemon died before
    // the UP was queued; after the restart the monitor was DOWN again (a new outage) and was
    // taken for the old one "still DOWN": receivers never heard of the recovery nor of the
    // new outage.
    let h = Harness::start(vec![notifier("ops", 0, None)]).await;
    let down_at = std::time::SystemTime::now();
    record_transition(&h.store, "svc", down_at, Status::Down).await;
    h.change("svc", Status::Ok, Status::Down);
    h.wait_for("the down", |r| r.items().len() == 1).await;
    record_transition(&h.store, "svc", std::time::SystemTime::now(), Status::Ok).await;
    let (dir, receiver) = h.stop().await;

    let h = Harness::start_in(dir, vec![notifier("ops", 0, None)], receiver).await;
    h.change("svc", Status::Unknown, Status::Down);
    h.wait_for("the up and the new down", |r| r.items().len() == 3)
        .await;
    assert_eq!(h.receiver.items(), ["svc:down", "svc:up", "svc:down"]);
    let got = h.receiver.got();
    assert_eq!(got[1].items[0].since_ms, got[0].items[0].since_ms);
    assert!(got[2].items[0].since_ms > got[0].items[0].since_ms);
    h.stop().await;
}

#[tokio::test]
async fn a_reload_retries_an_attempted_message_at_once_with_the_same_rows_and_key() {
    // Found by `bench chaos`: a reload that changed the notifier gave its rows a fresh try by
    // forgetting their attempts, so the attempted message was regrouped with the rows queued
    // since, under a new key; a receiver that had taken it late got its items twice.
    let h = Harness::start(vec![notifier("ops", 300, None)]).await;
    h.receiver.down.store(true, Ordering::SeqCst);
    h.change("a", Status::Ok, Status::Down);
    h.change("b", Status::Ok, Status::Down);
    // The group of both is attempted (and fails); then another event is queued.
    tokio::time::sleep(Duration::from_millis(300)).await;
    h.change("c", Status::Ok, Status::Down);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let attempted = h.outbox().await;
    assert!(attempted[0].attempts > 0 && attempted[2].attempts == 0);
    h.receiver.down.store(false, Ordering::SeqCst);
    h.handle
        .reload(Settings {
            notifiers: vec![notifier("ops", 301, None)],
            firewall_notify: vec![],
        })
        .await;
    h.wait_for("all three", |r| r.items().len() == 3).await;
    let got = h.receiver.got();
    assert_eq!(
        got[0].id,
        format!("group:{}:2", attempted[0].notification.id),
        "the attempted message, as it was"
    );
    assert_eq!(h.receiver.items(), ["a:down", "b:down", "c:down"]);
    assert_eq!(got[1].items.len(), 1, "c comes in the next message");
    h.stop().await;
}

#[tokio::test]
async fn a_message_taken_by_a_receiver_before_the_daemon_died_comes_again_with_the_same_key() {
    // Found by `bench chaos`: the attempt was recorded only once it failed, so a daemon
    // killed while the receiver held the message restarted with the rows unattempted and
    // regrouped them with the rows queued since, under a new key.
    let h = Harness::start(vec![notifier("ops", 300, None)]).await;
    h.receiver.hang.store(true, Ordering::SeqCst);
    h.change("a", Status::Ok, Status::Down);
    h.change("b", Status::Ok, Status::Down);
    h.wait_for("the first attempt", |r| r.got().len() == 1)
        .await;
    h.change("c", Status::Ok, Status::Down);
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Stopping gives the send in flight a grace and then drops it, as a SIGKILL would.
    let (dir, receiver) = h.stop().await;
    receiver.hang.store(false, Ordering::SeqCst);

    let h = Harness::start_in(dir, vec![notifier("ops", 300, None)], receiver).await;
    h.wait_for("the retry and c", |r| r.got().len() == 3).await;
    let got = h.receiver.got();
    assert_eq!(got[1].id, got[0].id, "the same message again");
    assert_eq!(got[1].items, got[0].items);
    assert_eq!(got[2].items.len(), 1, "c comes in the next message");
    h.stop().await;
}

#[tokio::test]
async fn a_storm_larger_than_the_bus_is_notified_whole_each_monitor_once() {
    // issue 14.5: the dispatcher read a bounded broadcast; 10,000 DOWNs published while it
    // could not run (this test's thread publishes them all in one go) overflowed it, and all
    // but the newest 4,096 were lost with an error in the log.
    let h = Harness::start(vec![notifier("ops", 10, None)]).await;
    let n = crate::events::BUS_CAPACITY * 2 + 1_808;
    for i in 0..n {
        h.change(&format!("m{i:05}"), Status::Ok, Status::Down);
    }
    for _ in 0..1_200 {
        if h.receiver.items().len() >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut items = h.receiver.items();
    let messages = h.receiver.got().len();
    items.sort();
    let expected: Vec<String> = (0..n).map(|i| format!("m{i:05}:down")).collect();
    assert_eq!(items.len(), n, "every monitor once");
    assert!(items == expected, "every monitor once, none twice");
    assert!(
        messages <= n / plan::MAX_GROUP_ITEMS + 2,
        "grouped: {messages} messages"
    );
    h.stop().await;
}

#[tokio::test]
async fn reminders_keep_their_schedule_across_a_restart_neither_late_nor_twice() {
    // issue 14.9: after a restart the reminder schedule started from zero, so a daemon
    // restarted shortly before a reminder was due sent it a whole `remind_every` late.
    const EVERY_MS: u64 = 4_000;
    let every = Duration::from_millis(EVERY_MS);
    let h = Harness::start(vec![notifier("ops", 0, Some(EVERY_MS))]).await;
    h.change("web", Status::Ok, Status::Down);
    record_transition(&h.store, "web", std::time::SystemTime::now(), Status::Down).await;
    let wait = |h: &Harness, n: usize| {
        let r = h.receiver.clone();
        async move {
            for _ in 0..3 * EVERY_MS / 50 {
                if r.items().len() >= n {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            panic!("timed out waiting for {n} items; got {:?}", r.items());
        }
    };
    wait(&h, 2).await;
    // Restarted three quarters of the way to the next reminder.
    tokio::time::sleep(every * 3 / 4).await;
    let (dir, receiver) = h.stop().await;
    let h = Harness::start_in(dir, vec![notifier("ops", 0, Some(EVERY_MS))], receiver).await;
    h.change("web", Status::Unknown, Status::Down);
    wait(&h, 3).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        h.receiver.items(),
        ["web:down", "web:reminder", "web:reminder"],
        "no second DOWN, no repeated reminder"
    );
    let got = h.receiver.got();
    let gap = got[2].at_ms - got[1].at_ms;
    // On time is one `remind_every` after the last; starting over would be 1.75 of them.
    assert!(
        gap < EVERY_MS * 3 / 2,
        "the reminder after the restart came {gap} ms after the one before (every {EVERY_MS} ms)"
    );
    h.stop().await;
}

#[tokio::test]
async fn notifications_left_from_before_are_sent_once_a_store_failed_at_start_is_back() {
    // A daemon started while its store could not open never read the outbox: what was left
    // from before stayed unsent until the next restart.
    let dir = tempfile::tempdir().unwrap();
    let receiver = Arc::new(FakeReceiver::default());
    receiver.down.store(true, Ordering::SeqCst);
    let store = store_under_state(dir.path());
    let h = Harness::start_with(dir, store, vec![notifier("ops", 0, None)], receiver).await;
    h.change("web", Status::Ok, Status::Down);
    for _ in 0..200 {
        if h.outbox().await.len() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(h.outbox().await.len(), 1, "the DOWN waits in the outbox");
    let (dir, receiver) = h.stop().await;

    // The state directory cannot open at the next start.
    let state = dir.path().join("state");
    let away = dir.path().join("state.away");
    std::fs::rename(&state, &away).unwrap();
    std::fs::write(&state, b"not a directory").unwrap();
    receiver.down.store(false, Ordering::SeqCst);
    let store = store_under_state(dir.path());
    let h = Harness::start_with(dir, store, vec![notifier("ops", 0, None)], receiver).await;
    wait_store(&h.store, crate::store::StoreState::Failed).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(h.receiver.items().is_empty());

    std::fs::remove_file(&state).unwrap();
    std::fs::rename(&away, &state).unwrap();
    wait_store(&h.store, crate::store::StoreState::Ok).await;
    h.wait_for("the DOWN from before", |r| !r.items().is_empty())
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(h.receiver.items(), ["web:down"], "sent once");
    for _ in 0..200 {
        if h.outbox().await.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(h.outbox().await.is_empty(), "and gone from the outbox");
    h.stop().await;
}
