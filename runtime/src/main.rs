//! The rrun binary: parse the command line, dispatch, and turn errors into one clear line
//! (exit 125). The work is in the rrun library.

use clap::Parser;
use rrun::cli::{Cli, Command, NetworkCmd};
use rrun::{commands, exec, run};

fn main() {
    rrun::elapsed_us();
    // Usage errors exit 125 like every other failure of rrun itself (--help/--version: 0).
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 125 } else { 0 };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    // Quiet by default; the subscriber (and its filter parsing) only when asked for, which
    // keeps it off the start-up path of every container.
    if cli.verbose > 0 || std::env::var_os("RUST_LOG").is_some() {
        let filter = if cli.verbose > 1 { "debug" } else { "info" };
        let env = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(filter));
        tracing_subscriber::fmt().with_env_filter(env).with_writer(std::io::stderr).without_time().init();
    }
    let root = cli.root.clone().unwrap_or_else(rrun::image::default_root);
    let result = match &cli.command {
        None => run::run(&root, &cli.run),
        Some(Command::Ps { all }) => commands::ps(&root, *all),
        Some(Command::Exec(a)) => exec::exec(&root, a),
        Some(Command::Stop { time, names }) => commands::stop(&root, *time, names),
        Some(Command::Kill { signal, names }) => commands::kill(&root, signal, names),
        Some(Command::Rm { force, names }) => commands::rm(&root, *force, names),
        Some(Command::Logs { follow, name }) => commands::logs(&root, *follow, name),
        Some(Command::Inspect { name }) => commands::inspect(&root, name),
        Some(Command::Network(n)) => {
            let what = match n {
                NetworkCmd::Create { .. } => "network create",
                NetworkCmd::Ls => "network ls",
                NetworkCmd::Rm { .. } => "network rm",
            };
            Err(rrun::Error::User(format!("{what} needs netd, which this rrun cannot use yet")))
        }
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            rrun::tty::restore();
            eprintln!("rrun: {e}");
            std::process::exit(125);
        }
    }
}
