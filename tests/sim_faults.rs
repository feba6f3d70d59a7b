//! Every fault the simulator injects is observable on the wire, exactly once, and counted.

mod sim_support;

use std::future::Future;
use std::time::Duration;

use depthagg::book::Book;
use depthagg::sim::{Fault, FaultPlan, SimConfig, Simulator};
use depthagg::types::{Side, Venue};
use depthagg::venue::checksum;
use serde_json::Value;
use sim_support::*;
use tokio_tungstenite::tungstenite;

async fn bounded<F: Future<Output = ()>>(f: F) {
    tokio::time::timeout(Duration::from_secs(90), f)
        .await
        .expect("test finished in time");
}

async fn binance_stream(sim: &Simulator) -> Ws {
    connect(&format!(
        "{}/stream?streams=btcusdt@depth@100ms",
        sim.endpoint(Venue::Binance).ws_url
    ))
    .await
}

async fn kraken_subscribed(sim: &Simulator) -> Ws {
    let mut ws = connect(&sim.endpoint(Venue::Kraken).ws_url).await;
    let _status = json(&mut ws).await;
    send(
        &mut ws,
        r#"{"method":"subscribe","params":{"channel":"book","symbol":["BTC/USD"],"depth":1000}}"#,
    )
    .await;
    let ack = json(&mut ws).await;
    assert_eq!(ack["success"], true);
    ws
}

/// U/u pairs of the next `n` Binance events.
async fn binance_ids(ws: &mut Ws, n: usize) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    while out.len() < n {
        let v = json(ws).await;
        out.push((
            v["data"]["U"].as_u64().expect("U"),
            v["data"]["u"].as_u64().expect("u"),
        ));
    }
    out
}

fn gaps(ids: &[(u64, u64)]) -> usize {
    ids.windows(2).filter(|w| w[1].0 != w[0].1 + 1).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binance_drop_makes_one_update_id_gap() {
    bounded(async {
        let sim = start(config(31)).await;
        let mut ws = binance_stream(&sim).await;
        let mut ids = binance_ids(&mut ws, 5).await;
        assert_eq!(gaps(&ids), 0);
        sim.inject(Venue::Binance, Fault::Drop);
        ids.extend(binance_ids(&mut ws, 10).await);
        assert_eq!(gaps(&ids), 1);
        let s = sim.stats(Venue::Binance);
        assert_eq!((s.faults, s.dropped), (1, 1));
        sim.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_drop_at_step_5_gaps_coinbase_sequence() {
    bounded(async {
        let sim = start(SimConfig {
            faults: FaultPlan::parse("coinbase=drop@5").expect("spec"),
            start_paused: true,
            ..config(32)
        })
        .await;
        let mut ws = connect(&sim.endpoint(Venue::Coinbase).ws_url).await;
        send(
            &mut ws,
            r#"{"type":"subscribe","product_ids":["BTC-USD"],"channel":"level2"}"#,
        )
        .await;
        sim.resume();
        // Snapshot is 0, subscriptions 1, steps 1..4 are 2..5, step 5 (6) is lost.
        let mut seqs = Vec::new();
        while seqs.len() < 8 {
            let v = json(&mut ws).await;
            seqs.push(v["sequence_num"].as_u64().expect("sequence_num"));
        }
        assert_eq!(seqs, [0, 1, 2, 3, 4, 5, 7, 8]);
        assert_eq!(sim.stats(Venue::Coinbase).dropped, 1);
        sim.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kraken_checksum_fault_sends_one_wrong_checksum() {
    bounded(async {
        let sim = start(config(33)).await;
        let mut ws = kraken_subscribed(&sim).await;
        let mut book = Book::new();
        let (mut good, mut bad) = (0, 0);
        let mut injected = false;
        while good < 30 {
            let v = json(&mut ws).await;
            if v["channel"] != "book" {
                continue;
            }
            let data = &v["data"][0];
            if v["type"] == "snapshot" {
                book.clear();
            }
            for (key, side) in [("bids", Side::Bid), ("asks", Side::Ask)] {
                for l in data[key].as_array().expect("levels") {
                    book.set(side, dec(&l["price"]), dec(&l["qty"]));
                }
            }
            book.truncate(1000);
            let want = u64::from(checksum::kraken(&book, 1, 8));
            let got = data["checksum"].as_u64().expect("checksum");
            if got == want {
                good += 1;
            } else {
                assert_eq!(got, (want + 1) & 0xffff_ffff, "corrupted by exactly one");
                bad += 1;
            }
            if good == 5 && !injected {
                sim.inject(Venue::Kraken, Fault::Checksum);
                injected = true;
            }
        }
        assert_eq!(bad, 1);
        assert_eq!(sim.stats(Venue::Kraken).corrupted, 1);
        sim.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bitfinex_checksum_fault_sends_one_wrong_cs() {
    bounded(async {
        let sim = start(config(34)).await;
        let mut ws = connect(&sim.endpoint(Venue::Bitfinex).ws_url).await;
        let _info = json(&mut ws).await;
        send(&mut ws, r#"{"event":"conf","flags":131072}"#).await;
        send(&mut ws, r#"{"event":"subscribe","channel":"book","symbol":"tBTCUSD","prec":"P0","freq":"F0","len":"250"}"#).await;
        let _conf = json(&mut ws).await;
        let _sub = json(&mut ws).await;
        let mut book = Book::new();
        let (mut good, mut bad) = (0, 0);
        let apply = |book: &mut Book, e: &Value| {
            let amount = dec(&e[2]);
            let side = if amount.is_negative() { Side::Ask } else { Side::Bid };
            let qty = if e[1] == 0 { depthagg::decimal::Dec::ZERO } else { amount.abs() };
            book.set(side, dec(&e[0]), qty);
        };
        while good < 30 {
            let v = json(&mut ws).await;
            match &v[1] {
                Value::String(s) if s == "cs" => {
                    let want = checksum::bitfinex(&book);
                    let got = v[2].as_i64().expect("cs");
                    if got == i64::from(want) {
                        good += 1;
                    } else {
                        assert_eq!(got, i64::from(want.wrapping_add(1)));
                        bad += 1;
                    }
                    if good == 5 && bad == 0 {
                        sim.inject(Venue::Bitfinex, Fault::Checksum);
                    }
                }
                Value::Array(a) if a.first().is_some_and(Value::is_array) => {
                    book.clear();
                    a.iter().for_each(|e| apply(&mut book, e));
                }
                Value::Array(_) => apply(&mut book, &v[1]),
                _ => {}
            }
        }
        assert_eq!(bad, 1);
        sim.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_fault_sends_close_frame_1001() {
    bounded(async {
        let sim = start(config(35)).await;
        let mut ws = kraken_subscribed(&sim).await;
        let _snapshot = json(&mut ws).await;
        sim.inject(Venue::Kraken, Fault::Close);
        loop {
            match read(&mut ws, PATIENCE).await {
                Read::Text(_) => continue,
                Read::Closed(code) => {
                    assert_eq!(code, 1001);
                    break;
                }
                Read::Timeout => panic!("no close"),
            }
        }
        assert_eq!(sim.stats(Venue::Kraken).closed, 1);
        // The venue still serves new connections.
        let mut again = kraken_subscribed(&sim).await;
        assert_eq!(json(&mut again).await["type"], "snapshot");
        sim.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stall_fault_keeps_socket_open_and_silent() {
    bounded(async {
        let sim = start(config(36)).await;
        let mut ws = kraken_subscribed(&sim).await;
        let _snapshot = json(&mut ws).await;
        sim.inject(Venue::Kraken, Fault::Stall);
        // Drain what was sent before the stall took effect.
        while sim.stats(Venue::Kraken).stalled == 0 {
            let _ = read(&mut ws, Duration::from_millis(20)).await;
        }
        while let Read::Text(_) = read(&mut ws, Duration::from_millis(300)).await {}
        let steps = sim.stats(Venue::Kraken).steps;
        // Neither updates nor heartbeats (period 100 ms) arrive, and the socket is not closed.
        assert!(matches!(
            read(&mut ws, Duration::from_millis(800)).await,
            Read::Timeout
        ));
        assert!(sim.stats(Venue::Kraken).steps > steps, "the market went on");
        send(&mut ws, r#"{"method":"ping","req_id":1}"#).await;
        assert!(matches!(
            read(&mut ws, Duration::from_millis(300)).await,
            Read::Timeout
        ));
        sim.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_fault_sends_one_unparsable_frame_then_goes_on() {
    bounded(async {
        let sim = start(config(37)).await;
        let mut ws = binance_stream(&sim).await;
        let _ = binance_ids(&mut ws, 3).await;
        sim.inject(Venue::Binance, Fault::Malformed);
        let mut ids = Vec::new();
        let mut malformed = Vec::new();
        while ids.len() < 10 {
            let t = text(&mut ws).await;
            match serde_json::from_str::<Value>(&t) {
                Ok(v) => ids.push((
                    v["data"]["U"].as_u64().expect("U"),
                    v["data"]["u"].as_u64().expect("u"),
                )),
                Err(_) => malformed.push(t),
            }
        }
        assert_eq!(malformed.len(), 1);
        assert!(malformed[0].starts_with("{\"stream\":\"btcusdt@depth@100ms\",\"data\":{"));
        assert_eq!(gaps(&ids), 0, "the stream itself stays intact");
        sim.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reject_fault_refuses_one_subscription_per_venue() {
    bounded(async {
        let sim = start(config(38)).await;
        for v in Venue::ALL {
            sim.inject(v, Fault::Reject);
        }
        // Binance: the REST snapshot is the subscription that fails.
        let rest = sim.endpoint(Venue::Binance).rest_url.expect("REST");
        let url = format!("{rest}/api/v3/depth?symbol=BTCUSDT&limit=10");
        let r = reqwest::get(&url).await.expect("GET");
        assert_eq!(r.status().as_u16(), 400);
        assert_eq!(r.text().await.expect("body"), r#"{"code":-1121,"msg":"Invalid symbol."}"#);
        assert_eq!(reqwest::get(&url).await.expect("GET").status().as_u16(), 200);

        let mut cb = connect(&sim.endpoint(Venue::Coinbase).ws_url).await;
        let sub = r#"{"type":"subscribe","product_ids":["BTC-USD"],"channel":"level2"}"#;
        send(&mut cb, sub).await;
        let e = json(&mut cb).await;
        assert_eq!((&e["type"], &e["message"]), (&Value::from("error"), &Value::from("Failed to subscribe")));
        send(&mut cb, sub).await;
        assert_eq!(json(&mut cb).await["events"][0]["type"], "snapshot");

        let mut kr = connect(&sim.endpoint(Venue::Kraken).ws_url).await;
        let _status = json(&mut kr).await;
        send(&mut kr, r#"{"method":"subscribe","params":{"channel":"book","symbol":["BTC/USD"],"depth":10},"req_id":3}"#).await;
        let e = json(&mut kr).await;
        assert_eq!((&e["success"], &e["method"], &e["req_id"]), (&Value::from(false), &Value::from("subscribe"), &Value::from(3)));

        let mut bf = connect(&sim.endpoint(Venue::Bitfinex).ws_url).await;
        let _info = json(&mut bf).await;
        send(&mut bf, r#"{"event":"subscribe","channel":"book","symbol":"tBTCUSD","prec":"P0","freq":"F0","len":"25"}"#).await;
        let e = json(&mut bf).await;
        assert_eq!((&e["event"], &e["code"]), (&Value::from("error"), &Value::from(10300)));

        for v in Venue::ALL {
            assert_eq!(sim.stats(v).rejections, 1, "{v}");
        }
        sim.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_faults_answer_451_and_429_once() {
    bounded(async {
        let sim = start(config(39)).await;
        sim.inject(Venue::Binance, Fault::Http451);
        sim.inject(Venue::Kraken, Fault::Http429);
        let url = format!(
            "{}/stream?streams=btcusdt@depth@100ms",
            sim.endpoint(Venue::Binance).ws_url
        );
        match tokio_tungstenite::connect_async(&url).await {
            Err(tungstenite::Error::Http(resp)) => {
                assert_eq!(resp.status().as_u16(), 451);
                let body =
                    String::from_utf8(resp.body().clone().unwrap_or_default()).expect("UTF-8");
                assert!(
                    body.starts_with(
                        "{\"code\":0,\"msg\":\"Service unavailable from a restricted location"
                    ),
                    "{body}"
                );
            }
            other => panic!("expected HTTP 451, got {:?}", other.map(|_| ())),
        }
        match tokio_tungstenite::connect_async(sim.endpoint(Venue::Kraken).ws_url).await {
            Err(tungstenite::Error::Http(resp)) => assert_eq!(resp.status().as_u16(), 429),
            other => panic!("expected HTTP 429, got {:?}", other.map(|_| ())),
        }
        // One-shot: the next handshakes succeed.
        let mut ws = connect(&url).await;
        let _ = binance_ids(&mut ws, 1).await;
        assert_eq!(sim.stats(Venue::Binance).handshakes_refused, 1);
        assert_eq!(sim.stats(Venue::Kraken).handshakes_refused, 1);
        sim.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delayed_snapshot_still_gives_a_consistent_book() {
    bounded(async {
        let sim = start(config(40)).await;
        sim.inject(
            Venue::Bitfinex,
            Fault::DelaySnapshot(Duration::from_millis(300)),
        );
        let mut ws = connect(&sim.endpoint(Venue::Bitfinex).ws_url).await;
        let _info = json(&mut ws).await;
        send(
            &mut ws,
            r#"{"event":"subscribe","channel":"book","symbol":"tBTCUSD","len":"250"}"#,
        )
        .await;
        let _sub = json(&mut ws).await;
        let snap = json(&mut ws).await;
        let mut book = Book::new();
        let apply = |book: &mut Book, e: &Value| {
            let amount = dec(&e[2]);
            let side = if amount.is_negative() {
                Side::Ask
            } else {
                Side::Bid
            };
            let qty = if e[1] == 0 {
                depthagg::decimal::Dec::ZERO
            } else {
                amount.abs()
            };
            book.set(side, dec(&e[0]), qty);
        };
        for e in snap[1].as_array().expect("snapshot") {
            apply(&mut book, e);
        }
        // Updates made during the delay were queued behind the snapshot, not lost.
        for _ in 0..20 {
            let v = json(&mut ws).await;
            if v[1].is_array() {
                apply(&mut book, &v[1]);
            }
        }
        sim.pause().await;
        while book != sim.true_book(Venue::Bitfinex) {
            let v = json(&mut ws).await;
            if v[1].is_array() {
                apply(&mut book, &v[1]);
            }
        }
        assert_eq!(sim.stats(Venue::Bitfinex).faults, 1);
        sim.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probabilistic_faults_are_deterministic_for_a_seed() {
    bounded(async {
        let mut runs = Vec::new();
        for _ in 0..2 {
            let sim = start(SimConfig {
                faults: FaultPlan::parse("binance=drop~0.3").expect("spec"),
                start_paused: true,
                ..config(41)
            })
            .await;
            let mut ws = binance_stream(&sim).await;
            sim.resume();
            runs.push(binance_ids(&mut ws, 20).await);
            sim.shutdown().await;
        }
        assert_eq!(runs[0], runs[1]);
        assert!(gaps(&runs[0]) > 0);
    })
    .await;
}
