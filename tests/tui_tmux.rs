//! The dashboard end to end in a real terminal: runs `tests/tui_tmux.sh` on the built binary, which
//! drives `depthagg --demo` inside a private tmux server (see the script for every check).
//!
//! Without tmux the test fails when `CI` is set (`.ci/run` installs tmux) and is skipped with a note
//! otherwise.

use std::path::Path;
use std::process::Command;

fn tmux_installed() -> bool {
    Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|out| out.status.success())
}

fn running_in_ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty())
}

#[test]
fn demo_dashboard_in_tmux_steps_bins_toggles_binance_quits_0_and_restores_the_terminal() {
    if !tmux_installed() {
        assert!(
            !running_in_ci(),
            "tmux is not installed, and CI is set: .ci/run should have installed it"
        );
        eprintln!("SKIPPED: tmux is not installed (CI installs it); the dashboard was not run");
        return;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tui_tmux.sh");
    let out = Command::new("bash")
        .arg(&script)
        .arg(env!("CARGO_BIN_EXE_depthagg"))
        .env_remove("TMUX")
        .output()
        .expect("run bash tests/tui_tmux.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");
    assert!(
        out.status.success(),
        "tests/tui_tmux.sh failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    // The script ends on this line only when every check ran and passed.
    assert!(
        stdout.lines().any(|l| l == "all 20 checks passed"),
        "tests/tui_tmux.sh did not report all 20 checks:\n{stdout}"
    );
}
