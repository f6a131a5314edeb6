//! The registry commands of the rbuild CLI (`pull`, `push`, `login`, `logout`): their
//! arguments and how they call the library. Kernel interfaces: termios(3) through rustix, to
//! read a password without echo.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

use anyhow::{Context, Result};
use rbuild::registry::auth::Creds;
use rbuild::registry::ConnOptions;
use store::Store;

/// How to reach a registry (the flags of podman and skopeo).
#[derive(clap::Args, Clone, Debug)]
pub struct ConnArgs {
    /// Require HTTPS and verify certificates; =false allows plain HTTP and skips verification
    /// (plain HTTP is always allowed for loopback registries)
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set,
          num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub tls_verify: bool,
    /// CA certificates (*.crt) to trust for the registry (default: /etc/containers/certs.d/HOST:PORT)
    #[arg(long, value_name = "DIR")]
    pub cert_dir: Option<PathBuf>,
    /// Credentials file (default: $REGISTRY_AUTH_FILE, $XDG_RUNTIME_DIR/containers/auth.json, then ~/.docker/config.json)
    #[arg(long, value_name = "FILE")]
    pub authfile: Option<PathBuf>,
}

impl ConnArgs {
    pub fn options(&self, creds: Option<&str>) -> Result<ConnOptions> {
        Ok(ConnOptions {
            insecure: !self.tls_verify,
            cert_dir: self.cert_dir.clone(),
            authfile: self.authfile.clone(),
            creds: creds.map(parse_creds).transpose()?,
            idle_timeout: super::idle_timeout()?,
        })
    }
}

fn parse_creds(s: &str) -> Result<Creds> {
    let (user, pass) = s
        .split_once(':')
        .filter(|(u, _)| !u.is_empty())
        .ok_or_else(|| anyhow::anyhow!("--creds must be USER:PASSWORD"))?;
    Ok(Creds {
        user: user.into(),
        pass: pass.into(),
    })
}

pub fn pull(
    store: &Store,
    reference: &str,
    platform: Option<&str>,
    conn: &ConnArgs,
    creds: Option<&str>,
) -> Result<()> {
    let ctx = || format!("pull {reference}");
    let o = rbuild::registry::pull::PullOptions {
        platform: platform
            .map(rbuild::oci::manifest::Platform::parse)
            .transpose()
            .with_context(ctx)?,
        conn: conn.options(creds).with_context(ctx)?,
        progress: std::io::stderr().is_terminal(),
    };
    let id = rbuild::registry::pull::pull(store, reference, &o).with_context(ctx)?;
    super::out(format_args!("sha256:{id}"))
}

pub fn push(
    store: &Store,
    image: &str,
    reference: &str,
    conn: &ConnArgs,
    creds: Option<&str>,
) -> Result<()> {
    let ctx = || format!("push {image} {reference}");
    let o = conn.options(creds).with_context(ctx)?;
    let digest = rbuild::registry::push::push(store, image, reference, &o).with_context(ctx)?;
    super::out(format_args!("sha256:{digest}"))
}

/// One line from stdin; on a terminal after `prompt`, without echo when `secret`.
fn ask(prompt: &str, secret: bool) -> Result<String> {
    let stdin = std::io::stdin();
    let tty = stdin.is_terminal();
    if tty {
        let _ = write!(std::io::stderr(), "{prompt}");
        let _ = std::io::stderr().flush();
    }
    let saved = if tty && secret {
        let t = rustix::termios::tcgetattr(&stdin).ok();
        if let Some(mut quiet) = t.clone() {
            quiet.local_modes.remove(rustix::termios::LocalModes::ECHO);
            let _ =
                rustix::termios::tcsetattr(&stdin, rustix::termios::OptionalActions::Now, &quiet);
        }
        t
    } else {
        None
    };
    let mut line = String::new();
    let r = stdin.lock().read_line(&mut line);
    if let Some(t) = saved {
        let _ = rustix::termios::tcsetattr(&stdin, rustix::termios::OptionalActions::Now, &t);
        let _ = writeln!(std::io::stderr());
    }
    r.context("reading stdin")?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

pub fn login(
    registry: &str,
    username: Option<String>,
    password: Option<String>,
    password_stdin: bool,
    conn: &ConnArgs,
) -> Result<()> {
    let ctx = || format!("login {registry}");
    let interactive = std::io::stdin().is_terminal();
    let user = match username {
        Some(u) => u,
        None if interactive && !password_stdin => ask("Username: ", false)?,
        None => anyhow::bail!("login {registry}: give --username (-u)"),
    };
    let pass = match password {
        Some(p) if !password_stdin => p,
        Some(_) => {
            anyhow::bail!("login {registry}: --password and --password-stdin exclude each other")
        }
        None if password_stdin || interactive => ask("Password: ", true)?,
        None => anyhow::bail!("login {registry}: give --password-stdin (or --password)"),
    };
    if user.is_empty() || pass.is_empty() {
        anyhow::bail!("login {registry}: the username and the password must not be empty");
    }
    let o = conn.options(None).with_context(ctx)?;
    let file = rbuild::registry::login(registry, Creds { user, pass }, &o).with_context(ctx)?;
    super::say!(
        "rbuild: login succeeded: credentials for {registry} saved in {}",
        file.display()
    );
    Ok(())
}

pub fn logout(registry: Option<&str>, all: bool, authfile: Option<&std::path::Path>) -> Result<()> {
    let what = registry.unwrap_or("--all");
    if all == registry.is_some() {
        anyhow::bail!("logout: name a REGISTRY or give --all (not both)");
    }
    let file =
        rbuild::registry::logout(registry, authfile).with_context(|| format!("logout {what}"))?;
    super::say!(
        "rbuild: removed the credentials for {what} from {}",
        file.display()
    );
    Ok(())
}
