//! Crash safety of the snapshot pair: a writer killed with SIGKILL at random moments, hundreds of
//! times, while it writes two alternating snapshots in a loop. After every kill each file on disk
//! is one whole snapshot's (never torn or empty), and once the pair is recovered as the next run
//! does before writing (`recover_pair`), the CSV and sidecar are a matching pair from one snapshot.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use depthagg::aggregate::{AggConfig, Snapshot, Window, aggregate};
use depthagg::bins::BinSize;
use depthagg::decimal::Dec;
use depthagg::engine::VenueState;
use depthagg::output::{OutputOptions, recover_pair, verify_pair, write_snapshot};
use depthagg::venue::{FeedState, Protocol};
use rand::{Rng, SeedableRng};

const CHILD_ENV: &str = "DEPTHAGG_CRASH_TEST_DIR";

fn snapshot(variant: i64) -> Snapshot {
    let mut st = VenueState::new(Protocol::KrakenV2, "BTC/USD", "test", 0);
    st.state = FeedState::Live;
    let bids = (0..400).map(|i| {
        (
            Dec::from_int(90_000 - i),
            Dec::from_int(1 + (i + variant) % 7),
        )
    });
    let asks = (0..400).map(|i| {
        (
            Dec::from_int(90_001 + i),
            Dec::from_int(1 + (i * variant) % 5),
        )
    });
    st.book.replace(bids, asks);
    let cfg = AggConfig {
        bin_size: BinSize::parse("1").expect("size"),
        weights: [0.5, 0.2, 0.15, 0.15],
        enabled: [true; 4],
        window: Window::All,
        renormalize: false,
    };
    aggregate(&[&st], &cfg, 1_764_000_000_000 + variant)
}

fn opts(dir: &Path) -> OutputOptions {
    OutputOptions::new(dir.join("agg_snapshot.csv"))
}

/// Not a test of its own: the child process the crash test starts and kills. It writes the two
/// snapshots alternately until it is killed.
#[test]
#[ignore = "child process of sigkill_never_leaves_a_broken_pair"]
fn crash_child_writes_forever() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let o = opts(Path::new(&dir));
    let snaps = [snapshot(1), snapshot(2)];
    for i in 0.. {
        write_snapshot(&snaps[i % 2], &o).expect("write");
    }
}

fn read(path: &Path) -> Option<Vec<u8>> {
    std::fs::read(path).ok()
}

fn hidden_files(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .expect("read dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect()
}

#[test]
fn sigkill_never_leaves_a_broken_pair() {
    // The two pairs the child can write, byte for byte.
    let expected: Vec<(Vec<u8>, Vec<u8>)> = [1, 2]
        .iter()
        .map(|&v| {
            let d = tempfile::tempdir().expect("temp dir");
            let o = opts(d.path());
            write_snapshot(&snapshot(v), &o).expect("write");
            let csv = read(&o.csv_path).expect("csv");
            let meta = read(&d.path().join("agg_snapshot.meta.json")).expect("meta");
            (csv, meta)
        })
        .collect();

    let dir = tempfile::tempdir().expect("temp dir");
    let o = opts(dir.path());
    let meta_path = dir.path().join("agg_snapshot.meta.json");
    let exe = std::env::current_exe().expect("test binary");
    let mut rng = rand::rngs::StdRng::seed_from_u64(2026);
    let (mut kills, mut between_renames, mut rolled_forward, mut leftovers) = (0, 0, 0, 0);
    for _ in 0..300 {
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "crash_child_writes_forever",
                "--ignored",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env(CHILD_ENV, dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("child starts");
        std::thread::sleep(Duration::from_micros(rng.gen_range(2_000..40_000)));
        child.kill().expect("SIGKILL");
        child.wait().expect("reaped");
        kills += 1;

        // Each file on its own is always one whole snapshot's.
        let (csv, meta) = (read(&o.csv_path), read(&meta_path));
        if let Some(c) = &csv {
            assert!(
                expected.iter().any(|(e, _)| e == c),
                "torn or unknown CSV after kill {kills}"
            );
        }
        if let Some(m) = &meta {
            assert!(
                expected.iter().any(|(_, e)| e == m),
                "torn or unknown sidecar after kill {kills}"
            );
        }
        if csv.is_some() && meta.is_some() && verify_pair(&o.csv_path).is_err() {
            between_renames += 1;
        }
        // As the next run does before its first write.
        let r = recover_pair(&o.csv_path).expect("recovery");
        rolled_forward += usize::from(r.rolled_forward);
        leftovers += r.removed;
        assert!(
            hidden_files(dir.path()).is_empty(),
            "leftovers remain after recovery"
        );
        if let (Some(c), Some(m)) = (read(&o.csv_path), read(&meta_path)) {
            assert!(
                expected.contains(&(c, m)),
                "mismatched pair after recovery (kill {kills})"
            );
            verify_pair(&o.csv_path).expect("pair verifies");
        }
    }
    assert_eq!(kills, 300);
    // Every pair killed between its two renames was rolled forward.
    assert_eq!(rolled_forward, between_renames);
    eprintln!(
        "kills {kills}, killed between the renames {between_renames}, rolled forward {rolled_forward}, leftover files removed {leftovers}"
    );
}
