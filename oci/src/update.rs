//! `update`: new cgroup limits for a live container, as runc takes them: `--resources FILE`
//! (runtime-spec linux.resources JSON, `-` for stdin; the other flags are then ignored, as in
//! runc) or runc's single flags (--memory, --memory-swap, --memory-reservation as sizes or -1,
//! --cpu-share, --cpu-quota (signed, -1 for none), --cpu-period, --cpuset-cpus, --cpuset-mems,
//! --pids-limit). A memory value below -1 is refused (runc hands it to the kernel, which
//! refuses it). The values go to the rrun library's [`Cgroup::update`], which checks them all
//! before writing any and restores the old ones if the kernel refuses one. A field rrun-oci
//! does not set is refused in one line naming it; `devices` is ignored, as runc's update
//! ignores it. Kernel interface: cgroupfs, through the rrun library.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Args;
use oci_spec::runtime::LinuxResources;
use rrun::cgroups::{parse_size, Cgroup, Update};

use crate::state::{Record, Status};

/// `update`'s command line: runc 1.1's flags (`runc update --help`). liboci-cli's `Update`
/// takes the memory sizes as plain byte counts; runc reads them as sizes (`64m`, `1.5g`,
/// go-units' RAMInBytes) or -1 for no limit, so they are strings here, read by [`size`] only
/// when no `--resources` is given (runc ignores them then, even when malformed). Any value
/// after a size flag is its value, as in runc (`--memory -1`). --cpu-quota is signed, as
/// runc's (liboci-cli's is unsigned, which refused runc's `--cpu-quota -1`). The other
/// flags keep liboci-cli's types.
#[derive(Args, Debug)]
pub struct UpdateArgs {
    /// runtime-spec linux.resources JSON to apply, `-` for stdin; the other flags are ignored.
    #[arg(short, long)]
    pub resources: Option<PathBuf>,
    /// Block I/O weight, 10 to 1000 (refused: not supported).
    #[arg(long)]
    pub blkio_weight: Option<u64>,
    /// CFS period in microseconds.
    #[arg(long)]
    pub cpu_period: Option<u64>,
    /// CFS quota in microseconds per period; -1 (any negative number, as the kernel reads
    /// cpu.cfs_quota_us) for none.
    #[arg(long, allow_negative_numbers = true)]
    pub cpu_quota: Option<i64>,
    /// Realtime period in microseconds (refused: not supported).
    #[arg(long)]
    pub cpu_rt_period: Option<u64>,
    /// Realtime runtime in microseconds (refused: not supported).
    #[arg(long)]
    pub cpu_rt_runtime: Option<u64>,
    /// CPU shares (weight relative to other cgroups).
    #[arg(long)]
    pub cpu_share: Option<u64>,
    /// CPUs to run on, a list like 0-3,7.
    #[arg(long)]
    pub cpuset_cpus: Option<String>,
    /// Memory nodes to use, a list like 0-1.
    #[arg(long)]
    pub cpuset_mems: Option<String>,
    /// Memory limit: bytes or a size (64m, 1.5g), -1 for none.
    #[arg(long, allow_hyphen_values = true)]
    pub memory: Option<String>,
    /// Memory reservation (soft limit): bytes or a size, -1 for none.
    #[arg(long, allow_hyphen_values = true)]
    pub memory_reservation: Option<String>,
    /// Memory plus swap limit: bytes or a size, -1 for unlimited swap.
    #[arg(long, allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Kernel memory limit, a size (runc 1.1 hides it; a limit is refused: not supported).
    #[arg(long, allow_hyphen_values = true, hide = true)]
    pub kernel_memory: Option<String>,
    /// Kernel TCP buffer limit, a size (runc 1.1 hides it; a limit is refused: not supported).
    #[arg(long, allow_hyphen_values = true, hide = true)]
    pub kernel_memory_tcp: Option<String>,
    /// Most tasks in the container, -1 for none.
    #[arg(long)]
    pub pids_limit: Option<i64>,
    /// Intel RDT L3 cache schema (refused: not supported).
    #[arg(long)]
    pub l3_cache_schema: Option<String>,
    /// Intel RDT memory bandwidth schema (refused: not supported).
    #[arg(long)]
    pub mem_bw_schema: Option<String>,
    /// The container's id.
    #[arg(value_parser = clap::builder::NonEmptyStringValueParser::new(), required = true)]
    pub container_id: String,
}

/// `update [--resources FILE | FLAGS] ID`.
pub fn update(root: &Path, a: &UpdateArgs) -> Result<()> {
    let id = &a.container_id;
    let rec = Record::load(root, id)?;
    if rec.status(root) == Status::Stopped {
        bail!("update {id}: the container is stopped");
    }
    let u = match &a.resources {
        Some(file) => from_resources(&read_resources(file)?, "resources")?,
        None => from_flags(a)?,
    };
    if rec.cgroup_paths.is_empty() {
        bail!("update {id}: the container has no cgroup (rootless without a delegated cgroup)");
    }
    Cgroup::from_recorded(&rec.cgroup_paths)?
        .update(&u)
        .map_err(|e| anyhow::anyhow!("update {id}: {e}"))
}

/// The most bytes of `--resources` JSON read: linux.resources is a few KiB at most, and an
/// endless file (/dev/zero) must not fill memory.
const MAX_RESOURCES: u64 = 1 << 20;

/// The JSON of `--resources FILE`, `-` being stdin (at most [`MAX_RESOURCES`] bytes).
fn read_resources(file: &Path) -> Result<LinuxResources> {
    let mut text = Vec::new();
    let n = if file == Path::new("-") {
        std::io::stdin()
            .take(MAX_RESOURCES + 1)
            .read_to_end(&mut text)
            .context("read --resources from stdin")?
    } else {
        std::fs::File::open(file)
            .and_then(|f| f.take(MAX_RESOURCES + 1).read_to_end(&mut text))
            .with_context(|| format!("read --resources {}", file.display()))?
    };
    if n as u64 > MAX_RESOURCES {
        bail!(
            "--resources {}: more than {MAX_RESOURCES} bytes, not runtime-spec linux.resources JSON",
            file.display()
        );
    }
    let not_json = || {
        format!(
            "--resources {}: not runtime-spec linux.resources JSON",
            file.display()
        )
    };
    // A JSON array would be read as the struct's fields in order ([] as no change); runc,
    // like the spec, takes an object only.
    let kind = match serde_json::from_slice(&text).with_context(not_json)? {
        serde_json::Value::Object(_) => None,
        serde_json::Value::Array(_) => Some("an array"),
        serde_json::Value::String(_) => Some("a string"),
        serde_json::Value::Number(_) => Some("a number"),
        serde_json::Value::Bool(_) => Some("a boolean"),
        serde_json::Value::Null => Some("null"),
    };
    if let Some(kind) = kind {
        bail!(
            "--resources {}: the JSON is {kind}, not an object; give linux.resources as an object, e.g. {{\"memory\": {{\"limit\": 67108864}}}}",
            file.display()
        );
    }
    serde_json::from_slice(&text).with_context(not_json)
}

fn refuse(field: &str) -> Result<()> {
    bail!("{field} is not supported by rrun-oci")
}

/// linux.resources as an update; `at` names where it came from ("resources",
/// "config.json: linux.resources") in the refusals. Fields left out are left as they are.
pub fn from_resources(r: &LinuxResources, at: &str) -> Result<Update> {
    let mut u = Update::default();
    let field = |f: &str| format!("{at}.{f}");
    if r.block_io().as_ref().is_some_and(|b| {
        b.weight().is_some()
            || b.leaf_weight().is_some()
            || b.weight_device().as_ref().is_some_and(|v| !v.is_empty())
            || b.throttle_read_bps_device()
                .as_ref()
                .is_some_and(|v| !v.is_empty())
            || b.throttle_write_bps_device()
                .as_ref()
                .is_some_and(|v| !v.is_empty())
            || b.throttle_read_iops_device()
                .as_ref()
                .is_some_and(|v| !v.is_empty())
            || b.throttle_write_iops_device()
                .as_ref()
                .is_some_and(|v| !v.is_empty())
    }) {
        refuse(&field("blockIO"))?;
    }
    if r.hugepage_limits().as_ref().is_some_and(|v| !v.is_empty()) {
        refuse(&field("hugepageLimits"))?;
    }
    if r.network().is_some() {
        refuse(&field("network"))?;
    }
    if r.rdma().as_ref().is_some_and(|v| !v.is_empty()) {
        refuse(&field("rdma"))?;
    }
    if r.unified().as_ref().is_some_and(|v| !v.is_empty()) {
        refuse(&field("unified"))?;
    }
    if let Some(m) = r.memory() {
        if m.kernel().is_some_and(|v| v > 0) {
            refuse(&field("memory.kernel"))?;
        }
        if m.kernel_tcp().is_some_and(|v| v > 0) {
            refuse(&field("memory.kernelTCP"))?;
        }
        if m.disable_oom_killer() == Some(true) {
            refuse(&field("memory.disableOOMKiller"))?;
        }
        // -1 is no limit; runc writes any other negative to the kernel, which refuses it.
        for (name, v) in [
            ("limit", m.limit()),
            ("swap", m.swap()),
            ("reservation", m.reservation()),
        ] {
            if let Some(v) = v.filter(|&v| v < -1) {
                bail!(
                    "{} {v}: only -1 means no limit; give a number of bytes or -1",
                    field(&format!("memory.{name}"))
                );
            }
        }
        // 0 is "not set" in runc's update as in its create.
        u.memory = m.limit().filter(|&v| v != 0);
        u.memory_swap = m.swap().filter(|&v| v != 0);
        u.memory_reservation = m.reservation().filter(|&v| v != 0);
        // runc's "not set" is any value above 100 (its -1 read as an unsigned number)
        u.memory_swappiness = m.swappiness().filter(|&w| w <= 100);
    }
    if let Some(c) = r.cpu() {
        if c.realtime_runtime().is_some_and(|v| v != 0) {
            refuse(&field("cpu.realtimeRuntime"))?;
        }
        if c.realtime_period().is_some_and(|v| v != 0) {
            refuse(&field("cpu.realtimePeriod"))?;
        }
        if c.idle().is_some_and(|i| i != 0) {
            refuse(&field("cpu.idle"))?;
        }
        u.cpu_shares = c.shares().filter(|&s| s != 0);
        u.cpu_quota = c.quota().filter(|&q| q != 0);
        u.cpu_period = c.period().filter(|&p| p != 0);
        u.cpuset_cpus = c.cpus().clone().filter(|s| !s.is_empty());
        u.cpuset_mems = c.mems().clone().filter(|s| !s.is_empty());
    }
    if let Some(p) = r.pids() {
        u.pids = Some(p.limit());
    }
    Ok(u)
}

/// A size flag's value as runc reads it: -1 is no limit, "" and 0 are "not given", else
/// bytes or a size with a k, m, g or t suffix (powers of 1024, [`parse_size`]).
fn size(v: &Option<String>, flag: &str) -> Result<Option<i64>> {
    match v.as_deref() {
        None | Some("" | "0") => Ok(None),
        Some("-1") => Ok(Some(-1)),
        Some(s) => {
            let bytes =
                parse_size(s).map_err(|e| anyhow::anyhow!("{flag}: {e}, or -1 for no limit"))?;
            i64::try_from(bytes)
                .map(Some)
                .with_context(|| format!("{flag} {s} is too large"))
        }
    }
}

/// runc's single flags (0 meaning "not given" for the numbers, as in runc).
fn from_flags(a: &UpdateArgs) -> Result<Update> {
    if a.blkio_weight.is_some() {
        refuse("--blkio-weight")?;
    }
    if a.cpu_rt_period.is_some() || a.cpu_rt_runtime.is_some() {
        refuse("--cpu-rt-period / --cpu-rt-runtime")?;
    }
    if a.l3_cache_schema.is_some() || a.mem_bw_schema.is_some() {
        refuse("--l3-cache-schema / --mem-bw-schema (Intel RDT)")?;
    }
    // runc 1.1 reads the kernel memory sizes and ignores them; a limit is refused here, as
    // memory.kernel and memory.kernelTCP are in --resources.
    if size(&a.kernel_memory, "--kernel-memory")?.is_some_and(|v| v > 0) {
        refuse("--kernel-memory")?;
    }
    if size(&a.kernel_memory_tcp, "--kernel-memory-tcp")?.is_some_and(|v| v > 0) {
        refuse("--kernel-memory-tcp")?;
    }
    Ok(Update {
        memory: size(&a.memory, "--memory")?,
        memory_swap: size(&a.memory_swap, "--memory-swap")?,
        memory_reservation: size(&a.memory_reservation, "--memory-reservation")?,
        // runc's update has no swappiness flag
        memory_swappiness: None,
        cpu_shares: a.cpu_share.filter(|&v| v != 0),
        cpu_quota: a.cpu_quota.filter(|&v| v != 0),
        cpu_period: a.cpu_period.filter(|&v| v != 0),
        cpuset_cpus: a.cpuset_cpus.clone().filter(|s| !s.is_empty()),
        cpuset_mems: a.cpuset_mems.clone().filter(|s| !s.is_empty()),
        pids: a.pids_limit.filter(|&v| v != 0),
    })
}
