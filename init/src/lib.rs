//! rinit: the static PID 1 of every rbox container, also usable on its own like tini.
//!
//! It blocks every signal, mounts what a container needs when it is PID 1 ([`mounts`]), starts
//! the command as its child in a process group of its own that owns the terminal ([`spawn`]),
//! then waits for signals: SIGCHLD reaps every zombie, any other signal is forwarded to the
//! command ([`reaper`]). When the command ends, the rest get SIGTERM, then SIGKILL after a
//! short grace, and rinit exits with the command's status.
//!
//! Why no std and no libc: rinit must run in any root (scratch, musl, glibc) so it is static,
//! and it should cost nothing. A static std binary is over 1 MB and static glibc alone is
//! ~680 KB, more than the C inits it replaces; a workspace-wide feature of a shared crate
//! (rustix's `std`) would also pull std back in. So rinit makes its own system calls
//! ([`sys`]), brings its own `_start` (src/main.rs) and memory functions ([`rt`]), and uses no
//! heap at all: its memory stays flat whatever it reaps. The binary is about 24 KB.
//!
//! Exit status: the command's own; 128+N when killed by signal N; 127 not found; 126 not
//! executable; 125 rinit itself failed (bad usage, a fatal mount, fork).
#![cfg_attr(not(any(test, clippy)), no_std)]

pub mod cbuf;
pub mod cli;
pub mod exec;
pub mod mountinfo;
pub mod mounts;
pub mod msg;
pub mod procfs;
pub mod reaper;
#[cfg(not(any(test, clippy)))]
pub mod rt;
pub mod spawn;
pub mod startup;
pub mod sys;

use cli::Parsed;
use msg::Line;
use reaper::Scope;
use startup::Startup;
use sys::signal::SigSet;

/// rinit's own failures (bad usage, a fatal mount, no fork): Docker's "the runtime failed".
pub const EXIT_RINIT_FAILED: i32 = 125;

/// The whole program, from the start-up data to exit.
pub fn main(start: &Startup) -> ! {
    // First of all, so that nothing sent to us is lost or kills us before we can forward it
    // (as PID 1, unhandled signals would even be dropped): they wait, blocked, for the loop.
    let original_mask = sys::signal::sigprocmask_set(SigSet::FULL).unwrap_or(SigSet::EMPTY);
    let _ = sys::process::prctl_set_name(c"rinit");
    // Descriptors inherited past stdio would stay open in PID 1 for the container's life and
    // leak into the command: rinit holds and passes on only 0, 1 and 2.
    let _ = sys::io::close_range(3, u32::MAX);

    let (options, command) = match cli::parse(start.options()) {
        Ok(Parsed::Run { options, command }) => (options, command + 1), // index in argv
        Ok(Parsed::Help) => {
            let _ = sys::io::write_all(1, cli::HELP.as_bytes());
            sys::process::exit_group(0)
        }
        Ok(Parsed::Version) => {
            Line::bare()
                .s("rinit ")
                .s(env!("CARGO_PKG_VERSION"))
                .emit_to(1);
            sys::process::exit_group(0)
        }
        Err(e) => {
            let (what, arg) = e.describe();
            Line::new()
                .s(what)
                .q(arg)
                .s(" (")
                .s(cli::USAGE)
                .s(")")
                .emit();
            sys::process::exit_group(EXIT_RINIT_FAILED)
        }
    };

    let pid1 = sys::process::getpid() == 1;
    if pid1 {
        if let Err(e) = mounts::setup() {
            e.line().emit();
            sys::process::exit_group(EXIT_RINIT_FAILED);
        }
    }
    if options.subreaper || !pid1 {
        if let Err(errno) = sys::process::prctl_set_child_subreaper() {
            Line::new()
                .s("cannot register as a child subreaper: ")
                .e(errno)
                .emit();
        }
    }

    let child = match spawn::spawn(start, command, original_mask) {
        Ok(pid) => pid,
        Err(errno) => {
            Line::new().s("cannot start the command: ").e(errno).emit();
            sys::process::exit_group(EXIT_RINIT_FAILED)
        }
    };

    let status = reaper::supervise(child, options.group);
    let scope = if pid1 {
        Scope::Namespace
    } else {
        Scope::Descendants {
            me: sys::process::getpid(),
        }
    };
    reaper::stop_the_rest(scope, reaper::GRACE_MS);
    sys::process::exit_group(reaper::exit_code(status))
}
