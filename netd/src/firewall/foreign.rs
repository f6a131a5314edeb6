//! Finds what in other tables would defeat netd's forwarding: a forward base chain (families
//! ip, ip6, inet) with policy drop, or an unconditional drop or reject rule in one. Reads only;
//! netd never changes another table. Kernel interface: `nft -j list ruleset` (libnftables-json(5)).

use serde_json::Value;

use super::apply;
use super::FirewallError;

/// One chain of another table that drops forwarded traffic netd's table accepts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ForeignDrop {
    pub family: String,
    pub table: String,
    pub chain: String,
    /// `policy drop`, or the unconditional rule (`drop`, `reject`).
    pub how: String,
}

impl ForeignDrop {
    /// One line for the log and the status reply, naming the table and the fix.
    /// `bridge_prefix` is the start of netd's bridge names, for the fix.
    pub fn warning(&self, bridge_prefix: &str) -> String {
        format!(
            "table {} {}: forward chain {} has {}, which drops containers' forwarded traffic; add iifname \"{bridge_prefix}*\" accept and oifname \"{bridge_prefix}*\" accept there",
            self.family, self.table, self.chain, self.how
        )
    }
}

/// Every forward base chain outside `own` (family inet) that drops what it does not accept.
pub fn find(own: &str) -> Result<Vec<ForeignDrop>, FirewallError> {
    let objs = apply::list(&["ruleset"])?.unwrap_or_default();
    let mut out = Vec::new();
    for c in objs.iter().filter_map(|o| o.get("chain")) {
        let family = c.get("family").and_then(Value::as_str).unwrap_or_default();
        let table = c.get("table").and_then(Value::as_str).unwrap_or_default();
        let name = c.get("name").and_then(Value::as_str).unwrap_or_default();
        if !["ip", "ip6", "inet"].contains(&family) || (family == "inet" && table == own) {
            continue;
        }
        if c.get("hook").and_then(Value::as_str) != Some("forward") {
            continue;
        }
        let mut how = None;
        if c.get("policy").and_then(Value::as_str) == Some("drop") {
            how = Some("policy drop".to_string());
        } else if let Some(v) = unconditional_drop(&objs, family, table, name) {
            how = Some(format!("an unconditional {v} rule"));
        }
        if let Some(how) = how {
            out.push(ForeignDrop {
                family: family.into(),
                table: table.into(),
                chain: name.into(),
                how,
            });
        }
    }
    Ok(out)
}

fn unconditional_drop(
    objs: &[Value],
    family: &str,
    table: &str,
    chain: &str,
) -> Option<&'static str> {
    objs.iter().filter_map(|o| o.get("rule")).find_map(|r| {
        let same = r.get("family").and_then(Value::as_str) == Some(family)
            && r.get("table").and_then(Value::as_str) == Some(table)
            && r.get("chain").and_then(Value::as_str) == Some(chain);
        let expr = r.get("expr").and_then(Value::as_array)?;
        let verdicts: Vec<&str> = expr
            .iter()
            .filter(|e| e.get("counter").is_none())
            .filter_map(|e| {
                e.as_object()
                    .and_then(|m| m.keys().next())
                    .map(String::as_str)
            })
            .collect();
        match (same, verdicts.as_slice()) {
            (true, ["drop"]) => Some("drop"),
            (true, ["reject"]) => Some("reject"),
            _ => None,
        }
    })
}
