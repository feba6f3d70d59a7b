//! Shared run-time controls between the dashboard, the CSV writer and the run loop.
//!
//! Everything here is a latest value (a mutex around plain data, a notify, a watch), never a queue.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::aggregate::AggConfig;
use crate::types::Venue;
use crate::venue::Millis;

/// Where the data comes from, for the badge on screen and `source` in the sidecar.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    /// The real exchanges.
    Live,
    /// The embedded loopback simulator (`--demo`).
    Demo,
    /// A capture file (`depthagg replay FILE`).
    Replay(PathBuf),
}

/// The outcome of the last snapshot write.
#[derive(Clone, Debug, PartialEq)]
pub struct WriteStatus {
    /// When (Unix ms).
    pub at: Millis,
    /// CSV path.
    pub path: PathBuf,
    /// Data rows written (0 when it failed).
    pub rows: usize,
    /// Venues included.
    pub venues: Vec<Venue>,
    /// The error, when the write failed (the previous files are untouched then).
    pub error: Option<String>,
}

/// Controls shared by the dashboard, the writer and the run loop.
#[derive(Debug)]
pub struct Controls {
    agg: Mutex<AggConfig>,
    last_write: Mutex<Option<WriteStatus>>,
    last_error: Mutex<Option<String>>,
    /// Wakes the CSV writer for an immediate write (dashboard key `s`).
    pub write_now: tokio::sync::Notify,
    /// Becomes `true` once, when the program should stop.
    pub shutdown: tokio::sync::watch::Sender<bool>,
    /// Live, demo or replay.
    pub mode: Mode,
}

impl Controls {
    /// New controls with the aggregation settings to start from.
    pub fn new(agg: AggConfig, mode: Mode) -> Arc<Controls> {
        Arc::new(Controls {
            agg: Mutex::new(agg),
            last_write: Mutex::new(None),
            last_error: Mutex::new(None),
            write_now: tokio::sync::Notify::new(),
            shutdown: tokio::sync::watch::channel(false).0,
            mode,
        })
    }

    /// The current aggregation settings (bin size, weights, enabled venues, window).
    pub fn agg(&self) -> MutexGuard<'_, AggConfig> {
        self.agg.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A copy of the current aggregation settings.
    pub fn agg_config(&self) -> AggConfig {
        self.agg().clone()
    }

    /// Record the outcome of a write.
    pub fn set_last_write(&self, status: WriteStatus) {
        if let Some(e) = &status.error {
            self.set_error(e.clone());
        }
        *self.last_write.lock().unwrap_or_else(|e| e.into_inner()) = Some(status);
    }

    /// The last write, if any.
    pub fn last_write(&self) -> Option<WriteStatus> {
        self.last_write
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Record an error for the footer.
    pub fn set_error(&self, error: String) {
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(error);
    }

    /// The last error, if any.
    pub fn last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Ask everything to stop.
    pub fn request_shutdown(&self) {
        self.shutdown.send_replace(true);
    }

    /// True once shutdown was requested.
    pub fn is_shutting_down(&self) -> bool {
        *self.shutdown.borrow()
    }
}
