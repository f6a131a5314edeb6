//! Starting the command: a child in a process group of its own that takes the terminal when
//! rinit has it, with the signal mask rinit started with; exec failures come back over a pipe.
//! Drives fork(2), setpgid(2), tcsetpgrp(3) (TIOCSPGRP, ioctl_tty(2)), rt_sigprocmask(2),
//! execve(2) and a close-on-exec pipe2(2).

use crate::exec;
use crate::startup::Startup;
use crate::sys::{self, Errno, Fork, SigSet};

/// The started command.
pub struct Child {
    pub pid: i32,
    /// Why exec failed, when it did (the child then exits 126 or 127).
    pub exec_error: Option<Errno>,
}

/// Forks and execs argument `command` onwards. `original_mask` is the signal mask rinit was
/// started with; the child gets it back before exec. Fails only when the pipe or fork does.
pub fn spawn(start: &Startup, command: usize, original_mask: SigSet) -> Result<Child, Errno> {
    let file = start.arg(command).ok_or(Errno::EINVAL)?;
    // The terminal goes to the child only when stdin is our controlling terminal (TIOCGPGRP
    // fails otherwise) and our own process group holds its foreground: never steal it from a
    // shell that started rinit in the background.
    let take_tty = matches!((sys::tcgetpgrp(0), sys::getpgid(0)), (Ok(fg), Ok(own)) if fg == own);
    let (report_rd, report_wr) = sys::pipe_cloexec()?;
    // SAFETY: rinit is single-threaded; the child only makes system calls and returns via exit.
    match unsafe { sys::fork() } {
        Err(e) => {
            let _ = sys::close(report_rd);
            let _ = sys::close(report_wr);
            Err(e)
        }
        Ok(Fork::Child) => {
            let _ = sys::close(report_rd);
            let me = sys::getpid();
            let _ = sys::setpgid(0, 0);
            if take_tty {
                // Signals are still all blocked here, so SIGTTOU cannot stop us.
                let _ = sys::tcsetpgrp(0, me);
            }
            let _ = sys::sigprocmask_set(original_mask);
            let err = exec::exec_command(start, command, file);
            let _ = sys::write_all(report_wr, &err.0.to_ne_bytes());
            sys::exit_group(exec::exit_status_for(err))
        }
        Ok(Fork::Parent(pid)) => {
            let _ = sys::close(report_wr);
            // Also from this side, so that a `-g` signal finds the group even if it comes
            // before the child ran; EACCES once the child has exec'd is expected.
            let _ = sys::setpgid(pid, pid);
            let mut report = [0u8; 4];
            let mut got = 0;
            // The write end closes at exec (success: EOF) or after the errno was written.
            while got < report.len() {
                match sys::read(report_rd, &mut report[got..]) {
                    Ok(0) => break,
                    Ok(n) => got += n,
                    Err(Errno::EINTR) => {}
                    Err(_) => break,
                }
            }
            let _ = sys::close(report_rd);
            let exec_error = (got == report.len()).then(|| Errno(i32::from_ne_bytes(report)));
            Ok(Child { pid, exec_error })
        }
    }
}
