//! The simulator speaks each venue's protocol: a plain WebSocket client rebuilds every book from
//! the wire and ends up with exactly the simulator's true book, checksums verify, Binance ids are
//! continuous and its REST snapshot is consistent, and the same seed gives the same frames.

mod common;
mod sim_support;

use std::future::Future;
use std::time::Duration;

use depthagg::book::Book;
use depthagg::sim::{SimConfig, Speed};
use depthagg::types::{Side, Venue};
use depthagg::venue::checksum;
use serde_json::{Value, json};
use sim_support::*;

async fn bounded<F: Future<Output = ()>>(f: F) {
    tokio::time::timeout(Duration::from_secs(90), f)
        .await
        .expect("test finished in time");
}

async fn get(url: &str) -> (u16, String) {
    let r = reqwest::get(url).await.expect("GET");
    let status = r.status().as_u16();
    (status, r.text().await.expect("body"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binance_book_matches_truth_and_ids_are_continuous() {
    bounded(async {
        let sim = start(config(11)).await;
        let e = sim.endpoint(Venue::Binance);
        let mut ws = connect(&format!("{}/stream?streams=btcusdt@depth@100ms", e.ws_url)).await;
        let first = json(&mut ws).await;
        assert_eq!(first["stream"], "btcusdt@depth@100ms");
        assert_eq!(first["data"]["e"], "depthUpdate");
        assert_eq!(first["data"]["s"], "BTCUSDT");
        let first_u = first["data"]["U"].as_u64().expect("U");
        let rest = e.rest_url.expect("binance has REST");
        let (status, body) = get(&format!("{rest}/api/v3/depth?symbol=BTCUSDT&limit=5000")).await;
        assert_eq!(status, 200);
        let snap: Value = serde_json::from_str(&body).expect("snapshot JSON");
        let last_id = snap["lastUpdateId"].as_u64().expect("lastUpdateId");
        assert!(
            last_id >= first_u,
            "snapshot {last_id} older than first event {first_u}"
        );
        let mut book = Book::new();
        apply_pairs(&mut book, Side::Bid, &snap["bids"]);
        apply_pairs(&mut book, Side::Ask, &snap["asks"]);
        assert!(book.len(Side::Bid) >= 4950 && book.len(Side::Ask) >= 4950);

        let mut prev_u: Option<u64> = None;
        let mut book_id = last_id;
        let mut applied = 0;
        let mut pending = Some(first);
        let mut paused = false;
        loop {
            if paused && book == sim.true_book(Venue::Binance) {
                break;
            }
            let frame = match pending.take() {
                Some(f) => f,
                None => json(&mut ws).await,
            };
            let ev = &frame["data"];
            let (u_first, u_last) = (ev["U"].as_u64().expect("U"), ev["u"].as_u64().expect("u"));
            assert!(u_first <= u_last);
            if let Some(p) = prev_u {
                assert_eq!(u_first, p + 1, "U must follow the previous u");
            }
            prev_u = Some(u_last);
            if u_last <= book_id {
                continue;
            }
            if applied == 0 {
                assert!(
                    u_first <= book_id + 1 && book_id < u_last,
                    "first event straddles the snapshot"
                );
            }
            apply_pairs(&mut book, Side::Bid, &ev["b"]);
            apply_pairs(&mut book, Side::Ask, &ev["a"]);
            assert!(!book.is_crossed());
            book_id = u_last;
            applied += 1;
            if applied == 40 && !paused {
                sim.pause().await;
                paused = true;
            }
        }
        assert_eq!(book_id, sim.binance_update_id());
        assert!(sim.stats(Venue::Binance).updates >= 40);
        sim.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binance_rest_snapshot_limits_and_errors() {
    bounded(async {
        let sim = start(SimConfig {
            start_paused: true,
            ..config(12)
        })
        .await;
        let rest = sim.endpoint(Venue::Binance).rest_url.expect("REST");
        let truth = sim.true_book(Venue::Binance);

        let (status, body) = get(&format!("{rest}/api/v3/depth?symbol=BTCUSDT&limit=5")).await;
        assert_eq!(status, 200);
        let v: Value = serde_json::from_str(&body).expect("JSON");
        assert_eq!(v["lastUpdateId"].as_u64(), Some(sim.binance_update_id()));
        let mut top = Book::new();
        apply_pairs(&mut top, Side::Bid, &v["bids"]);
        apply_pairs(&mut top, Side::Ask, &v["asks"]);
        assert_eq!(top, truncated(&truth, 5));
        let best = &v["bids"][0];
        let (p, q) = (best[0].as_str().expect("price"), best[1].as_str().expect("qty"));
        assert_eq!(p.split_once('.').expect("dot").1.len(), 2, "{p}");
        assert_eq!(q.split_once('.').expect("dot").1.len(), 8, "{q}");
        assert!(body.starts_with(&format!("{{\"lastUpdateId\":{},\"bids\":[[\"", sim.binance_update_id())));

        let (_, body) = get(&format!("{rest}/api/v3/depth?symbol=BTCUSDT")).await;
        let v: Value = serde_json::from_str(&body).expect("JSON");
        assert_eq!(v["bids"].as_array().map(Vec::len), Some(100));
        assert_eq!(v["asks"].as_array().map(Vec::len), Some(100));

        // Above 5000 the limit is capped; the whole (≤ 5000-level) truth comes back.
        let (_, body) = get(&format!("{rest}/api/v3/depth?symbol=BTCUSDT&limit=9000")).await;
        let v: Value = serde_json::from_str(&body).expect("JSON");
        let mut all = Book::new();
        apply_pairs(&mut all, Side::Bid, &v["bids"]);
        apply_pairs(&mut all, Side::Ask, &v["asks"]);
        assert_eq!(all, truth);

        assert_eq!(
            get(&format!("{rest}/api/v3/depth?symbol=ETHBTC&limit=5")).await,
            (400, r#"{"code":-1121,"msg":"Invalid symbol."}"#.to_string())
        );
        assert_eq!(
            get(&format!("{rest}/api/v3/depth?symbol=BTCUSDT&limit=x")).await,
            (
                400,
                r#"{"code":-1100,"msg":"Illegal characters found in parameter 'limit'; legal range is '^[0-9]{1,20}$'."}"#
                    .to_string()
            )
        );
        assert_eq!(
            get(&format!("{rest}/api/v3/depth?limit=5")).await,
            (
                400,
                r#"{"code":-1102,"msg":"Mandatory parameter 'symbol' was not sent, was empty/null, or malformed."}"#
                    .to_string()
            )
        );
        assert_eq!(get(&format!("{rest}/api/v3/ticker")).await.0, 404);
        let s = sim.stats(Venue::Binance);
        assert_eq!((s.rest_requests, s.snapshots, s.rejections, s.steps), (7, 3, 3, 0));
        sim.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coinbase_book_matches_truth_with_sequence_and_heartbeats() {
    bounded(async {
        let sim = start(config(13)).await;
        let mut ws = connect(&sim.endpoint(Venue::Coinbase).ws_url).await;
        send(
            &mut ws,
            r#"{"type":"subscribe","product_ids":["BTC-USD"],"channel":"level2"}"#,
        )
        .await;
        send(&mut ws, r#"{"type":"subscribe","channel":"heartbeats"}"#).await;
        let mut book = Book::new();
        let mut seq = 0;
        let (mut snapshots, mut updates, mut heartbeats) = (0, 0, 0);
        let mut last_subs = Value::Null;
        let mut paused = false;
        loop {
            if paused && heartbeats > 0 && book == sim.true_book(Venue::Coinbase) {
                break;
            }
            let v = json(&mut ws).await;
            assert_eq!(
                v["sequence_num"].as_u64(),
                Some(seq),
                "sequence_num per connection"
            );
            seq += 1;
            match v["channel"].as_str() {
                Some("l2_data") => {
                    let ev = &v["events"][0];
                    assert_eq!(ev["product_id"], "BTC-USD");
                    if ev["type"] == "snapshot" {
                        book.clear();
                        snapshots += 1;
                    } else {
                        assert_eq!(ev["type"], "update");
                        updates += 1;
                    }
                    for u in ev["updates"].as_array().expect("updates") {
                        let side = match u["side"].as_str() {
                            Some("bid") => Side::Bid,
                            Some("offer") => Side::Ask,
                            other => panic!("side {other:?}"),
                        };
                        book.set(side, dec(&u["price_level"]), dec(&u["new_quantity"]));
                    }
                    assert!(!book.is_crossed());
                }
                Some("subscriptions") => last_subs = v["events"][0]["subscriptions"].clone(),
                Some("heartbeats") => {
                    assert!(v["events"][0]["heartbeat_counter"].as_u64().is_some());
                    heartbeats += 1;
                }
                other => panic!("unexpected channel {other:?}: {v}"),
            }
            if updates == 30 && !paused {
                sim.pause().await;
                paused = true;
            }
        }
        assert_eq!(snapshots, 1);
        assert!(
            book.len(Side::Bid) >= 14_900,
            "Coinbase serves a large book"
        );
        assert_eq!(
            last_subs,
            json!({"heartbeats": ["heartbeats"], "level2": ["BTC-USD"]})
        );
        sim.shutdown().await;
    })
    .await;
}

async fn follow_kraken(seed: u64, depth: usize) {
    let sim = start(config(seed)).await;
    let mut ws = connect(&format!("{}/v2", sim.endpoint(Venue::Kraken).ws_url)).await;
    let status = json(&mut ws).await;
    assert_eq!(status["channel"], "status");
    assert_eq!(status["data"][0]["system"], "online");
    assert_eq!(status["data"][0]["api_version"], "v2");
    send(
        &mut ws,
        &format!(
            r#"{{"method":"subscribe","params":{{"channel":"book","symbol":["BTC/USD"],"depth":{depth},"snapshot":true}},"req_id":1}}"#
        ),
    )
    .await;
    let ack = json(&mut ws).await;
    assert_eq!(ack["success"], true);
    assert_eq!(ack["req_id"], 1);
    assert_eq!(
        ack["result"],
        json!({"channel":"book","depth":depth,"snapshot":true,"symbol":"BTC/USD"})
    );
    let mut book = Book::new();
    let (mut verified, mut heartbeats) = (0, 0);
    let mut paused = false;
    loop {
        if paused && heartbeats > 0 && book == truncated(&sim.true_book(Venue::Kraken), depth) {
            break;
        }
        let v = json(&mut ws).await;
        if v["channel"] == "heartbeat" {
            heartbeats += usize::from(paused);
            continue;
        }
        assert_eq!(v["channel"], "book");
        let data = &v["data"][0];
        assert_eq!(data["symbol"], "BTC/USD");
        if v["type"] == "snapshot" {
            assert_eq!(verified, 0, "one snapshot, first");
            book.clear();
        }
        for (key, side) in [("bids", Side::Bid), ("asks", Side::Ask)] {
            for l in data[key].as_array().expect("levels") {
                assert!(
                    l["price"].is_number() && l["qty"].is_number(),
                    "JSON floats"
                );
                book.set(side, dec(&l["price"]), dec(&l["qty"]));
            }
        }
        book.truncate(depth);
        assert!(!book.is_crossed());
        assert_eq!(
            data["checksum"].as_u64(),
            Some(u64::from(checksum::kraken(&book, 1, 8))),
            "checksum after {verified} verified"
        );
        verified += 1;
        if verified == 40 && !paused {
            sim.pause().await;
            paused = true;
        }
    }
    assert_eq!(
        book.len(Side::Bid),
        depth.min(sim.true_book(Venue::Kraken).len(Side::Bid))
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kraken_depth_1000_book_matches_truth_and_checksums_verify() {
    bounded(follow_kraken(14, 1000)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kraken_depth_10_book_matches_truncated_truth() {
    bounded(follow_kraken(15, 10)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kraken_subscription_errors() {
    bounded(async {
        let sim = start(config(16)).await;
        let mut ws = connect(&sim.endpoint(Venue::Kraken).ws_url).await;
        let _status = json(&mut ws).await;
        send(&mut ws, r#"{"method":"subscribe","params":{"channel":"book","symbol":["XBT/USD"],"depth":10},"req_id":7}"#).await;
        let e = json(&mut ws).await;
        assert_eq!(e["error"], "Currency pair not supported XBT/USD");
        assert_eq!((&e["method"], &e["success"], &e["req_id"], &e["symbol"]), (&json!("subscribe"), &json!(false), &json!(7), &json!("XBT/USD")));
        send(&mut ws, r#"{"method":"subscribe","params":{"channel":"book","symbol":["BTC/USD"],"depth":7},"req_id":8}"#).await;
        let e = json(&mut ws).await;
        assert_eq!(e["success"], false);
        assert_eq!(e["req_id"], 8);
        assert!(e["error"].as_str().expect("error text").contains("depth"));
        send(&mut ws, r#"{"method":"ping","req_id":9}"#).await;
        let p = json(&mut ws).await;
        assert_eq!((&p["method"], &p["req_id"]), (&json!("pong"), &json!(9)));
        assert_eq!(sim.stats(Venue::Kraken).rejections, 2);
        sim.shutdown().await;
    })
    .await;
}

async fn follow_bitfinex(seed: u64, len: usize) {
    let sim = start(config(seed)).await;
    let mut ws = connect(&format!("{}/ws/2", sim.endpoint(Venue::Bitfinex).ws_url)).await;
    let info = json(&mut ws).await;
    assert_eq!(
        (
            &info["event"],
            &info["version"],
            &info["platform"]["status"]
        ),
        (&json!("info"), &json!(2), &json!(1))
    );
    send(&mut ws, r#"{"event":"conf","flags":131072}"#).await;
    assert_eq!(
        text(&mut ws).await,
        r#"{"event":"conf","status":"OK","flags":131072}"#
    );
    send(
        &mut ws,
        &format!(r#"{{"event":"subscribe","channel":"book","symbol":"tBTCUSD","prec":"P0","freq":"F0","len":"{len}"}}"#),
    )
    .await;
    let sub = json(&mut ws).await;
    assert_eq!(sub["event"], "subscribed");
    assert_eq!(sub["len"], len.to_string());
    assert_eq!(sub["pair"], "BTCUSD");
    let chan = sub["chanId"].as_u64().expect("chanId");
    let mut book = Book::new();
    let (mut snapshots, mut verified, mut heartbeats) = (0, 0, 0);
    let mut paused = false;
    loop {
        if paused && heartbeats > 0 && book == truncated(&sim.true_book(Venue::Bitfinex), len) {
            break;
        }
        let t = text(&mut ws).await;
        let v: Value = serde_json::from_str(&t).expect("JSON");
        assert_eq!(v[0].as_u64(), Some(chan), "{t}");
        let apply = |book: &mut Book, e: &Value| {
            let (price, count, amount) = (dec(&e[0]), e[1].as_u64().expect("count"), dec(&e[2]));
            let side = if amount.is_negative() {
                Side::Ask
            } else {
                Side::Bid
            };
            if count == 0 {
                book.set(side, price, depthagg::decimal::Dec::ZERO);
            } else {
                book.set(side, price, amount.abs());
            }
        };
        match &v[1] {
            Value::String(s) if s == "cs" => {
                assert_eq!(
                    v[2].as_i64(),
                    Some(i64::from(checksum::bitfinex(&book))),
                    "cs after {verified}"
                );
                verified += 1;
            }
            Value::String(s) if s == "hb" => heartbeats += usize::from(paused),
            Value::Array(a) if a.first().is_some_and(Value::is_array) => {
                snapshots += 1;
                book.clear();
                for e in a {
                    apply(&mut book, e);
                }
                // The true book keeps 245 to 250 levels per side.
                assert!(book.len(Side::Bid) >= len.min(245) && book.len(Side::Bid) <= len);
            }
            Value::Array(_) => {
                assert_eq!(snapshots, 1, "updates follow the snapshot");
                apply(&mut book, &v[1]);
            }
            other => panic!("unexpected {other}"),
        }
        assert!(book.len(Side::Bid) <= len && book.len(Side::Ask) <= len);
        if verified == 40 && !paused {
            sim.pause().await;
            paused = true;
        }
    }
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bitfinex_len_250_book_matches_truth_and_checksums_verify() {
    bounded(follow_bitfinex(17, 250)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bitfinex_len_25_book_matches_truncated_truth() {
    bounded(follow_bitfinex(18, 25)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bitfinex_subscription_errors() {
    bounded(async {
        let sim = start(config(19)).await;
        let mut ws = connect(&sim.endpoint(Venue::Bitfinex).ws_url).await;
        let _info = json(&mut ws).await;
        for (req, code) in [
            (r#"{"event":"subscribe","channel":"book","symbol":"tETHUSD","prec":"P0","len":"25"}"#, 10300),
            (r#"{"event":"subscribe","channel":"book","symbol":"tBTCUSD","prec":"P7","len":"25"}"#, 10011),
            (r#"{"event":"subscribe","channel":"book","symbol":"tBTCUSD","prec":"P0","len":"30"}"#, 10012),
        ] {
            send(&mut ws, req).await;
            let e = json(&mut ws).await;
            assert_eq!(e["event"], "error");
            assert_eq!(e["code"], code, "{e}");
        }
        let t = {
            send(&mut ws, r#"{"event":"subscribe","channel":"book","symbol":"tETHUSD","prec":"P0","freq":"F0","len":"25"}"#).await;
            text(&mut ws).await
        };
        assert_eq!(
            t,
            r#"{"event":"error","channel":"book","symbol":"tETHUSD","prec":"P0","freq":"F0","len":"25","msg":"symbol: invalid","code":10300,"pair":"ETHUSD"}"#
        );
        assert_eq!(sim.stats(Venue::Bitfinex).rejections, 4);
        sim.shutdown().await;
    })
    .await;
}

/// The first `n` data frames a fresh client gets, with clock fields removed.
async fn first_frames(seed: u64, venue: Venue, n: usize) -> Vec<Value> {
    let sim = start(SimConfig {
        start_paused: true,
        ..config(seed)
    })
    .await;
    let e = sim.endpoint(venue);
    let mut ws = match venue {
        Venue::Binance => {
            connect(&format!("{}/stream?streams=btcusdt@depth@100ms", e.ws_url)).await
        }
        _ => connect(&e.ws_url).await,
    };
    let mut frames = Vec::new();
    match venue {
        Venue::Binance => {}
        Venue::Coinbase => {
            send(
                &mut ws,
                r#"{"type":"subscribe","product_ids":["BTC-USD"],"channel":"level2"}"#,
            )
            .await;
            frames.push(json(&mut ws).await);
        }
        Venue::Kraken => {
            frames.push(json(&mut ws).await);
            send(&mut ws, r#"{"method":"subscribe","params":{"channel":"book","symbol":["BTC/USD"],"depth":25}}"#).await;
            frames.push(json(&mut ws).await);
            frames.push(json(&mut ws).await);
        }
        Venue::Bitfinex => {
            frames.push(json(&mut ws).await);
            send(&mut ws, r#"{"event":"conf","flags":131072}"#).await;
            send(
                &mut ws,
                r#"{"event":"subscribe","channel":"book","symbol":"tBTCUSD","len":"25"}"#,
            )
            .await;
            for _ in 0..4 {
                frames.push(json(&mut ws).await);
            }
        }
    }
    sim.resume();
    while frames.len() < n {
        let v = json(&mut ws).await;
        let heartbeat =
            v["channel"] == "heartbeat" || v["channel"] == "subscriptions" || v[1] == "hb";
        if !heartbeat {
            frames.push(v);
        }
    }
    sim.shutdown().await;
    frames.into_iter().map(without_clock).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_seed_gives_the_same_first_frames() {
    bounded(async {
        for venue in Venue::ALL {
            let a = first_frames(21, venue, 25).await;
            let b = first_frames(21, venue, 25).await;
            assert_eq!(a, b, "{venue}");
        }
        let a = first_frames(21, Venue::Kraken, 10).await;
        let c = first_frames(22, Venue::Kraken, 10).await;
        assert_ne!(a, c);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capture_frames_are_served_as_recorded() {
    let Some(path) = common::fixture("bitfinex-v2.capture.jsonl") else {
        return;
    };
    bounded(async {
        let recorded: Vec<String> = common::records(&path)
            .into_iter()
            .filter_map(|r| match r {
                depthagg::capture::Record::Recv { data, .. } => Some(data),
                _ => None,
            })
            .take(30)
            .collect();
        let sim = start(SimConfig {
            capture: Some(path.clone()),
            speed: Speed::Max,
            ..config(1)
        })
        .await;
        let mut ws = connect(&sim.endpoint(Venue::Bitfinex).ws_url).await;
        // Everything was recorded after the client's first frame: nothing comes before ours.
        assert!(matches!(
            read(&mut ws, Duration::from_millis(300)).await,
            Read::Timeout
        ));
        send(&mut ws, r#"{"event":"conf","flags":65536}"#).await;
        for want in &recorded {
            assert_eq!(&text(&mut ws).await, want);
        }
        sim.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capture_rest_answers_are_the_recorded_ones() {
    let Some(path) = common::fixture("binance-spot.capture.jsonl") else {
        return;
    };
    bounded(async {
        let recorded = common::records(&path)
            .into_iter()
            .find_map(|r| match r {
                depthagg::capture::Record::Http { url, data, .. } if url.contains("NKNUSDT") => {
                    Some(data)
                }
                _ => None,
            })
            .expect("an NKNUSDT snapshot in the fixture");
        let sim = start(SimConfig {
            capture: Some(path.clone()),
            speed: Speed::Max,
            ..config(1)
        })
        .await;
        let e = sim.endpoint(Venue::Binance);
        let mut ws = connect(&format!("{}/stream?streams=nknusdt@depth@100ms", e.ws_url)).await;
        let first = json(&mut ws).await;
        assert_eq!(first["stream"], "nknusdt@depth@100ms");
        let rest = e.rest_url.expect("REST");
        assert_eq!(
            get(&format!("{rest}/api/v3/depth?symbol=NKNUSDT&limit=5000")).await,
            (200, recorded)
        );
        // One recorded answer per symbol: a second request finds none.
        assert_eq!(
            get(&format!("{rest}/api/v3/depth?symbol=NKNUSDT&limit=5000"))
                .await
                .0,
            400
        );
        sim.shutdown().await;
    })
    .await;
}
