//! `.github/scripts/commit-snapshot.sh` in temporary git repositories: changed, unchanged, and a
//! push race (the branch moved between checkout and push).

use std::path::{Path, PathBuf};
use std::process::Command;

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".github/scripts/commit-snapshot.sh")
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args([
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@example.com",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn run_script(dir: &Path) -> (i32, String) {
    let out = Command::new("bash")
        .arg(script())
        .arg("agg_snapshot.csv")
        .current_dir(dir)
        .output()
        .expect("script runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

fn write_snapshot(dir: &Path, price: &str, utc: &str, venues: &[&str]) {
    std::fs::write(
        dir.join("agg_snapshot.csv"),
        format!("price,buy_qty,sell_qty\n{price},1.0000,0.0000\n"),
    )
    .expect("csv");
    let list = venues
        .iter()
        .map(|v| format!("\"{v}\""))
        .collect::<Vec<_>>()
        .join(",");
    std::fs::write(
        dir.join("agg_snapshot.meta.json"),
        format!("{{\"taken_at_utc\":\"{utc}\",\"venues_included\":[{list}]}}\n"),
    )
    .expect("meta");
}

/// A bare remote and a clone with one snapshot committed and pushed.
fn setup() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let remote = tmp.path().join("remote.git");
    let a = tmp.path().join("a");
    std::fs::create_dir(&remote).expect("mkdir");
    git(&remote, &["init", "--quiet", "--bare", "-b", "main"]);
    git(
        tmp.path(),
        &["clone", "--quiet", remote.to_str().expect("utf8"), "a"],
    );
    git(&a, &["checkout", "--quiet", "-b", "main"]);
    write_snapshot(&a, "90000", "2026-11-25T10:00:00Z", &["kraken"]);
    git(&a, &["add", "."]);
    git(&a, &["commit", "--quiet", "-m", "first"]);
    git(&a, &["push", "--quiet", "origin", "main"]);
    (tmp, remote, a)
}

#[test]
fn unchanged_csv_commits_nothing() {
    let (_tmp, remote, a) = setup();
    let before = git(&remote, &["rev-parse", "main"]);
    let (code, out) = run_script(&a);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("unchanged; nothing to commit"), "{out}");
    assert_eq!(git(&remote, &["rev-parse", "main"]), before);
}

#[test]
fn changed_csv_is_committed_with_time_and_venues() {
    let (_tmp, remote, a) = setup();
    write_snapshot(&a, "90010", "2026-11-25T10:05:00Z", &["coinbase", "kraken"]);
    let (code, out) = run_script(&a);
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        git(&remote, &["log", "-1", "--format=%s", "main"]),
        "snapshot 2026-11-25T10:05:00Z: coinbase, kraken"
    );
    assert_eq!(
        git(&remote, &["show", "--name-only", "--format=", "main"]),
        "agg_snapshot.csv\nagg_snapshot.meta.json"
    );
}

#[test]
fn push_race_reapplies_on_the_moved_branch() {
    let (tmp, remote, a) = setup();
    // Someone else pushes first.
    git(
        tmp.path(),
        &["clone", "--quiet", remote.to_str().expect("utf8"), "b"],
    );
    let b = tmp.path().join("b");
    std::fs::write(b.join("README.md"), "moved\n").expect("write");
    git(&b, &["add", "."]);
    git(&b, &["commit", "--quiet", "-m", "other change"]);
    git(&b, &["push", "--quiet", "origin", "main"]);

    write_snapshot(&a, "90020", "2026-11-25T10:10:00Z", &["bitfinex"]);
    let (code, out) = run_script(&a);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("re-applying"), "{out}");
    let log = git(&remote, &["log", "--format=%s", "main"]);
    assert_eq!(
        log,
        "snapshot 2026-11-25T10:10:00Z: bitfinex\nother change\nfirst"
    );
    assert_eq!(git(&remote, &["show", "main:README.md"]), "moved");
    assert!(git(&remote, &["show", "main:agg_snapshot.csv"]).contains("90020,1.0000"));
}
