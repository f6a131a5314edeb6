//! Error reporting as runc does it: one line on stderr, and with `--log FILE` the same line
//! appended to FILE, as text or with `--log-format json` as `{"level","msg","time"}` (conmon
//! reads it from there to tell the user why a container failed). No kernel interface.

use std::io::Write;

use liboci_cli::GlobalOpts;

pub struct Log {
    file: Option<std::fs::File>,
    json: bool,
}

impl Log {
    /// Opens `--log` for appending; a log that cannot be opened leaves stderr alone.
    pub fn open(g: &GlobalOpts) -> Log {
        let file = g.log.as_ref().and_then(|p| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .ok()
        });
        Log {
            file,
            json: g.log_format.as_deref() == Some("json"),
        }
    }

    /// Reports an error: `rrun-oci: error: MSG` on stderr (tools such as youki's contest look
    /// for "error" there, as runc's log lines carry it) and in the log.
    pub fn error(&self, msg: &str) {
        eprintln!("rrun-oci: error: {msg}");
        if let Some(mut f) = self.file.as_ref() {
            let line = match self.json {
                true => serde_json::json!({
                    "level": "error",
                    "msg": msg,
                    "time": crate::state::rfc3339_now(),
                })
                .to_string(),
                false => format!("rrun-oci: {msg}"),
            };
            let _ = writeln!(f, "{line}");
        }
    }
}
