//! `rrun ps`: the containers of a store as Docker lists them: newest first, columns CONTAINER
//! ID, IMAGE, COMMAND, CREATED, STATUS, NAMES aligned to their widest cell, STATUS and
//! CREATED in Docker's words; `-q` for ids only, `--format json` for one JSON object per line.
//! No kernel interface of its own (records come from [`crate::state`]).

use std::path::Path;

use serde_json::json;

use crate::clock;
use crate::error::{Error, Result};
use crate::state::{Containers, Entry, State, Status};

/// What `rrun ps` was asked for.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// -a: exited and damaged records too.
    pub all: bool,
    /// --no-trunc: full ids and commands.
    pub no_trunc: bool,
    /// -q: ids only.
    pub quiet: bool,
    /// --format json.
    pub json: bool,
}

/// The longest COMMAND cell before it is cut with "…" (Docker's width).
const COMMAND_WIDTH: usize = 20;

/// One row, every cell as shown.
struct Row {
    id: String,
    image: String,
    command: String,
    created: String,
    created_at: String,
    status: String,
    state: &'static str,
    name: String,
}

/// `rrun ps [-a] [-q] [--no-trunc] [--format json]`. Containers removed on exit whose rrun
/// died, and records whose creation or removal was cut short, are removed first
/// ([`Containers::entries_reaped`]).
pub fn list(root: &Path, o: &Options) -> Result<i32> {
    let containers = Containers::open(root)?;
    let mut rows: Vec<(u64, Row)> = containers
        .entries_reaped()?
        .into_iter()
        .filter_map(|e| row(e, o))
        .collect();
    rows.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.id.cmp(&b.1.id)));
    let rows: Vec<Row> = rows.into_iter().map(|(_, r)| r).collect();
    let text = if o.quiet {
        rows.iter().map(|r| format!("{}\n", r.id)).collect()
    } else if o.json {
        json_lines(&rows)?
    } else {
        table(&rows)
    };
    crate::output::write(text.as_bytes())?;
    Ok(0)
}

/// The row of one record (None when `ps` without -a hides it), with its creation time for
/// sorting (0 for a damaged record: listed last).
fn row(e: Entry, o: &Options) -> Option<(u64, Row)> {
    let id_len = if o.no_trunc { 64 } else { 12 };
    match e {
        Entry::Valid(s) => {
            let status = s.status();
            if !o.all && status != Status::Running {
                return None;
            }
            let created = s.created_ns();
            Some((
                created,
                Row {
                    id: short(&s.id, id_len),
                    image: image(&s),
                    command: command(&s, o.no_trunc),
                    created: format!("{} ago", clock::human(clock::since(created))),
                    created_at: clock::rfc3339(created),
                    status: status_words(&s, status),
                    state: status.as_str(),
                    name: s.name.clone(),
                },
            ))
        }
        Entry::Corrupt { id, why } if o.all => Some((
            0,
            Row {
                id: short(&id, id_len),
                image: "-".into(),
                command: "-".into(),
                created: "-".into(),
                created_at: String::new(),
                status: format!("corrupt ({why})"),
                state: "corrupt",
                name: "-".into(),
            },
        )),
        Entry::Corrupt { .. } => None,
    }
}

/// At most `n` characters of `s` (never cut inside a character).
fn short(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

/// The image as the user named it when that was a name (`alpine:3.15`), else its id in 12 hex
/// digits (an id or id prefix was given: the 71 characters of `sha256:…` say no more).
fn image(s: &State) -> String {
    let r = s.image_ref.strip_prefix("sha256:").unwrap_or(&s.image_ref);
    let is_id = r.len() >= 12 && r.bytes().all(|b| b.is_ascii_hexdigit());
    if s.image_ref.is_empty() || is_id {
        short(s.image.trim_start_matches("sha256:"), 12)
    } else {
        s.image_ref.clone()
    }
}

/// The command, quoted with its special characters escaped (it comes from the image, so it
/// may hold anything: control characters never reach the terminal raw), cut to
/// [`COMMAND_WIDTH`] characters with "…" unless --no-trunc.
fn command(s: &State, no_trunc: bool) -> String {
    let cmd = crate::spec::display_command(&s.config.process.args);
    let cmd = if !no_trunc && cmd.chars().count() > COMMAND_WIDTH {
        let mut c = short(&cmd, COMMAND_WIDTH - 1);
        c.push('…');
        c
    } else {
        cmd
    };
    format!("{cmd:?}")
}

/// STATUS as Docker words it: "Created", "Up 3 minutes", "Exited (143) 2 minutes ago"; an exit
/// rrun could not record (its rrun was killed) is "Exited (unknown)", a container whose rrun
/// is gone "Up … (orphan)".
fn status_words(s: &State, status: Status) -> String {
    match status {
        Status::Created => "Created".into(),
        Status::Running => {
            let since = match s.started_at_ns {
                0 => s.created_ns(),
                t => t,
            };
            let up = format!("Up {}", clock::human(clock::since(since)));
            if s.orphaned() {
                format!("{up} (orphan)")
            } else {
                up
            }
        }
        Status::Exited => {
            let code = s
                .exit_code
                .map_or_else(|| "unknown".to_string(), |c| c.to_string());
            match s.finished_at_ns {
                0 => format!("Exited ({code})"),
                t => format!("Exited ({code}) {} ago", clock::human(clock::since(t))),
            }
        }
    }
}

/// The table: every column as wide as its widest cell, three spaces apart; the last one
/// (NAMES) unpadded, so a long name never pushes the others out of line.
fn table(rows: &[Row]) -> String {
    let head = [
        "CONTAINER ID",
        "IMAGE",
        "COMMAND",
        "CREATED",
        "STATUS",
        "NAMES",
    ];
    let cells = |r: &Row| -> [String; 6] {
        [
            r.id.clone(),
            r.image.clone(),
            r.command.clone(),
            r.created.clone(),
            r.status.clone(),
            r.name.clone(),
        ]
    };
    let all: Vec<[String; 6]> = std::iter::once(head.map(String::from))
        .chain(rows.iter().map(cells))
        .collect();
    let mut width = [0usize; 6];
    for r in &all {
        for (w, c) in width.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    for r in &all {
        for (i, c) in r.iter().enumerate() {
            out.push_str(c);
            if i + 1 < r.len() {
                let pad = width[i] - c.chars().count() + 3;
                out.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push('\n');
    }
    out
}

/// One JSON object per line, with Docker's keys (`docker ps --format json`); CreatedAt in RFC
/// 3339.
fn json_lines(rows: &[Row]) -> Result<String> {
    let mut out = String::new();
    for r in rows {
        let v = json!({
            "ID": r.id,
            "Image": r.image,
            "Command": r.command,
            "CreatedAt": r.created_at,
            "RunningFor": r.created,
            "State": r.state,
            "Status": r.status,
            "Names": r.name,
        });
        out.push_str(&serde_json::to_string(&v).map_err(|source| Error::Json {
            what: "serialize ps".into(),
            source,
        })?);
        out.push('\n');
    }
    Ok(out)
}
