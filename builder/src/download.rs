//! http(s) sources: a streaming GET with ureq (rustls), a progress bar on a terminal.
//! No kernel interface of its own (TCP sockets through the HTTP client).

use std::io::{IsTerminal, Read};
use std::time::Duration;

use crate::import::AddError;

/// Opens `url` for reading; the body is streamed (never held in memory or on disk whole).
pub fn open(url: &str, progress: bool) -> Result<Box<dyn Read + Send>, AddError> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_recv_response(Some(Duration::from_secs(60)))
        .timeout_recv_body(Some(Duration::from_secs(60)))
        .http_status_as_error(true)
        .build()
        .into();
    let resp = agent.get(url).call().map_err(|e| AddError::Download(e.to_string()))?;
    let len = resp
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let body = resp.into_body().into_reader();
    if progress && std::io::stderr().is_terminal() {
        let bar = match len {
            Some(n) => indicatif::ProgressBar::new(n),
            None => indicatif::ProgressBar::new_spinner(),
        };
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {bytes}/{total_bytes} {bytes_per_sec} {wide_bar} {eta}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        return Ok(Box::new(Finish(bar.wrap_read(body))));
    }
    Ok(Box::new(body))
}

/// Clears the progress bar when the download is dropped.
struct Finish<R: Read>(indicatif::ProgressBarIter<R>);

impl<R: Read> Read for Finish<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.read(buf)
    }
}

impl<R: Read> Drop for Finish<R> {
    fn drop(&mut self) {
        self.0.progress.finish_and_clear();
    }
}
