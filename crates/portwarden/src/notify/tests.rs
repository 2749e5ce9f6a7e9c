//! The dispatcher with a fake notifier and a real store in a temporary directory: order,
//! retries, grouping, restarts, reloads, silences and reminders. No network.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use notify::{Delivery, Kind, Notification, SendError};
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
            Ok(Delivery {
                response: "250 ok".into(),
            })
        })
    }
}

fn notifier(name: &str, window_ms: u64, remind_ms: Option<u64>) -> NotifierConfig {
    NotifierConfig {
        name: name.into(),
        spec: notify::NotifierSpec::Log(Default::default()),
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
            carried_down: store.open_incidents().await.unwrap_or_default(),
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
            reason: Some(probe::Reason::Refused),
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
        h.store
            .transition(crate::store::TransitionRecord {
                monitor: m.into(),
                at: down_at,
                from: Status::Ok,
                to: Status::Down,
                reason: Some(probe::Reason::Refused),
                message: "connection refused".into(),
            })
            .await;
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

#[tokio::test]
async fn reminders_keep_their_schedule_across_a_restart_neither_late_nor_twice() {
    // issue 14.9: after a restart the reminder schedule started from zero, so a daemon
    // restarted shortly before a reminder was due sent it a whole `remind_every` late.
    const EVERY_MS: u64 = 4_000;
    let every = Duration::from_millis(EVERY_MS);
    let h = Harness::start(vec![notifier("ops", 0, Some(EVERY_MS))]).await;
    h.change("web", Status::Ok, Status::Down);
    h.store
        .transition(crate::store::TransitionRecord {
            monitor: "web".into(),
            at: std::time::SystemTime::now(),
            from: Status::Ok,
            to: Status::Down,
            reason: Some(probe::Reason::Refused),
            message: "connection refused".into(),
        })
        .await;
    h.store.flush().await;
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
