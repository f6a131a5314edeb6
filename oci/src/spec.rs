//! Owns: reading a bundle's `config.json` (runtime-spec 1.x, through oci-spec) and checking it:
//! every field rrun-oci cannot honour is refused in one line naming the field, before anything
//! exists. Also the translation of the spec's namespaces, resources and seccomp filter into
//! what the rrun library takes. No kernel interface (the online cpus come from the rrun
//! library, the filter is compiled by it).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use oci_spec::runtime::{
    LinuxNamespaceType, LinuxResources, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompFilterFlag,
    Spec,
};
use rrun::seccomp::Seccomp;
use rrun::security::Filter;
use rustix::thread::UnshareFlags;

/// Loads `<bundle>/config.json` and checks it; returns it with the rootfs made absolute.
pub fn load(bundle: &Path) -> Result<(Spec, PathBuf)> {
    let path = bundle.join("config.json");
    let spec = Spec::load(&path).with_context(|| format!("load {}", path.display()))?;
    check(&spec)?;
    let root = spec
        .root()
        .as_ref()
        .context("config.json: root is required")?;
    let rootfs = match root.path().is_absolute() {
        true => root.path().clone(),
        false => bundle.join(root.path()),
    };
    let rootfs = rootfs
        .canonicalize()
        .with_context(|| format!("config.json: root.path {}", rootfs.display()))?;
    Ok((spec, rootfs))
}

fn refuse(field: &str) -> Result<()> {
    bail!("config.json: {field} is not supported by rrun-oci; remove it from the bundle")
}

/// Refuses what rrun-oci does not implement (each check names the field).
pub fn check(spec: &Spec) -> Result<()> {
    let Some(process) = spec.process() else {
        bail!("config.json: process is required");
    };
    if process.args().as_ref().is_none_or(|a| a.is_empty()) {
        bail!("config.json: process.args must name the command to run");
    }
    if process
        .apparmor_profile()
        .as_ref()
        .is_some_and(|s| !s.is_empty())
    {
        refuse("process.apparmorProfile (AppArmor)")?;
    }
    if process
        .selinux_label()
        .as_ref()
        .is_some_and(|s| !s.is_empty())
    {
        refuse("process.selinuxLabel (SELinux)")?;
    }
    if process.scheduler().is_some() {
        refuse("process.scheduler")?;
    }
    if process.io_priority().is_some() {
        refuse("process.ioPriority")?;
    }
    if process.exec_cpu_affinity().is_some() {
        refuse("process.execCPUAffinity")?;
    }
    let Some(linux) = spec.linux() else {
        bail!("config.json: linux is required (rrun-oci runs Linux containers)");
    };
    if let Some(s) = linux.seccomp() {
        check_seccomp(s)?;
    }
    if linux.mount_label().as_ref().is_some_and(|s| !s.is_empty()) {
        refuse("linux.mountLabel (SELinux)")?;
    }
    if linux.intel_rdt().is_some() {
        refuse("linux.intelRdt")?;
    }
    if linux
        .personality()
        .as_ref()
        .and_then(|p| p.flags().as_ref())
        .is_some_and(|f| !f.is_empty())
    {
        refuse("linux.personality.flags")?;
    }
    if linux.time_offsets().is_some() {
        refuse("linux.timeOffsets")?;
    }
    if linux.gid_mappings().is_some() != linux.uid_mappings().is_some() {
        bail!("config.json: linux.uidMappings and linux.gidMappings go together");
    }
    let has_userns = namespaces(spec)
        .iter()
        .any(|(t, _)| *t == LinuxNamespaceType::User);
    if linux.uid_mappings().as_ref().is_some_and(|m| !m.is_empty()) && !has_userns {
        bail!("config.json: linux.uidMappings needs a user namespace in linux.namespaces");
    }
    if namespaces(spec)
        .iter()
        .any(|(t, _)| *t == LinuxNamespaceType::Time)
    {
        refuse("linux.namespaces type time")?;
    }
    if let Some(r) = linux.resources() {
        check_resources(r)?;
    }
    Ok(())
}

/// linux.seccomp asks for a seccomp agent (seccomp_unotify(2)) through listenerPath,
/// SCMP_ACT_NOTIFY and the WAIT_KILLABLE_RECV flag: rrun-oci has none, so they are refused.
/// The rest is checked when it is compiled ([`seccomp_filter`]).
fn check_seccomp(s: &LinuxSeccomp) -> Result<()> {
    let agent = "(seccomp user notification)";
    if s.listener_path()
        .as_ref()
        .is_some_and(|p| !p.as_os_str().is_empty())
    {
        refuse(&format!("linux.seccomp.listenerPath {agent}"))?;
    }
    if s.default_action() == LinuxSeccompAction::ScmpActNotify {
        refuse(&format!(
            "linux.seccomp.defaultAction SCMP_ACT_NOTIFY {agent}"
        ))?;
    }
    for (i, r) in s.syscalls().iter().flatten().enumerate() {
        if r.action() == LinuxSeccompAction::ScmpActNotify {
            refuse(&format!(
                "linux.seccomp.syscalls[{i}].action SCMP_ACT_NOTIFY {agent}"
            ))?;
        }
    }
    if s.flags()
        .iter()
        .flatten()
        .any(|f| *f == LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv)
    {
        refuse(&format!(
            "linux.seccomp.flags SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV {agent}"
        ))?;
    }
    Ok(())
}

/// linux.seccomp as the rrun library's filter, compiled now, in rrun-oci's own process before
/// the init or an exec'd process is cloned (None: no filter). The section goes to the rrun
/// library as JSON: runtime-spec's format is Docker's profile format without `archMap`,
/// `includes` and `excludes`, which the library compiles with libseccomp (names this
/// libseccomp does not know are skipped, as runc does). Having no rules by capability, the
/// filter is the same for every process of the container. Errors: one line naming
/// linux.seccomp and what is wrong.
pub fn seccomp_filter(s: Option<&LinuxSeccomp>) -> Result<Option<Filter>> {
    let Some(s) = s else {
        return Ok(None);
    };
    let choice = Seccomp::Profile {
        file: "config.json: linux.seccomp".into(),
        json: serde_json::to_string(s).context("config.json: linux.seccomp")?,
    };
    Ok(rrun::security::compile_filter(&choice, 0, None)?)
}

/// linux.resources: the fields rrun-oci cannot set are refused (the same as `update` refuses).
fn check_resources(r: &LinuxResources) -> Result<()> {
    crate::update::from_resources(r, "config.json: linux.resources").map(drop)
}

/// What linux.resources asks for beyond [`limits`]: memory swap, reservation and swappiness,
/// cpu shares and memory nodes, set on the new cgroup through the rrun library's update.
pub fn extra_limits(spec: &Spec) -> Result<rrun::cgroups::Update> {
    let Some(r) = spec.linux().as_ref().and_then(|l| l.resources().clone()) else {
        return Ok(rrun::cgroups::Update::default());
    };
    let u = crate::update::from_resources(&r, "config.json: linux.resources")?;
    Ok(rrun::cgroups::Update {
        memory_swap: u.memory_swap,
        memory_reservation: u.memory_reservation,
        memory_swappiness: u.memory_swappiness,
        cpu_shares: u.cpu_shares,
        cpuset_mems: u.cpuset_mems,
        ..rrun::cgroups::Update::default()
    })
}

/// The spec's namespaces with their optional paths (to join instead of making a new one).
pub fn namespaces(spec: &Spec) -> Vec<(LinuxNamespaceType, Option<PathBuf>)> {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().clone())
        .unwrap_or_default()
        .into_iter()
        .map(|n| (n.typ(), n.path().clone()))
        .collect()
}

/// The clone flag of a namespace type.
pub fn clone_flag(t: LinuxNamespaceType) -> UnshareFlags {
    match t {
        LinuxNamespaceType::Mount => UnshareFlags::NEWNS,
        LinuxNamespaceType::Cgroup => UnshareFlags::NEWCGROUP,
        LinuxNamespaceType::Uts => UnshareFlags::NEWUTS,
        LinuxNamespaceType::Ipc => UnshareFlags::NEWIPC,
        LinuxNamespaceType::User => UnshareFlags::NEWUSER,
        LinuxNamespaceType::Pid => UnshareFlags::NEWPID,
        LinuxNamespaceType::Network => UnshareFlags::NEWNET,
        LinuxNamespaceType::Time => UnshareFlags::NEWTIME,
    }
}

/// The spec's cgroup resources as the rrun library's limits.
pub fn limits(spec: &Spec) -> Result<rrun::cgroups::Limits> {
    let mut l = rrun::cgroups::Limits {
        // Every controller's hierarchy is joined, as runc does, so `update` can set any limit.
        every_controller: true,
        ..rrun::cgroups::Limits::default()
    };
    let Some(r) = spec.linux().as_ref().and_then(|l| l.resources().clone()) else {
        return Ok(l);
    };
    if let Some(m) = r.memory() {
        l.memory = m.limit().filter(|&v| v > 0).map(|v| v as u64);
    }
    if let Some(p) = r.pids() {
        // 0 or negative: no limit ("max"), as runc writes it.
        l.pids = Some(if p.limit() > 0 {
            p.limit() as u64
        } else {
            u64::MAX
        });
    }
    if let Some(c) = r.cpu() {
        if let (Some(q), Some(p)) = (c.quota(), c.period()) {
            if q > 0 && p > 0 {
                l.cpus = Some(q as f64 / p as f64);
            }
        } else if c.quota().is_some_and(|q| q > 0) {
            l.cpus = Some(c.quota().unwrap_or(0) as f64 / 100_000.0);
        }
        if let Some(cpus) = c.cpus().as_ref().filter(|s| !s.is_empty()) {
            l.cpuset_cpus = Some(cpus.clone());
        }
    }
    // Device rules: the rrun library's allowlist (Docker's defaults, which engines also send)
    // applies whenever the spec restricts devices.
    l.devices = r.devices().as_ref().is_some_and(|d| !d.is_empty());
    Ok(l)
}

/// The cgroup path: linux.cgroupsPath, else `/rrun-oci-<id>` (one directory, nothing left
/// behind once it is removed).
pub fn cgroups_path(spec: &Spec, id: &str) -> PathBuf {
    spec.linux()
        .as_ref()
        .and_then(|l| l.cgroups_path().clone())
        .unwrap_or_else(|| PathBuf::from(format!("/rrun-oci-{id}")))
}
