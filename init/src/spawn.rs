//! Starting the command: a child in a process group of its own that takes the terminal when
//! rinit has it, with the signal mask rinit started with. Drives fork(2), setpgid(2),
//! tcsetpgrp(3) (TIOCSPGRP, ioctl_tty(2)), rt_sigprocmask(2) and execve(2).

use crate::exec;
use crate::msg::Line;
use crate::startup::Startup;
use crate::sys::process::Fork;
use crate::sys::signal::SigSet;
use crate::sys::{self, Errno};

/// Forks and execs argument `command` onwards; returns the child's pid. `original_mask` is
/// the signal mask rinit was started with; the child gets it back before exec. When exec
/// fails, the child itself says why in one line and exits 127 (not found) or 126: that status
/// reaches rinit's exit like any other, and no pipe has to live in PID 1 meanwhile.
pub fn spawn(start: &Startup, command: usize, original_mask: SigSet) -> Result<i32, Errno> {
    let file = start.arg(command).ok_or(Errno::EINVAL)?;
    // The terminal goes to the child only when stdin is our controlling terminal (TIOCGPGRP
    // fails otherwise) and our own process group holds its foreground: never steal it from a
    // shell that started rinit in the background.
    let groups = (sys::tty::tcgetpgrp(0), sys::process::getpgid(0));
    let take_tty = matches!(groups, (Ok(fg), Ok(own)) if fg == own);
    // The child only makes system calls and ends in exec or exit.
    match sys::process::fork()? {
        Fork::Child => {
            let me = sys::process::getpid();
            let _ = sys::process::setpgid(0, 0);
            if take_tty {
                // Signals are still all blocked here, so SIGTTOU cannot stop us.
                let _ = sys::tty::tcsetpgrp(0, me);
            }
            let _ = sys::signal::sigprocmask_set(original_mask);
            let err = exec::exec_command(start, command, file);
            // Block again, so that a broken stderr cannot turn 127 into a death by SIGPIPE.
            let _ = sys::signal::sigprocmask_set(SigSet::FULL);
            report_exec_error(file.to_bytes(), err);
            sys::process::exit_group(exec::exit_status_for(err))
        }
        Fork::Parent(pid) => {
            // Also from this side, so that a `-g` signal finds the group even if it comes
            // before the child ran; EACCES once the child has exec'd is expected.
            let _ = sys::process::setpgid(pid, pid);
            Ok(pid)
        }
    }
}

/// One line saying why the command could not be executed.
fn report_exec_error(name: &[u8], errno: Errno) {
    let line = if errno == Errno::ENOENT && !name.contains(&b'/') {
        Line::new().q(name).s(": command not found")
    } else {
        Line::new().s("cannot execute ").q(name).s(": ").e(errno)
    };
    line.emit();
}
