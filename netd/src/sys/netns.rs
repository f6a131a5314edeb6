//! Network namespace descriptors handed in by clients: what they are, which user namespaces
//! own them, and a netlink socket inside one. Kernel docs: ioctl_ns(2), setns(2),
//! namespaces(7), user_namespaces(7).

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use crate::sys::netlink::Netlink;

// ioctl_ns(2): _IO(0xb7, n).
const NS_GET_USERNS: libc::c_ulong = 0xb701;
const NS_GET_PARENT: libc::c_ulong = 0xb702;
const NS_GET_NSTYPE: libc::c_ulong = 0xb703;
const NS_GET_OWNER_UID: libc::c_ulong = 0xb704;

/// True when `fd` is a network namespace (NS_GET_NSTYPE == CLONE_NEWNET).
pub fn is_netns(fd: BorrowedFd<'_>) -> bool {
    // SAFETY: NS_GET_NSTYPE takes no argument and only returns a value; on a descriptor that
    // is not a namespace it fails with ENOTTY.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), NS_GET_NSTYPE) };
    r == libc::CLONE_NEWNET
}

/// The uids owning the user namespace that owns the netns `fd`, and each of its ancestors up
/// to (not including) the initial user namespace, innermost first. Empty for a netns of the
/// initial user namespace (the host's own).
pub fn owner_uids(fd: BorrowedFd<'_>) -> io::Result<Vec<u32>> {
    let mut uids = Vec::new();
    let mut userns = ns_ioctl_fd(fd, NS_GET_USERNS)?;
    loop {
        // Only the initial user namespace has no parent; it is not counted.
        let parent = match ns_ioctl_fd(userns_fd(&userns), NS_GET_PARENT) {
            Ok(p) => Some(p),
            Err(e) if e.raw_os_error() == Some(libc::EPERM) => None,
            Err(e) => return Err(e),
        };
        let Some(parent) = parent else { break };
        let mut uid: libc::uid_t = 0;
        // SAFETY: NS_GET_OWNER_UID writes one uid_t through the pointer, which points to a
        // live local of that type.
        if unsafe { libc::ioctl(userns.as_raw_fd(), NS_GET_OWNER_UID, &mut uid) } < 0 {
            return Err(io::Error::last_os_error());
        }
        uids.push(uid);
        userns = parent;
        if uids.len() > 64 {
            break; // the kernel nests at most 32 levels
        }
    }
    Ok(uids)
}

fn userns_fd(o: &OwnedFd) -> BorrowedFd<'_> {
    use std::os::fd::AsFd;
    o.as_fd()
}

fn ns_ioctl_fd(fd: BorrowedFd<'_>, req: libc::c_ulong) -> io::Result<OwnedFd> {
    // SAFETY: NS_GET_USERNS and NS_GET_PARENT take no argument and return a new descriptor
    // (O_CLOEXEC) that nobody else owns, or -1.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), req) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `r` is a new descriptor returned to us alone (see above).
    Ok(unsafe { OwnedFd::from_raw_fd(r) })
}

/// (device, inode) of a namespace descriptor: equal for the same namespace.
pub fn ns_id(fd: BorrowedFd<'_>) -> io::Result<(u64, u64)> {
    let st = rustix::fs::fstat(fd)?;
    Ok((st.st_dev, st.st_ino))
}

/// Opens a NETLINK_ROUTE socket inside the network namespace `fd`: a short-lived thread
/// enters the namespace (setns affects only the calling thread) and opens the socket there;
/// the socket stays bound to that namespace, the thread ends.
pub fn netlink_in(fd: BorrowedFd<'_>) -> io::Result<Netlink> {
    let dup = fd.try_clone_to_owned()?;
    std::thread::scope(|s| {
        s.spawn(move || {
            rustix::thread::move_into_link_name_space(
                std::os::fd::AsFd::as_fd(&dup),
                Some(rustix::thread::LinkNameSpaceType::Network),
            )?;
            drop(dup);
            Netlink::open()
        })
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("netns thread panicked")))
    })
}
