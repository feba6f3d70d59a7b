//! End-to-end load run: the simulator in max-rate mode (a separate process) serving all four
//! venues on loopback, the real feed drivers, codecs and engines in this process, and a consumer
//! taking a full snapshot ten times a second, as the dashboard would.
//!
//! Reports book messages per second into the aggregate, p50/p99/p99.9 latency from a frame's
//! arrival to its effect in the published venue view, this process's CPU per core, RSS after
//! warm-up and at the end, and peak RSS.
//!
//! Run: `cargo bench --bench e2e_load -- --seconds 30`

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use depthagg::aggregate::{AggConfig, Window, take_snapshot};
use depthagg::bins::BinSize;
use depthagg::control::{Controls, Mode};
use depthagg::feed::FeedOptions;
use depthagg::metrics::LatencyHistogram;
use depthagg::run::start_feeds;
use depthagg::types::Venue;
use depthagg::venue::{Protocol, VenueSpec};

fn proc_status(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

/// utime + stime of a process in seconds.
fn cpu_secs(pid: &str) -> f64 {
    let tick = 100.0; // USER_HZ on Linux
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            let rest = s.rsplit_once(')')?.1;
            let f: Vec<&str> = rest.split_whitespace().collect();
            Some((f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?) / tick)
        })
        .unwrap_or(0.0)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let seconds: u64 = args
        .iter()
        .position(|a| a == "--seconds")
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    if args.iter().any(|a| a == "--list") {
        return; // `cargo bench -- --list` compatibility
    }
    let warmup = 5u64.min(seconds / 3);

    let mut sim = Command::new(env!("CARGO_BIN_EXE_depthagg"))
        .args(["simulate", "--rate", "max", "--seed", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("simulator starts");
    let sim_pid = sim.id().to_string();
    let mut lines = BufReader::new(sim.stdout.take().expect("stdout")).lines();
    let mut specs = Vec::new();
    for _ in 0..4 {
        let line = lines.next().expect("endpoint line").expect("utf8");
        let mut parts = line.split_whitespace();
        let venue: Venue = parts.next().expect("venue").parse().expect("venue name");
        let mut spec = VenueSpec::new(Protocol::default_for(venue), venue.default_symbol());
        for p in parts {
            if let Some(u) = p.strip_prefix("ws=") {
                spec.ws_url = u.to_string();
            }
            if let Some(u) = p.strip_prefix("rest=") {
                spec.rest_url = Some(u.to_string());
            }
        }
        specs.push(spec);
    }

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let hist = Arc::new(Mutex::new(LatencyHistogram::new()));
    let cfg = AggConfig {
        bin_size: BinSize::parse("10").expect("size"),
        weights: [0.5, 0.2, 0.15, 0.15],
        enabled: [true; 4],
        window: Window::DEFAULT,
        renormalize: false,
    };
    let controls = Controls::new(cfg.clone(), Mode::Demo);
    let opts = FeedOptions {
        latency: Some(hist.clone()),
        ..FeedOptions::default()
    };
    let feeds = rt.block_on(async { start_feeds(&specs, &|_| "load".into(), &opts, &controls) });
    let venues = feeds.venues.clone();

    let book_messages = |venues: &[depthagg::engine::SharedVenue]| -> u64 {
        venues.iter().map(|v| v.lock().counters.book_messages).sum()
    };
    let start = Instant::now();
    let mut snapshots = 0u64;
    let mut warm = None;
    while start.elapsed() < Duration::from_secs(seconds) {
        std::thread::sleep(Duration::from_millis(100));
        let snap = take_snapshot(&venues, &cfg, depthagg::feed::now_ms());
        std::hint::black_box(&snap);
        snapshots += 1;
        if warm.is_none() && start.elapsed() >= Duration::from_secs(warmup) {
            hist.lock()
                .expect("lock")
                .clone_from(&LatencyHistogram::new());
            warm = Some((
                Instant::now(),
                book_messages(&venues),
                cpu_secs("self"),
                cpu_secs(&sim_pid),
                proc_status("VmRSS:"),
            ));
        }
    }
    let (t0, m0, cpu0, simcpu0, rss_warm) = warm.expect("warm-up passed");
    let wall = t0.elapsed().as_secs_f64();
    let msgs = book_messages(&venues) - m0;
    let cpu = cpu_secs("self") - cpu0;
    let simcpu = cpu_secs(&sim_pid) - simcpu0;
    let h = hist.lock().expect("lock").clone();
    let states: Vec<String> = venues
        .iter()
        .map(|v| {
            let s = v.lock();
            format!(
                "{} {} ({} msgs, {} resyncs)",
                s.venue, s.state, s.counters.book_messages, s.counters.resyncs
            )
        })
        .collect();
    controls.request_shutdown();
    rt.block_on(feeds.join());
    let _ = sim.kill();
    let _ = sim.wait();

    println!(
        "e2e load, {seconds} s (measured after {warmup} s warm-up), 4 venues, simulator --rate max"
    );
    println!("  venues: {}", states.join("; "));
    println!(
        "  book messages into the aggregate: {msgs} in {wall:.1} s = {:.0}/s",
        msgs as f64 / wall
    );
    println!(
        "  frame arrival -> applied in the venue view: p50 {} us, p99 {} us, p99.9 {} us, max {} us ({} frames)",
        h.quantile_us(0.5),
        h.quantile_us(0.99),
        h.quantile_us(0.999),
        h.max_us(),
        h.count()
    );
    println!("  snapshots taken (10/s, ±2 %, $10 bins): {snapshots}");
    println!(
        "  client CPU: {:.0} % of one core ({:.0} % of the machine's 2); simulator process: {:.0} % of one core",
        100.0 * cpu / wall,
        50.0 * cpu / wall,
        100.0 * simcpu / wall
    );
    println!(
        "  client RSS: {} MiB after warm-up, {} MiB at the end, peak {} MiB",
        rss_warm / 1024,
        proc_status("VmRSS:") / 1024,
        proc_status("VmHWM:") / 1024
    );
}
