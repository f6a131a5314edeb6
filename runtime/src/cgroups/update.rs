//! Owns: changing the limits of a live cgroup (rrun-oci `update`, runc's `update`). Every new
//! value is checked and every file to be written is read before anything is written; the
//! writes then go in an order the kernel accepts (v1 memory: the limit never above
//! memory+swap), and if one fails the old values are written back in reverse order, so a
//! failure half-way leaves the limits as they were. (runc writes each controller in turn and,
//! if one fails, sets the whole old configuration again.)
//! Kernel interface: v1 memory.limit_in_bytes, memory.memsw.limit_in_bytes,
//! memory.soft_limit_in_bytes (cgroup-v1/memory.rst), cpu.shares, cpu.cfs_period_us,
//! cpu.cfs_quota_us (scheduler/sched-bwc.rst), cpuset.cpus, cpuset.mems (cgroup-v1/cpusets.rst),
//! pids.max; v2 memory.max, memory.swap.max, memory.low, cpu.weight, cpu.max, cpuset.cpus,
//! cpuset.mems, pids.max (cgroup-v2.rst).

use std::path::{Path, PathBuf};

use super::detect::Version;
use super::memory::MIN_MEMORY;
use super::{cpuset, fs, parse, pids, Cgroup, CgroupError, Dir};

/// New values for a container's cgroup; None leaves a value as it is. Units and conventions
/// are runtime-spec's linux.resources (config-linux.md): bytes, microseconds, -1 for no limit.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Update {
    /// memory.limit: bytes (at least 6 MiB), -1 for none. -1 without `memory_swap` lifts the
    /// swap limit too, as runc does (libcontainer's v1 setMemoryAndSwap, v2
    /// ConvertMemorySwapToCgroupV2Value): no memory limit is no memory+swap limit.
    pub memory: Option<i64>,
    /// memory.swap: memory + swap in bytes, -1 for unlimited swap. Without it a v1 cgroup
    /// that had no swap (memory+swap equal to memory) keeps none when the limit changes.
    pub memory_swap: Option<i64>,
    /// memory.reservation (the soft limit): bytes, -1 for none.
    pub memory_reservation: Option<i64>,
    /// memory.swappiness: 0 to 100, the kernel's tendency to swap this cgroup's anonymous
    /// memory (v1 memory.swappiness; cgroup v2 has no such file: refused there).
    pub memory_swappiness: Option<u64>,
    /// cpu.shares: relative weight, 2 to 262144 (v2: mapped to cpu.weight 1 to 10000 as runc).
    pub cpu_shares: Option<u64>,
    /// cpu.quota: microseconds per period (at least 1000), -1 for none.
    pub cpu_quota: Option<i64>,
    /// cpu.period: microseconds, 1000 to 1000000.
    pub cpu_period: Option<u64>,
    /// cpu.cpus: a list like "0-1,3", within what the parent cgroup allows.
    pub cpuset_cpus: Option<String>,
    /// cpu.mems: memory nodes, same list syntax.
    pub cpuset_mems: Option<String>,
    /// pids.limit: tasks; 0 or negative for none.
    pub pids: Option<i64>,
}

/// One write of the plan.
#[derive(Debug, Clone, PartialEq)]
struct Write {
    dir: PathBuf,
    file: &'static str,
    value: String,
}

/// No limit, as a number to compare with.
const NONE: u64 = u64::MAX;

impl Cgroup {
    /// Sets the values `u` gives (see [`Update`]). Errors: a value out of range or a swap
    /// limit below the memory limit ([`CgroupError::InvalidLimit`]), a controller the cgroup
    /// has no directory or file for ([`CgroupError::ControllerMissing`]), or the kernel's
    /// refusal of a write, after which the values written before it are restored.
    pub fn update(&self, u: &Update) -> Result<(), CgroupError> {
        let plan = plan(&self.dirs, u, &|d, f| fs::read(d, f))?;
        let old = plan
            .iter()
            .map(|w| fs::read(&w.dir, w.file).map(|s| s.trim().to_string()))
            .collect::<Result<Vec<_>, _>>()?;
        for (i, w) in plan.iter().enumerate() {
            if let Err(e) = fs::write(&w.dir, w.file, &w.value) {
                for (w, v) in plan[..i].iter().zip(&old).rev() {
                    if let Err(back) = fs::write(&w.dir, w.file, v) {
                        tracing::warn!(%back, "cgroup update: restoring an old value");
                    }
                }
                return Err(e);
            }
        }
        Ok(())
    }
}

fn invalid(what: String) -> CgroupError {
    CgroupError::InvalidLimit(what)
}

/// The directory that carries `controller`: its v1 hierarchy's, else the v2 one, which must
/// have `file`.
fn dir_for<'a>(
    dirs: &'a [Dir],
    controller: &'static str,
    file: &str,
) -> Result<&'a Dir, CgroupError> {
    let d = dirs
        .iter()
        .find(|d| d.version == Version::V1 && d.has(controller))
        .or_else(|| dirs.iter().find(|d| d.version == Version::V2));
    match d {
        Some(d) if d.path.join(file).exists() => Ok(d),
        Some(d) => Err(CgroupError::ControllerMissing {
            controller,
            reason: format!(
                "{} has no {file} (the container's cgroup was made without this controller)",
                d.path.display()
            ),
        }),
        None => Err(CgroupError::ControllerMissing {
            controller,
            reason: "the container has no cgroup directory for it".into(),
        }),
    }
}

/// -1 (any negative) is no limit.
fn bytes(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(NONE)
}

/// A value read back from a memory file: a number of bytes, or "max" (v2).
fn read_bytes(text: &str) -> u64 {
    text.trim().parse().unwrap_or(NONE)
}

/// The writes `u` needs, in order, with every value checked. `read` gives a file's current
/// text (for the values `u` leaves out and the order of the v1 memory writes).
fn plan(
    dirs: &[Dir],
    u: &Update,
    read: &dyn Fn(&Path, &str) -> Result<String, CgroupError>,
) -> Result<Vec<Write>, CgroupError> {
    let mut out = Vec::new();
    let mut put = |d: &Dir, file: &'static str, value: String| {
        out.push(Write {
            dir: d.path.clone(),
            file,
            value,
        })
    };
    if let Some(m) = u.memory {
        if m >= 0 && (m as u64) < MIN_MEMORY {
            return Err(invalid(format!(
                "memory limit of {m} bytes is below the minimum of 6m"
            )));
        }
    }
    if let Some(r) = u.memory_reservation {
        let d = dir_for(dirs, "memory", "memory.limit_in_bytes")
            .or_else(|_| dir_for(dirs, "memory", "memory.low"))?;
        match d.version {
            Version::V1 => put(d, "memory.soft_limit_in_bytes", r.max(-1).to_string()),
            Version::V2 => put(d, "memory.low", v2_max(bytes(r))),
        }
    }
    if let Some(w) = u.memory_swappiness {
        if w > 100 {
            return Err(invalid(format!(
                "memory swappiness {w} is outside 0 to 100"
            )));
        }
        let d = dir_for(dirs, "memory", "memory.swappiness").map_err(|_| {
            CgroupError::ControllerMissing {
                controller: "memory",
                reason: "memory.swappiness exists on cgroup v1 only (cgroup v2 has no swappiness)"
                    .into(),
            }
        })?;
        put(d, "memory.swappiness", w.to_string());
    }
    if u.memory.is_some() || u.memory_swap.is_some() {
        let d = dir_for(dirs, "memory", "memory.limit_in_bytes")
            .or_else(|_| dir_for(dirs, "memory", "memory.max"))?;
        match d.version {
            Version::V1 => {
                for (f, v) in memory_v1(&d.path, u, read)? {
                    put(d, f, v);
                }
            }
            Version::V2 => {
                if let Some(m) = u.memory {
                    put(d, "memory.max", v2_max(bytes(m)));
                }
                let lift_swap = u.memory.map(bytes) == Some(NONE) && u.memory_swap.is_none();
                if lift_swap && d.path.join("memory.swap.max").exists() {
                    put(d, "memory.swap.max", "max".into());
                }
                if let Some(s) = u.memory_swap {
                    if !d.path.join("memory.swap.max").exists() {
                        return Err(no_swap_accounting(&d.path, "memory.swap.max"));
                    }
                    let limit = match u.memory {
                        Some(m) => bytes(m),
                        None => read_bytes(&read(&d.path, "memory.max")?),
                    };
                    let swap = match (bytes(s), limit) {
                        (NONE, _) => NONE,
                        (_, NONE) => return Err(invalid(
                            "a swap limit needs a memory limit (memory.swap without memory.limit)"
                                .into(),
                        )),
                        (s, l) if s < l => return Err(below(l, s)),
                        (s, l) => s - l,
                    };
                    put(d, "memory.swap.max", v2_max(swap));
                }
            }
        }
    }
    if let Some(shares) = u.cpu_shares {
        if !(2..=262_144).contains(&shares) {
            return Err(invalid(format!(
                "cpu shares {shares} are outside 2 to 262144"
            )));
        }
        let d =
            dir_for(dirs, "cpu", "cpu.shares").or_else(|_| dir_for(dirs, "cpu", "cpu.weight"))?;
        match d.version {
            Version::V1 => put(d, "cpu.shares", shares.to_string()),
            // runc's mapping of [2, 262144] onto [1, 10000]
            Version::V2 => put(
                d,
                "cpu.weight",
                (1 + ((shares - 2) * 9999) / 262_142).to_string(),
            ),
        }
    }
    if u.cpu_quota.is_some() || u.cpu_period.is_some() {
        if let Some(q) = u.cpu_quota.filter(|q| (0..1000).contains(q)) {
            return Err(invalid(format!(
                "cpu quota {q} us is below the kernel's minimum of 1000 us (-1: no limit)"
            )));
        }
        if let Some(p) = u.cpu_period.filter(|p| !(1000..=1_000_000).contains(p)) {
            return Err(invalid(format!(
                "cpu period {p} us is outside 1000 to 1000000 us"
            )));
        }
        let d = dir_for(dirs, "cpu", "cpu.cfs_quota_us")
            .or_else(|_| dir_for(dirs, "cpu", "cpu.max"))?;
        match d.version {
            Version::V1 => {
                if let Some(p) = u.cpu_period {
                    put(d, "cpu.cfs_period_us", p.to_string());
                }
                if let Some(q) = u.cpu_quota {
                    put(d, "cpu.cfs_quota_us", q.max(-1).to_string());
                }
            }
            Version::V2 => {
                let cur = read(&d.path, "cpu.max")?;
                let mut f = cur.split_whitespace();
                let (cq, cp) = (f.next().unwrap_or("max"), f.next().unwrap_or("100000"));
                let q = match u.cpu_quota {
                    Some(q) if q >= 0 => q.to_string(),
                    Some(_) => "max".into(),
                    None => cq.to_string(),
                };
                let p = u.cpu_period.map_or(cp.to_string(), |p| p.to_string());
                put(d, "cpu.max", format!("{q} {p}"));
            }
        }
    }
    if let Some(cpus) = &u.cpuset_cpus {
        let d = dir_for(dirs, "cpuset", "cpuset.cpus")?;
        let parent = d.path.parent().unwrap_or(Path::new("/"));
        let allowed = cpuset::allowed(d.version, Path::new("/"), parent)?;
        put(d, "cpuset.cpus", cpuset::check(cpus, &allowed, parent)?);
    }
    if let Some(mems) = &u.cpuset_mems {
        let d = dir_for(dirs, "cpuset", "cpuset.mems")?;
        let set = parse::parse_cpuset(mems)?;
        put(d, "cpuset.mems", parse::format_cpu_list(&set));
    }
    if let Some(n) = u.pids {
        let d = dir_for(dirs, "pids", "pids.max")?;
        put(
            d,
            "pids.max",
            pids::value(u64::try_from(n).ok().filter(|&n| n > 0).unwrap_or(NONE)),
        );
    }
    Ok(out)
}

fn v2_max(v: u64) -> String {
    match v {
        NONE => "max".into(),
        v => v.to_string(),
    }
}

fn below(limit: u64, swap: u64) -> CgroupError {
    let limit = match limit {
        NONE => "(none: -1)".to_string(),
        l => l.to_string(),
    };
    invalid(format!(
        "memory+swap limit {swap} is below the memory limit {limit}; raise memory.swap (--memory-swap) or lower the memory limit"
    ))
}

fn no_swap_accounting(dir: &Path, file: &str) -> CgroupError {
    CgroupError::ControllerMissing {
        controller: "memory",
        reason: format!(
            "memory.swap: {} has no {file}, the kernel does not account swap (boot with swapaccount=1)",
            dir.display()
        ),
    }
}

/// The v1 memory writes: (file, value) in an order the kernel takes. The kernel refuses a
/// limit above memory+swap at every moment, so when the limit goes up memory+swap is written
/// first, else second. Without a new swap value, a cgroup without swap (memory+swap equal to
/// the limit, as rrun makes them) keeps none.
fn memory_v1(
    dir: &Path,
    u: &Update,
    read: &dyn Fn(&Path, &str) -> Result<String, CgroupError>,
) -> Result<Vec<(&'static str, String)>, CgroupError> {
    const MEMSW: &str = "memory.memsw.limit_in_bytes";
    const LIMIT: &str = "memory.limit_in_bytes";
    let has_swap = dir.join(MEMSW).exists();
    if u.memory_swap.is_some() && !has_swap {
        return Err(no_swap_accounting(dir, MEMSW));
    }
    let cur_l = read_bytes(&read(dir, LIMIT)?);
    let cur_s = match has_swap {
        true => Some(read_bytes(&read(dir, MEMSW)?)),
        false => None,
    };
    // The kernel reads back "no limit" as the largest multiple of the page size.
    let unlimited = |v: u64| v >= (i64::MAX as u64) & !0xfff;
    let norm = |v: u64| if unlimited(v) { NONE } else { v };
    let (cur_l, cur_s) = (norm(cur_l), cur_s.map(norm));
    let new_l = u.memory.map(bytes);
    let new_s = match (u.memory_swap.map(bytes), new_l, cur_s) {
        (Some(s), _, _) => Some(s),
        (None, Some(NONE), Some(_)) => Some(NONE),
        (None, Some(l), Some(s)) if s == cur_l => Some(l),
        _ => None,
    };
    let l = new_l.unwrap_or(cur_l);
    if let Some(s) = new_s.or(cur_s) {
        if l > s {
            return Err(below(l, s));
        }
    }
    let v1 = |v: u64| match v {
        NONE => "-1".to_string(),
        v => v.to_string(),
    };
    let mut out = Vec::new();
    if let Some(l) = new_l {
        out.push((LIMIT, v1(l)));
    }
    if let Some(s) = new_s {
        let swap = (MEMSW, v1(s));
        match new_l.is_some_and(|l| l > cur_l) {
            true => out.insert(0, swap),
            false => out.push(swap),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod unit {
    use super::*;

    fn files(pairs: &[(&str, &str)]) -> impl Fn(&Path, &str) -> Result<String, CgroupError> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        move |_: &Path, f: &str| {
            Ok(pairs
                .iter()
                .find(|(n, _)| n == f)
                .map(|(_, v)| v.clone())
                .unwrap_or_default())
        }
    }

    fn mem(memory: Option<i64>, swap: Option<i64>) -> Update {
        Update {
            memory,
            memory_swap: swap,
            ..Update::default()
        }
    }

    /// memory_v1 on a directory with a memsw file (this test's own scratch directory).
    fn v1(cur: &[(&str, &str)], u: &Update) -> Result<Vec<(&'static str, String)>, String> {
        let dir = std::env::temp_dir().join(format!("rbox-upd-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("memory.memsw.limit_in_bytes"), "").unwrap();
        let r = memory_v1(&dir, u, &files(cur)).map_err(|e| e.to_string());
        let _ = std::fs::remove_dir_all(&dir);
        r
    }

    #[test]
    fn v1_memory_goes_up_swap_first_and_down_limit_first() {
        let cur = [
            ("memory.limit_in_bytes", "33554432"),
            ("memory.memsw.limit_in_bytes", "33554432"),
        ];
        assert_eq!(
            v1(&cur, &mem(Some(64 << 20), None)).unwrap(),
            vec![
                ("memory.memsw.limit_in_bytes", "67108864".into()),
                ("memory.limit_in_bytes", "67108864".into())
            ],
            "no swap stays no swap"
        );
        assert_eq!(
            v1(&cur, &mem(Some(16 << 20), Some(-1))).unwrap(),
            vec![
                ("memory.limit_in_bytes", "16777216".into()),
                ("memory.memsw.limit_in_bytes", "-1".into())
            ]
        );
        let e = v1(&cur, &mem(Some(64 << 20), Some(48 << 20))).unwrap_err();
        assert_eq!(e, "invalid limit: memory+swap limit 50331648 is below the memory limit 67108864; raise memory.swap (--memory-swap) or lower the memory limit");
        // No memory limit is no number of bytes to show.
        let e = v1(&cur, &mem(Some(-1), Some(48 << 20))).unwrap_err();
        assert_eq!(e, "invalid limit: memory+swap limit 50331648 is below the memory limit (none: -1); raise memory.swap (--memory-swap) or lower the memory limit");
        let with_swap = [
            ("memory.limit_in_bytes", "33554432"),
            ("memory.memsw.limit_in_bytes", "67108864"),
        ];
        assert_eq!(
            v1(&with_swap, &mem(Some(48 << 20), None)).unwrap(),
            vec![("memory.limit_in_bytes", "50331648".into())],
            "a swap allowance is left as it is"
        );
        assert_eq!(
            v1(&with_swap, &mem(Some(-1), None)).unwrap(),
            vec![
                ("memory.memsw.limit_in_bytes", "-1".into()),
                ("memory.limit_in_bytes", "-1".into())
            ],
            "no memory limit lifts the swap limit, as runc"
        );
        let unlimited = [
            ("memory.limit_in_bytes", "9223372036854771712"),
            ("memory.memsw.limit_in_bytes", "9223372036854771712"),
        ];
        assert_eq!(
            v1(&unlimited, &mem(Some(64 << 20), None)).unwrap(),
            vec![
                ("memory.limit_in_bytes", "67108864".into()),
                ("memory.memsw.limit_in_bytes", "67108864".into())
            ]
        );
    }

    #[test]
    fn v2_no_memory_limit_lifts_the_swap_limit_unless_swap_is_given() {
        let dir = std::env::temp_dir().join(format!("rbox-upd-v2-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for f in ["memory.max", "memory.swap.max"] {
            std::fs::write(dir.join(f), "").unwrap();
        }
        let dirs = vec![Dir {
            version: Version::V2,
            controllers: vec![],
            path: dir.clone(),
        }];
        let writes = |u: Update| {
            plan(&dirs, &u, &files(&[("memory.max", "max")]))
                .unwrap()
                .into_iter()
                .map(|w| (w.file, w.value))
                .collect::<Vec<_>>()
        };
        let lifted = writes(mem(Some(-1), None));
        let given = writes(mem(Some(-1), Some(-1)));
        let limited = writes(mem(Some(64 << 20), None));
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(
            lifted,
            vec![
                ("memory.max", "max".to_string()),
                ("memory.swap.max", "max".to_string())
            ]
        );
        assert_eq!(given, lifted);
        assert_eq!(limited, vec![("memory.max", "67108864".to_string())]);
    }

    #[test]
    fn values_are_checked_before_any_write() {
        let dirs: Vec<Dir> = vec![];
        let e = |u: Update| plan(&dirs, &u, &files(&[])).unwrap_err().to_string();
        assert!(e(mem(Some(1 << 20), None)).contains("below the minimum of 6m"));
        assert!(e(Update {
            cpu_shares: Some(1),
            ..Update::default()
        })
        .contains("outside 2 to 262144"));
        assert!(e(Update {
            cpu_quota: Some(10),
            ..Update::default()
        })
        .contains("minimum of 1000 us"));
        assert!(e(Update {
            pids: Some(5),
            ..Update::default()
        })
        .starts_with("the pids controller is not available"));
    }
}
