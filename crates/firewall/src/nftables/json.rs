//! `nft -j list ruleset` → tables, chains and rules. Tolerant of what it does not need (sets,
//! maps, objects, future expression types) and strict about the shape of what it does: a
//! listing that is not the documented shape is an error, never an empty "all good" ruleset.

use serde_json::{Map, Value};

use crate::Error;

/// Where the JSON comes from, for error messages.
pub const SOURCE: &str = "nft -j list ruleset";

/// Table names iptables-nft creates (with uppercase builtin chains).
const IPTABLES_TABLES: [&str; 5] = ["filter", "nat", "mangle", "raw", "security"];
const IPTABLES_CHAINS: [&str; 5] = ["INPUT", "FORWARD", "OUTPUT", "PREROUTING", "POSTROUTING"];

#[derive(Debug, Clone, PartialEq)]
pub struct Ruleset {
    pub tables: Vec<Table>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub family: String,
    pub name: String,
    pub handle: Option<u64>,
    pub chains: Vec<Chain>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Chain {
    pub name: String,
    pub handle: Option<u64>,
    /// Set for base chains (those attached to a hook).
    pub base: Option<BaseChain>,
    pub rules: Vec<JsonRule>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct BaseChain {
    /// `filter`, `nat`, `route`.
    pub kind: String,
    pub hook: String,
    /// `accept` or `drop`; nft prints `accept` when none was given.
    pub policy: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct JsonRule {
    pub handle: Option<u64>,
    pub expr: Vec<Value>,
}

impl Table {
    /// `inet filter`: how tables are named in `tables = [...]` and in rule scopes.
    pub fn id(&self) -> String {
        format!("{} {}", self.family, self.name)
    }

    /// True for tables iptables-nft wrote: they hold `xt` expressions nft cannot re-create, or
    /// they look exactly like iptables-nft's (family, table name, uppercase builtin chains).
    pub fn is_iptables_nft(&self) -> bool {
        let has_xt = self
            .chains
            .iter()
            .flat_map(|c| &c.rules)
            .any(|r| r.expr.iter().any(contains_xt));
        let base: Vec<&Chain> = self.chains.iter().filter(|c| c.base.is_some()).collect();
        let looks_like = matches!(self.family.as_str(), "ip" | "ip6" | "arp" | "bridge")
            && IPTABLES_TABLES.contains(&self.name.as_str())
            && !base.is_empty()
            && base
                .iter()
                .all(|c| IPTABLES_CHAINS.contains(&c.name.as_str()));
        has_xt || looks_like
    }

    pub fn chain(&self, name: &str) -> Option<&Chain> {
        self.chains.iter().find(|c| c.name == name)
    }
}

impl Chain {
    /// A filter chain on the input hook: what decides about inbound traffic.
    pub fn is_input_filter(&self) -> bool {
        self.base
            .as_ref()
            .is_some_and(|b| b.kind == "filter" && b.hook == "input")
    }
}

fn contains_xt(v: &Value) -> bool {
    match v {
        Value::Object(map) => map.contains_key("xt") || map.values().any(contains_xt),
        Value::Array(items) => items.iter().any(contains_xt),
        _ => false,
    }
}

/// Parses the listing. Every error names [`SOURCE`] and, for syntax errors, serde's position.
pub fn parse(text: &str) -> Result<Ruleset, Error> {
    let bad = |detail: String| Error::malformed(SOURCE, detail);
    let root: Value = serde_json::from_str(text).map_err(|e| bad(format!("not JSON: {e}")))?;
    let items = root
        .get("nftables")
        .ok_or_else(|| bad("no `nftables` key at the top level".into()))?
        .as_array()
        .ok_or_else(|| bad("`nftables` is not an array".into()))?;
    if items.is_empty() {
        // nft always prints its metainfo first; nothing at all means something cut the output.
        return Err(bad("`nftables` is empty (not even metainfo)".into()));
    }
    let mut tables: Vec<Table> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let obj = item
            .as_object()
            .ok_or_else(|| bad(format!("nftables[{i}] is not an object")))?;
        let at = |what: &str| format!("nftables[{i}].{what}");
        if let Some(t) = obj.get("table") {
            let t = object(t, &at("table")).map_err(bad)?;
            tables.push(Table {
                family: string(t, "family", &at("table")).map_err(bad)?,
                name: string(t, "name", &at("table")).map_err(bad)?,
                handle: t.get("handle").and_then(Value::as_u64),
                chains: Vec::new(),
            });
        } else if let Some(c) = obj.get("chain") {
            let c = object(c, &at("chain")).map_err(bad)?;
            let table = find_table(&mut tables, c, &at("chain")).map_err(bad)?;
            let base = match c.get("hook") {
                None => None,
                Some(_) => Some(BaseChain {
                    kind: string(c, "type", &at("chain")).map_err(bad)?,
                    hook: string(c, "hook", &at("chain")).map_err(bad)?,
                    policy: match c.get("policy") {
                        None => "accept".into(),
                        Some(_) => string(c, "policy", &at("chain")).map_err(bad)?,
                    },
                }),
            };
            table.chains.push(Chain {
                name: string(c, "name", &at("chain")).map_err(bad)?,
                handle: c.get("handle").and_then(Value::as_u64),
                base,
                rules: Vec::new(),
            });
        } else if let Some(r) = obj.get("rule") {
            let r = object(r, &at("rule")).map_err(bad)?;
            let chain_name = string(r, "chain", &at("rule")).map_err(bad)?;
            let expr = r
                .get("expr")
                .and_then(Value::as_array)
                .ok_or_else(|| bad(format!("{}: `expr` is not an array", at("rule"))))?
                .clone();
            let table = find_table(&mut tables, r, &at("rule")).map_err(bad)?;
            let chain = table
                .chains
                .iter_mut()
                .find(|c| c.name == chain_name)
                .ok_or_else(|| {
                    bad(format!(
                        "{}: rule in unknown chain {chain_name}",
                        at("rule")
                    ))
                })?;
            chain.rules.push(JsonRule {
                handle: r.get("handle").and_then(Value::as_u64),
                expr,
            });
        }
        // metainfo, set, map, element, counter, quota, flowtable…: not needed here.
    }
    Ok(Ruleset { tables })
}

fn object<'a>(v: &'a Value, at: &str) -> Result<&'a Map<String, Value>, String> {
    v.as_object()
        .ok_or_else(|| format!("{at} is not an object"))
}

fn string(obj: &Map<String, Value>, key: &str, at: &str) -> Result<String, String> {
    obj.get(key)
        .and_then(Value::as_str)
        .map(String::from)
        .ok_or_else(|| format!("{at}: `{key}` is missing or not a string"))
}

fn find_table<'a>(
    tables: &'a mut [Table],
    obj: &Map<String, Value>,
    at: &str,
) -> Result<&'a mut Table, String> {
    let family = string(obj, "family", at)?;
    let name = string(obj, "table", at)?;
    tables
        .iter_mut()
        .find(|t| t.family == family && t.name == name)
        .ok_or_else(|| format!("{at}: unknown table {family} {name}"))
}
