//! Owns: running the spec's hooks (runtime-spec "POSIX-platform Hooks"): each hook's path with
//! its args (args[0] is argv[0]) and env, the container's state JSON on stdin, killed after
//! its timeout; a failing hook fails the step it belongs to (poststart and poststop only warn,
//! as runc does). Kernel interfaces: fork/execve through std::process, kill(2).

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use oci_spec::runtime::Hook;

/// Runs `hooks` of the kind `what` (for messages) in order with `state` on stdin.
pub fn run(what: &str, hooks: &Option<Vec<Hook>>, state: &serde_json::Value) -> Result<()> {
    run_with_env(what, hooks, state, &[])
}

/// [`run`], where a hook without `env` gets `default_env` (startContainer hooks inherit the
/// container process's environment, as runc's do).
pub fn run_with_env(
    what: &str,
    hooks: &Option<Vec<Hook>>,
    state: &serde_json::Value,
    default_env: &[String],
) -> Result<()> {
    let input = state.to_string();
    for h in hooks.iter().flatten() {
        run_one(h, &input, default_env)
            .with_context(|| format!("{what} hook {}", h.path().display()))?;
    }
    Ok(())
}

fn run_one(h: &Hook, input: &str, default_env: &[String]) -> Result<()> {
    let mut cmd = Command::new(h.path());
    let args = h.args().clone().unwrap_or_default();
    if let Some((a0, rest)) = args.split_first() {
        cmd.arg0(a0).args(rest);
    }
    cmd.env_clear();
    for kv in h.env().as_deref().unwrap_or(default_env) {
        if let Some((k, v)) = kv.split_once('=') {
            cmd.env(k, v);
        }
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .context("start")?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that ignores its stdin may have exited already (EPIPE): not an error.
        let _ = stdin.write_all(input.as_bytes());
    }
    let deadline = h
        .timeout()
        .filter(|&t| t > 0)
        .map(|t| Instant::now() + Duration::from_secs(t as u64));
    loop {
        if let Some(st) = child.try_wait()? {
            if !st.success() {
                bail!("exited with {st}");
            }
            return Ok(());
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            let _ = child.kill();
            let _ = child.wait();
            bail!("timed out after {} s", h.timeout().unwrap_or(0));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
