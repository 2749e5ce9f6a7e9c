//! Which firewall this host runs.
//!
//! On Windows the answer is Windows Defender Firewall; on macOS pf when pf is on, else the
//! application firewall. On Linux several layers can be active at once (ufw over iptables-nft,
//! Docker's tables next to firewalld's), so detection first gathers [`Probes`] with strictly
//! read-only commands and files, then [`decide`] (a pure function) reports every layer seen and
//! picks one, in this order:
//!
//! 1. firewalld: `firewall-cmd --state` exits 0, or `table inet firewalld` exists;
//! 2. ufw: installed, and `ENABLED=yes` in ufw.conf or its `ufw-user-input` chain is loaded;
//! 3. iptables-legacy: legacy tables exist (`/proc/net/ip_tables_names`) and
//!    `iptables-legacy-save` shows more than empty ACCEPT builtin chains;
//! 4. native nftables: a table not written by iptables-nft (nor firewalld);
//! 5. iptables-nft: tables written by iptables-nft;
//! 6. nothing loaded: nftables if `nft` is installed, else iptables-nft, else iptables-legacy.
//!
//! Read-only means: `iptables-legacy -S/-L` is never run (it creates the legacy filter table);
//! the legacy tables are seen through `/proc` and `iptables-legacy-save` runs only when they
//! exist. ufw is never run at all; firewall-cmd only with `--state`.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::exec::{Command, ExecError, Output, Runner};
use crate::model::BackendKind;
use crate::{macos, Error};

/// What detection found: the backend to guard, and every layer seen (several can be active).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Detection {
    pub backend: BackendKind,
    /// Every layer with something loaded, in detection order (empty when nothing is loaded).
    pub layers: Vec<BackendKind>,
    /// Why this backend, as a sentence for a person.
    pub why: String,
}

/// Where detection looks on disk. Tests point these elsewhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DetectPaths {
    /// ufw's switch: `ENABLED=yes|no`. Default `/etc/ufw/ufw.conf`.
    pub ufw_conf: PathBuf,
    /// Names of the legacy x_tables IPv4 tables. Default `/proc/net/ip_tables_names`.
    pub ip_tables_names: PathBuf,
    /// Same for IPv6. Default `/proc/net/ip6_tables_names`.
    pub ip6_tables_names: PathBuf,
    /// Where `ufw` and `iptables-legacy-save` are looked for (they are never run to find out).
    /// Default: `$PATH` plus the sbin directories.
    pub bin_dirs: Vec<PathBuf>,
}

impl Default for DetectPaths {
    fn default() -> Self {
        let mut bin_dirs: Vec<PathBuf> = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).collect())
            .unwrap_or_default();
        for dir in ["/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/bin", "/bin"] {
            if !bin_dirs.iter().any(|d| d == Path::new(dir)) {
                bin_dirs.push(PathBuf::from(dir));
            }
        }
        Self {
            ufw_conf: PathBuf::from("/etc/ufw/ufw.conf"),
            ip_tables_names: PathBuf::from("/proc/net/ip_tables_names"),
            ip6_tables_names: PathBuf::from("/proc/net/ip6_tables_names"),
            bin_dirs,
        }
    }
}

/// What one probe saw.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Seen<T> {
    /// The program is not installed.
    #[default]
    Missing,
    /// It ran but failed unexpectedly; the message goes into [`Detection::why`].
    Failed(String),
    Found(T),
}

impl<T> Seen<T> {
    pub fn found(&self) -> Option<&T> {
        match self {
            Self::Found(t) => Some(t),
            _ => None,
        }
    }

    pub fn installed(&self) -> bool {
        !matches!(self, Self::Missing)
    }
}

/// One nftables table as `nft -j list tables` / `list chains` show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NftTable {
    pub family: String,
    pub name: String,
    pub chains: Vec<String>,
    /// Its rules use xtables-compat (`xt`) expressions: written by iptables-nft. Only looked up
    /// for tables whose names alone do not tell.
    pub xt: bool,
}

const IPTABLES_FAMILIES: [&str; 4] = ["ip", "ip6", "arp", "bridge"];
const IPTABLES_TABLES: [&str; 6] = ["filter", "nat", "mangle", "raw", "security", "broute"];
const IPTABLES_BUILTIN_CHAINS: [&str; 6] = [
    "INPUT",
    "OUTPUT",
    "FORWARD",
    "PREROUTING",
    "POSTROUTING",
    "BROUTING",
];
const UFW_CHAINS: [&str; 2] = ["ufw-user-input", "ufw6-user-input"];

impl NftTable {
    pub fn new(family: &str, name: &str, chains: &[&str]) -> Self {
        Self {
            family: family.to_string(),
            name: name.to_string(),
            chains: chains.iter().map(|c| c.to_string()).collect(),
            xt: false,
        }
    }

    /// `inet filter`.
    pub fn label(&self) -> String {
        format!("{} {}", self.family, self.name)
    }

    /// A table iptables-nft could have written: its family and name, before looking inside.
    fn has_iptables_name(&self) -> bool {
        IPTABLES_FAMILIES.contains(&self.family.as_str())
            && IPTABLES_TABLES.contains(&self.name.as_str())
    }

    fn has_builtin_chain(&self) -> bool {
        self.chains
            .iter()
            .any(|c| IPTABLES_BUILTIN_CHAINS.contains(&c.as_str()))
    }

    /// Written by iptables-nft: an iptables family and table name, and an uppercase builtin
    /// chain or xt expressions (a chainless table of that name is counted as iptables-nft's).
    pub fn is_iptables_nft(&self) -> bool {
        self.has_iptables_name() && (self.xt || self.chains.is_empty() || self.has_builtin_chain())
    }

    /// Only the rules can tell: an iptables name, but lowercase chains.
    fn needs_xt_check(&self) -> bool {
        self.has_iptables_name() && !self.chains.is_empty() && !self.has_builtin_chain()
    }

    /// firewalld's own tables (`inet firewalld`, `inet firewalld_policy_drop`).
    pub fn is_firewalld(&self) -> bool {
        self.family == "inet" && self.name.starts_with("firewalld")
    }
}

/// Everything detection looked at. [`decide`] turns it into a [`Detection`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Probes {
    /// `firewall-cmd --state`: `Found(true)` when it exits 0.
    pub firewalld_running: Seen<bool>,
    /// `nft -j list tables` and `list chains`.
    pub nft: Seen<Vec<NftTable>>,
    /// A `ufw` program in one of [`DetectPaths::bin_dirs`].
    pub ufw_installed: bool,
    /// `ENABLED=yes` in ufw.conf.
    pub ufw_conf_enabled: bool,
    /// `iptables-nft-save` then `ip6tables-nft-save` output.
    pub iptables_nft_save: Seen<String>,
    /// Legacy table names from `/proc` (IPv4 `filter`, IPv6 `ip6 filter`).
    pub legacy_tables: Vec<String>,
    /// `iptables-legacy-save` / `ip6tables-legacy-save` output; `None` when not run because
    /// no legacy table exists.
    pub legacy_save: Option<Seen<String>>,
    /// An `iptables-legacy-save` program is installed.
    pub legacy_save_installed: bool,
    /// Unexpected failures while probing, for `why`.
    pub problems: Vec<String>,
}

/// Finds this host's firewall.
pub async fn detect(runner: &Runner) -> Result<Detection, Error> {
    if cfg!(target_os = "windows") {
        Ok(windows_detection())
    } else if cfg!(target_os = "macos") {
        let pf = macos::inspect_pf(runner).await.map(|s| s.enabled);
        let app = macos::inspect_app_firewall(runner).await.map(|s| s.enabled);
        Ok(decide_macos(&pf, &app))
    } else {
        detect_with(runner, &DetectPaths::default()).await
    }
}

/// Linux detection with explicit paths.
pub async fn detect_with(runner: &Runner, paths: &DetectPaths) -> Result<Detection, Error> {
    decide(&gather(runner, paths).await)
}

fn windows_detection() -> Detection {
    Detection {
        backend: BackendKind::Windows,
        layers: vec![BackendKind::Windows],
        why: "this is Windows: Windows Defender Firewall".to_string(),
    }
}

/// macOS: pf when it is on, else the application firewall.
pub fn decide_macos(pf: &Result<bool, Error>, app: &Result<bool, Error>) -> Detection {
    let mut layers = Vec::new();
    if matches!(pf, Ok(true)) {
        layers.push(BackendKind::Pf);
    }
    if matches!(app, Ok(true)) {
        layers.push(BackendKind::MacAppFirewall);
    }
    let (backend, mut why) = match pf {
        Ok(true) => (BackendKind::Pf, "pf is enabled".to_string()),
        Ok(false) => (
            BackendKind::MacAppFirewall,
            "pf is disabled, so the application firewall is guarded".to_string(),
        ),
        Err(e) => (
            BackendKind::MacAppFirewall,
            format!("pf could not be read ({e}), so the application firewall is guarded"),
        ),
    };
    match app {
        Ok(true) => why.push_str("; the application firewall is on"),
        Ok(false) => why.push_str("; the application firewall is off"),
        Err(e) => why.push_str(&format!(
            "; the application firewall could not be read ({e})"
        )),
    }
    Detection {
        backend,
        layers,
        why,
    }
}

/// Runs every Linux probe. Missing programs are absent layers; unexpected failures are kept in
/// [`Probes::problems`] and probing goes on.
pub async fn gather(runner: &Runner, paths: &DetectPaths) -> Probes {
    let mut p = Probes {
        firewalld_running: match runner
            .run(&Command::new("firewall-cmd", &["--state"]))
            .await
        {
            Ok(out) => Seen::Found(out.success()),
            Err(ExecError::NotFound { .. }) => Seen::Missing,
            Err(e) => Seen::Failed(e.to_string()),
        },
        nft: probe_nft(runner).await,
        ufw_installed: find_program("ufw", &paths.bin_dirs),
        legacy_save_installed: find_program("iptables-legacy-save", &paths.bin_dirs),
        ..Probes::default()
    };

    match std::fs::read_to_string(&paths.ufw_conf) {
        Ok(text) => match crate::ufw::parse_conf(&paths.ufw_conf.display().to_string(), &text) {
            Ok(enabled) => p.ufw_conf_enabled = enabled,
            Err(e) => p.problems.push(e.to_string()),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => p.problems.push(format!(
            "{} could not be read: {e}",
            paths.ufw_conf.display()
        )),
    }

    p.iptables_nft_save = save_outputs(runner, &["iptables-nft-save", "ip6tables-nft-save"]).await;

    let v4 = read_table_names(&paths.ip_tables_names, &mut p.problems);
    let v6 = read_table_names(&paths.ip6_tables_names, &mut p.problems);
    let mut programs = Vec::new();
    if !v4.is_empty() {
        programs.push("iptables-legacy-save");
    }
    if !v6.is_empty() {
        programs.push("ip6tables-legacy-save");
    }
    p.legacy_tables = v4
        .into_iter()
        .chain(v6.into_iter().map(|t| format!("ip6 {t}")))
        .collect();
    if !programs.is_empty() {
        p.legacy_save = Some(save_outputs(runner, &programs).await);
    }

    for (what, seen) in [
        ("`firewall-cmd --state`", failure(&p.firewalld_running)),
        ("`nft -j list tables`", failure(&p.nft)),
        ("`iptables-nft-save`", failure(&p.iptables_nft_save)),
        (
            "`iptables-legacy-save`",
            p.legacy_save.as_ref().and_then(failure),
        ),
    ] {
        if let Some(message) = seen {
            p.problems.push(format!("{what} failed: {message}"));
        }
    }
    p
}

fn failure<T>(seen: &Seen<T>) -> Option<String> {
    match seen {
        Seen::Failed(m) => Some(m.clone()),
        _ => None,
    }
}

async fn probe_nft(runner: &Runner) -> Seen<Vec<NftTable>> {
    let tables = match run_seen(runner, &Command::new("nft", &["-j", "list", "tables"])).await {
        Seen::Found(out) => out,
        Seen::Missing => return Seen::Missing,
        Seen::Failed(m) => return Seen::Failed(m),
    };
    let chains = match run_seen(runner, &Command::new("nft", &["-j", "list", "chains"])).await {
        Seen::Found(out) => out,
        Seen::Missing => return Seen::Missing,
        Seen::Failed(m) => return Seen::Failed(m),
    };
    let mut list = match parse_nft_tables(&tables, &chains) {
        Ok(list) => list,
        Err(e) => return Seen::Failed(e.to_string()),
    };
    for table in list.iter_mut().filter(|t| t.needs_xt_check()) {
        let cmd = Command::new("nft", &["-j", "list", "table", &table.family, &table.name]);
        if let Seen::Found(out) = run_seen(runner, &cmd).await {
            table.xt = serde_json::from_str::<Value>(&out)
                .map(|v| has_key(&v, "xt"))
                .unwrap_or(false);
        }
    }
    Seen::Found(list)
}

/// Runs a read-only command: stdout on exit 0, `Missing` when not installed.
async fn run_seen(runner: &Runner, cmd: &Command) -> Seen<String> {
    match runner.run(cmd).await {
        Ok(Output {
            code: Some(0),
            stdout,
            ..
        }) => Seen::Found(stdout),
        Ok(out) => Seen::Failed(format!("{cmd}: {}", out.complaint())),
        Err(ExecError::NotFound { .. }) => Seen::Missing,
        Err(e) => Seen::Failed(e.to_string()),
    }
}

/// The outputs of several `*-save` programs, joined. `Missing` when the first is not installed;
/// a missing later one (ip6tables) is skipped.
async fn save_outputs(runner: &Runner, programs: &[&str]) -> Seen<String> {
    let mut text = String::new();
    for (i, program) in programs.iter().enumerate() {
        match run_seen(runner, &Command::new(program, &[])).await {
            Seen::Found(out) => text.push_str(&out),
            Seen::Missing if i == 0 => return Seen::Missing,
            Seen::Missing => {}
            Seen::Failed(m) => return Seen::Failed(m),
        }
    }
    Seen::Found(text)
}

fn read_table_names(path: &Path, problems: &mut Vec<String>) -> Vec<String> {
    match std::fs::read_to_string(path) {
        Ok(text) => text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect(),
        // No x_tables module loaded: no legacy table can exist.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => {
            problems.push(format!("{} could not be read: {e}", path.display()));
            Vec::new()
        }
    }
}

fn find_program(name: &str, dirs: &[PathBuf]) -> bool {
    dirs.iter().any(|d| d.join(name).is_file())
}

fn has_key(value: &Value, key: &str) -> bool {
    match value {
        Value::Object(map) => map.contains_key(key) || map.values().any(|v| has_key(v, key)),
        Value::Array(items) => items.iter().any(|v| has_key(v, key)),
        _ => false,
    }
}

/// Tables and their chains from `nft -j list tables` and `nft -j list chains`.
pub fn parse_nft_tables(tables_json: &str, chains_json: &str) -> Result<Vec<NftTable>, Error> {
    fn items(json: &str, kind: &str) -> Result<Vec<(String, String, String)>, Error> {
        let source = format!("nft -j list {kind}s");
        let value: Value = serde_json::from_str(json)
            .map_err(|e| Error::malformed(&source, format!("not JSON: {e}")))?;
        let list = value
            .get("nftables")
            .and_then(Value::as_array)
            .ok_or_else(|| Error::malformed(&source, "no `nftables` list"))?;
        let text = |v: &Value, key: &str| {
            v.get(key)
                .and_then(Value::as_str)
                .map(String::from)
                .ok_or_else(|| Error::malformed(&source, format!("a {kind} has no {key}")))
        };
        let mut out = Vec::new();
        for obj in list.iter().filter_map(|item| item.get(kind)) {
            let family = text(obj, "family")?;
            let (table, name) = if kind == "table" {
                (text(obj, "name")?, String::new())
            } else {
                (text(obj, "table")?, text(obj, "name")?)
            };
            out.push((family, table, name));
        }
        Ok(out)
    }

    let mut tables: Vec<NftTable> = items(tables_json, "table")?
        .into_iter()
        .map(|(family, name, _)| NftTable {
            family,
            name,
            chains: Vec::new(),
            xt: false,
        })
        .collect();
    for (family, table, chain) in items(chains_json, "chain")? {
        match tables
            .iter_mut()
            .find(|t| t.family == family && t.name == table)
        {
            Some(t) => t.chains.push(chain),
            // Created between the two listings.
            None => tables.push(NftTable {
                family,
                name: table,
                chains: vec![chain],
                xt: false,
            }),
        }
    }
    Ok(tables)
}

/// True when `*-save` output holds more than builtin chains with ACCEPT policies: a rule, a
/// user chain, or a DROP policy. (An empty legacy filter table appears after a single
/// `iptables-legacy -L`; it filters nothing.)
pub fn save_has_rules(save: &str) -> bool {
    save.lines().map(str::trim).any(|l| {
        l.starts_with("-A ")
            || l.strip_prefix(':')
                .is_some_and(|c| c.split_whitespace().nth(1) != Some("ACCEPT"))
    })
}

fn save_has_ufw_chain(save: &str) -> bool {
    save.lines().any(|l| {
        l.strip_prefix(':')
            .and_then(|c| c.split_whitespace().next())
            .is_some_and(|c| UFW_CHAINS.contains(&c))
    })
}

fn labels(tables: &[&NftTable]) -> String {
    tables
        .iter()
        .map(|t| t.label())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Picks the backend from what the probes saw; see the module docs for the order.
pub fn decide(p: &Probes) -> Result<Detection, Error> {
    let no_tables = Vec::new();
    let tables = p.nft.found().unwrap_or(&no_tables);
    let mut seen: Vec<(BackendKind, String)> = Vec::new();

    // 1. firewalld
    let firewalld_table = tables
        .iter()
        .any(|t| t.family == "inet" && t.name == "firewalld");
    match (p.firewalld_running.found(), firewalld_table) {
        (Some(true), true) => seen.push((
            BackendKind::Firewalld,
            "firewalld is running and its table inet firewalld is loaded".to_string(),
        )),
        (Some(true), false) => seen.push((
            BackendKind::Firewalld,
            "firewalld is running (`firewall-cmd --state`), though table inet firewalld is missing"
                .to_string(),
        )),
        (_, true) => seen.push((
            BackendKind::Firewalld,
            "table inet firewalld is loaded".to_string(),
        )),
        _ => {}
    }

    // 2. ufw
    let legacy_text = p.legacy_save.as_ref().and_then(Seen::found);
    let ufw_chain = tables
        .iter()
        .any(|t| t.chains.iter().any(|c| UFW_CHAINS.contains(&c.as_str())))
        || p.iptables_nft_save
            .found()
            .is_some_and(|s| save_has_ufw_chain(s))
        || legacy_text.is_some_and(|s| save_has_ufw_chain(s));
    if p.ufw_installed && (p.ufw_conf_enabled || ufw_chain) {
        let why = match (p.ufw_conf_enabled, ufw_chain) {
            (true, true) => "ufw is enabled (ENABLED=yes) and its ufw-user-input chain is loaded",
            (true, false) => {
                "ufw is enabled (ENABLED=yes), though its ufw-user-input chain is not loaded"
            }
            _ => "ufw's ufw-user-input chain is loaded, though ufw.conf does not say ENABLED=yes",
        };
        seen.push((BackendKind::Ufw, why.to_string()));
    }

    // 3. iptables-legacy
    let mut notes = Vec::new();
    if !p.legacy_tables.is_empty() {
        match legacy_text {
            Some(text) if save_has_rules(text) => seen.push((
                BackendKind::IptablesLegacy,
                format!(
                    "iptables-legacy tables hold rules or policies ({})",
                    p.legacy_tables.join(", ")
                ),
            )),
            Some(_) => notes.push(format!(
                "empty iptables-legacy tables ({}) with ACCEPT policies were ignored",
                p.legacy_tables.join(", ")
            )),
            None => notes.push(format!(
                "iptables-legacy tables exist ({}) but could not be listed",
                p.legacy_tables.join(", ")
            )),
        }
    }

    // 4. native nftables
    let native: Vec<&NftTable> = tables
        .iter()
        .filter(|t| !t.is_iptables_nft() && !t.is_firewalld())
        .collect();
    if !native.is_empty() {
        seen.push((
            BackendKind::Nftables,
            format!("native nftables tables are loaded ({})", labels(&native)),
        ));
    }

    // 5. iptables-nft
    let ipt: Vec<&NftTable> = tables.iter().filter(|t| t.is_iptables_nft()).collect();
    if !ipt.is_empty() {
        seen.push((
            BackendKind::IptablesNft,
            format!("iptables-nft tables are loaded ({})", labels(&ipt)),
        ));
    } else if p.nft.found().is_none()
        && p.iptables_nft_save
            .found()
            .is_some_and(|s| s.lines().any(|l| l.starts_with('*')))
    {
        seen.push((
            BackendKind::IptablesNft,
            "iptables-nft-save lists tables".to_string(),
        ));
    }

    let tail = |mut why: String| {
        for extra in notes.iter().chain(&p.problems) {
            why.push_str("; ");
            why.push_str(extra);
        }
        why
    };

    if let Some((backend, first)) = seen.first() {
        let mut why = first.clone();
        if seen.len() > 1 {
            why.push_str("; also seen: ");
            why.push_str(
                &seen[1..]
                    .iter()
                    .map(|(_, w)| w.as_str())
                    .collect::<Vec<_>>()
                    .join("; "),
            );
        }
        return Ok(Detection {
            backend: *backend,
            layers: seen.iter().map(|(k, _)| *k).collect(),
            why: tail(why),
        });
    }

    // 6. nothing loaded: the first tool that is installed.
    let fallback = if p.nft.installed() {
        Some((BackendKind::Nftables, "nft"))
    } else if p.iptables_nft_save.installed() {
        Some((BackendKind::IptablesNft, "iptables-nft-save"))
    } else if p.legacy_save_installed {
        Some((BackendKind::IptablesLegacy, "iptables-legacy-save"))
    } else {
        None
    };
    match fallback {
        Some((backend, tool)) => Ok(Detection {
            backend,
            layers: Vec::new(),
            why: tail(format!(
                "no rules are loaded (no firewalld, ufw, iptables-legacy, nftables or \
                 iptables-nft tables); {tool} is installed, so {backend} is guarded"
            )),
        }),
        None => Err(Error::NotDetected(tail(
            "looked for firewalld (firewall-cmd), ufw, iptables-legacy \
             (/proc/net/ip_tables_names, iptables-legacy-save), nftables (nft) and iptables-nft \
             (iptables-nft-save); none is loaded or installed"
                .to_string(),
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nft(tables: Vec<NftTable>) -> Seen<Vec<NftTable>> {
        Seen::Found(tables)
    }

    fn ipt_filter() -> NftTable {
        NftTable::new("ip", "filter", &["INPUT", "FORWARD", "OUTPUT"])
    }

    const LEGACY_DROP: &str = "*filter\n:INPUT DROP [0:0]\n:FORWARD ACCEPT [0:0]\n\
                               :OUTPUT ACCEPT [0:0]\nCOMMIT\n";
    const LEGACY_EMPTY: &str = "# Generated by iptables-save v1.8.9\n*filter\n\
                                :INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n\
                                :OUTPUT ACCEPT [0:0]\nCOMMIT\n";

    fn empty_host() -> Probes {
        Probes {
            firewalld_running: Seen::Found(false),
            nft: nft(vec![]),
            ufw_installed: true,
            iptables_nft_save: Seen::Found(String::new()),
            legacy_save_installed: true,
            ..Probes::default()
        }
    }

    #[test]
    fn firewalld_running_wins_over_everything() {
        let p = Probes {
            firewalld_running: Seen::Found(true),
            nft: nft(vec![
                NftTable::new("inet", "firewalld", &["filter_INPUT"]),
                NftTable::new("ip", "docker", &["DOCKER"]),
            ]),
            ..empty_host()
        };
        let d = decide(&p).unwrap();
        assert_eq!(d.backend, BackendKind::Firewalld);
        // firewalld's own table is not "native nftables"; docker's is.
        assert_eq!(
            d.layers,
            vec![BackendKind::Firewalld, BackendKind::Nftables]
        );
        assert!(
            d.why.starts_with("firewalld is running and its table"),
            "{}",
            d.why
        );
        assert!(d
            .why
            .contains("also seen: native nftables tables are loaded (ip docker)"));
    }

    #[test]
    fn firewalld_table_alone_is_enough() {
        let p = Probes {
            firewalld_running: Seen::Missing,
            nft: nft(vec![NftTable::new("inet", "firewalld", &[])]),
            ..empty_host()
        };
        let d = decide(&p).unwrap();
        assert_eq!(d.backend, BackendKind::Firewalld);
        assert_eq!(d.layers, vec![BackendKind::Firewalld]);
    }

    #[test]
    fn firewalld_running_without_its_table_is_still_firewalld() {
        let p = Probes {
            firewalld_running: Seen::Found(true),
            ..empty_host()
        };
        let d = decide(&p).unwrap();
        assert_eq!(d.backend, BackendKind::Firewalld);
        assert!(d.why.contains("table inet firewalld is missing"));
    }

    #[test]
    fn ufw_enabled_in_its_config_over_iptables_nft() {
        let mut filter = ipt_filter();
        filter.chains.push("ufw-user-input".into());
        let p = Probes {
            ufw_conf_enabled: true,
            nft: nft(vec![filter]),
            ..empty_host()
        };
        let d = decide(&p).unwrap();
        assert_eq!(d.backend, BackendKind::Ufw);
        assert_eq!(d.layers, vec![BackendKind::Ufw, BackendKind::IptablesNft]);
        assert!(d.why.starts_with("ufw is enabled (ENABLED=yes) and its"));
    }

    #[test]
    fn ufw_enabled_but_flushed_is_still_ufw() {
        let p = Probes {
            ufw_conf_enabled: true,
            ..empty_host()
        };
        let d = decide(&p).unwrap();
        assert_eq!(d.backend, BackendKind::Ufw);
        assert!(d.why.contains("chain is not loaded"));
    }

    #[test]
    fn ufw_chain_seen_through_iptables_save_without_nft() {
        let p = Probes {
            nft: Seen::Missing,
            iptables_nft_save: Seen::Found(
                "*filter\n:INPUT DROP [0:0]\n:ufw-user-input - [0:0]\nCOMMIT\n".into(),
            ),
            ..empty_host()
        };
        let d = decide(&p).unwrap();
        assert_eq!(d.backend, BackendKind::Ufw);
        assert_eq!(d.layers, vec![BackendKind::Ufw, BackendKind::IptablesNft]);
    }

    #[test]
    fn ufw_chains_without_ufw_installed_are_not_ufw() {
        let mut filter = ipt_filter();
        filter.chains.push("ufw-user-input".into());
        let p = Probes {
            ufw_installed: false,
            ufw_conf_enabled: true,
            nft: nft(vec![filter]),
            ..empty_host()
        };
        assert_eq!(decide(&p).unwrap().backend, BackendKind::IptablesNft);
    }

    #[test]
    fn ufw_on_the_legacy_backend() {
        let p = Probes {
            legacy_tables: vec!["filter".into()],
            legacy_save: Some(Seen::Found(
                "*filter\n:INPUT DROP [0:0]\n:ufw-user-input - [0:0]\nCOMMIT\n".into(),
            )),
            ..empty_host()
        };
        let d = decide(&p).unwrap();
        assert_eq!(d.backend, BackendKind::Ufw);
        assert_eq!(
            d.layers,
            vec![BackendKind::Ufw, BackendKind::IptablesLegacy]
        );
    }

    #[test]
    fn legacy_rules_win_over_nft_tables() {
        let p = Probes {
            nft: nft(vec![NftTable::new("inet", "filter", &["input"])]),
            legacy_tables: vec!["filter".into(), "ip6 filter".into()],
            legacy_save: Some(Seen::Found(LEGACY_DROP.into())),
            ..empty_host()
        };
        let d = decide(&p).unwrap();
        assert_eq!(d.backend, BackendKind::IptablesLegacy);
        assert_eq!(
            d.layers,
            vec![BackendKind::IptablesLegacy, BackendKind::Nftables]
        );
        assert!(d.why.contains("(filter, ip6 filter)"), "{}", d.why);
    }

    #[test]
    fn an_empty_legacy_table_is_ignored_and_mentioned() {
        let p = Probes {
            legacy_tables: vec!["filter".into()],
            legacy_save: Some(Seen::Found(LEGACY_EMPTY.into())),
            ..empty_host()
        };
        let d = decide(&p).unwrap();
        assert_eq!(d.backend, BackendKind::Nftables);
        assert!(d.layers.is_empty());
        assert!(
            d.why.contains("empty iptables-legacy tables (filter)"),
            "{}",
            d.why
        );
    }

    #[test]
    fn a_native_table_is_nftables() {
        let p = Probes {
            nft: nft(vec![
                NftTable::new("inet", "filter", &["input", "forward", "output"]),
                ipt_filter(),
            ]),
            ..empty_host()
        };
        let d = decide(&p).unwrap();
        assert_eq!(d.backend, BackendKind::Nftables);
        assert_eq!(
            d.layers,
            vec![BackendKind::Nftables, BackendKind::IptablesNft]
        );
        assert!(d
            .why
            .starts_with("native nftables tables are loaded (inet filter)"));
    }

    #[test]
    fn iptables_nft_tables_only() {
        let p = Probes {
            nft: nft(vec![
                ipt_filter(),
                NftTable::new("ip6", "filter", &["INPUT"]),
                NftTable::new("ip", "nat", &[]),
            ]),
            ..empty_host()
        };
        let d = decide(&p).unwrap();
        assert_eq!(d.backend, BackendKind::IptablesNft);
        assert_eq!(d.layers, vec![BackendKind::IptablesNft]);
        assert!(d.why.contains("ip filter, ip6 filter, ip nat"), "{}", d.why);
    }

    #[test]
    fn iptables_nft_without_the_nft_tool() {
        let p = Probes {
            nft: Seen::Missing,
            iptables_nft_save: Seen::Found(LEGACY_DROP.into()),
            ..empty_host()
        };
        assert_eq!(decide(&p).unwrap().backend, BackendKind::IptablesNft);
    }

    #[test]
    fn iptables_names_with_lowercase_chains_are_native_unless_xt() {
        let mut table = NftTable::new("ip", "filter", &["input"]);
        assert!(!table.is_iptables_nft());
        assert!(table.needs_xt_check());
        table.xt = true;
        assert!(table.is_iptables_nft());
        assert!(!NftTable::new("inet", "filter", &["INPUT"]).is_iptables_nft());
        assert!(!NftTable::new("ip", "docker", &["INPUT"]).is_iptables_nft());
        assert!(NftTable::new("bridge", "filter", &["FORWARD"]).is_iptables_nft());
    }

    #[test]
    fn nothing_loaded_falls_back_to_the_installed_tool() {
        let d = decide(&empty_host()).unwrap();
        assert_eq!(d.backend, BackendKind::Nftables);
        assert!(d.layers.is_empty());
        assert!(d.why.starts_with("no rules are loaded"), "{}", d.why);

        let p = Probes {
            nft: Seen::Missing,
            ..empty_host()
        };
        assert_eq!(decide(&p).unwrap().backend, BackendKind::IptablesNft);

        let p = Probes {
            nft: Seen::Missing,
            iptables_nft_save: Seen::Missing,
            ..empty_host()
        };
        assert_eq!(decide(&p).unwrap().backend, BackendKind::IptablesLegacy);
    }

    #[test]
    fn nothing_installed_is_not_detected_and_says_what_was_looked_for() {
        match decide(&Probes::default()) {
            Err(Error::NotDetected(why)) => {
                for tool in [
                    "firewall-cmd",
                    "ufw",
                    "nft",
                    "iptables-nft-save",
                    "iptables-legacy-save",
                ] {
                    assert!(why.contains(tool), "{why}");
                }
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn probe_failures_are_told_and_detection_goes_on() {
        let p = Probes {
            nft: Seen::Failed("nft -j list tables: Operation not permitted".into()),
            iptables_nft_save: Seen::Found(LEGACY_DROP.into()),
            problems: vec!["`nft -j list tables` failed: Operation not permitted".into()],
            ..empty_host()
        };
        let d = decide(&p).unwrap();
        assert_eq!(d.backend, BackendKind::IptablesNft);
        assert!(d
            .why
            .ends_with("; `nft -j list tables` failed: Operation not permitted"));
    }

    #[test]
    fn save_output_with_only_accept_builtins_has_no_rules() {
        assert!(!save_has_rules(LEGACY_EMPTY));
        assert!(!save_has_rules(""));
        assert!(save_has_rules(LEGACY_DROP));
        assert!(save_has_rules(
            "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -i lo -j ACCEPT\nCOMMIT\n"
        ));
        assert!(save_has_rules(
            "*filter\n:INPUT ACCEPT [0:0]\n:mine - [0:0]\nCOMMIT\n"
        ));
    }

    #[test]
    fn nft_listings_are_joined_per_table() {
        let tables = r#"{"nftables": [{"metainfo": {"version": "1.0.6", "json_schema_version": 1}},
            {"table": {"family": "ip", "name": "filter", "handle": 1}},
            {"table": {"family": "inet", "name": "filter", "handle": 3}}]}"#;
        let chains = r#"{"nftables": [{"metainfo": {"version": "1.0.6", "json_schema_version": 1}},
            {"chain": {"family": "ip", "table": "filter", "name": "INPUT", "handle": 1,
                       "type": "filter", "hook": "input", "prio": 0, "policy": "drop"}},
            {"chain": {"family": "ip", "table": "filter", "name": "ufw-user-input", "handle": 2}},
            {"chain": {"family": "inet", "table": "filter", "name": "input", "handle": 1}}]}"#;
        let list = parse_nft_tables(tables, chains).unwrap();
        assert_eq!(
            list,
            vec![
                NftTable::new("ip", "filter", &["INPUT", "ufw-user-input"]),
                NftTable::new("inet", "filter", &["input"]),
            ]
        );
        assert!(matches!(
            parse_nft_tables("{}", chains),
            Err(Error::Malformed { .. })
        ));
        assert!(matches!(
            parse_nft_tables(tables, "not json"),
            Err(Error::Malformed { .. })
        ));
    }

    #[test]
    fn xt_expressions_are_found_anywhere_in_a_listing() {
        let v: Value = serde_json::from_str(
            r#"{"nftables":[{"rule":{"expr":[{"xt":{"type":"match","name":"comment"}}]}}]}"#,
        )
        .unwrap();
        assert!(has_key(&v, "xt"));
        assert!(!has_key(
            &serde_json::json!({"nftables": [{"rule": {"expr": []}}]}),
            "xt"
        ));
    }

    #[test]
    fn macos_prefers_pf_when_it_is_on() {
        let d = decide_macos(&Ok(true), &Ok(true));
        assert_eq!(d.backend, BackendKind::Pf);
        assert_eq!(d.layers, vec![BackendKind::Pf, BackendKind::MacAppFirewall]);

        let d = decide_macos(&Ok(false), &Ok(false));
        assert_eq!(d.backend, BackendKind::MacAppFirewall);
        assert!(d.layers.is_empty());
        assert_eq!(
            d.why,
            "pf is disabled, so the application firewall is guarded; the application firewall is off"
        );

        let denied = Err(Error::Failed {
            command: "/sbin/pfctl -s info".into(),
            message: "pfctl: /dev/pf: Permission denied".into(),
        });
        let d = decide_macos(&denied, &Ok(true));
        assert_eq!(d.backend, BackendKind::MacAppFirewall);
        assert!(d.why.contains("Permission denied"), "{}", d.why);
    }

    #[test]
    fn windows_is_windows() {
        let d = windows_detection();
        assert_eq!(d.backend, BackendKind::Windows);
        assert_eq!(d.layers, vec![BackendKind::Windows]);
    }
}
