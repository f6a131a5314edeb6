//! `exec`: a new process in a running container (placeholder until the next step).

use std::path::Path;

use anyhow::{bail, Result};

pub fn exec(_root: &Path, a: &liboci_cli::Exec) -> Result<i32> {
    bail!("exec {}: not implemented yet", a.container_id)
}
