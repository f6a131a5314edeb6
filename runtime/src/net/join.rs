//! `--net container:NAME`: the new container shares a running container's network namespace.
//! rrun opens that namespace when it reads the command line, enters it just for the clone
//! (the child inherits it) and returns to its own at once. Kernel docs: setns(2),
//! network_namespaces(7).

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use rustix::thread::{move_into_link_name_space, LinkNameSpaceType};

use crate::error::{user, Context, Result};
use crate::state::{self, Containers};

/// The network namespace of running container `name`, and the container's state.
pub fn open_target(root: &Path, name: &str) -> Result<(OwnedFd, state::State)> {
    let containers = Containers::open(root)?;
    let st = containers.find(name)?;
    let not_running = || {
        user(format!(
            "--net container:{name}: container {name} is not running"
        ))
    };
    if st.pid <= 0 || !state::init_alive(st.pid, st.pid_start) {
        return Err(not_running());
    }
    let p = format!("/proc/{}/ns/net", st.pid);
    let fd: OwnedFd = std::fs::File::open(&p).ctx(|| format!("open {p}"))?.into();
    // The pid could have been reused between the check and the open: check again.
    if !state::init_alive(st.pid, st.pid_start) {
        return Err(not_running());
    }
    Ok((fd, st))
}

/// rrun inside another network namespace until dropped.
pub struct Entered {
    own: OwnedFd,
}

/// Enters `ns`; the guard returns to rrun's own namespace.
pub fn enter(ns: BorrowedFd<'_>) -> Result<Entered> {
    let own: OwnedFd = std::fs::File::open("/proc/thread-self/ns/net")
        .ctx(|| "open /proc/thread-self/ns/net".into())?
        .into();
    move_into_link_name_space(ns, Some(LinkNameSpaceType::Network))
        .map_err(std::io::Error::from)
        .ctx(|| "enter the network namespace of the container to join".into())?;
    Ok(Entered { own })
}

impl Drop for Entered {
    fn drop(&mut self) {
        if let Err(e) =
            move_into_link_name_space(self.own.as_fd(), Some(LinkNameSpaceType::Network))
        {
            // rrun cannot go on in another namespace than its own.
            eprintln!("rrun: return to rrun's own network namespace: {e}");
            std::process::abort();
        }
    }
}
