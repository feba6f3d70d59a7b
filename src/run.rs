//! The run loop: starts one feed per venue, then the dashboard, the headless writer, or the
//! `--once` snapshot. Headless is the same pipeline with another sink, chosen once at start.
//!
//! ```text
//!  feed tasks (one per venue) ──► SharedVenue (latest book + status, no queue)
//!                                      │
//!            take_snapshot(bin size, weights, window) at one moment
//!          ┌───────────────┬──────────┴──────────┐
//!     dashboard       CSV writer (interval,     --once: wait for live or timeout,
//!                      key `s`, shutdown)        write once, exit code
//! ```

use std::io::Write as _;
use std::sync::Arc;
use std::time::Duration;

use crate::aggregate::{Snapshot, take_snapshot};
use crate::config::Config;
use crate::control::{Controls, Mode, WriteStatus};
use crate::engine::{Engine, SharedVenue, VenueState};
use crate::feed::{FeedOptions, Recorder, now_ms, run_feed};
use crate::output::{OutputOptions, write_snapshot};
use crate::venue::{FeedState, VenueSpec, codec_for};

/// Process exit codes (README "Exit codes").
pub mod exit {
    /// Success.
    pub const OK: u8 = 0;
    /// An unexpected run-time failure.
    pub const FAILURE: u8 = 1;
    /// Invalid command line, environment or config file; nothing was written.
    pub const BAD_INPUT: u8 = 2;
    /// `--once`: fewer than `--min-venues` venues were live; the previous files are untouched.
    pub const TOO_FEW_VENUES: u8 = 3;
    /// `--once`: writing the CSV or sidecar failed; the previous files are untouched.
    pub const WRITE_FAILED: u8 = 4;
}

/// The running venue feeds.
pub struct Feeds {
    /// Each venue's published state.
    pub venues: Vec<SharedVenue>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Feeds {
    /// Wait (bounded) for the feed tasks to end after shutdown was requested.
    pub async fn join(self) {
        for t in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(3), t).await;
        }
    }
}

/// Start one feed task per venue spec.
pub fn start_feeds(
    specs: &[VenueSpec],
    source: &dyn Fn(&VenueSpec) -> String,
    opts: &FeedOptions,
    controls: &Controls,
) -> Feeds {
    let mut venues = Vec::new();
    let mut tasks = Vec::new();
    for spec in specs {
        let shared = SharedVenue::new(VenueState::new(
            spec.protocol,
            &spec.symbol,
            &source(spec),
            now_ms(),
        ));
        let engine = Engine::new(codec_for(spec.clone()), shared.clone());
        tasks.push(tokio::spawn(run_feed(
            engine,
            opts.clone(),
            controls.shutdown.subscribe(),
        )));
        venues.push(shared);
    }
    Feeds { venues, tasks }
}

/// Ctrl-C and SIGTERM request a clean shutdown.
pub fn spawn_signal_handler(controls: Arc<Controls>) {
    tokio::spawn(async move {
        #[cfg(unix)]
        {
            let mut term =
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(s) => s,
                    Err(_) => {
                        let _ = tokio::signal::ctrl_c().await;
                        controls.request_shutdown();
                        return;
                    }
                };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
        controls.request_shutdown();
    });
}

/// Take a snapshot now and write it, unless no venue is included (then the previous files stay).
/// Blocking file IO runs off the async workers.
pub async fn write_now(
    venues: &[SharedVenue],
    controls: &Controls,
    out: &OutputOptions,
) -> WriteStatus {
    let snap = take_snapshot(venues, &controls.agg_config(), now_ms());
    write_snapshot_status(snap, out).await
}

/// Write a snapshot, reporting the outcome (and logging it).
pub async fn write_snapshot_status(snap: Snapshot, out: &OutputOptions) -> WriteStatus {
    let included: Vec<_> = snap.included().collect();
    let at = snap.taken_at;
    if included.is_empty() {
        let error = "no venue is live; previous files kept".to_string();
        tracing::warn!("snapshot skipped: {error}");
        return WriteStatus {
            at,
            path: out.csv_path.clone(),
            rows: 0,
            venues: included,
            error: Some(error),
        };
    }
    let opts = out.clone();
    let res = tokio::task::spawn_blocking(move || write_snapshot(&snap, &opts)).await;
    let names = included
        .iter()
        .map(|v| v.name())
        .collect::<Vec<_>>()
        .join(", ");
    match res {
        Ok(Ok(report)) => {
            tracing::info!(
                "wrote {}: {} rows, venues {names}",
                out.csv_path.display(),
                report.rows
            );
            WriteStatus {
                at,
                path: out.csv_path.clone(),
                rows: report.rows,
                venues: included,
                error: None,
            }
        }
        Ok(Err(e)) => {
            tracing::error!("write failed: {e}");
            WriteStatus {
                at,
                path: out.csv_path.clone(),
                rows: 0,
                venues: included,
                error: Some(e.to_string()),
            }
        }
        Err(e) => WriteStatus {
            at,
            path: out.csv_path.clone(),
            rows: 0,
            venues: included,
            error: Some(format!("writer task failed: {e}")),
        },
    }
}

/// The background CSV writer: every `interval`, on `write_now`, and once more at shutdown when a
/// venue is live.
pub async fn writer_loop(
    venues: Vec<SharedVenue>,
    controls: Arc<Controls>,
    out: OutputOptions,
    interval: Duration,
) {
    let mut shutdown = controls.shutdown.subscribe();
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = controls.write_now.notified() => {}
            _ = shutdown.changed() => break,
        }
        if controls.is_shutting_down() {
            break;
        }
        let status = write_now(&venues, &controls, &out).await;
        controls.set_last_write(status);
    }
    let status = write_now(&venues, &controls, &out).await;
    if status.error.is_none() {
        controls.set_last_write(status);
    }
}

/// Run the aggregator (live or demo) as configured. Returns the process exit code.
pub async fn run(cfg: Config) -> color_eyre::Result<u8> {
    let mode = if cfg.demo.is_some() {
        Mode::Demo
    } else {
        Mode::Live
    };
    let controls = Controls::new(cfg.agg.clone(), mode);
    spawn_signal_handler(controls.clone());

    let mut specs = cfg.venues.clone();
    let demo = match &cfg.demo {
        Some(opts) => Some(crate::demo::start(&mut specs, opts).await?),
        None => None,
    };

    let mut opts = FeedOptions::default();
    if let Some(path) = &cfg.record {
        let venues: Vec<(String, String)> = specs
            .iter()
            .map(|s| (s.venue().name().to_string(), s.protocol.name().to_string()))
            .collect();
        let symbols = specs.iter().map(|s| s.symbol.clone()).collect();
        opts.recorder = Some(
            Recorder::create(path, &venues, symbols)
                .map_err(|e| color_eyre::eyre::eyre!("--record {}: {e}", path.display()))?,
        );
    }
    let is_demo = demo.is_some();
    let source = move |s: &VenueSpec| {
        if is_demo {
            "demo".to_string()
        } else {
            s.ws_url.clone()
        }
    };
    let feeds = start_feeds(&specs, &source, &opts, &controls);
    let out = OutputOptions {
        csv_path: cfg.out.clone(),
        qty_decimals: cfg.qty_decimals,
    };

    let code = if cfg.once {
        run_once(
            &feeds.venues,
            &controls,
            &out,
            cfg.sync_timeout_secs,
            cfg.min_venues,
        )
        .await
    } else if cfg.headless {
        writer_loop(
            feeds.venues.clone(),
            controls.clone(),
            out,
            Duration::from_secs(cfg.interval_secs),
        )
        .await;
        exit::OK
    } else {
        let writer = tokio::spawn(writer_loop(
            feeds.venues.clone(),
            controls.clone(),
            out,
            Duration::from_secs(cfg.interval_secs),
        ));
        let res = crate::tui::run(feeds.venues.clone(), controls.clone()).await;
        controls.request_shutdown();
        let _ = tokio::time::timeout(Duration::from_secs(10), writer).await;
        res?;
        exit::OK
    };
    controls.request_shutdown();
    feeds.join().await;
    if let Some(d) = demo {
        d.sim.shutdown().await;
    }
    Ok(code)
}

/// `--once`: wait until every venue is live (or blocked, which will not change for minutes) or the
/// timeout passes, then write one snapshot from the live venues.
pub async fn run_once(
    venues: &[SharedVenue],
    controls: &Controls,
    out: &OutputOptions,
    sync_timeout_secs: u64,
    min_venues: usize,
) -> u8 {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(sync_timeout_secs);
    loop {
        let settled = venues
            .iter()
            .all(|v| matches!(v.lock().state, FeedState::Live | FeedState::Blocked));
        if settled || controls.is_shutting_down() || tokio::time::Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let snap = take_snapshot(venues, &controls.agg_config(), now_ms());
    print_summary(&snap);
    let included = snap.included().count();
    if included < min_venues {
        eprintln!(
            "error: only {included} venue(s) live after {sync_timeout_secs} s, fewer than --min-venues {min_venues}; {} and its sidecar were left untouched",
            out.csv_path.display()
        );
        return exit::TOO_FEW_VENUES;
    }
    let status = write_snapshot_status(snap, out).await;
    match status.error {
        None => {
            eprintln!(
                "wrote {} ({} rows) from {}",
                out.csv_path.display(),
                status.rows,
                status
                    .venues
                    .iter()
                    .map(|v| v.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            exit::OK
        }
        Some(e) => {
            eprintln!("error: {e}");
            exit::WRITE_FAILED
        }
    }
}

/// One line per venue on stderr: state, reason, levels, covered range.
pub fn print_summary(snap: &Snapshot) {
    let mut err = std::io::stderr().lock();
    for v in &snap.venues {
        if v.source.is_empty() {
            continue;
        }
        let range = match (v.coverage.low, v.coverage.high) {
            (Some(lo), Some(hi)) => format!("{lo}..{hi}"),
            _ => "-".to_string(),
        };
        let _ = writeln!(
            err,
            "{:<9} {:<10} {:<8} levels {}/{} range {} ({})",
            v.venue.name(),
            v.state.name(),
            if v.included { "included" } else { "excluded" },
            v.levels.0,
            v.levels.1,
            range,
            v.excluded_because.as_deref().unwrap_or(&v.reason),
        );
    }
}
