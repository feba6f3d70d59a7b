//! One venue's shared state: the true book, the market task that steps it, the broadcast of steps
//! to the connections, pending faults, counters, and the pieces every session uses (the frame
//! writer, the session select loop's step source, book views and their diffs).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::SinkExt;
use futures_util::stream::SplitSink;
use rand::SeedableRng;
use rand::rngs::StdRng;
use tokio::net::TcpStream;
use tokio::sync::{broadcast, watch};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use super::faults::{Fault, FaultRule, Scheduler};
use super::market::{Change, VenueMarket};
use super::{Rate, SimStats, Timing};
use crate::book::Book;
use crate::decimal::Dec;
use crate::types::{Side, Venue};

/// Steps a connection may fall behind before it is cut off as a slow consumer.
pub(crate) const STEP_BACKLOG: usize = 8192;

/// One market step as broadcast to the connections.
#[derive(Debug)]
pub(crate) struct Step {
    /// The changes, in order.
    pub changes: Vec<Change>,
    /// Binance: first update id of the event (`U`).
    pub first_id: u64,
    /// Binance: last update id of the event (`u`).
    pub last_id: u64,
    /// Stream faults riding on this step.
    pub faults: Vec<Fault>,
}

impl Step {
    /// True when this step carries the fault.
    pub fn has(&self, f: Fault) -> bool {
        self.faults.contains(&f)
    }
}

/// A consistent start for a subscriber: the book now and every step after it.
pub(crate) struct Subscription {
    /// The book as of the last step broadcast.
    pub book: Book,
    /// Every later step.
    pub rx: broadcast::Receiver<Arc<Step>>,
}

/// Atomic counters behind [`SimStats`].
#[derive(Default, Debug)]
pub(crate) struct Counters {
    pub connections: AtomicU64,
    pub handshakes_refused: AtomicU64,
    pub subscriptions: AtomicU64,
    pub rejections: AtomicU64,
    pub snapshots: AtomicU64,
    pub updates: AtomicU64,
    pub frames: AtomicU64,
    pub bytes: AtomicU64,
    pub heartbeats: AtomicU64,
    pub pings: AtomicU64,
    pub rest_requests: AtomicU64,
    pub steps: AtomicU64,
    pub faults: AtomicU64,
    pub dropped: AtomicU64,
    pub corrupted: AtomicU64,
    pub malformed: AtomicU64,
    pub closed: AtomicU64,
    pub stalled: AtomicU64,
    pub slow_consumers: AtomicU64,
}

/// Add one to a counter.
pub(crate) fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

impl Counters {
    fn snapshot(&self) -> SimStats {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        SimStats {
            connections: g(&self.connections),
            handshakes_refused: g(&self.handshakes_refused),
            subscriptions: g(&self.subscriptions),
            rejections: g(&self.rejections),
            snapshots: g(&self.snapshots),
            updates: g(&self.updates),
            frames: g(&self.frames),
            bytes: g(&self.bytes),
            heartbeats: g(&self.heartbeats),
            pings: g(&self.pings),
            rest_requests: g(&self.rest_requests),
            steps: g(&self.steps),
            faults: g(&self.faults),
            dropped: g(&self.dropped),
            corrupted: g(&self.corrupted),
            malformed: g(&self.malformed),
            closed: g(&self.closed),
            stalled: g(&self.stalled),
            slow_consumers: g(&self.slow_consumers),
        }
    }
}

struct HubState {
    market: VenueMarket,
    last_id: u64,
}

/// A venue's shared state.
pub(crate) struct Hub {
    /// The venue.
    pub venue: Venue,
    /// The simulator's seed.
    pub seed: u64,
    /// Heartbeat and ping periods.
    pub timing: Timing,
    /// Counters.
    pub counters: Counters,
    /// Becomes true once, at shutdown.
    pub shutdown: watch::Receiver<bool>,
    /// Recorded traffic to serve instead of the synthetic market.
    pub capture: Option<Arc<super::capture::CaptureVenue>>,
    state: Mutex<HubState>,
    tx: broadcast::Sender<Arc<Step>>,
    pending_step: Mutex<Vec<Fault>>,
    pending_conn: Mutex<VecDeque<Fault>>,
    paused: watch::Sender<bool>,
    step_lock: tokio::sync::Mutex<()>,
    next_conn: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves plain data behind; keep serving it.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Hub {
    /// A venue hub at step 0.
    pub fn new(
        venue: Venue,
        seed: u64,
        timing: Timing,
        shutdown: watch::Receiver<bool>,
        capture: Option<Arc<super::capture::CaptureVenue>>,
    ) -> Hub {
        Hub {
            venue,
            seed,
            timing,
            counters: Counters::default(),
            shutdown,
            capture,
            state: Mutex::new(HubState {
                market: VenueMarket::new(venue, seed),
                last_id: 40_000_000_000 + seed % 1_000_000_000,
            }),
            tx: broadcast::channel(STEP_BACKLOG).0,
            pending_step: Mutex::new(Vec::new()),
            pending_conn: Mutex::new(VecDeque::new()),
            paused: watch::channel(false).0,
            step_lock: tokio::sync::Mutex::new(()),
            next_conn: AtomicU64::new(0),
        }
    }

    /// Statistics so far.
    pub fn stats(&self) -> SimStats {
        self.counters.snapshot()
    }

    /// The true book now.
    pub fn true_book(&self) -> Book {
        lock(&self.state).market.book().clone()
    }

    /// Binance: the update id of the true book.
    pub fn last_update_id(&self) -> u64 {
        lock(&self.state).last_id
    }

    /// A connection number, unique per venue (0, 1, ...).
    pub fn next_conn(&self) -> u64 {
        self.next_conn.fetch_add(1, Ordering::Relaxed)
    }

    /// The book now and every step after it, atomically.
    pub fn subscribe(&self) -> Subscription {
        let st = lock(&self.state);
        Subscription {
            book: st.market.book().clone(),
            rx: self.tx.subscribe(),
        }
    }

    /// Binance REST: the top `limit` levels per side and their update id.
    pub fn top(&self, limit: usize) -> (u64, Book) {
        let st = lock(&self.state);
        (st.last_id, top_of(st.market.book(), limit))
    }

    /// Queue a fault: stream faults ride on the next step, connection faults wait for the next
    /// handshake or subscription.
    pub fn inject(&self, fault: Fault) {
        if fault.is_connection_fault() {
            lock(&self.pending_conn).push_back(fault);
        } else {
            lock(&self.pending_step).push(fault);
        }
    }

    /// Take the oldest pending connection fault that matches.
    pub fn take_conn_fault(&self, matches: impl Fn(Fault) -> bool) -> Option<Fault> {
        let mut q = lock(&self.pending_conn);
        let pos = q.iter().position(|f| matches(*f))?;
        let f = q.remove(pos);
        if f.is_some() {
            bump(&self.counters.faults);
        }
        f
    }

    /// Stop stepping the market; returns once no step is in flight.
    pub async fn pause(&self) {
        self.paused.send_replace(true);
        drop(self.step_lock.lock().await);
    }

    /// Step the market again.
    pub fn resume(&self) {
        self.paused.send_replace(false);
    }

    fn do_step(&self, scheduler: &mut Scheduler, started: Instant) {
        let mut st = lock(&self.state);
        let index = st.market.steps() + 1;
        let mut faults = scheduler.due(index, started.elapsed());
        let (conn, stream): (Vec<Fault>, Vec<Fault>) =
            faults.drain(..).partition(|f| f.is_connection_fault());
        let mut faults = stream;
        faults.append(&mut lock(&self.pending_step));
        lock(&self.pending_conn).extend(conn);
        self.counters
            .faults
            .fetch_add(faults.len() as u64, Ordering::Relaxed);
        let changes = st.market.step();
        let first_id = st.last_id + 1;
        st.last_id += changes.len() as u64;
        let step = Step {
            first_id,
            last_id: st.last_id,
            changes,
            faults,
        };
        bump(&self.counters.steps);
        // Sent while the state is locked, so a subscriber's book and its first step always meet.
        let _ = self.tx.send(Arc::new(step));
    }
}

/// Step the venue's market at the configured rate until shutdown.
pub(crate) async fn run_market(hub: Arc<Hub>, rate: Rate, rules: Vec<FaultRule>) {
    let rng = StdRng::seed_from_u64(hub.seed ^ 0xfa17 ^ ((hub.venue.index() as u64) << 32));
    let mut scheduler = Scheduler::new(rules, rng);
    let mut shutdown = hub.shutdown.clone();
    let mut paused = hub.paused.subscribe();
    let period = match rate {
        Rate::Realistic => Some(Duration::from_millis(100)),
        Rate::PerSecond(n) => Some(Duration::from_secs(1) / n.max(1)),
        Rate::Max => None,
    };
    let mut ticker = period.map(|p| {
        let mut i = tokio::time::interval_at(tokio::time::Instant::now() + p, p);
        i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        i
    });
    let started = Instant::now();
    loop {
        if *shutdown.borrow() {
            return;
        }
        tokio::select! {
            _ = shutdown.changed() => return,
            r = paused.wait_for(|p| !*p) => if r.is_err() { return },
        }
        match &mut ticker {
            Some(t) => {
                tokio::select! {
                    _ = shutdown.changed() => return,
                    _ = t.tick() => {}
                }
            }
            None => {
                // Max rate: as fast as the slowest subscriber drains, and idle without any.
                if hub.tx.receiver_count() == 0 || hub.tx.len() >= STEP_BACKLOG / 2 {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    continue;
                }
                tokio::task::yield_now().await;
            }
        }
        let _guard = hub.step_lock.lock().await;
        if *paused.borrow() {
            continue;
        }
        hub.do_step(&mut scheduler, started);
    }
}

/// The next step of an optional subscription (pending forever without one).
pub(crate) async fn next_step(
    rx: &mut Option<broadcast::Receiver<Arc<Step>>>,
) -> Result<Arc<Step>, broadcast::error::RecvError> {
    match rx {
        Some(r) => r.recv().await,
        None => std::future::pending().await,
    }
}

/// The write half of a session's WebSocket, counting what it sends.
pub(crate) struct Out {
    sink: SplitSink<WebSocketStream<TcpStream>, Message>,
    hub: Arc<Hub>,
    /// When the last frame went out.
    pub last_sent: Instant,
}

/// What a venue's connection loop does with a step after [`Out::begin_step`].
pub(crate) enum Flow {
    /// Send this step the venue's way.
    Go(Arc<Step>),
    /// Nothing to send for it.
    Skip,
    /// The session is over.
    End,
}

/// The peer is gone; end the session.
#[derive(Debug)]
pub(crate) struct Gone;

impl Out {
    /// Wrap the write half.
    pub fn new(sink: SplitSink<WebSocketStream<TcpStream>, Message>, hub: Arc<Hub>) -> Out {
        Out {
            sink,
            hub,
            last_sent: Instant::now(),
        }
    }

    /// The venue this writer belongs to.
    pub fn hub(&self) -> &Hub {
        &self.hub
    }

    /// Send a text frame.
    pub async fn text(&mut self, text: String) -> Result<(), Gone> {
        let c = &self.hub.counters;
        bump(&c.frames);
        c.bytes.fetch_add(text.len() as u64, Ordering::Relaxed);
        self.sink
            .send(Message::Text(text))
            .await
            .map_err(|_| Gone)?;
        self.last_sent = Instant::now();
        Ok(())
    }

    /// Send a ping frame.
    pub async fn ping(&mut self, payload: Vec<u8>) -> Result<(), Gone> {
        bump(&self.hub.counters.pings);
        self.sink
            .send(Message::Ping(payload))
            .await
            .map_err(|_| Gone)
    }

    /// Take the next step of a subscription, handling what every venue handles alike: a close
    /// fault closes the socket, a stall fault stops all sending (the subscription is dropped and
    /// pings stop), a session too slow for the broadcast is closed as a slow consumer. Each is
    /// counted. What is left ([`Flow::Go`]) is the venue's to send.
    pub async fn begin_step(
        &mut self,
        step: Result<Arc<Step>, broadcast::error::RecvError>,
        rx: &mut Option<broadcast::Receiver<Arc<Step>>>,
        stalled: &mut bool,
    ) -> Flow {
        let counters = &self.hub.counters;
        match step {
            Ok(step) if step.has(Fault::Close) => {
                bump(&counters.closed);
                self.close(CloseCode::Away, "simulated close").await;
                Flow::End
            }
            Ok(step) if step.has(Fault::Stall) => {
                bump(&counters.stalled);
                *stalled = true;
                *rx = None;
                Flow::Skip
            }
            Ok(step) => Flow::Go(step),
            Err(broadcast::error::RecvError::Lagged(_)) => {
                bump(&counters.slow_consumers);
                self.close(CloseCode::Policy, "slow consumer").await;
                Flow::End
            }
            Err(broadcast::error::RecvError::Closed) => Flow::End,
        }
    }

    /// Send a close frame and flush; the session ends after this.
    pub async fn close(&mut self, code: CloseCode, reason: &str) {
        let frame = CloseFrame {
            code,
            reason: reason.to_string().into(),
        };
        let _ = self.sink.send(Message::Close(Some(frame))).await;
        let _ = self.sink.close().await;
    }
}

/// The best `depth` levels of each side.
pub(crate) fn top_of(book: &Book, depth: usize) -> Book {
    let mut out = Book::new();
    out.replace(
        book.levels(Side::Bid).take(depth).map(|l| (l.price, l.qty)),
        book.levels(Side::Ask).take(depth).map(|l| (l.price, l.qty)),
    );
    out
}

/// What a client holding `old` must apply to hold `new` (per side, best first): the reference
/// definition that [`advance_view`] is tested against.
///
/// A level that left the view but is still in `full` only fell out of scope: with
/// `send_out_of_scope == false` it is not sent, because the client truncates to its depth after
/// each message (Kraken, protocols.md §3.4 step 2); Bitfinex sends the delete.
#[cfg(test)]
pub(crate) fn diff_views(
    old: &Book,
    new: &Book,
    full: &Book,
    send_out_of_scope: bool,
) -> Vec<Change> {
    let mut out = Vec::new();
    for side in [Side::Bid, Side::Ask] {
        for l in new.levels(side) {
            if old.get(side, l.price) != Some(l.qty) {
                out.push(Change {
                    side,
                    price: l.price,
                    qty: l.qty,
                });
            }
        }
        for l in old.levels(side) {
            if new.get(side, l.price).is_none()
                && (send_out_of_scope || full.get(side, l.price).is_none())
            {
                out.push(Change {
                    side,
                    price: l.price,
                    qty: Dec::ZERO,
                });
            }
        }
    }
    out
}

/// Bring `view` (what a subscriber holds: the best `depth` levels of each side of `mirror`, as
/// of the last step) up to date after `changes` were applied to `mirror`, and return what the
/// subscriber must apply: the same changes, in the same order, as
/// `diff_views(view, &top_of(mirror, depth), mirror, send_out_of_scope)`. Only the changed prices
/// and the view's boundary are visited (max-rate mode steps thousands of times a second).
pub(crate) fn advance_view(
    view: &mut Book,
    mirror: &Book,
    changes: &[Change],
    depth: usize,
    send_out_of_scope: bool,
) -> Vec<Change> {
    let mut out = Vec::new();
    for side in [Side::Bid, Side::Ask] {
        // Best first: for bids a higher price is better.
        let better = |a: Dec, b: Dec| match side {
            Side::Bid => a > b,
            Side::Ask => a < b,
        };
        let worst = |v: &Book| match side {
            Side::Bid => v
                .bids_in(Dec::from_raw(i128::MIN), Dec::from_raw(i128::MAX))
                .next(),
            Side::Ask => v.levels(Side::Ask).last(),
        };
        let mut prices: Vec<Dec> = changes
            .iter()
            .filter(|c| c.side == side)
            .map(|c| c.price)
            .collect();
        prices.sort_unstable();
        prices.dedup();
        // price -> Some(qty) to set on the client, None to delete there.
        let mut sent: std::collections::BTreeMap<Dec, Option<Dec>> = Default::default();
        let mut added = std::collections::BTreeSet::new();
        // Every mirror level better than the old boundary is in the view; a new level joins only
        // if it is better than that boundary (or the view held the whole side). Levels from below
        // the boundary come in by the fill further down, in price order.
        let old_worst = worst(view).map(|w| w.price);
        let was_full = view.len(side) >= depth;
        for p in prices {
            let held = view.get(side, p);
            match (mirror.get(side, p), held) {
                (None, Some(_)) => {
                    view.set(side, p, Dec::ZERO);
                    sent.insert(p, None);
                }
                (None, None) => {}
                (Some(q), Some(h)) => {
                    if q != h {
                        view.set(side, p, q);
                        sent.insert(p, Some(q));
                    }
                }
                (Some(q), None) => {
                    let fits = !was_full || old_worst.is_some_and(|w| better(p, w));
                    if fits {
                        view.set(side, p, q);
                        sent.insert(p, Some(q));
                        added.insert(p);
                    }
                }
            }
        }
        // Too many: the worst fall out of scope.
        while view.len(side) > depth {
            let Some(w) = worst(view) else { break };
            view.set(side, w.price, Dec::ZERO);
            if added.remove(&w.price) {
                // Added and dropped in the same step: the client never needs to hear of it.
                sent.remove(&w.price);
            } else if send_out_of_scope {
                sent.insert(w.price, None);
            } else {
                sent.remove(&w.price);
            }
        }
        // Too few: levels from below the boundary come into scope.
        if view.len(side) < depth {
            let from = worst(view).map(|w| w.price);
            let fill: Vec<_> = mirror
                .levels(side)
                .skip_while(|l| from.is_some_and(|f| !better(f, l.price)))
                .take(depth - view.len(side))
                .collect();
            for l in fill {
                view.set(side, l.price, l.qty);
                sent.insert(l.price, Some(l.qty));
            }
        }
        // The reference order: sets best first, then deletes best first.
        let mut ordered: Vec<(Dec, Option<Dec>)> = sent.into_iter().collect();
        if side == Side::Bid {
            ordered.reverse();
        }
        for &(price, q) in &ordered {
            if let Some(qty) = q {
                out.push(Change { side, price, qty });
            }
        }
        for &(price, q) in &ordered {
            if q.is_none() {
                out.push(Change {
                    side,
                    price,
                    qty: Dec::ZERO,
                });
            }
        }
    }
    out
}

/// Unix time in milliseconds.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// RFC 3339 UTC time with `digits` fractional digits (6 for Kraken, 9 for Coinbase).
pub(crate) fn utc_text(digits: u32) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let t = time::OffsetDateTime::from_unix_timestamp(now.as_secs() as i64)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let frac = now.subsec_nanos() / 10u32.pow(9 - digits.min(9));
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:0w$}Z",
        t.year(),
        t.month() as u8,
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        frac,
        w = digits as usize
    )
}

/// A JSON string literal (for echoing client-provided text safely).
pub(crate) fn json_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Dec {
        Dec::parse(s).expect("decimal")
    }

    #[test]
    fn view_diff_rebuilds_the_new_view() {
        let mut full = Book::new();
        full.replace(
            [("100", "1"), ("99", "2"), ("98", "3")].map(|(p, q)| (d(p), d(q))),
            [("101", "1"), ("102", "2"), ("103", "3")].map(|(p, q)| (d(p), d(q))),
        );
        let old = top_of(&full, 2);
        // A better bid arrives (99 falls out of scope), the best ask is deleted (103 enters).
        full.set(Side::Bid, d("100.5"), d("4"));
        full.set(Side::Ask, d("101"), Dec::ZERO);
        let changes = [
            Change {
                side: Side::Bid,
                price: d("100.5"),
                qty: d("4"),
            },
            Change {
                side: Side::Ask,
                price: d("101"),
                qty: Dec::ZERO,
            },
        ];
        let new = top_of(&full, 2);
        for send_out in [false, true] {
            let mut client = old.clone();
            for c in diff_views(&old, &new, &full, send_out) {
                client.set(c.side, c.price, c.qty);
            }
            client.truncate(2);
            assert_eq!(client, new);
        }
        let kraken = diff_views(&old, &new, &full, false);
        for send_out in [false, true] {
            let mut incremental = old.clone();
            assert_eq!(
                advance_view(&mut incremental, &full, &changes, 2, send_out),
                diff_views(&old, &new, &full, send_out)
            );
            assert_eq!(incremental, new);
        }
        assert!(!kraken.iter().any(|c| c.price == d("99")));
        let bitfinex = diff_views(&old, &new, &full, true);
        assert!(
            bitfinex
                .iter()
                .any(|c| c.price == d("99") && c.qty.is_zero())
        );
    }

    /// The incremental view equals the rebuilt one over many random steps, both depth rules.
    #[test]
    fn advance_view_matches_the_reference_over_random_steps() {
        use rand::Rng;
        let mut rng = StdRng::seed_from_u64(11);
        for send_out in [false, true] {
            let mut full = Book::new();
            let mut view = Book::new();
            for _ in 0..2000 {
                let mut changes = Vec::new();
                for _ in 0..rng.gen_range(1..6) {
                    let side = if rng.gen_bool(0.5) {
                        Side::Bid
                    } else {
                        Side::Ask
                    };
                    let base = if side == Side::Bid { 1000 } else { 1101 };
                    let off: i64 = rng.gen_range(0..100);
                    let price = Dec::from_int(if side == Side::Bid {
                        base - off
                    } else {
                        base + off
                    });
                    let qty = if rng.gen_bool(0.3) {
                        Dec::ZERO
                    } else {
                        Dec::from_int(rng.gen_range(1..9))
                    };
                    full.set(side, price, qty);
                    changes.push(Change { side, price, qty });
                }
                let new = top_of(&full, 10);
                let want = diff_views(&view, &new, &full, send_out);
                let got = advance_view(&mut view, &full, &changes, 10, send_out);
                assert_eq!(got, want);
                assert_eq!(view, new);
            }
        }
    }

    #[test]
    fn utc_text_has_the_requested_digits() {
        let t = utc_text(6);
        assert_eq!(t.len(), "2023-10-06T17:35:55.440295Z".len());
        assert!(t.ends_with('Z'));
    }
}
