//! firewalld: the daemon's own word (`firewall-cmd --state`) checked against the kernel
//! (`table inet firewalld` in nftables).
//!
//! Why both: after `nft flush ruleset` firewalld (1.3.3) still says "running" while nothing
//! of it is left in the kernel. Inbound defaults and rules are read from its table with
//! [`crate::nftables::inspect`].
//!
//! Repairing has a trap: the first `firewall-cmd --reload` after a flush fails (it deletes
//! `table inet firewalld` first, which is gone) and leaves only `inet firewalld_policy_drop`,
//! which drops everything. Pre-creating an empty `inet firewalld` table makes that delete
//! succeed, so [`enable`] does that when a reload did not bring the table back.

use crate::exec::{Command, Output, Runner};
use crate::model::{BackendKind, InboundDefault, State};
use crate::Error;

/// firewalld's nftables table (`FirewallBackend=nftables`).
pub const TABLE: &str = "inet firewalld";
/// What a failed reload leaves behind: a table that drops all traffic.
const POLICY_DROP_TABLE: &str = "inet firewalld_policy_drop";
/// `firewall-cmd` exit code for "the bus is up, firewalld is not" (firewalld's errors module).
const NOT_RUNNING: i32 = 252;

/// What `firewall-cmd --state` said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Daemon {
    Running,
    /// Not running; the reason when it was more than "not running" (no system bus, …).
    NotRunning(Option<String>),
}

/// Reads `firewall-cmd --state`: rc 0 + `running`, rc 252 `not running`; any other failure
/// (no system bus, rc 36) also means firewalld cannot be running, with the complaint kept.
pub fn parse_state(out: &Output) -> Result<Daemon, Error> {
    match out.code {
        Some(0) if out.stdout.trim() == "running" => Ok(Daemon::Running),
        Some(0) => Err(Error::malformed(
            "firewall-cmd --state",
            format!("exit 0 with `{}`", out.stdout.trim()),
        )),
        Some(NOT_RUNNING) => Ok(Daemon::NotRunning(None)),
        _ => Ok(Daemon::NotRunning(Some(out.complaint()))),
    }
}

/// `nft list tables` → `["inet firewalld", …]`.
pub fn parse_tables(text: &str) -> Result<Vec<String>, Error> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .enumerate()
        .map(
            |(i, line)| match line.split_whitespace().collect::<Vec<_>>()[..] {
                ["table", family, name] => Ok(format!("{family} {name}")),
                _ => Err(Error::malformed(
                    "nft list tables",
                    format!("line {}: unexpected `{line}`", i + 1),
                )),
            },
        )
        .collect()
}

/// The firewalld view from its pieces. `table_state` is `nftables::inspect` of firewalld's
/// table when it exists and could be read.
pub fn combine(daemon: &Daemon, tables: &[String], table_state: Option<State>) -> State {
    let present = tables.iter().any(|t| t == TABLE);
    let running = *daemon == Daemon::Running;
    let mut notes = Vec::new();
    if let Daemon::NotRunning(Some(why)) = daemon {
        notes.push(format!("firewalld is not running: {why}"));
    }
    if running && !present {
        notes.push(format!(
            "firewall-cmd says running but the kernel has no `table {TABLE}` (ruleset flushed?)"
        ));
    }
    if !present && tables.iter().any(|t| t == POLICY_DROP_TABLE) {
        notes.push(format!(
            "only `table {POLICY_DROP_TABLE}` is present: all traffic is dropped (a failed reload)"
        ));
    }
    let (inbound, rules) = match table_state {
        Some(s) => {
            notes.extend(s.notes);
            (s.inbound, s.rules)
        }
        None => {
            // No rules to go by: say "denies" only while firewalld's table is in place.
            let denies = running && present;
            if present {
                notes.push(format!(
                    "the rules of `table {TABLE}` could not be read; inbound assumed denied \
                     because firewalld's table is in place"
                ));
            }
            let fam = |scope: &str| InboundDefault {
                scope: scope.to_string(),
                policy: None,
                denies,
            };
            (vec![fam("ipv4"), fam("ipv6")], Vec::new())
        }
    };
    State {
        backend: BackendKind::Firewalld,
        enabled: running && present,
        inbound,
        rules,
        foreign_tables: tables.iter().filter(|t| *t != TABLE).cloned().collect(),
        notes,
    }
}

async fn daemon(runner: &Runner) -> Result<Daemon, Error> {
    let out = runner
        .run(&Command::new("firewall-cmd", &["--state"]))
        .await?;
    parse_state(&out)
}

async fn tables(runner: &Runner) -> Result<Vec<String>, Error> {
    let out = runner
        .run_ok(&Command::new("nft", &["list", "tables"]))
        .await?;
    parse_tables(&out.stdout)
}

pub async fn inspect(runner: &Runner) -> Result<State, Error> {
    let daemon = daemon(runner).await?;
    let tables = tables(runner).await?;
    let table_state = if tables.iter().any(|t| t == TABLE) {
        match crate::nftables::inspect(runner, Some(&[TABLE.to_string()])).await {
            Ok(s) => Some(s),
            // An nftables backend compiled out or not built yet: fall back to table presence.
            Err(Error::Unsupported { .. }) => None,
            Err(e) => return Err(e),
        }
    } else {
        None
    };
    Ok(combine(&daemon, &tables, table_state))
}

async fn table_present(runner: &Runner) -> Result<bool, Error> {
    Ok(tables(runner).await?.iter().any(|t| t == TABLE))
}

/// Brings firewalld's table back: restart the service when firewalld is not running, else
/// reload; if the reload did not bring the table back (the flush trap above), pre-create the
/// table and reload once more. Verified by looking for the table each time.
pub async fn enable(runner: &Runner) -> Result<(), Error> {
    let reload = Command::new("firewall-cmd", &["--reload"]);
    if let Daemon::NotRunning(why) = daemon(runner).await? {
        let restart = Command::new("systemctl", &["restart", "firewalld"]);
        // Without systemd (containers, test namespaces) this fails; say so plainly.
        let complaint = match runner.run(&restart).await {
            Ok(out) if out.success() => None,
            Ok(out) => Some(out.complaint()),
            Err(e) => Some(e.to_string()),
        };
        if let Some(complaint) = complaint {
            return Err(Error::Failed {
                command: restart.to_string(),
                message: format!(
                    "firewalld is not running{} and could not be restarted: {complaint}",
                    why.map(|w| format!(" ({w})")).unwrap_or_default(),
                ),
            });
        }
        if table_present(runner).await? {
            return Ok(());
        }
        return Err(Error::Failed {
            command: restart.to_string(),
            message: format!("firewalld restarted but `table {TABLE}` is still missing"),
        });
    }
    if table_present(runner).await? {
        // Running with its table: a reload puts back rules changed behind its back.
        runner.run_ok(&reload).await?;
        return Ok(());
    }
    let first = runner.run(&reload).await?;
    if table_present(runner).await? {
        return Ok(());
    }
    tracing::warn!(
        target: "firewall::firewalld",
        complaint = %first.complaint(),
        "firewall-cmd --reload did not bring `table {TABLE}` back; pre-creating it and reloading again"
    );
    runner
        .run_ok(&Command::new("nft", &["add", "table", "inet", "firewalld"]))
        .await?;
    let second = runner.run(&reload).await?;
    if table_present(runner).await? {
        return Ok(());
    }
    Err(Error::Failed {
        command: reload.to_string(),
        message: format!(
            "`table {TABLE}` is still missing after two reloads (first: {}; second, after \
             pre-creating the table: {})",
            first.complaint(),
            second.complaint()
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(name: &str) -> String {
        let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn output(code: i32, stdout: &str, stderr: &str) -> Output {
        Output {
            code: Some(code),
            stdout: stdout.to_string(),
            stderr: stderr.to_string(),
        }
    }

    #[test]
    fn reads_the_three_recorded_state_answers() {
        let running = output(0, &data("firewalld_state_running.stdout"), "");
        assert_eq!(parse_state(&running).unwrap(), Daemon::Running);
        let stopped = output(252, "", &data("firewalld_state_not_running.stderr"));
        assert_eq!(parse_state(&stopped).unwrap(), Daemon::NotRunning(None));
        let no_bus = output(36, "", &data("firewalld_state_no_bus.stderr"));
        match parse_state(&no_bus).unwrap() {
            Daemon::NotRunning(Some(why)) => assert!(why.contains("DBUS_ERROR"), "{why}"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse_state(&output(0, "maybe\n", "")),
            Err(Error::Malformed { .. })
        ));
    }

    #[test]
    fn reads_table_listings_and_refuses_garbage() {
        assert_eq!(
            parse_tables(&data("firewalld_nft_tables_running.txt")).unwrap(),
            ["inet firewalld"]
        );
        assert!(parse_tables(&data("firewalld_nft_tables_flushed.txt"))
            .unwrap()
            .is_empty());
        let err = parse_tables("table inet firewalld\nchain x\n").unwrap_err();
        assert!(err.to_string().contains("line 2"), "{err}");
    }

    #[test]
    fn running_with_its_table_is_enabled() {
        let tables = parse_tables(&data("firewalld_nft_tables_running.txt")).unwrap();
        let state = combine(&Daemon::Running, &tables, None);
        assert_eq!(state.backend, BackendKind::Firewalld);
        assert!(state.enabled);
        assert!(state.inbound_default_deny());
    }

    #[test]
    fn running_after_a_flush_is_not_enabled_and_says_why() {
        let state = combine(&Daemon::Running, &[], None);
        assert!(!state.enabled);
        assert!(!state.inbound_default_deny());
        assert!(state.notes[0].contains("says running"), "{:?}", state.notes);
        let tables = parse_tables(&data("firewalld_nft_tables_policy_drop.txt")).unwrap();
        let state = combine(&Daemon::Running, &tables, None);
        assert!(!state.enabled);
        assert!(state.notes.iter().any(|n| n.contains("failed reload")));
        assert_eq!(state.foreign_tables, ["inet firewalld_policy_drop"]);
    }

    #[test]
    fn a_table_without_the_daemon_is_not_enabled() {
        let no_bus = Daemon::NotRunning(Some("Error: DBUS_ERROR: …".into()));
        let state = combine(&no_bus, &["inet firewalld".to_string()], None);
        assert!(!state.enabled);
        assert!(state.notes[0].contains("DBUS_ERROR"));
    }

    #[test]
    fn inbound_and_rules_come_from_the_table_when_it_was_read() {
        let table = State {
            backend: BackendKind::Nftables,
            enabled: true,
            inbound: vec![InboundDefault {
                scope: "ipv4".into(),
                policy: Some("accept".into()),
                denies: true,
            }],
            rules: vec![crate::model::Rule {
                scope: "inet firewalld filter_INPUT".into(),
                text: "reject with icmpx admin-prohibited".into(),
                simple: None,
            }],
            foreign_tables: Vec::new(),
            notes: Vec::new(),
        };
        let state = combine(&Daemon::Running, &["inet firewalld".into()], Some(table));
        assert_eq!(state.backend, BackendKind::Firewalld);
        assert_eq!(state.rules.len(), 1);
        assert_eq!(state.inbound[0].policy.as_deref(), Some("accept"));
        assert!(state.notes.is_empty());
    }
}
