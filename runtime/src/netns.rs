//! Networking inside the container that needs no host service: bringing up loopback in a new
//! network namespace (`--net none`). Kernel doc: netdevice(7) (SIOCGIFFLAGS/SIOCSIFFLAGS).

use rustix::net::{AddressFamily, SocketFlags, SocketType};

use crate::error::{Context, Result};
use crate::sys;

/// Sets IFF_UP on `lo` in the current network namespace.
pub fn loopback_up() -> Result<()> {
    let s = rustix::net::socket_with(
        AddressFamily::INET,
        SocketType::DGRAM,
        SocketFlags::CLOEXEC,
        None,
    )
    .ctx(|| "socket for loopback setup".into())?;
    sys::netdevice::set_up(&s, c"lo").ctx(|| "bring up the loopback interface".into())
}
