//! Owns: `--console-socket`: handing the pty master of a container (or of an exec'd process)
//! to the engine, as one descriptor in an SCM_RIGHTS message on a connected AF_UNIX stream
//! socket, as runc does (conmon and containerd's shim receive it). Kernel interfaces: unix(7),
//! sendmsg(2).

use std::io::IoSlice;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use anyhow::{Context, Result};
use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags};

/// Connects to `socket` and sends `master` (the data is the pty's name, as runc sends it).
pub fn send_master(socket: &Path, master: BorrowedFd<'_>) -> Result<()> {
    let stream = UnixStream::connect(socket)
        .with_context(|| format!("connect to the console socket {}", socket.display()))?;
    let fds = [master];
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    control.push(SendAncillaryMessage::ScmRights(&fds));
    let name = b"/dev/ptmx";
    rustix::net::sendmsg(
        stream.as_fd(),
        &[IoSlice::new(name)],
        &mut control,
        SendFlags::NOSIGNAL,
    )
    .with_context(|| format!("send the pty to the console socket {}", socket.display()))?;
    Ok(())
}
