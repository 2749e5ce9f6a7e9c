//! macOS has two independent firewalls, each a backend here: the packet filter pf (`pfctl`) and
//! the application firewall (`socketfilterfw`). Both are parsers over the tools' text plus
//! command plans run through [`Runner`], so they are built and tested on every platform
//! (recorded-style outputs in `tests/data/macos_*.txt`).
//!
//! pf: `pfctl -s info` says whether it is on; `pfctl -s rules` lists the main ruleset. pf is
//! last-match-wins, so an unconditional `block [drop|return] [in] [log] [quick] [inet|inet6] all`
//! anywhere in the main ruleset means inbound traffic no later `pass` accepts is blocked: that
//! rule is read as the inbound default deny, per address family. Rules inside anchors
//! (`com.apple/*`) are not listed by `pfctl -s rules` and are not interpreted. Switching on uses
//! `pfctl -E`, which takes a reference on pf instead of forcing it (Apple's own pf users do the
//! same); the token it prints is deliberately not released, so pf stays on.
//!
//! Application firewall: `socketfilterfw --getglobalstate` prints
//! `Firewall is enabled. (State = 1)`, `… disabled. (State = 0)`, or State = 2 for "block all
//! incoming connections". Only State = 2 counts as an inbound default deny: in State = 1 the
//! firewall decides per application and lets signed software in automatically.

use crate::exec::{Command, Output, Runner};
use crate::model::{BackendKind, InboundDefault, Rule, State};
use crate::Error;

/// pfctl's path on every macOS; absolute because launchd daemons get a minimal PATH.
pub const PFCTL: &str = "/sbin/pfctl";
/// The application firewall's command-line tool.
pub const SOCKETFILTERFW: &str = "/usr/libexec/ApplicationFirewall/socketfilterfw";

/// `pfctl -s info`: status line first (needs root).
pub fn pf_info_command() -> Command {
    Command::new(PFCTL, &["-s", "info"])
}

/// `pfctl -s rules`: the main ruleset's filter rules.
pub fn pf_rules_command() -> Command {
    Command::new(PFCTL, &["-s", "rules"])
}

/// `pfctl -E`: enable pf by taking a reference (prints a token on stderr).
pub fn pf_enable_command() -> Command {
    Command::new(PFCTL, &["-E"])
}

/// `socketfilterfw --getglobalstate`.
pub fn app_firewall_state_command() -> Command {
    Command::new(SOCKETFILTERFW, &["--getglobalstate"])
}

/// `socketfilterfw --setglobalstate on` (needs root).
pub fn app_firewall_enable_command() -> Command {
    Command::new(SOCKETFILTERFW, &["--setglobalstate", "on"])
}

pub async fn inspect_pf(runner: &Runner) -> Result<State, Error> {
    let info_cmd = pf_info_command();
    let info = runner.run(&info_cmd).await?;
    let rules_cmd = pf_rules_command();
    let rules = runner.run(&rules_cmd).await;
    let rules = match &rules {
        Ok(out) => Ok(out),
        Err(e) => Err(e.to_string()),
    };
    pf_state(&info_cmd, &info, rules)
}

/// Switches pf on unless it already is, then checks that it is.
pub async fn enable_pf(runner: &Runner) -> Result<(), Error> {
    if inspect_pf(runner).await?.enabled {
        return Ok(());
    }
    let cmd = pf_enable_command();
    let out = runner.run(&cmd).await?;
    pf_enable_result(&cmd, &out)?;
    if inspect_pf(runner).await?.enabled {
        Ok(())
    } else {
        Err(Error::Failed {
            command: cmd.to_string(),
            message: "pf is still disabled afterwards".to_string(),
        })
    }
}

pub async fn inspect_app_firewall(runner: &Runner) -> Result<State, Error> {
    let cmd = app_firewall_state_command();
    let out = runner.run(&cmd).await?;
    app_firewall_state(&cmd, &out)
}

/// Switches the application firewall on unless it already is (so "block all" is never turned
/// down to plain "on"), then checks that it is.
pub async fn enable_app_firewall(runner: &Runner) -> Result<(), Error> {
    if inspect_app_firewall(runner).await?.enabled {
        return Ok(());
    }
    let cmd = app_firewall_enable_command();
    runner.run_ok(&cmd).await?;
    if inspect_app_firewall(runner).await?.enabled {
        Ok(())
    } else {
        Err(Error::Failed {
            command: cmd.to_string(),
            message: "the application firewall is still off afterwards".to_string(),
        })
    }
}

/// The first line of a pfctl complaint that is not its ALTQ banner (macOS prints
/// "No ALTQ support in kernel" / "ALTQ related functions disabled" on every call).
pub fn pfctl_complaint(out: &Output) -> String {
    out.stderr
        .lines()
        .chain(out.stdout.lines())
        .map(str::trim)
        .find(|l| !l.is_empty() && !is_altq_banner(l))
        .map(String::from)
        .unwrap_or_else(|| out.complaint())
}

fn is_altq_banner(line: &str) -> bool {
    line.starts_with("No ALTQ support") || line.starts_with("ALTQ related functions")
}

/// Reads `pfctl -s info`'s status line: `Status: Enabled for …` or `Status: Disabled …`.
pub fn parse_pf_status(info: &str) -> Result<bool, Error> {
    let status = info
        .lines()
        .map(str::trim)
        .find_map(|l| l.strip_prefix("Status:"))
        .ok_or_else(|| Error::malformed("pfctl -s info", "no `Status:` line"))?;
    match status.split_whitespace().next() {
        Some("Enabled") => Ok(true),
        Some("Disabled") => Ok(false),
        other => Err(Error::malformed(
            "pfctl -s info",
            format!("unknown status {:?}", other.unwrap_or("")),
        )),
    }
}

/// The main ruleset as [`Rule`]s (scope `pf`, not interpreted further) and the inbound default
/// per family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PfRules {
    pub rules: Vec<Rule>,
    pub inbound: Vec<InboundDefault>,
}

/// Reads `pfctl -s rules`. Whitespace is normalised; the ALTQ banner is skipped.
pub fn parse_pf_rules(text: &str) -> PfRules {
    let mut rules = Vec::new();
    let (mut v4, mut v6) = (false, false);
    for line in text.lines() {
        let line = line.split_whitespace().collect::<Vec<_>>().join(" ");
        if line.is_empty() || is_altq_banner(&line) {
            continue;
        }
        if let Some((four, six)) = blocks_all_inbound(&line) {
            v4 |= four;
            v6 |= six;
        }
        rules.push(Rule {
            scope: "pf".to_string(),
            text: line,
            simple: None,
        });
    }
    let family = |scope: &str, denies: bool| InboundDefault {
        scope: scope.to_string(),
        policy: denies.then(|| "block".to_string()),
        denies,
    };
    PfRules {
        rules,
        inbound: vec![family("ipv4", v4), family("ipv6", v6)],
    }
}

/// For an unconditional inbound block rule, the families it covers (IPv4, IPv6).
fn blocks_all_inbound(line: &str) -> Option<(bool, bool)> {
    let mut words = line.split_whitespace().peekable();
    if words.next()? != "block" {
        return None;
    }
    // `drop`, `return`, `return-rst (ttl 64)`, `return-icmp (…)`, …
    if words
        .peek()
        .is_some_and(|w| *w == "drop" || w.starts_with("return"))
    {
        words.next();
        skip_parenthesised(&mut words);
    }
    match words.peek().copied() {
        Some("out") => return None,
        Some("in") => {
            words.next();
        }
        _ => {}
    }
    if words.peek() == Some(&"log") {
        words.next();
        skip_parenthesised(&mut words);
    }
    if words.peek() == Some(&"quick") {
        words.next();
    }
    let families = match words.peek().copied() {
        Some("inet") => (true, false),
        Some("inet6") => (false, true),
        _ => (true, true),
    };
    if families != (true, true) {
        words.next();
    }
    if words.next()? != "all" {
        return None;
    }
    match words.next() {
        None | Some("label") => Some(families),
        Some(_) => None,
    }
}

fn skip_parenthesised<'a>(words: &mut std::iter::Peekable<impl Iterator<Item = &'a str>>) {
    if !words.peek().is_some_and(|w| w.starts_with('(')) {
        return;
    }
    for word in words.by_ref() {
        if word.ends_with(')') {
            break;
        }
    }
}

/// Builds pf's state from `pfctl -s info` and, when it could be run, `pfctl -s rules`.
/// A failed `-s info` (not root: "pfctl: /dev/pf: Permission denied") is [`Error::Failed`].
/// Rules that cannot be read leave inbound unknown (not denying) with a note.
pub fn pf_state(
    info_cmd: &Command,
    info: &Output,
    rules: Result<&Output, String>,
) -> Result<State, Error> {
    if !info.success() {
        return Err(Error::Failed {
            command: info_cmd.to_string(),
            message: pfctl_complaint(info),
        });
    }
    let enabled = parse_pf_status(&info.stdout)?;
    let mut notes = Vec::new();
    if !enabled {
        notes.push("pf is disabled".to_string());
    }
    let parsed = match rules {
        Ok(out) if out.success() => Some(parse_pf_rules(&out.stdout)),
        Ok(out) => {
            notes.push(format!(
                "pf rules could not be read: {}",
                pfctl_complaint(out)
            ));
            None
        }
        Err(e) => {
            notes.push(format!("pf rules could not be read: {e}"));
            None
        }
    };
    let (rules, inbound) = match parsed {
        Some(p) => (p.rules, p.inbound),
        None => (
            Vec::new(),
            ["ipv4", "ipv6"]
                .into_iter()
                .map(|scope| InboundDefault {
                    scope: scope.to_string(),
                    policy: None,
                    denies: false,
                })
                .collect(),
        ),
    };
    for d in inbound.iter().filter(|d| !d.denies) {
        notes.push(format!(
            "no unconditional `block in all` rule for {} in pf's main ruleset: inbound traffic \
             no rule blocks is passed (rules inside anchors are not read)",
            d.scope
        ));
    }
    Ok(State {
        backend: BackendKind::Pf,
        enabled,
        inbound,
        rules,
        foreign_tables: Vec::new(),
        notes,
    })
}

/// What `pfctl -E` answered: success, or "pf already enabled", is fine.
pub fn pf_enable_result(cmd: &Command, out: &Output) -> Result<(), Error> {
    let already = out
        .stderr
        .lines()
        .chain(out.stdout.lines())
        .any(|l| l.contains("already enabled"));
    if out.success() || already {
        Ok(())
    } else {
        Err(Error::Failed {
            command: cmd.to_string(),
            message: pfctl_complaint(out),
        })
    }
}

/// The application firewall's global state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppFirewallMode {
    /// State 0.
    Off,
    /// State 1: on, deciding per application.
    On,
    /// State 2: blocks all incoming connections except essential services.
    BlockAll,
}

/// Reads `socketfilterfw --getglobalstate`: the `(State = N)` number when present, else the
/// `Firewall is enabled.` / `Firewall is disabled.` wording.
pub fn parse_app_firewall(text: &str) -> Result<AppFirewallMode, Error> {
    const SOURCE: &str = "socketfilterfw --getglobalstate";
    if let Some(rest) = text.split("(State = ").nth(1) {
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        return match digits.as_str() {
            "0" => Ok(AppFirewallMode::Off),
            "1" => Ok(AppFirewallMode::On),
            "2" => Ok(AppFirewallMode::BlockAll),
            _ => Err(Error::malformed(
                SOURCE,
                format!("unknown state {:?}", rest.trim()),
            )),
        };
    }
    if text.contains("Firewall is enabled") {
        Ok(AppFirewallMode::On)
    } else if text.contains("Firewall is disabled") {
        Ok(AppFirewallMode::Off)
    } else {
        let first = text.lines().map(str::trim).find(|l| !l.is_empty());
        Err(Error::malformed(
            SOURCE,
            format!("unexpected output {:?}", first.unwrap_or("")),
        ))
    }
}

/// Builds the application firewall's state from `--getglobalstate`'s output.
pub fn app_firewall_state(cmd: &Command, out: &Output) -> Result<State, Error> {
    if !out.success() {
        return Err(Error::Failed {
            command: cmd.to_string(),
            message: out.complaint(),
        });
    }
    let mode = parse_app_firewall(&out.stdout)?;
    let (policy, note) = match mode {
        AppFirewallMode::Off => ("off", "the application firewall is off"),
        AppFirewallMode::On => (
            "per-app",
            "the application firewall decides per application and lets signed software in \
             automatically: no default deny for inbound traffic",
        ),
        AppFirewallMode::BlockAll => ("block-all", ""),
    };
    Ok(State {
        backend: BackendKind::MacAppFirewall,
        enabled: mode != AppFirewallMode::Off,
        inbound: vec![InboundDefault {
            scope: "app-firewall".to_string(),
            policy: Some(policy.to_string()),
            denies: mode == AppFirewallMode::BlockAll,
        }],
        rules: Vec::new(),
        foreign_tables: Vec::new(),
        notes: if note.is_empty() {
            Vec::new()
        } else {
            vec![note.to_string()]
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    macro_rules! data {
        ($name:literal) => {
            include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/", $name))
        };
    }

    fn ok(stdout: &str, stderr: &str) -> Output {
        Output {
            code: Some(0),
            stdout: stdout.to_string(),
            stderr: stderr.to_string(),
        }
    }

    fn failed(code: i32, stderr: &str) -> Output {
        Output {
            code: Some(code),
            stdout: String::new(),
            stderr: stderr.to_string(),
        }
    }

    #[test]
    fn pf_status_line_says_enabled_or_disabled() {
        assert!(parse_pf_status(data!("macos_pf_info_enabled.txt")).unwrap());
        assert!(!parse_pf_status(data!("macos_pf_info_disabled.txt")).unwrap());
    }

    #[test]
    fn pf_status_garbage_is_malformed() {
        for text in [
            "",
            "\n",
            "Status:",
            "Status: Maybe",
            "State Table  Total  Rate",
        ] {
            assert!(
                matches!(parse_pf_status(text), Err(Error::Malformed { .. })),
                "{text:?}"
            );
        }
    }

    #[test]
    fn pf_without_root_is_failed_with_the_real_complaint_not_the_altq_banner() {
        let stderr = format!(
            "{}{}",
            data!("macos_pfctl_altq.stderr.txt"),
            data!("macos_pfctl_permission_denied.stderr.txt")
        );
        match pf_state(&pf_info_command(), &failed(1, &stderr), Err("x".into())) {
            Err(Error::Failed { command, message }) => {
                assert_eq!(command, "/sbin/pfctl -s info");
                assert_eq!(message, "pfctl: /dev/pf: Permission denied");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn pf_on_with_a_block_in_all_rule_denies_inbound_by_default() {
        let info = ok(
            data!("macos_pf_info_enabled.txt"),
            data!("macos_pfctl_altq.stderr.txt"),
        );
        let rules = ok(data!("macos_pf_rules_block_in.txt"), "");
        let state = pf_state(&pf_info_command(), &info, Ok(&rules)).unwrap();
        assert_eq!(state.backend, BackendKind::Pf);
        assert!(state.enabled);
        assert!(state.inbound_default_deny());
        assert!(state.notes.is_empty(), "{:?}", state.notes);
        assert_eq!(state.rules.len(), 6);
        assert_eq!(state.rules[2].text, "block drop in all");
        assert!(state
            .rules
            .iter()
            .all(|r| r.scope == "pf" && r.simple.is_none()));
    }

    #[test]
    fn apples_default_ruleset_passes_inbound_and_says_so() {
        let info = ok(data!("macos_pf_info_enabled.txt"), "");
        let rules = ok(data!("macos_pf_rules_apple_default.txt"), "");
        let state = pf_state(&pf_info_command(), &info, Ok(&rules)).unwrap();
        assert!(state.enabled);
        assert!(!state.inbound_default_deny());
        assert!(state.inbound.iter().all(|d| d.policy.is_none()));
        assert_eq!(state.notes.len(), 2, "{:?}", state.notes);
    }

    #[test]
    fn pf_disabled_is_reported_off() {
        let info = ok(data!("macos_pf_info_disabled.txt"), "");
        let state = pf_state(&pf_info_command(), &info, Ok(&ok("", ""))).unwrap();
        assert!(!state.enabled);
        assert!(state.notes.iter().any(|n| n == "pf is disabled"));
        assert!(state.rules.is_empty());
    }

    #[test]
    fn unreadable_pf_rules_leave_inbound_unknown_with_a_note() {
        let info = ok(data!("macos_pf_info_enabled.txt"), "");
        let rules = failed(1, data!("macos_pfctl_permission_denied.stderr.txt"));
        let state = pf_state(&pf_info_command(), &info, Ok(&rules)).unwrap();
        assert!(state.enabled);
        assert!(!state.inbound_default_deny());
        assert!(state
            .notes
            .iter()
            .any(|n| n == "pf rules could not be read: pfctl: /dev/pf: Permission denied"));
    }

    #[test]
    fn family_specific_and_interface_bound_blocks_are_told_apart() {
        let parsed = parse_pf_rules(data!("macos_pf_rules_ipv4_only.txt"));
        // `block return in log inet all` covers IPv4; `… on en0 inet6 all` is not unconditional.
        assert_eq!(
            parsed
                .inbound
                .iter()
                .map(|d| (d.scope.as_str(), d.denies))
                .collect::<Vec<_>>(),
            vec![("ipv4", true), ("ipv6", false)]
        );
    }

    #[test]
    fn block_rule_shapes() {
        let both = Some((true, true));
        for (line, want) in [
            ("block drop in all", both),
            ("block in all", both),
            ("block return in all", both),
            ("block drop all", both),
            ("block drop in log quick all", both),
            ("block drop in log (all) all", both),
            ("block return-rst (ttl 64) in all", both),
            ("block drop in all label \"default\"", both),
            ("block drop in inet6 all", Some((false, true))),
            ("block drop out all", None),
            ("block drop in on en0 all", None),
            ("block drop in proto tcp all", None),
            ("block drop in from 10.0.0.0/8 to any", None),
            ("block drop in all flags S/SA", None),
            ("pass in all", None),
            ("block", None),
        ] {
            assert_eq!(blocks_all_inbound(line), want, "{line}");
        }
    }

    #[test]
    fn pf_enable_accepts_a_token_or_already_enabled() {
        let cmd = pf_enable_command();
        assert_eq!(cmd.program, "/sbin/pfctl");
        assert_eq!(cmd.args, vec!["-E"]);
        let stderr = format!(
            "{}{}",
            data!("macos_pfctl_altq.stderr.txt"),
            data!("macos_pfctl_enable.stderr.txt")
        );
        assert!(pf_enable_result(&cmd, &ok("", &stderr)).is_ok());
        assert!(pf_enable_result(&cmd, &failed(1, "pf already enabled\n")).is_ok());
        match pf_enable_result(
            &cmd,
            &failed(1, data!("macos_pfctl_permission_denied.stderr.txt")),
        ) {
            Err(Error::Failed { message, .. }) => {
                assert_eq!(message, "pfctl: /dev/pf: Permission denied")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn pf_read_plans_are_exact() {
        assert_eq!(pf_info_command().to_string(), "/sbin/pfctl -s info");
        assert_eq!(pf_rules_command().to_string(), "/sbin/pfctl -s rules");
    }

    #[test]
    fn app_firewall_states() {
        for (text, mode) in [
            (data!("macos_alf_enabled.txt"), AppFirewallMode::On),
            (data!("macos_alf_disabled.txt"), AppFirewallMode::Off),
            (data!("macos_alf_block_all.txt"), AppFirewallMode::BlockAll),
            (
                data!("macos_alf_block_all_wording.txt"),
                AppFirewallMode::BlockAll,
            ),
            ("Firewall is enabled.\n", AppFirewallMode::On),
            ("Firewall is disabled.\n", AppFirewallMode::Off),
        ] {
            assert_eq!(parse_app_firewall(text).unwrap(), mode, "{text:?}");
        }
    }

    #[test]
    fn app_firewall_garbage_is_malformed() {
        for text in ["", "(State = 7)", "(State = )", "Usage: socketfilterfw …"] {
            assert!(
                matches!(parse_app_firewall(text), Err(Error::Malformed { .. })),
                "{text:?}"
            );
        }
    }

    #[test]
    fn app_firewall_state_maps_modes() {
        let cmd = app_firewall_state_command();
        let on = app_firewall_state(&cmd, &ok(data!("macos_alf_enabled.txt"), "")).unwrap();
        assert_eq!(on.backend, BackendKind::MacAppFirewall);
        assert!(on.enabled);
        assert!(!on.inbound_default_deny());
        assert_eq!(on.inbound[0].policy.as_deref(), Some("per-app"));

        let all = app_firewall_state(&cmd, &ok(data!("macos_alf_block_all.txt"), "")).unwrap();
        assert!(all.enabled && all.inbound_default_deny());
        assert!(all.notes.is_empty());

        let off = app_firewall_state(&cmd, &ok(data!("macos_alf_disabled.txt"), "")).unwrap();
        assert!(!off.enabled);
        assert_eq!(off.notes, vec!["the application firewall is off"]);

        assert!(matches!(
            app_firewall_state(&cmd, &failed(1, "Must be root to change settings.")),
            Err(Error::Failed { .. })
        ));
    }

    #[test]
    fn app_firewall_plans_are_exact() {
        assert_eq!(
            app_firewall_state_command().to_string(),
            "/usr/libexec/ApplicationFirewall/socketfilterfw --getglobalstate"
        );
        assert_eq!(
            app_firewall_enable_command().to_string(),
            "/usr/libexec/ApplicationFirewall/socketfilterfw --setglobalstate on"
        );
    }
}
