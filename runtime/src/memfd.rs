//! rinit as a sealed in-memory file: the container execs it from the memfd, so it can neither
//! alter the host's binary nor see it in its filesystem. Kernel doc: memfd_create(2), fcntl(2)
//! (F_ADD_SEALS), execveat(2).

use std::fs::File;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use rustix::fs::{MemfdFlags, SealFlags};

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
    let fd = rustix::fs::memfd_create(c"rinit", MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING)
        .ctx(|| "memfd_create for rinit".into())?;
    let mut dst = File::from(fd);
    std::io::copy(&mut src, &mut dst).ctx(|| format!("copy {} into a memfd", path.display()))?;
    let seals = SealFlags::SHRINK | SealFlags::GROW | SealFlags::WRITE | SealFlags::SEAL;
    rustix::fs::fcntl_add_seals(&dst, seals).ctx(|| "seal the rinit memfd".into())?;
    Ok(OwnedFd::from(dst))
}
