//! Network interfaces, by the ioctls of a socket: an interface's flags and IPv4 address.
//! Kernel interface: netdevice(7) (SIOCGIFFLAGS, SIOCSIFFLAGS, SIOCGIFADDR, struct ifreq).

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsFd, AsRawFd};

/// Sets IFF_UP on the interface `name` (at most IFNAMSIZ - 1 bytes) of the network namespace
/// `sock` (any socket) belongs to, keeping its other flags.
pub fn set_up(sock: &impl AsFd, name: &CStr) -> io::Result<()> {
    let mut ifr = ifreq(name)?;
    let fd = sock.as_fd().as_raw_fd();
    // SAFETY: SIOCGIFFLAGS reads the NUL-terminated name from `ifr` and writes the flags into
    // its union; `ifr` is a live, exclusively borrowed ifreq.
    if unsafe { libc::ioctl(fd, libc::SIOCGIFFLAGS, &mut ifr) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: after SIOCGIFFLAGS the union holds the flags (ifru_flags).
    unsafe { ifr.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short };
    // SAFETY: SIOCSIFFLAGS reads the name and the flags from `ifr`, which outlives the call.
    if unsafe { libc::ioctl(fd, libc::SIOCSIFFLAGS, &ifr) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A zeroed ifreq naming interface `name` (ENAMETOOLONG beyond IFNAMSIZ - 1 bytes).
fn ifreq(name: &CStr) -> io::Result<libc::ifreq> {
    // SAFETY: ifreq is plain data (a name and a union of integers), for which all-zero bytes
    // are a valid value.
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    let name = name.to_bytes_with_nul();
    if name.len() > ifr.ifr_name.len() {
        return Err(io::Error::from_raw_os_error(libc::ENAMETOOLONG));
    }
    for (d, b) in ifr.ifr_name.iter_mut().zip(name) {
        *d = *b as libc::c_char;
    }
    Ok(ifr)
}

/// The (first) IPv4 address of interface `name` in the network namespace of `sock` (an
/// AF_INET socket); EADDRNOTAVAIL when it has none.
pub fn ipv4_address(sock: &impl AsFd, name: &CStr) -> io::Result<std::net::Ipv4Addr> {
    let mut ifr = ifreq(name)?;
    let fd = sock.as_fd().as_raw_fd();
    // SAFETY: SIOCGIFADDR reads the NUL-terminated name from `ifr` and writes a sockaddr into
    // its union; `ifr` is a live, exclusively borrowed ifreq.
    if unsafe { libc::ioctl(fd, libc::SIOCGIFADDR, &mut ifr) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: after SIOCGIFADDR on an AF_INET socket the union holds a sockaddr_in, which is
    // no larger than the union's sockaddr (both 16 bytes); read_unaligned copes with the
    // union's alignment.
    let sin: libc::sockaddr_in =
        unsafe { std::ptr::read_unaligned(std::ptr::addr_of!(ifr.ifr_ifru.ifru_addr).cast()) };
    Ok(std::net::Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)))
}
