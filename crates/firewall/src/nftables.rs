//! nftables: read the ruleset, snapshot the managed tables, restore them with one atomic
//! `nft -f`, and watch for changes.
//!
//! - [`inspect`] runs `nft -j list ruleset` (structure, for judging) and `nft -s list ruleset`
//!   (the rules as the administrator writes them, for drift), pairs them chain by chain
//!   (`json`, `text`, `state` submodules), and re-lists the JSON to make sure nothing changed
//!   in between.
//! - [`snapshot`] keeps each managed table's `nft -s list table` text in a [`Payload`].
//! - [`restore`] re-creates those tables (`table F N` / `delete table F N` / the saved text) in
//!   one transaction, checked with `nft -c` first; other tools' tables are never touched.
//! - [`Watch`] follows `nft monitor` and reports each transaction with its culprit.
//!
//! Tables written by iptables-nft are foreign here: `nft` cannot re-create their `xt` matches,
//! so they belong to the iptables backend.

// Crate-visible for the fuzz entry points (`crate::fuzzing`).
pub(crate) mod json;
pub(crate) mod state;
pub(crate) mod text;
mod watch;

use serde::{Deserialize, Serialize};

use crate::baseline::Restore;
use crate::exec::{Command, Runner};
use crate::model::State;
use crate::Error;

pub use watch::{parse_generation, Change, Culprit, Watch};

/// The managed tables of a baseline, as `nft -f` text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payload {
    pub tables: Vec<SavedTable>,
}

impl Payload {
    /// The saved tables as `inet filter`: what a guard passes to
    /// [`crate::Firewall::with_tables`] so that tables created after the snapshot (by Docker,
    /// fail2ban, …) are foreign rather than drift.
    pub fn table_ids(&self) -> Vec<String> {
        self.tables
            .iter()
            .map(|t| format!("{} {}", t.family, t.name))
            .collect()
    }
}

/// One table as `nft -s list table FAMILY NAME` printed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedTable {
    /// `ip`, `ip6`, `inet`, `arp`, `bridge` or `netdev`.
    pub family: String,
    pub name: String,
    /// The table definition, starting with `table FAMILY NAME {`.
    pub text: String,
}

/// How often the listing is retried when the ruleset changed while it was being read.
const LIST_ATTEMPTS: usize = 3;

/// Reads the current state. `tables` limits the managed tables (`"inet filter"`); `None`
/// manages every native table. Read-only.
pub async fn inspect(runner: &Runner, tables: Option<&[String]>) -> Result<State, Error> {
    let json_cmd = Command::new("nft", &["-j", "list", "ruleset"]);
    let text_cmd = Command::new("nft", &["-s", "list", "ruleset"]);
    let mut before = json::parse(&runner.run_ok(&json_cmd).await?.stdout)?;
    for _ in 0..LIST_ATTEMPTS {
        let listing = runner.run_ok(&text_cmd).await?.stdout;
        let after = json::parse(&runner.run_ok(&json_cmd).await?.stdout)?;
        // Rule handles are never reused, so the same structure before and after the text
        // means the text shows this very ruleset.
        if fingerprint(&before) == fingerprint(&after) {
            let listing = text::parse(&listing).map_err(|e| Error::malformed(text::SOURCE, e))?;
            return state::build(&after, &listing, tables);
        }
        before = after;
    }
    Err(Error::malformed(
        json::SOURCE,
        "the ruleset kept changing while it was being read",
    ))
}

/// Everything but counter values: tables, chains, policies, rule handles.
fn fingerprint(ruleset: &json::Ruleset) -> Vec<String> {
    let mut out = Vec::new();
    for t in &ruleset.tables {
        out.push(format!("{} {:?}", t.id(), t.handle));
        for c in &t.chains {
            let rules: Vec<Option<u64>> = c.rules.iter().map(|r| r.handle).collect();
            out.push(format!("{} {:?} {:?} {rules:?}", c.name, c.handle, c.base));
        }
    }
    out
}

/// Reads the state and saves each managed table's text. Refuses tables written by
/// iptables-nft (the iptables backend saves those) and a ruleset with nothing to manage; the
/// saved text is checked with `nft -c` so a baseline that could not be restored is never made.
pub async fn snapshot(
    runner: &Runner,
    tables: Option<&[String]>,
) -> Result<(State, Restore), Error> {
    let cmd = Command::new("nft", &["-j", "list", "ruleset"]);
    let ruleset = json::parse(&runner.run_ok(&cmd).await?.stdout)?;
    if let Some(wanted) = tables {
        for id in wanted {
            let found = ruleset
                .tables
                .iter()
                .find(|t| state::same_table(id, &t.id()));
            match found {
                None => {
                    return Err(Error::Failed {
                        command: cmd.to_string(),
                        message: format!("there is no table {id}"),
                    })
                }
                Some(t) if t.is_iptables_nft() => return Err(iptables_owned(&t.id())),
                Some(_) => {}
            }
        }
    }
    let managed: Vec<(String, String)> = ruleset
        .tables
        .iter()
        .filter(|t| state::is_managed(t, tables))
        .map(|t| (t.family.clone(), t.name.clone()))
        .collect();
    if managed.is_empty() {
        return Err(Error::NotDetected(
            "no native nftables table to save (tables written by iptables-nft belong to the \
             iptables-nft backend)"
                .into(),
        ));
    }
    let mut saved = Vec::new();
    for (family, name) in managed {
        let cmd = Command::new("nft", &["-s", "list", "table", &family, &name]);
        let text = runner.run_ok(&cmd).await?.stdout;
        if !text.contains("table ") {
            return Err(Error::malformed(&cmd.to_string(), "empty listing"));
        }
        saved.push(SavedTable { family, name, text });
    }
    let payload = Payload { tables: saved };
    let script = restore_script(&payload)?;
    apply(runner, &script, true).await?;
    let state = inspect(runner, tables).await?;
    Ok((state, Restore::Nftables(payload)))
}

fn iptables_owned(id: &str) -> Error {
    Error::Unsupported {
        backend: crate::model::BackendKind::Nftables,
        what: format!("saving table {id}, which iptables-nft wrote (use the iptables-nft backend)"),
    }
}

/// Re-creates the payload's tables in one atomic transaction, after `nft -c` accepted it.
/// Tables not in the payload are left alone.
pub async fn restore(runner: &Runner, payload: &Payload) -> Result<(), Error> {
    let script = restore_script(payload)?;
    apply(runner, &script, true).await?;
    apply(runner, &script, false).await
}

/// The restore script: per table `table F N` (creates it if missing, so the delete cannot
/// fail), `delete table F N`, then the saved definition. One file is one transaction.
pub fn restore_script(payload: &Payload) -> Result<String, Error> {
    let bad = |detail: String| Error::malformed("the baseline's nftables payload", detail);
    if payload.tables.is_empty() {
        return Err(bad("it holds no table".into()));
    }
    let mut script = String::new();
    for t in &payload.tables {
        let id = format!("{} {}", t.family, t.name);
        let family_ok =
            ["ip", "ip6", "inet", "arp", "bridge", "netdev"].contains(&t.family.as_str());
        let name_ok = !t.name.is_empty()
            && t.name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-./".contains(c));
        if !family_ok || !name_ok {
            return Err(bad(format!("`{id}` is not a table name")));
        }
        // The text must define the table it claims to; anything else would delete one table
        // and create another.
        let header = t
            .text
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with('#'));
        let expected = format!("table {id} {{");
        if header != Some(expected.as_str()) {
            return Err(bad(format!(
                "the text for {id} does not start with `{expected}`"
            )));
        }
        script.push_str(&format!("table {id}\ndelete table {id}\n"));
        script.push_str(&t.text);
        if !t.text.ends_with('\n') {
            script.push('\n');
        }
    }
    Ok(script)
}

/// Runs the script through `nft -c -f -` (`check`) or `nft -f -`.
async fn apply(runner: &Runner, script: &str, check: bool) -> Result<(), Error> {
    let args: &[&str] = if check {
        &["-c", "-f", "-"]
    } else {
        &["-f", "-"]
    };
    let cmd = Command::new("nft", args).with_stdin(script);
    let out = runner.run(&cmd).await?;
    if out.success() {
        return Ok(());
    }
    // nft prints `/dev/stdin:LINE:COL-COL: Error: …` followed by the line and a caret; keep the
    // error lines, they say where.
    let errors: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.contains("Error:"))
        .take(5)
        .collect();
    Err(Error::Failed {
        command: cmd.to_string(),
        message: if errors.is_empty() {
            out.complaint()
        } else {
            errors.join("; ")
        },
    })
}

#[cfg(test)]
mod tests;
