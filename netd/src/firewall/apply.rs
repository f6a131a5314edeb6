//! Sends netd's table to the kernel through `nft -j -f -` (the `nftables` crate), one atomic
//! transaction per call, and reads it back (`nft -j list table`) to see whether it is intact.
//! Kernel interface: nf_tables through nft(8)'s JSON API (libnftables-json(5)).

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;

use nftables::batch::Batch;
use nftables::helper::{self, NftablesError};
use nftables::schema::{NfCmd, NfListObject, Table};
use nftables::types::NfFamily;
use serde_json::Value;

use super::model::FwState;
use super::rules::{self, CHAINS, DNAT4, DNAT6, SET_BRIDGES, SET_INTRA, SET_NETS4, SET_NETS6};
use super::FirewallError;

/// Runs `nft -j -f -`, one process per transaction, each started before it is needed: while
/// one process works, the next one is started, and it waits on its stdin with its exec,
/// dynamic linking and libnftables set-up done (about half of an `nft` run, ~1.5 ms, so off
/// the path of an attach). It reads the ruleset only after its transaction is written, so
/// nothing it sends is stale. A waiting process is used only by a thread of the network
/// namespace it was started in (the caller's, /proc/thread-self/ns/net) and only if it is
/// still there; otherwise a new one is started. Dropping the runner ends the waiting process,
/// which holds no transaction.
pub struct Nft {
    ready: Mutex<Option<Ready>>,
}

/// A started `nft -j -f -` waiting on its stdin, and the network namespace it runs in.
struct Ready {
    child: Child,
    netns: (u64, u64),
}

impl Nft {
    pub fn new() -> Nft {
        Nft {
            ready: Mutex::new(None),
        }
    }

    /// Sends one batch to `nft -j -f -` as one transaction. Not through the crate's
    /// `apply_ruleset`: that lets nft's stderr through to netd's own and reports an empty
    /// message; here the error is nft's first lines, as one line.
    fn run(&self, batch: Batch, what: &'static str) -> Result<(), FirewallError> {
        let json = serde_json::to_vec(&batch.to_nftables())
            .map_err(|e| FirewallError::Nft(what, e.to_string()))?;
        let here = netns_here();
        let mut ready = self.ready.lock().unwrap_or_else(|p| p.into_inner());
        let mut child = match ready.take().and_then(|r| r.usable(here)) {
            Some(c) => c,
            None => spawn().map_err(|e| FirewallError::Nft(what, e))?,
        };
        let mut stdin = child
            .stdin
            .take()
            .ok_or_else(|| FirewallError::Nft(what, "no stdin".into()))?;
        // A write error shows up as nft's failure below.
        let _ = stdin.write_all(&json);
        drop(stdin);
        // The next transaction's process starts while this one works (if it cannot, the next
        // transaction starts its own and reports why).
        *ready = here.and_then(|netns| spawn().ok().map(|child| Ready { child, netns }));
        drop(ready);
        let out = child
            .wait_with_output()
            .map_err(|e| FirewallError::Nft(what, e.to_string()))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(FirewallError::Nft(
                what,
                first_lines(&String::from_utf8_lossy(&out.stderr)),
            ))
        }
    }
}

impl Default for Nft {
    fn default() -> Self {
        Nft::new()
    }
}

impl Drop for Nft {
    fn drop(&mut self) {
        let ready = self.ready.get_mut().unwrap_or_else(|p| p.into_inner());
        if let Some(mut r) = ready.take() {
            r.end();
        }
    }
}

impl Ready {
    /// The process, if it still waits and runs in the caller's network namespace `here`;
    /// otherwise it is ended.
    fn usable(mut self, here: Option<(u64, u64)>) -> Option<Child> {
        if here == Some(self.netns) && matches!(self.child.try_wait(), Ok(None)) {
            Some(self.child)
        } else {
            self.end();
            None
        }
    }

    /// Kills and reaps the process: it has read nothing, so it had no transaction.
    fn end(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `nft -j -f -` with its stdin and stderr piped; its pid is recorded (see
/// [`own_pids`]) before it can commit anything.
fn spawn() -> Result<Child, String> {
    let child = Command::new("nft")
        .args(["-j", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run nft: {e} (install nftables)"))?;
    own_pids::record(child.id());
    Ok(child)
}

/// The calling thread's network namespace as (device, inode), `None` without /proc.
fn netns_here() -> Option<(u64, u64)> {
    let st = rustix::fs::stat("/proc/thread-self/ns/net").ok()?;
    Some((st.st_dev, st.st_ino))
}

/// Replaces the whole table by the one built from `state`, in one transaction: `add table`
/// (so that the delete finds it), `delete table`, then every set, map, chain, rule and element.
/// Another table is never named, so never touched.
pub fn rebuild(nft: &Nft, table: &str, state: &FwState) -> Result<(), FirewallError> {
    let mut batch = Batch::new();
    let t = NfListObject::Table(Table {
        family: NfFamily::INet,
        name: table.to_string().into(),
        handle: None,
    });
    batch.add(t.clone());
    batch.delete(t);
    for obj in rules::table(table, state) {
        batch.add(obj);
    }
    nft.run(batch, "rebuilding")
}

/// Deletes the table if it exists (`netd down`).
pub fn delete(nft: &Nft, table: &str) -> Result<(), FirewallError> {
    let mut batch = Batch::new();
    let t = NfListObject::Table(Table {
        family: NfFamily::INet,
        name: table.to_string().into(),
        handle: None,
    });
    batch.add(t.clone());
    batch.delete(t);
    nft.run(batch, "deleting")
}

/// Adds (`add: true`) or deletes elements, all in one transaction.
pub fn elements(
    nft: &Nft,
    objs: Vec<NfListObject<'static>>,
    add: bool,
) -> Result<(), FirewallError> {
    if objs.is_empty() {
        return Ok(());
    }
    let mut batch = Batch::new();
    for o in objs {
        batch.add_cmd(if add { NfCmd::Add(o) } else { NfCmd::Delete(o) });
    }
    nft.run(
        batch,
        if add {
            "adding elements"
        } else {
            "deleting elements"
        },
    )
}

fn first_lines(stderr: &str) -> String {
    let lines: Vec<&str> = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .take(2)
        .collect();
    if lines.is_empty() {
        "nft failed without a message".into()
    } else {
        lines.join(" / ")
    }
}

/// One line from nft's error: its stderr's first lines, else the crate's message.
pub fn nft_message(e: NftablesError) -> String {
    match e {
        NftablesError::NftFailed { stderr, .. } => {
            let lines: Vec<&str> = stderr
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .take(2)
                .collect();
            lines.join(" / ")
        }
        other => other.to_string(),
    }
}

/// The JSON objects of `nft -j list ARGS...`, `None` when nft says the object does not exist.
pub fn list(args: &[&str]) -> Result<Option<Vec<Value>>, FirewallError> {
    let mut full = vec!["list"];
    full.extend_from_slice(args);
    match helper::get_current_ruleset_raw(helper::DEFAULT_NFT, full.iter()) {
        Ok(out) => {
            let v: Value = serde_json::from_str(&out)
                .map_err(|e| FirewallError::Nft("listing", e.to_string()))?;
            Ok(Some(
                v.get("nftables")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default(),
            ))
        }
        Err(NftablesError::NftFailed { stderr, .. })
            if stderr.contains("No such file or directory") =>
        {
            Ok(None)
        }
        Err(e) => Err(FirewallError::Nft("listing", nft_message(e))),
    }
}

/// What is wrong with the table in the kernel compared with `state`, or `None` when it has
/// every chain, the right number of rules and every set and map holds as many elements as the
/// model says. Counting is enough: only netd writes this table, and any flush or delete by
/// someone else changes a count.
pub fn damage(table: &str, state: &FwState) -> Result<Option<String>, FirewallError> {
    let Some(objs) = list(&["table", "inet", table])? else {
        return Ok(Some("the table is gone".into()));
    };
    let mut rules = 0;
    let mut chains = Vec::new();
    let mut elems: Vec<(String, usize)> = Vec::new();
    for o in &objs {
        if o.get("rule").is_some() {
            rules += 1;
        } else if let Some(c) = o.get("chain") {
            chains.push(
                c.get("name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
            );
        } else if let Some(s) = o.get("set").or_else(|| o.get("map")) {
            let name = s
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let n = s.get("elem").and_then(Value::as_array).map_or(0, Vec::len);
            elems.push((name, n));
        }
    }
    if let Some(missing) = CHAINS.iter().find(|c| !chains.iter().any(|h| h == *c)) {
        return Ok(Some(format!("chain {missing} is missing")));
    }
    if rules != rules::rule_count() {
        return Ok(Some(format!(
            "{rules} rules instead of {}",
            rules::rule_count()
        )));
    }
    for (name, want) in expected_elements(state) {
        let have = elems.iter().find(|(n, _)| n == name).map(|(_, c)| *c);
        if have != Some(want) {
            return Ok(Some(format!(
                "set {name} holds {} elements instead of {want}",
                have.map_or("no".into(), |c| c.to_string())
            )));
        }
    }
    Ok(None)
}

fn expected_elements(state: &FwState) -> Vec<(&'static str, usize)> {
    let nets = state.networks.len();
    let count = |v6: bool, on_host: bool| {
        state
            .ports
            .iter()
            .filter(|p| p.addr.is_ipv6() == v6 && p.host_ip.is_some() == on_host)
            .count()
    };
    let mut out = vec![
        (SET_BRIDGES, nets),
        (SET_INTRA, nets),
        (
            SET_NETS4,
            state
                .networks
                .iter()
                .filter(|n| n.subnet4.is_some())
                .count(),
        ),
        (
            SET_NETS6,
            state
                .networks
                .iter()
                .filter(|n| n.subnet6.is_some())
                .count(),
        ),
    ];
    for (maps, v6) in [(&DNAT4, false), (&DNAT6, true)] {
        out.push((maps.any_addr, count(v6, false)));
        out.push((maps.any_port, count(v6, false)));
        out.push((maps.host_addr, count(v6, true)));
        out.push((maps.host_port, count(v6, true)));
    }
    out
}

/// The pids of the `nft` processes netd ran last: the watcher ignores the transactions they
/// committed (NFT_MSG_NEWGEN names the committing process), so netd's own changes never trigger
/// a check. A pid is kept until 64 newer runs (pids are not reused that fast).
pub mod own_pids {
    use std::collections::VecDeque;
    use std::sync::Mutex;

    static RECENT: Mutex<VecDeque<u32>> = Mutex::new(VecDeque::new());

    pub fn record(pid: u32) {
        let mut r = RECENT.lock().unwrap_or_else(|p| p.into_inner());
        if r.len() == 64 {
            r.pop_front();
        }
        r.push_back(pid);
    }

    pub fn contains(pid: u32) -> bool {
        RECENT
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&pid)
    }
}
