//! Finding and executing the command: a PATH search like execvp(3), and the exit status that
//! an exec failure maps to. Drives execve(2).

use crate::cbuf::CBuf;
use crate::startup::Startup;
use crate::sys::Errno;
use core::ffi::CStr;

/// PATH when the environment has none (the usual container default).
pub const DEFAULT_PATH: &[u8] = b"/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Executes `file` with argv from argument `command` on, searching PATH when `file` has no
/// slash. Returns only on failure, with the error that decides the exit status.
pub fn exec_command(start: &Startup, command: usize, file: &CStr) -> Errno {
    search(
        file.to_bytes(),
        start.env(b"PATH").unwrap_or(DEFAULT_PATH),
        |path| start.execve(path, command),
    )
}

/// The PATH search of execvp(3): a name with a slash is executed as is; otherwise each PATH
/// entry is tried in order (an empty entry means the current directory). EACCES from any entry
/// wins over "not found"; an error other than not-found stops the search.
pub fn search(file: &[u8], path: &[u8], mut exec: impl FnMut(&CStr) -> Errno) -> Errno {
    if file.is_empty() {
        return Errno::ENOENT;
    }
    let mut candidate = CBuf::<4096>::new();
    if file.contains(&b'/') {
        return match candidate.push(file) {
            Ok(c) => exec(c.as_cstr()),
            Err(_) => Errno::ENAMETOOLONG,
        };
    }
    let mut saw_eacces = false;
    for dir in path.split(|&c| c == b':') {
        candidate.clear();
        let dir: &[u8] = if dir.is_empty() { b"." } else { dir };
        if candidate
            .push(dir)
            .and_then(|c| c.push(b"/"))
            .and_then(|c| c.push(file))
            .is_err()
        {
            continue;
        }
        match exec(candidate.as_cstr()) {
            Errno::EACCES => saw_eacces = true,
            Errno::ENOENT | Errno::ENOTDIR | Errno::ESTALE | Errno::ENAMETOOLONG | Errno::ELOOP => {
            }
            other => return other,
        }
    }
    if saw_eacces {
        Errno::EACCES
    } else {
        Errno::ENOENT
    }
}

/// The exit status for a command that could not be executed: 127 when it does not exist,
/// 126 when it exists but cannot be executed (the shell's and Docker's convention).
pub fn exit_status_for(errno: Errno) -> i32 {
    match errno {
        Errno::ENOENT | Errno::ENOTDIR => 127,
        _ => 126,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trace(file: &str, path: &str, results: &[(&str, Errno)]) -> (Errno, Vec<String>) {
        let mut tried = Vec::new();
        let e = search(file.as_bytes(), path.as_bytes(), |p| {
            let p = p.to_str().unwrap().to_string();
            let r = results
                .iter()
                .find(|(q, _)| *q == p)
                .map_or(Errno::ENOENT, |r| r.1);
            tried.push(p);
            r
        });
        (e, tried)
    }

    #[test]
    fn slash_names_are_not_searched() {
        let (e, tried) = trace("./x", "/bin", &[]);
        assert_eq!((e, tried), (Errno::ENOENT, vec!["./x".to_string()]));
    }

    #[test]
    fn path_entries_in_order_empty_means_cwd() {
        let (e, tried) = trace("ls", "/a::/b", &[]);
        assert_eq!(e, Errno::ENOENT);
        assert_eq!(tried, vec!["/a/ls", "./ls", "/b/ls"]);
    }

    #[test]
    fn eacces_wins_over_not_found_and_other_errors_stop() {
        let (e, tried) = trace("x", "/a:/b:/c", &[("/a/x", Errno::EACCES)]);
        assert_eq!((e, tried.len()), (Errno::EACCES, 3));
        let (e, tried) = trace("x", "/a:/b:/c", &[("/b/x", Errno(8))]);
        assert_eq!((e, tried.len()), (Errno(8), 2));
    }

    #[test]
    fn empty_name_is_not_found() {
        assert_eq!(trace("", "/bin", &[]), (Errno::ENOENT, vec![]));
    }

    #[test]
    fn exit_statuses() {
        assert_eq!(exit_status_for(Errno::ENOENT), 127);
        assert_eq!(exit_status_for(Errno::EACCES), 126);
        assert_eq!(exit_status_for(Errno(8)), 126);
    }
}
