//! The process's start-up data: argc, argv and envp as the kernel laid them out for `_start`.
//! Reads the initial process stack described by execve(2) and the System V AMD64 ABI (3.4.1),
//! and execs with its environment (execve(2)).

use core::ffi::CStr;

use crate::sys::{self, Errno};

/// argv and envp of this process, valid for its whole life (the kernel's copy on our stack).
pub struct Startup {
    argc: usize,
    argv: *const *const u8,
    envp: *const *const u8,
}

impl Startup {
    /// Reads argc, argv and envp from the initial stack pointer.
    ///
    /// # Safety
    /// `sp` must be the stack pointer the kernel handed to `_start`: it points at argc, then
    /// argc argv pointers and a NULL, then the environment pointers and a NULL.
    pub unsafe fn from_stack(sp: *const usize) -> Startup {
        // SAFETY: the caller guarantees the execve(2) initial stack layout described above.
        unsafe {
            let argc = *sp;
            let argv = sp.add(1) as *const *const u8;
            let envp = argv.add(argc + 1);
            Startup { argc, argv, envp }
        }
    }

    /// Builds a `Startup` from NULL-terminated pointer arrays (for tests).
    ///
    /// # Safety
    /// `argv` must hold `argc` pointers to NUL-terminated strings then a NULL, `envp` pointers
    /// to NUL-terminated strings then a NULL, all alive as long as the `Startup` is used.
    pub unsafe fn from_arrays(
        argc: usize,
        argv: *const *const u8,
        envp: *const *const u8,
    ) -> Startup {
        Startup { argc, argv, envp }
    }

    pub fn argc(&self) -> usize {
        self.argc
    }

    /// Argument `i` (0 is the program name).
    pub fn arg(&self, i: usize) -> Option<&CStr> {
        if i >= self.argc {
            return None;
        }
        // SAFETY: i < argc, so argv[i] is one of the kernel's non-NULL pointers to a
        // NUL-terminated string that lives as long as the process.
        unsafe { Some(CStr::from_ptr(*self.argv.add(i) as *const core::ffi::c_char)) }
    }

    /// The arguments after the program name, as bytes.
    pub fn options(&self) -> impl ExactSizeIterator<Item = &[u8]> + '_ {
        (1..self.argc.max(1)).map(move |i| self.arg(i).map_or(&b""[..], CStr::to_bytes))
    }

    /// The NULL-terminated argv array starting at argument `i` (`i` <= argc), for execve.
    pub fn argv_from(&self, i: usize) -> *const *const u8 {
        // SAFETY: i <= argc keeps the pointer inside the argv array (argv[argc] is its NULL).
        unsafe { self.argv.add(i.min(self.argc)) }
    }

    /// The NULL-terminated environment array, for execve.
    pub fn envp(&self) -> *const *const u8 {
        self.envp
    }

    /// execve(2) of `path` with the arguments from argument `i` on (`i` <= argc) and this
    /// process's environment; returns only on failure, with the error.
    pub fn execve(&self, path: &CStr, i: usize) -> Errno {
        // SAFETY: argv_from(i) and envp are NULL-terminated arrays of pointers to
        // NUL-terminated strings (the kernel's, or from_arrays's contract), alive as long as
        // `self`.
        unsafe { sys::process::execve(path, self.argv_from(i), self.envp) }
    }

    /// The value of environment variable `name`, if set.
    pub fn env(&self, name: &[u8]) -> Option<&[u8]> {
        let mut i = 0;
        loop {
            // SAFETY: envp is NULL-terminated; we stop at the NULL, so envp.add(i) stays in it.
            let entry = unsafe { *self.envp.add(i) };
            if entry.is_null() {
                return None;
            }
            // SAFETY: a non-NULL entry points to a NUL-terminated string living as long as we do.
            let bytes = unsafe { CStr::from_ptr(entry as *const core::ffi::c_char) }.to_bytes();
            if let Some(value) = bytes
                .strip_prefix(name)
                .and_then(|rest| rest.strip_prefix(b"="))
            {
                return Some(value);
            }
            i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_arguments_and_environment() {
        let args = [c"rinit", c"-g", c"sh"];
        let env = [c"HOME=/root", c"PATH=/bin:/usr/bin", c"PATHX=no"];
        let argv: Vec<*const u8> = args
            .iter()
            .map(|a| a.as_ptr() as *const u8)
            .chain([core::ptr::null()])
            .collect();
        let envp: Vec<*const u8> = env
            .iter()
            .map(|a| a.as_ptr() as *const u8)
            .chain([core::ptr::null()])
            .collect();
        // SAFETY: both arrays are NULL-terminated and outlive `s`.
        let s = unsafe { Startup::from_arrays(3, argv.as_ptr(), envp.as_ptr()) };
        assert_eq!(s.arg(2), Some(c"sh"));
        assert_eq!(s.arg(3), None);
        assert_eq!(
            s.options().collect::<Vec<_>>(),
            vec![&b"-g"[..], &b"sh"[..]]
        );
        assert_eq!(s.env(b"PATH"), Some(&b"/bin:/usr/bin"[..]));
        assert_eq!(s.env(b"PAT"), None);
        assert_eq!(s.env(b"TERM"), None);
        // SAFETY: argv_from(3) is the terminating NULL.
        assert!(unsafe { *s.argv_from(3) }.is_null());
    }
}
