//! Frames on the rrun ⇄ netd stream socket: a 4-byte big-endian length, then that many bytes
//! of JSON; descriptors ride along as SCM_RIGHTS on the frame's first bytes. Every read is
//! bounded in size and in time. Kernel interfaces: unix(7) (SCM_RIGHTS), sendmsg(2),
//! recvmsg(2), poll(2).

use std::io::{self, IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::time::Instant;

use rustix::event::{poll, PollFd, PollFlags, Timespec};
use rustix::io::Errno;
use rustix::net::{
    recvmsg, sendmsg, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags,
    SendAncillaryBuffer, SendAncillaryMessage, SendFlags,
};

/// At most this many descriptors are accepted with one frame (an attach carries one).
pub const MAX_FDS: usize = 1;

/// Why a frame could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The peer closed the connection before the first byte of a frame (a clean end).
    #[error("connection closed")]
    Closed,
    /// The peer closed the connection in the middle of a frame.
    #[error("truncated frame: {got} of {want} bytes arrived before the connection closed")]
    Truncated { got: usize, want: usize },
    #[error("frame of {len} bytes is larger than the limit of {max}")]
    TooLarge { len: usize, max: usize },
    #[error("more than {MAX_FDS} descriptor(s) came with a frame")]
    TooManyFds,
    #[error("no complete frame within the time limit")]
    Timeout,
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// Sends one frame holding `body`, with `fd` as SCM_RIGHTS when given.
pub fn write_frame(
    sock: BorrowedFd<'_>,
    body: &[u8],
    fd: Option<BorrowedFd<'_>>,
) -> io::Result<()> {
    let len = u32::try_from(body.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "frame too large"))?;
    let header = len.to_be_bytes();
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    let fds;
    if let Some(fd) = fd {
        fds = [fd];
        control.push(SendAncillaryMessage::ScmRights(&fds));
    }
    let iov = [IoSlice::new(&header), IoSlice::new(body)];
    let total = header.len() + body.len();
    let mut sent = loop {
        match sendmsg(sock, &iov, &mut control, SendFlags::NOSIGNAL) {
            Ok(n) => break n,
            Err(Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    };
    // The rest (a large reply) without descriptors.
    while sent < total {
        let rest: &[u8] = if sent < header.len() {
            &header[sent..]
        } else {
            &body[sent - header.len()..]
        };
        match rustix::net::send(sock, rest, SendFlags::NOSIGNAL) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => sent += n,
            Err(Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Reads one frame of at most `max` bytes, with the descriptors that came with it, before
/// `deadline` (None: wait as long as it takes).
pub fn read_frame(
    sock: BorrowedFd<'_>,
    max: usize,
    deadline: Option<Instant>,
) -> Result<(Vec<u8>, Vec<OwnedFd>), FrameError> {
    let mut fds = Vec::new();
    let mut header = [0u8; 4];
    let got = read_exact(sock, &mut header, deadline, &mut fds)?;
    if got == 0 {
        return Err(FrameError::Closed);
    }
    if got < 4 {
        return Err(FrameError::Truncated { got, want: 4 });
    }
    let len = u32::from_be_bytes(header) as usize;
    if len > max {
        return Err(FrameError::TooLarge { len, max });
    }
    let mut body = vec![0u8; len];
    let got = read_exact(sock, &mut body, deadline, &mut fds)?;
    if got < len {
        return Err(FrameError::Truncated {
            got: got + 4,
            want: len + 4,
        });
    }
    Ok((body, fds))
}

/// Fills `buf` unless the peer closes first; returns how many bytes arrived.
fn read_exact(
    sock: BorrowedFd<'_>,
    buf: &mut [u8],
    deadline: Option<Instant>,
    fds: &mut Vec<OwnedFd>,
) -> Result<usize, FrameError> {
    let mut got = 0;
    while got < buf.len() {
        wait_readable(sock, deadline)?;
        let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let mut iov = [IoSliceMut::new(&mut buf[got..])];
        let r = match recvmsg(sock, &mut iov, &mut control, RecvFlags::CMSG_CLOEXEC) {
            Ok(r) => r,
            Err(Errno::INTR) | Err(Errno::AGAIN) => continue,
            Err(Errno::CONNRESET) => return Ok(got),
            Err(e) => return Err(FrameError::Io(e.into())),
        };
        for msg in control.drain() {
            if let RecvAncillaryMessage::ScmRights(received) = msg {
                fds.extend(received);
            }
        }
        if r.flags.contains(ReturnFlags::CTRUNC) || fds.len() > MAX_FDS {
            return Err(FrameError::TooManyFds);
        }
        if r.bytes == 0 {
            return Ok(got);
        }
        got += r.bytes;
    }
    Ok(got)
}

/// Waits until `sock` is readable or `deadline` passed.
fn wait_readable(sock: BorrowedFd<'_>, deadline: Option<Instant>) -> Result<(), FrameError> {
    loop {
        let timeout = match deadline {
            None => None,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(FrameError::Timeout);
                }
                Some(Timespec {
                    tv_sec: left.as_secs() as i64,
                    tv_nsec: left.subsec_nanos() as i64,
                })
            }
        };
        let mut pfd = [PollFd::new(&sock, PollFlags::IN)];
        match poll(&mut pfd, timeout.as_ref()) {
            Ok(0) => return Err(FrameError::Timeout),
            Ok(_) => return Ok(()),
            Err(Errno::INTR) => continue,
            Err(e) => return Err(FrameError::Io(e.into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::fd::AsFd;
    use std::os::unix::net::UnixStream;
    use std::time::Duration;

    #[test]
    fn a_frame_and_its_descriptor_arrive_together() {
        let (a, b) = UnixStream::pair().unwrap();
        let f = std::fs::File::open("/dev/null").unwrap();
        write_frame(a.as_fd(), b"{\"x\":1}", Some(f.as_fd())).unwrap();
        let (body, fds) = read_frame(b.as_fd(), 100, None).unwrap();
        assert_eq!(body, b"{\"x\":1}");
        assert_eq!(fds.len(), 1);
    }

    #[test]
    fn oversized_truncated_and_slow_frames_are_refused() {
        let (mut a, b) = UnixStream::pair().unwrap();
        a.write_all(&1000u32.to_be_bytes()).unwrap();
        assert!(matches!(
            read_frame(b.as_fd(), 100, None),
            Err(FrameError::TooLarge { len: 1000, .. })
        ));
        let (mut a, b) = UnixStream::pair().unwrap();
        a.write_all(&10u32.to_be_bytes()).unwrap();
        a.write_all(b"abc").unwrap();
        drop(a);
        assert!(matches!(
            read_frame(b.as_fd(), 100, None),
            Err(FrameError::Truncated { got: 7, want: 14 })
        ));
        let (mut a, b) = UnixStream::pair().unwrap();
        a.write_all(&[0, 0]).unwrap();
        let d = Instant::now() + Duration::from_millis(50);
        assert!(matches!(
            read_frame(b.as_fd(), 100, Some(d)),
            Err(FrameError::Timeout)
        ));
        drop(a);
        let (a, b) = UnixStream::pair().unwrap();
        drop(a);
        assert!(matches!(
            read_frame(b.as_fd(), 100, None),
            Err(FrameError::Closed)
        ));
    }
}
