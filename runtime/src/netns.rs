//! Networking inside the container that needs no host service: bringing up loopback in a new
//! network namespace (`--net none`). Kernel doc: netdevice(7) (SIOCGIFFLAGS/SIOCSIFFLAGS).

use std::io;

use crate::error::{Context, Result};

/// Sets IFF_UP on `lo` in the current network namespace.
pub fn loopback_up() -> Result<()> {
    // SAFETY: socket(2) with constant arguments; the descriptor is closed below.
    let s = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if s < 0 {
        return Err(io::Error::last_os_error()).ctx(|| "socket for loopback setup".into());
    }
    // SAFETY: ifreq is plain data; the name fits (3 bytes + NUL); the ioctls read/write it.
    let r = unsafe {
        let mut ifr: libc::ifreq = std::mem::zeroed();
        for (i, b) in b"lo\0".iter().enumerate() {
            ifr.ifr_name[i] = *b as libc::c_char;
        }
        let mut r = libc::ioctl(s, libc::SIOCGIFFLAGS, &mut ifr);
        if r == 0 {
            ifr.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
            r = libc::ioctl(s, libc::SIOCSIFFLAGS, &ifr);
        }
        let e = io::Error::last_os_error();
        libc::close(s);
        if r == 0 {
            Ok(())
        } else {
            Err(e)
        }
    };
    r.ctx(|| "bring up the loopback interface".into())
}
