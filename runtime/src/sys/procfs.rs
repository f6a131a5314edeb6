//! Facts about other processes read from /proc: start time and state (pid reuse), command
//! name, pid-namespace init; and the path escapes of mountinfo. Kernel interface:
//! /proc/PID/stat, comm, status and mountinfo (proc(5)).

/// Start time of a process in clock ticks since boot (field 22 of /proc/PID/stat), used to
/// detect pid reuse. None when the process does not exist.
pub fn proc_start_time(pid: i32) -> Option<u64> {
    proc_state_and_start(pid).map(|(_, start)| start)
}

/// The state letter (field 3: R, S, Z, ...) and start time (field 22) of /proc/PID/stat.
pub fn proc_state_and_start(pid: i32) -> Option<(char, u64)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let mut rest = s[s.rfind(')')? + 1..].split_whitespace();
    let state = rest.next()?.chars().next()?;
    Some((state, rest.nth(18)?.parse().ok()?))
}

/// The command name of a process (`/proc/PID/comm`), None when it does not exist.
pub fn comm(pid: i32) -> Option<String> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
    Some(s.trim_end_matches('\n').to_string())
}

/// True when process `pid` is PID 1 of a pid namespace below the caller's: its `NSpid` line
/// in /proc/PID/status (proc(5)) has more than one entry and ends in 1.
pub fn is_child_ns_init(pid: i32) -> bool {
    let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return false;
    };
    let Some(ids) = s.lines().find_map(|l| l.strip_prefix("NSpid:")) else {
        return false;
    };
    let ids: Vec<&str> = ids.split_whitespace().collect();
    ids.len() > 1 && ids.last() == Some(&"1")
}

/// PF_EXITING in the flags of /proc/PID/stat (include/linux/sched.h): the task is in exit(2).
const PF_EXITING: u64 = 0x4;

/// True when process `pid` is exiting or has exited: PF_EXITING in field 9 of /proc/PID/stat,
/// or state Z or X.
fn exiting(pid: &str) -> bool {
    let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return true;
    };
    let Some(i) = s.rfind(')') else { return false };
    let mut f = s[i + 1..].split_whitespace();
    let state = f.next().unwrap_or("");
    let flags = f.nth(5).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
    state == "Z" || state == "X" || flags & PF_EXITING != 0
}

/// True when process `pid` is on its way out: it is exiting (a pid namespace's init stays so
/// for milliseconds while the kernel tears its namespaces down), or every child it has left
/// (/proc/PID/task/PID/children, proc(5)) is exiting or waits to be reaped: for a container's
/// init, whose command has ended, its own end is then a matter of milliseconds. False when
/// it does not exist.
pub fn ending(pid: i32) -> bool {
    let p = pid.to_string();
    if !std::path::Path::new(&format!("/proc/{p}")).exists() {
        return false;
    }
    if exiting(&p) {
        return true;
    }
    std::fs::read_to_string(format!("/proc/{p}/task/{p}/children"))
        .is_ok_and(|c| c.split_whitespace().all(exiting))
}

/// A path field of /proc/PID/mountinfo with its octal escapes (`\040` for a space, `\011`,
/// `\012`, `\134` for a backslash) turned back into bytes; anything else is kept as it is.
pub fn unescape_mountinfo(s: &str) -> std::ffi::OsString {
    use std::os::unix::ffi::OsStringExt;
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let oct = b
            .get(i + 1..i + 4)
            .filter(|d| b[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match oct {
            Some(d) => {
                out.push(
                    d.iter()
                        .fold(0u8, |v, c| v.wrapping_mul(8).wrapping_add(c - b'0')),
                );
                i += 4;
            }
            None => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    std::ffi::OsString::from_vec(out)
}
