//! The controlling terminal's foreground process group.
//! Kernel interface: ioctl_tty(2) (TIOCGPGRP, TIOCSPGRP), as tcgetpgrp(3)/tcsetpgrp(3) use it.

use super::{check, nr, syscall, SysResult};

const TIOCGPGRP: usize = 0x540F;

const TIOCSPGRP: usize = 0x5410;

/// tcgetpgrp(3) on `fd`: the terminal's foreground process group (ENOTTY unless `fd` is our
/// controlling terminal).
pub fn tcgetpgrp(fd: i32) -> SysResult<i32> {
    let mut pgrp = 0i32;
    // SAFETY: TIOCGPGRP writes one pid_t (int) to the pointer, a writable local.
    check(unsafe {
        syscall(
            nr::IOCTL,
            [
                fd as usize,
                TIOCGPGRP,
                &mut pgrp as *mut i32 as usize,
                0,
                0,
                0,
            ],
        )
    })?;
    Ok(pgrp)
}

/// tcsetpgrp(3) on `fd`: makes `pgrp` the terminal's foreground process group.
pub fn tcsetpgrp(fd: i32, pgrp: i32) -> SysResult<()> {
    // SAFETY: TIOCSPGRP reads one pid_t (int) from the pointer, a readable local.
    check(unsafe {
        syscall(
            nr::IOCTL,
            [
                fd as usize,
                TIOCSPGRP,
                &pgrp as *const i32 as usize,
                0,
                0,
                0,
            ],
        )
    })
    .map(drop)
}
