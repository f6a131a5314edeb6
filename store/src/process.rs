//! Which process a hold is bound to, and whether it still runs: its pid, its start time and
//! the boot it started in, so that a reused pid or a reboot never passes for the holder.
//! Kernel interfaces: /proc/<pid>/stat fields 3 (state) and 22 (starttime, clock ticks after
//! boot) (proc_pid_stat(5)); /proc/sys/kernel/random/boot_id (random(4)).

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

/// A process, told apart from any later process with the same pid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessId {
    pub pid: u32,
    /// Clock ticks after boot (proc_pid_stat(5) field 22).
    pub start: u64,
    /// The boot it started in (random(4) boot_id); empty when unknown.
    #[serde(default)]
    pub boot: String,
}

impl ProcessId {
    /// This process; None when /proc is not readable.
    pub fn current() -> Option<ProcessId> {
        Self::of(std::process::id())
    }

    /// Process `pid` as it is now (None if there is none, or it has exited).
    pub fn of(pid: u32) -> Option<ProcessId> {
        let (state, start) = state_and_start(pid)?;
        (!matches!(state, 'Z' | 'X')).then(|| ProcessId {
            pid,
            start,
            boot: boot_id().to_string(),
        })
    }

    /// True while this very process runs: same pid, same start time, same boot, not a zombie
    /// (an exited holder whose parent has not reaped it yet holds nothing).
    pub fn alive(&self) -> bool {
        if !self.boot.is_empty() && self.boot != boot_id() {
            return false;
        }
        matches!(state_and_start(self.pid), Some((state, start))
            if start == self.start && !matches!(state, 'Z' | 'X'))
    }
}

/// This boot's id (empty when unreadable), read once.
fn boot_id() -> &'static str {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
            .map(|s| s.trim().to_string())
            .unwrap_or_default()
    })
}

/// State letter and start time of `pid` from /proc/<pid>/stat. The command name (field 2) may
/// hold spaces and parentheses: fields are counted after its last `)`.
fn state_and_start(pid: u32) -> Option<(char, u64)> {
    if pid == 0 {
        return None;
    }
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 1..];
    let mut f = rest.split_whitespace();
    let state = f.next()?.chars().next()?;
    // after the state (field 3), starttime is field 22: 18 fields further
    let start = f.nth(18)?.parse().ok()?;
    Some((state, start))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_changed_start_or_boot_is_not() {
        let me = ProcessId::current().unwrap();
        assert!(me.alive());
        assert!(!ProcessId {
            start: me.start + 1,
            ..me.clone()
        }
        .alive());
        assert!(!ProcessId {
            boot: "another boot".into(),
            ..me.clone()
        }
        .alive());
        assert!(!ProcessId {
            pid: 0,
            ..me.clone()
        }
        .alive());
    }

    #[test]
    fn an_exited_child_holds_nothing() {
        let mut c = std::process::Command::new("true").spawn().unwrap();
        let id = ProcessId::of(c.id());
        c.wait().unwrap();
        if let Some(id) = id {
            assert!(!id.alive());
        }
    }
}
