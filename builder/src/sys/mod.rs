//! The calls of rbuild that Rust cannot prove sound by itself: each wrapped in a safe function
//! whose contract says when it may be called. Kernel interface: unshare(2)
//! (user_namespaces(7)).

/// Moves this process into a new user namespace (unshare(2) CLONE_NEWUSER).
///
/// Call it only while the process has a single thread (the kernel refuses CLONE_NEWUSER in a
/// multithreaded process with EINVAL), as `main` does first thing.
pub fn unshare_user_namespace() -> rustix::io::Result<()> {
    // SAFETY: rustix marks unshare unsafe because CLONE_FILES would unshare the descriptor
    // table under Rust code that owns descriptors; only CLONE_NEWUSER is passed, which leaves
    // descriptors and memory as they are.
    unsafe { rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::NEWUSER) }
}
