//! http(s) sources: a streaming GET with ureq (rustls), a progress bar on a terminal.
//! No kernel interface of its own (TCP sockets through the HTTP client).
//!
//! Timeouts: connecting (30 s) and receiving the response headers (60 s) are bounded; the body
//! has no total deadline, since it is read at extraction speed and a large layer on a slow
//! link may take hours. What is bounded is silence: each read waits at most the idle timeout
//! ([`IDLE_TIMEOUT`] unless the caller gives another), after which the download fails with one
//! line saying the server stalled.

use std::io::{self, IsTerminal, Read};
use std::time::Duration;

/// A download that could not start (connection, TLS, HTTP status).
#[derive(Debug, thiserror::Error)]
#[error("download failed: {0}")]
pub struct DownloadError(String);

/// How long a download may go without receiving a byte before it is abandoned.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Opens `url` for reading; the body is streamed (never held in memory or on disk whole).
/// `idle` bounds each read (None: [`IDLE_TIMEOUT`]).
pub fn open(
    url: &str,
    progress: bool,
    idle: Option<Duration>,
) -> Result<Box<dyn Read + Send>, DownloadError> {
    let idle = idle.unwrap_or(IDLE_TIMEOUT);
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_recv_response(Some(Duration::from_secs(60)))
        .timeout_per_read(Some(idle))
        .http_status_as_error(true)
        .build()
        .into();
    let resp = agent
        .get(url)
        .call()
        .map_err(|e| DownloadError(e.to_string()))?;
    let len = resp
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let body = Idle {
        inner: resp.into_body().into_reader(),
        idle,
    };
    if progress && std::io::stderr().is_terminal() {
        let bar = match len {
            Some(n) => indicatif::ProgressBar::new(n),
            None => indicatif::ProgressBar::new_spinner(),
        };
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} {bytes}/{total_bytes} {bytes_per_sec} {wide_bar} {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        return Ok(Box::new(Finish(bar.wrap_read(body))));
    }
    Ok(Box::new(body))
}

/// Names the idle timeout when a read times out.
struct Idle<R: Read> {
    inner: R,
    idle: Duration,
}

impl<R: Read> Read for Idle<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf).map_err(|e| {
            if e.kind() == io::ErrorKind::TimedOut || e.to_string().contains("timeout") {
                let secs = self.idle.as_secs_f64();
                io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("no data received for {secs} s: the server stalled; try again later"),
                )
            } else {
                e
            }
        })
    }
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
