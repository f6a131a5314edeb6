//! rinit as a sealed in-memory file: the container execs it from the memfd, so it can neither
//! alter the host's binary nor see it in its filesystem. Kernel doc: memfd_create(2), fcntl(2)
//! (F_ADD_SEALS), execveat(2).

use std::ffi::CString;
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use crate::error::{user, Context, Result};

/// Where rinit is: `$RBOX_RINIT`, else next to the running rrun executable.
pub fn find_rinit() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("RBOX_RINIT") {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe().ctx(|| "find rrun's own executable".into())?;
    let p = exe
        .parent()
        .map(|d| d.join("rinit"))
        .unwrap_or_else(|| PathBuf::from("rinit"));
    if !p.is_file() {
        return Err(user(format!(
            "rinit not found at {}: build it next to rrun or set RBOX_RINIT",
            p.display()
        )));
    }
    Ok(p)
}

/// A close-on-exec memfd holding a copy of `path`, sealed against any change.
pub fn sealed_copy(path: &Path) -> Result<OwnedFd> {
    let mut src = File::open(path).ctx(|| format!("open rinit at {}", path.display()))?;
    let name = CString::new("rinit").expect("static name has no NUL");
    // SAFETY: `name` is a valid C string; the returned descriptor is new and ours.
    let fd =
        unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error()).ctx(|| "memfd_create for rinit".into());
    }
    // SAFETY: fd was just returned by memfd_create and is owned by nobody else.
    let mut dst = unsafe { File::from_raw_fd(fd) };
    std::io::copy(&mut src, &mut dst).ctx(|| format!("copy {} into a memfd", path.display()))?;
    let seals = libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE | libc::F_SEAL_SEAL;
    // SAFETY: fcntl on a descriptor we own, integer argument.
    if unsafe { libc::fcntl(dst.as_raw_fd(), libc::F_ADD_SEALS, seals) } < 0 {
        return Err(std::io::Error::last_os_error()).ctx(|| "seal the rinit memfd".into());
    }
    Ok(OwnedFd::from(dst))
}
