//! The thread that keeps netd's table in place: it reads nftables events (sys.rs) and, after
//! something removed part of netd's table (`nft flush ruleset`, a firewall reload), checks the
//! table against the model and rebuilds it. Event driven: no polling of the ruleset.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::sys::{Events, Kind};
use super::{apply, FirewallError, Inner};

/// How long the socket read blocks, which bounds how late the thread sees a stop request.
const TICK: Duration = Duration::from_millis(200);
/// Events of one change come in a burst: wait until it is this long quiet (or `SETTLE_MAX`
/// passed) before checking, so that one flush costs one check.
const QUIET: Duration = Duration::from_millis(20);
const SETTLE_MAX: Duration = Duration::from_millis(200);

/// The running watcher; dropping it stops the thread (within 200 ms).
pub struct Watcher {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Starts the thread in the calling thread's network namespace.
pub(super) fn spawn(
    fw: Arc<Inner>,
    on_gone: Box<dyn Fn() + Send + 'static>,
) -> Result<Watcher, FirewallError> {
    let mut events = Events::open(TICK).map_err(FirewallError::Events)?;
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    let thread = std::thread::Builder::new()
        .name("netd-nft-watch".into())
        .spawn(move || run(&fw, &mut events, &stop2, &*on_gone))
        .map_err(FirewallError::Events)?;
    Ok(Watcher {
        stop,
        thread: Some(thread),
    })
}

fn run(fw: &Inner, events: &mut Events, stop: &AtomicBool, on_gone: &dyn Fn()) {
    // Something of netd's table was removed in the transaction whose events are coming in; it
    // is judged at the transaction's NEWGEN message, which names who committed it.
    let mut removed = false;
    while !stop.load(Ordering::Relaxed) {
        let check = match events.next() {
            // Quiet: a transaction whose NEWGEN never came (lost) is checked now.
            Ok(None) => std::mem::take(&mut removed),
            Ok(Some(evs)) => {
                let mut check = false;
                for e in evs {
                    match e.kind {
                        Kind::Removed if e.table.as_deref().is_none_or(|t| t == fw.table) => {
                            removed = true
                        }
                        Kind::Generation { pid } => {
                            let ours = pid.is_some_and(apply::own_pids::contains);
                            check |= std::mem::take(&mut removed) && !ours;
                        }
                        _ => {}
                    }
                }
                check
            }
            Err(e) => {
                // ENOBUFS: events were lost, so look at the table anyway.
                tracing::debug!("nftables events: {e}");
                removed = false;
                true
            }
        };
        if check {
            settle(events);
            match fw.damage() {
                Ok(Some(what)) => {
                    tracing::warn!(
                        "nft table {} was changed by someone else ({what})",
                        fw.table
                    );
                    on_gone();
                }
                Ok(None) => {}
                Err(e) => tracing::error!("checking nft table {}: {e}", fw.table),
            }
        }
    }
}

fn settle(events: &mut Events) {
    if events.set_timeout(QUIET).is_err() {
        return;
    }
    let start = Instant::now();
    while start.elapsed() < SETTLE_MAX {
        match events.next() {
            Ok(Some(_)) | Err(_) => continue,
            Ok(None) => break,
        }
    }
    let _ = events.set_timeout(TICK);
}
