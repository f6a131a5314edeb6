//! SIGTERM and SIGINT as a synchronous wait in the main thread: blocked before any thread
//! starts (threads inherit the mask), then taken with sigwait. Kernel doc: sigwait(3),
//! pthread_sigmask(3).

/// Blocks SIGTERM and SIGINT in the calling thread (and every thread it starts later).
pub fn block_term() {
    // SAFETY: the sigset is initialised by sigemptyset before use; pthread_sigmask only
    // changes the calling thread's mask.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}

/// Waits until SIGTERM or SIGINT arrives; returns its number.
pub fn wait_term() -> i32 {
    // SAFETY: as above; sigwait writes the signal number into a live local.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGINT);
        let mut sig = 0;
        while libc::sigwait(&set, &mut sig) != 0 {}
        sig
    }
}
