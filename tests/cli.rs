//! The binary's command line: every bad input gets one line naming the flag or key, the value and
//! what is accepted, exit code 2, and nothing written. And the `--help` text, snapshot-tested.

use std::path::Path;
use std::process::Command;

fn depthagg(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_depthagg"));
    cmd.args(args).current_dir(dir);
    for (k, _) in std::env::vars() {
        if k.starts_with("DEPTHAGG_") {
            cmd.env_remove(k);
        }
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("binary runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn bad_input_is_one_line_exit_2_and_writes_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("bad.toml"),
        "bin-size = 10\ncolour = \"red\"\n",
    )
    .expect("write");
    std::fs::write(dir.path().join("broken.toml"), "bin-size = = 3\n").expect("write");
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);
    let cases: &[Case] = &[
        (
            &["--headless", "--bin-size", "0"],
            &[],
            "error: --bin-size \"0\": not a valid bin size (accepted: a positive number of USD such as 10, 0.5 or 25)",
        ),
        (
            &["--headless", "--bin-size", "-10"],
            &[],
            "error: --bin-size \"-10\": not a valid bin size",
        ),
        (
            &["--headless", "--bin-size", "NaN"],
            &[],
            "error: --bin-size \"NaN\": not a valid bin size",
        ),
        (
            &["--headless", "--bin-size", "abc"],
            &[],
            "error: --bin-size \"abc\": not a valid bin size",
        ),
        (
            &["--headless"],
            &[("DEPTHAGG_BIN_SIZE", "0")],
            "error: --bin-size \"0\": not a valid bin size",
        ),
        (
            &["--headless", "--weights", "binance=-0.5"],
            &[],
            "error: --weights \"binance=-0.5\": weight \"-0.5\" for binance is not valid (accepted: a number 0 or above, e.g. 0.15)",
        ),
        (
            &["--headless", "--weights", "binance=NaN"],
            &[],
            "error: --weights \"binance=NaN\": weight \"NaN\" for binance is not valid",
        ),
        (
            &[
                "--headless",
                "--weights",
                "binance=0,coinbase=0,kraken=0,bitfinex=0",
            ],
            &[],
            "error: --weights: every selected venue has weight 0",
        ),
        (
            &["--headless", "--weights", "okx=1"],
            &[],
            "error: --weights \"okx=1\": unknown venue \"okx\" (accepted: binance, coinbase, kraken, bitfinex)",
        ),
        (
            &["--headless", "--weights", "kraken=1,kraken=2"],
            &[],
            "error: --weights \"kraken=1,kraken=2\": venue kraken is given twice",
        ),
        (
            &["--headless", "--interval", "0"],
            &[],
            "error: --interval \"0\": not valid (accepted: a whole number of seconds, 1 or more)",
        ),
        (
            &["--headless", "--out", "missing/agg.csv"],
            &[],
            "error: --out \"missing/agg.csv\": directory missing does not exist (create it first; depthagg does not create directories)",
        ),
        (
            &["--headless", "--config", "bad.toml"],
            &[],
            "error: --config bad.toml: unknown key \"colour\" (accepted: bin-size,",
        ),
        (
            &["--headless", "--config", "broken.toml"],
            &[],
            "error: --config broken.toml: not valid TOML (line 1):",
        ),
        (
            &["--headless", "--config", "none.toml"],
            &[],
            "error: --config none.toml: cannot read the file:",
        ),
        (
            &["--headless", "--venues", "binance,binance"],
            &[],
            "error: --venues \"binance,binance\": venue binance is named twice",
        ),
    ];
    for (args, env, want) in cases {
        let (code, stdout, stderr) = depthagg(dir.path(), args, env);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(
            stderr.starts_with(want),
            "{args:?}\n got: {stderr}\nwant: {want}"
        );
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
        assert_eq!(stdout, "");
        assert_eq!(
            files_in(dir.path()),
            ["bad.toml", "broken.toml"],
            "nothing written"
        );
    }
}

#[test]
fn unwritable_output_directory_is_refused() {
    // A path whose parent is a regular file can never be written, even by root.
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("file"), "x").expect("write");
    let (code, _, stderr) = depthagg(dir.path(), &["--headless", "--out", "file/agg.csv"], &[]);
    assert_eq!(code, 2);
    assert!(
        stderr.starts_with("error: --out \"file/agg.csv\": directory file does not exist"),
        "{stderr}"
    );
}

#[test]
fn help_text() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (code, stdout, _) = depthagg(dir.path(), &["--help"], &[]);
    assert_eq!(code, 0);
    insta::assert_snapshot!("help", stdout);
    let (code, stdout, _) = depthagg(dir.path(), &["replay", "--help"], &[]);
    assert_eq!(code, 0);
    insta::assert_snapshot!("replay_help", stdout);
}
