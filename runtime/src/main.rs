//! The rrun binary: parse the command line, dispatch, and turn errors into one clear line
//! (exit 125). The work is in the rrun library.

use std::ffi::OsString;

use clap::Parser;
use rrun::cli::{self, Cli, Command, NetworkCmd};
use rrun::{commands, exec, net, run};

fn main() {
    rrun::elapsed_us();
    // A panic is a bug: one line, no backtrace (forked children then _exit(125), see
    // sys::process::forked_child; rrun itself unwinds its guards and exits 101).
    std::panic::set_hook(Box::new(|info| {
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned());
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!(
            "rrun: internal error: {}{at}",
            msg.unwrap_or_else(|| "panic".into())
        );
    }));
    let cli = parse_or_exit(cli::hoist_globals(
        std::env::args_os().collect::<Vec<OsString>>(),
    ));
    // Quiet by default; the subscriber (and its filter parsing) only when asked for, which
    // keeps it off the start-up path of every container. Colour only on a terminal.
    if cli.verbose > 0 || std::env::var_os("RUST_LOG").is_some() {
        let filter = if cli.verbose > 1 { "debug" } else { "info" };
        let env = tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(filter));
        tracing_subscriber::fmt()
            .with_env_filter(env)
            .with_writer(std::io::stderr)
            .with_ansi(rrun::tty::is_tty(rustix::stdio::stderr()))
            .without_time()
            .init();
    }
    rrun::security::make_non_dumpable();
    let code = match absolute_root(&cli).and_then(|root| dispatch(&root, &cli)) {
        Ok(code) => code,
        // Stdout's reader went away: end quietly, as a tool killed by SIGPIPE.
        Err(e) if rrun::output::is_closed_stdout(&e) => rrun::output::BROKEN_PIPE,
        Err(e) => {
            rrun::tty::restore();
            eprintln!("rrun: {}", rrun::error::one_line(&e.to_string()));
            125
        }
    };
    std::process::exit(code);
}

/// Parses the command line; usage errors print one line and exit 125 like every other failure
/// of rrun itself (--help and --version print in full and exit 0).
fn parse_or_exit(args: Vec<OsString>) -> Cli {
    match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) if !e.use_stderr() => {
            let _ = e.print();
            std::process::exit(0);
        }
        Err(e) => {
            eprintln!(
                "rrun: {}",
                rrun::error::one_line(&cli::one_line_usage_error(&e))
            );
            std::process::exit(125);
        }
    }
}

/// The store root, made absolute once here (the container's folder is reached from other
/// working directories later, e.g. by the child after chdir).
fn absolute_root(cli: &Cli) -> rrun::Result<std::path::PathBuf> {
    let root = cli.root.clone().unwrap_or_else(rrun::image::default_root);
    std::path::absolute(&root)
        .map_err(|e| rrun::Error::User(format!("bad --root {}: {e}", root.display())))
}

fn dispatch(root: &std::path::Path, cli: &Cli) -> rrun::Result<i32> {
    match &cli.command {
        None => run::run(root, &cli.run),
        Some(Command::Run(a)) => run::run(root, &run::docker_order(a.as_ref().clone())?),
        Some(Command::Ps {
            all,
            no_trunc,
            quiet,
            format,
        }) => rrun::ps::list(
            root,
            &rrun::ps::Options {
                all: *all,
                no_trunc: *no_trunc,
                quiet: *quiet,
                json: format == "json",
            },
        ),
        Some(Command::Exec(a)) => exec::exec(root, a),
        Some(Command::Stop { time, names }) => commands::stop(root, *time, names),
        Some(Command::Kill { signal, names }) => commands::kill(root, signal, names),
        Some(Command::Rm { force, names }) => commands::rm(root, *force, names),
        Some(Command::Logs { follow, name }) => commands::logs(root, *follow, name),
        Some(Command::Inspect { name }) => commands::inspect(root, name),
        Some(Command::Port { name }) => net::commands::port(root, name),
        Some(Command::Network(n)) => match n {
            NetworkCmd::Create {
                name,
                subnet,
                ipv6,
                subnet6,
            } => net::commands::create(name, subnet.as_deref(), *ipv6, subnet6.as_deref()),
            NetworkCmd::Ls => net::commands::ls(),
            NetworkCmd::Inspect { name } => net::commands::inspect(name),
            NetworkCmd::Rm { names } => net::commands::rm(names),
            NetworkCmd::Connect {
                alias,
                network,
                container,
            } => net::commands::connect(root, network, container, alias),
            NetworkCmd::Disconnect { network, container } => {
                net::commands::disconnect(root, network, container)
            }
        },
    }
}
