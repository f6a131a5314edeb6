//! The command line: `rinit [-g] [-s] [--] COMMAND [ARG...]`, parsed by hand (no clap: size).
//! Pure logic over argument bytes; no kernel interface.

/// What the options ask for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// `-g`: forward signals to the child's process group, not just the child.
    pub group: bool,
    /// `-s`: register as a child subreaper (rinit also does when it is not PID 1).
    pub subreaper: bool,
}

/// The outcome of parsing.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// Run the command that starts at this index of the arguments given to [`parse`].
    Run {
        options: Options,
        command: usize,
    },
    Help,
    Version,
}

/// A usage error; [`UsageError::describe`] says what was wrong.
#[derive(Debug, PartialEq, Eq)]
pub enum UsageError<'a> {
    UnknownOption(&'a [u8]),
    MissingCommand,
}

impl UsageError<'_> {
    /// The message parts: what was wrong, and the offending argument if any.
    pub fn describe(&self) -> (&'static str, &[u8]) {
        match self {
            UsageError::UnknownOption(arg) => ("unknown option ", arg),
            UsageError::MissingCommand => ("missing COMMAND", b""),
        }
    }
}

pub const USAGE: &str = "usage: rinit [-g] [-s] [--] COMMAND [ARG...]";

pub const HELP: &str = "\
usage: rinit [-g] [-s] [--] COMMAND [ARG...]

Runs COMMAND as its child, forwards the signals it receives to it, reaps every zombie
re-parented to it and exits with the command's status. As PID 1 of a pid namespace it first
mounts /proc, /dev (with pts, shm, mqueue and the usual nodes and links), /tmp and a
read-only /sys, keeping whatever is already mounted there. Only descriptors 0, 1 and 2 are
kept and passed on; any other inherited descriptor is closed. When the command ends, the
processes left (as PID 1 all others in the pid namespace, otherwise rinit's descendants)
get SIGTERM, and SIGKILL two seconds later, before rinit exits.

options:
  -g             forward signals to the child's whole process group
  -s             register as a child subreaper (implied when rinit is not PID 1)
  -h, --help     print this help and exit
  -V, --version  print the version and exit

exit status: the command's own; 128+N when it was killed by signal N; 126 when it could not
be executed; 127 when it was not found; 125 when rinit itself failed (bad usage, a mount or
fork it could not make).
";

/// Parses the arguments after argv[0]. Options end at `--` or at the first non-option word.
pub fn parse<'a, I>(args: I) -> Result<Parsed, UsageError<'a>>
where
    I: IntoIterator<Item = &'a [u8]>,
    I::IntoIter: ExactSizeIterator,
{
    let args = args.into_iter();
    let count = args.len();
    let mut options = Options::default();
    for (index, arg) in args.enumerate() {
        match arg {
            b"--" if index + 1 < count => {
                return Ok(Parsed::Run {
                    options,
                    command: index + 1,
                })
            }
            b"--" => return Err(UsageError::MissingCommand),
            b"--help" => return Ok(Parsed::Help),
            b"--version" => return Ok(Parsed::Version),
            [b'-', b'-', ..] => return Err(UsageError::UnknownOption(arg)),
            [b'-', flags @ ..] if !flags.is_empty() => {
                for flag in flags {
                    match flag {
                        b'g' => options.group = true,
                        b's' => options.subreaper = true,
                        b'h' => return Ok(Parsed::Help),
                        b'V' => return Ok(Parsed::Version),
                        _ => return Err(UsageError::UnknownOption(arg)),
                    }
                }
            }
            _ => {
                return Ok(Parsed::Run {
                    options,
                    command: index,
                })
            }
        }
    }
    Err(UsageError::MissingCommand)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p<'a>(args: &[&'a str]) -> Result<Parsed, UsageError<'a>> {
        parse(args.iter().map(|a| a.as_bytes()))
    }

    fn run(group: bool, subreaper: bool, command: usize) -> Result<Parsed, UsageError<'static>> {
        Ok(Parsed::Run {
            options: Options { group, subreaper },
            command,
        })
    }

    #[test]
    fn plain_command_starts_at_first_word() {
        assert_eq!(p(&["sh", "-c", "exit 3"]), run(false, false, 0));
    }

    #[test]
    fn flags_separate_and_clustered() {
        assert_eq!(p(&["-g", "-s", "--", "sleep", "1"]), run(true, true, 3));
        assert_eq!(p(&["-gs", "sleep"]), run(true, true, 1));
        assert_eq!(p(&["-s", "ls", "-g"]), run(false, true, 1));
    }

    #[test]
    fn options_after_the_command_belong_to_it() {
        assert_eq!(p(&["--", "-g"]), run(false, false, 1));
        assert_eq!(p(&["ls", "--help"]), run(false, false, 0));
    }

    #[test]
    fn help_and_version() {
        assert_eq!(p(&["-h"]), Ok(Parsed::Help));
        assert_eq!(p(&["--help", "x"]), Ok(Parsed::Help));
        assert_eq!(p(&["-gV"]), Ok(Parsed::Version));
        assert_eq!(p(&["--version"]), Ok(Parsed::Version));
    }

    #[test]
    fn bad_usage_names_the_problem() {
        assert_eq!(p(&["-x", "sh"]), Err(UsageError::UnknownOption(b"-x")));
        assert_eq!(p(&["-gq"]), Err(UsageError::UnknownOption(b"-gq")));
        assert_eq!(p(&["--frob"]), Err(UsageError::UnknownOption(b"--frob")));
        assert_eq!(p(&[]), Err(UsageError::MissingCommand));
        assert_eq!(p(&["-g"]), Err(UsageError::MissingCommand));
        assert_eq!(p(&["--"]), Err(UsageError::MissingCommand));
        assert_eq!(p(&["-s", "--"]), Err(UsageError::MissingCommand));
    }

    #[test]
    fn a_lone_dash_is_a_command() {
        assert_eq!(p(&["-"]), run(false, false, 0));
    }
}
