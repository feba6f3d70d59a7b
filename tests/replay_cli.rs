//! `depthagg replay` from the command line: bad capture files get a clear error naming the file and
//! line, and a non-zero exit.

use std::path::Path;
use std::process::Command;

fn replay(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_depthagg"))
        .arg("replay")
        .args(args)
        .current_dir(dir)
        .env_remove("DEPTHAGG_OUT")
        .output()
        .expect("binary runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const HEADER: &str = r#"{"t":"header","format":1,"venue":"kraken","protocol":"kraken-v1","symbols":["XBT/CHF"],"recorded_at":1.0,"source":"test"}"#;
const CONNECT: &str =
    r#"{"t":"connect","venue":"kraken","ts":1.5,"conn":"1","url":"wss://ws.kraken.com"}"#;

#[test]
fn bad_captures_name_file_and_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "truncated.jsonl",
            format!("{HEADER}\n{CONNECT}\n{{\"t\":\"recv\",\"venue\":\"kra"),
            "truncated.jsonl:3: not a capture record:",
        ),
        (
            "notjson.jsonl",
            "this is not json\n".to_string(),
            "notjson.jsonl:1: not a capture header:",
        ),
        (
            "v2.jsonl",
            HEADER.replace("\"format\":1", "\"format\":2"),
            "v2.jsonl:1: capture format 2 is not supported (this build reads format 1)",
        ),
        (
            "mixed.jsonl",
            format!(
                "{HEADER}\n{}\n",
                r#"{"t":"recv","venue":"bitfinex","ts":2.0,"conn":"1","data":"[1,\"hb\"]"}"#
            ),
            "mixed.jsonl:2: record for venue \"bitfinex\", which the header does not list (it lists: kraken)",
        ),
        (
            "wrongproto.jsonl",
            HEADER.replace("kraken-v1", "binance-spot"),
            "wrongproto.jsonl:1: protocol binance-spot belongs to binance, not to venue \"kraken\"",
        ),
        (
            "empty.jsonl",
            String::new(),
            "empty.jsonl:1: empty file: expected a header record",
        ),
    ];
    for (name, text, want) in cases {
        std::fs::write(dir.path().join(name), text).expect("write");
        let (code, _, stderr) = replay(dir.path(), &[name, "--headless"]);
        assert_ne!(code, 0, "{name}");
        assert!(
            stderr.starts_with(&format!("error: {want}")),
            "{name}: {stderr}"
        );
        assert_eq!(stderr.lines().count(), 1, "{name}: {stderr}");
    }
    let (code, _, stderr) = replay(dir.path(), &["missing.jsonl", "--headless"]);
    assert_eq!(code, 2);
    assert!(
        stderr.starts_with("error: missing.jsonl: No such file or directory"),
        "{stderr}"
    );
}

#[test]
fn bad_replay_options() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("k.jsonl"), format!("{HEADER}\n{CONNECT}\n")).expect("write");
    for (args, want) in [
        (
            vec!["k.jsonl", "--headless", "--speed", "fast"],
            "error: --speed \"fast\": not valid (accepted: max, or a number above 0 such as 1 or 10)",
        ),
        (
            vec!["k.jsonl", "--headless", "--symbol", "kraken=XBT/USD"],
            "error: --symbol kraken=XBT/USD: the capture k.jsonl does not hold XBT/USD (it holds: XBT/CHF)",
        ),
        (
            vec!["k.jsonl", "--headless", "--symbol", "binance=BTCUSDT"],
            "error: --symbol: the capture k.jsonl has no binance data",
        ),
        (
            vec!["k.jsonl", "--headless", "--symbol", "XBT/CHF"],
            "error: --symbol \"XBT/CHF\": not VENUE=SYMBOL (accepted: e.g. kraken=XBT/CHF)",
        ),
        (
            vec!["k.jsonl", "--headless", "--dump-books", "nowhere"],
            "error: --dump-books \"nowhere\": not an existing directory (create it first)",
        ),
    ] {
        let (code, _, stderr) = replay(dir.path(), &args);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(stderr.starts_with(want), "{args:?}: {stderr}");
    }
}
