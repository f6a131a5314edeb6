//! Owns: whether an unprivileged caller may set cgroup limits, i.e. whether a cgroup v2
//! subtree with the needed controllers is delegated to it (its own cgroup directory writable by
//! it, the controllers listed in its cgroup.controllers). cgroup v1 is never delegated here.
//! Kernel interfaces: /proc/self/mountinfo and /proc/self/cgroup through detect.rs,
//! cgroup.controllers (Documentation/admin-guide/cgroup-v2.rst, "Delegation"), access(2).

use rustix::fs::{access, Access};

use super::detect::{self, Version};

/// Checks that each `(flag, controller)` needed (e.g. `("--memory", "memory")`) is available
/// in a cgroup v2 subtree delegated to the caller. Err: one line naming the first flag that is
/// not, the controller and the missing delegation.
pub fn check_delegated(needs: &[(&str, &str)]) -> Result<(), String> {
    let uid = rustix::process::geteuid().as_raw();
    let hs = detect::detect().map_err(|e| e.to_string())?;
    let delegated: Vec<&detect::Hierarchy> = hs
        .iter()
        .filter(|h| h.version == Version::V2 && h.writable)
        .filter(|h| access(&h.own, Access::WRITE_OK).is_ok())
        .collect();
    for (flag, controller) in needs {
        let ok = delegated.iter().any(|h| {
            std::fs::read_to_string(h.own.join("cgroup.controllers"))
                .map(|t| t.split_whitespace().any(|c| c == *controller))
                .unwrap_or(false)
        });
        if ok {
            continue;
        }
        let why = if hs
            .iter()
            .any(|h| h.version == Version::V1 && h.has(controller))
        {
            format!("the {controller} controller is on cgroup v1 here, which is never delegated")
        } else {
            format!(
                "no cgroup v2 subtree with the {controller} controller is delegated to uid {uid}"
            )
        };
        return Err(format!(
            "{flag} needs a cgroup delegated to you: {why}; run without limits, as root, or where systemd delegates your cgroup v2 subtree (user@{uid}.service with Delegate=yes)"
        ));
    }
    Ok(())
}
