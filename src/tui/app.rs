//! Dashboard state and key handling.
//!
//! Everything here is pure: no terminal, no clock, no network. [`App::on_key`] changes the view
//! state and the shared [`Controls`] (bin size, enabled venues, write-now, shutdown), so every key
//! is unit-tested without a terminal.

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use crate::aggregate::Snapshot;
use crate::bins::BinSize;
use crate::control::Controls;
use crate::decimal::Dec;
use crate::types::Venue;

/// The bin sizes `+` and `-` step through, in USD.
pub const BIN_LADDER: [i64; 10] = [1, 2, 5, 10, 20, 50, 100, 250, 500, 1000];

/// Per-bin quantities or running totals from the mid outwards.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DepthMode {
    /// Each row shows the quantity of its own bin.
    PerBin,
    /// Each row shows the quantity from the mid out to and including its bin.
    Cumulative,
}

/// How bar length follows quantity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BarScale {
    /// Length proportional to quantity.
    Linear,
    /// Length proportional to the logarithm, over [`LOG_DECADES`] decades below the largest bar.
    Log,
}

/// Decades below the largest bar that the log scale shows (smaller quantities get one cell).
pub const LOG_DECADES: f64 = 4.0;

/// Which part of the price ladder is on screen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scroll {
    /// Centred on the bin of the consolidated mid, following it as it moves.
    FollowMid,
    /// Centred on the bin of this price (kept as a price so a new bin size keeps the place).
    Centre(Dec),
}

/// What a key press asks of the run loop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyOutcome {
    /// Nothing changed.
    Ignored,
    /// The view or the settings changed: draw again (with a new snapshot unless frozen).
    Redraw,
    /// Shutdown was requested: leave the dashboard.
    Quit,
}

/// The part of the price ladder drawn: `rows` bins from bin index `top` downwards.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LadderView {
    /// Bin index of the top (highest price) row.
    pub top: i64,
    /// Number of rows drawn.
    pub rows: usize,
    /// Bin indices of the lowest and highest bin holding data.
    pub extent: (i64, i64),
}

/// Dashboard state: the snapshot on screen and how it is shown.
#[derive(Clone, Debug)]
pub struct App {
    snapshot: Option<Snapshot>,
    frozen: bool,
    /// Per-bin or cumulative depth.
    pub depth_mode: DepthMode,
    /// Linear or log bars.
    pub bar_scale: BarScale,
    /// Which part of the ladder is on screen.
    pub scroll: Scroll,
    /// Whether the help overlay is shown.
    pub show_help: bool,
    viewport_rows: usize,
}

impl Default for App {
    fn default() -> App {
        App::new()
    }
}

impl App {
    /// A fresh dashboard: per-bin, linear, following the mid, no snapshot yet.
    pub fn new() -> App {
        App {
            snapshot: None,
            frozen: false,
            depth_mode: DepthMode::PerBin,
            bar_scale: BarScale::Linear,
            scroll: Scroll::FollowMid,
            show_help: false,
            viewport_rows: 1,
        }
    }

    /// The snapshot on screen.
    pub fn snapshot(&self) -> Option<&Snapshot> {
        self.snapshot.as_ref()
    }

    /// Whether the display is frozen (key `p`).
    pub fn is_frozen(&self) -> bool {
        self.frozen
    }

    /// Whether a new snapshot would be shown (false while frozen, so none need be taken).
    pub fn wants_snapshot(&self) -> bool {
        !self.frozen || self.snapshot.is_none()
    }

    /// Offer a fresh snapshot; it replaces the one on screen unless the display is frozen.
    /// Returns whether it was taken.
    pub fn offer_snapshot(&mut self, snapshot: Snapshot) -> bool {
        if self.wants_snapshot() {
            self.snapshot = Some(snapshot);
            true
        } else {
            false
        }
    }

    /// Tell the app how many ladder rows the screen has (scroll limits depend on it).
    pub fn set_viewport_rows(&mut self, rows: usize) {
        self.viewport_rows = rows.max(1);
    }

    /// Ladder rows on screen.
    pub fn viewport_rows(&self) -> usize {
        self.viewport_rows
    }

    /// The part of the ladder to draw in `rows` rows, `None` without data.
    pub fn ladder_view(&self, rows: usize) -> Option<LadderView> {
        let snap = self.snapshot.as_ref()?;
        ladder_view(snap, self.scroll, rows)
    }

    /// Handle one key press. Pure apart from the shared controls it is given.
    pub fn on_key(&mut self, key: KeyEvent, controls: &Controls) -> KeyOutcome {
        if key.kind == KeyEventKind::Release {
            return KeyOutcome::Ignored;
        }
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        match key.code {
            KeyCode::Char('c') if ctrl => return quit(controls),
            KeyCode::Char('q') => return quit(controls),
            KeyCode::Esc if self.show_help => self.show_help = false,
            KeyCode::Esc => return quit(controls),
            KeyCode::Char('?') => self.show_help = !self.show_help,
            KeyCode::Char('+') | KeyCode::Char('=') | KeyCode::Char(']') => {
                return step_bin_size(controls, true);
            }
            KeyCode::Char('-') | KeyCode::Char('[') => return step_bin_size(controls, false),
            KeyCode::Up => return self.scroll_by(1),
            KeyCode::Down => return self.scroll_by(-1),
            KeyCode::PageUp => return self.scroll_by(self.page()),
            KeyCode::PageDown => return self.scroll_by(-self.page()),
            KeyCode::Char('c') | KeyCode::Home => self.scroll = Scroll::FollowMid,
            KeyCode::Char(d @ '1'..='4') => {
                let i = (d as u8 - b'1') as usize;
                let mut agg = controls.agg();
                agg.enabled[Venue::ALL[i].index()] ^= true;
            }
            KeyCode::Char('m') => {
                self.depth_mode = match self.depth_mode {
                    DepthMode::PerBin => DepthMode::Cumulative,
                    DepthMode::Cumulative => DepthMode::PerBin,
                }
            }
            KeyCode::Char('l') => {
                self.bar_scale = match self.bar_scale {
                    BarScale::Linear => BarScale::Log,
                    BarScale::Log => BarScale::Linear,
                }
            }
            KeyCode::Char('s') => controls.write_now.notify_one(),
            KeyCode::Char('p') => self.frozen = !self.frozen,
            _ => return KeyOutcome::Ignored,
        }
        KeyOutcome::Redraw
    }

    fn page(&self) -> i64 {
        (self.viewport_rows as i64 - 1).max(1)
    }

    /// Move the centre `delta` bins up (towards higher prices), never past the data.
    fn scroll_by(&mut self, delta: i64) -> KeyOutcome {
        let Some(snap) = self.snapshot.as_ref() else {
            return KeyOutcome::Ignored;
        };
        let rows = self.viewport_rows;
        let Some(view) = ladder_view(snap, self.scroll, rows) else {
            return KeyOutcome::Ignored;
        };
        let (lo, hi) = view.extent;
        if hi - lo < rows as i64 {
            // Everything is on screen already.
            return KeyOutcome::Ignored;
        }
        let half = rows as i64 / 2;
        let centre = view.top - half;
        let min_centre = lo + rows as i64 - 1 - half;
        let max_centre = hi - half;
        let next = (centre + delta).clamp(min_centre, max_centre);
        self.scroll = Scroll::Centre(snap.bin_size.price_of(next));
        if next == centre {
            KeyOutcome::Ignored
        } else {
            KeyOutcome::Redraw
        }
    }
}

fn quit(controls: &Controls) -> KeyOutcome {
    controls.request_shutdown();
    KeyOutcome::Quit
}

fn step_bin_size(controls: &Controls, up: bool) -> KeyOutcome {
    let mut agg = controls.agg();
    let next = next_bin_size(agg.bin_size, up);
    if next == agg.bin_size {
        return KeyOutcome::Ignored;
    }
    agg.bin_size = next;
    KeyOutcome::Redraw
}

/// The next bin size along [`BIN_LADDER`] up or down from `size`; a size not on the ladder joins
/// it in order (25 goes up to 50 and down to 20); the ends stay where they are.
pub fn next_bin_size(size: BinSize, up: bool) -> BinSize {
    let current = size.get();
    let ladder = BIN_LADDER.iter().map(|&n| Dec::from_int(n));
    let next = if up {
        ladder.into_iter().find(|&p| p > current)
    } else {
        ladder.rev().find(|&p| p < current)
    };
    next.and_then(BinSize::new).unwrap_or(size)
}

/// The rows of the ladder to draw: the bins from the lowest to the highest bin with data, `rows` of
/// them, centred on the mid (or the scrolled-to price) but never past either end of the data.
pub fn ladder_view(snap: &Snapshot, scroll: Scroll, rows: usize) -> Option<LadderView> {
    let size = snap.bin_size;
    let lo = size.index_of(snap.bins.first()?.price);
    let hi = size.index_of(snap.bins.last()?.price);
    let rows = rows.max(1);
    let n = hi - lo + 1;
    if n <= rows as i64 {
        return Some(LadderView {
            top: hi,
            rows: n as usize,
            extent: (lo, hi),
        });
    }
    let centre = match scroll {
        Scroll::FollowMid => snap.mid.map(|m| size.index_of(m)).unwrap_or((lo + hi) / 2),
        Scroll::Centre(p) => size.index_of(p),
    };
    let top = (centre + rows as i64 / 2).clamp(lo + rows as i64 - 1, hi);
    Some(LadderView {
        top,
        rows,
        extent: (lo, hi),
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use futures_util::FutureExt;

    use super::*;
    use crate::aggregate::{AggConfig, Window, aggregate};
    use crate::control::Mode;
    use crate::engine::VenueState;
    use crate::venue::{FeedState, Protocol};

    fn size(s: &str) -> BinSize {
        BinSize::parse(s).expect("positive size")
    }

    fn controls(bin: &str) -> Arc<Controls> {
        Controls::new(
            AggConfig {
                bin_size: size(bin),
                weights: [0.5, 0.2, 0.15, 0.15],
                enabled: [true; 4],
                window: Window::All,
                renormalize: false,
            },
            Mode::Live,
        )
    }

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    fn ch(c: char) -> KeyEvent {
        key(KeyCode::Char(c))
    }

    /// A snapshot with one bin every $1 from 950 to 1050 (101 bins), mid 1000.
    fn snapshot(controls: &Controls) -> Snapshot {
        let mut st = VenueState::new(Protocol::BinanceSpot, "BTCUSDT", "test", 0);
        st.state = FeedState::Live;
        let d = |n: i64| Dec::from_int(n);
        st.book.replace(
            (950..1000).map(|p| (d(p), d(1))),
            (1000..=1050).map(|p| (Dec::from_raw(d(p).raw() + d(1).raw() / 2), d(1))),
        );
        aggregate(&[&st], &controls.agg_config(), 0)
    }

    fn bin_after(start: &str, keys: &[char]) -> String {
        let c = controls(start);
        let mut app = App::new();
        for &k in keys {
            app.on_key(ch(k), &c);
        }
        c.agg().bin_size.to_string()
    }

    #[test]
    fn bin_ladder_stops_at_both_ends() {
        assert_eq!(bin_after("1", &['-']), "1");
        assert_eq!(bin_after("1", &['[', '[']), "1");
        assert_eq!(bin_after("1000", &['+']), "1000");
        assert_eq!(bin_after("1000", &[']']), "1000");
        assert_eq!(bin_after("1", &['+'; 20]), "1000");
        assert_eq!(bin_after("1000", &['-'; 20]), "1");
    }

    #[test]
    fn bin_ladder_steps_in_order() {
        let c = controls("1");
        let mut app = App::new();
        let mut seen = vec![c.agg().bin_size.to_string()];
        for _ in 0..9 {
            assert_eq!(app.on_key(ch('+'), &c), KeyOutcome::Redraw);
            seen.push(c.agg().bin_size.to_string());
        }
        assert_eq!(
            seen,
            ["1", "2", "5", "10", "20", "50", "100", "250", "500", "1000"]
        );
        assert_eq!(app.on_key(ch('+'), &c), KeyOutcome::Ignored);
    }

    #[test]
    fn bin_size_off_the_ladder_joins_it_in_order() {
        assert_eq!(bin_after("25", &['+']), "50");
        assert_eq!(bin_after("25", &['-']), "20");
        assert_eq!(bin_after("25", &['-', '+']), "50");
        assert_eq!(bin_after("0.5", &['+']), "1");
        assert_eq!(bin_after("0.5", &['-']), "0.5");
        assert_eq!(bin_after("5000", &['-']), "1000");
        assert_eq!(bin_after("5000", &['+']), "5000");
    }

    #[test]
    fn scrolling_stops_at_the_data() {
        let c = controls("1");
        let mut app = App::new();
        app.offer_snapshot(snapshot(&c));
        app.set_viewport_rows(11);
        // Following the mid (1000): rows 1005 down to 995.
        let view = app.ladder_view(11).expect("data");
        assert_eq!((view.top, view.rows, view.extent), (1005, 11, (950, 1051)));

        assert_eq!(app.on_key(key(KeyCode::Up), &c), KeyOutcome::Redraw);
        assert_eq!(app.ladder_view(11).expect("data").top, 1006);
        assert_eq!(app.on_key(key(KeyCode::PageUp), &c), KeyOutcome::Redraw);
        assert_eq!(app.ladder_view(11).expect("data").top, 1016);
        for _ in 0..20 {
            app.on_key(key(KeyCode::PageUp), &c);
        }
        // The top row is the highest bin with data, and it stays there.
        assert_eq!(app.ladder_view(11).expect("data").top, 1051);
        assert_eq!(app.on_key(key(KeyCode::Up), &c), KeyOutcome::Ignored);
        assert_eq!(app.ladder_view(11).expect("data").top, 1051);

        for _ in 0..200 {
            app.on_key(key(KeyCode::Down), &c);
        }
        // The bottom row is the lowest bin with data.
        assert_eq!(app.ladder_view(11).expect("data").top, 960);
        assert_eq!(app.on_key(key(KeyCode::PageDown), &c), KeyOutcome::Ignored);
        assert_eq!(app.ladder_view(11).expect("data").top, 960);

        assert_eq!(app.on_key(key(KeyCode::Home), &c), KeyOutcome::Redraw);
        assert_eq!(app.scroll, Scroll::FollowMid);
        assert_eq!(app.ladder_view(11).expect("data").top, 1005);
        app.on_key(key(KeyCode::Up), &c);
        app.on_key(ch('c'), &c);
        assert_eq!(app.scroll, Scroll::FollowMid);
    }

    #[test]
    fn no_scrolling_when_all_the_data_is_on_screen() {
        let c = controls("1");
        let mut app = App::new();
        app.offer_snapshot(snapshot(&c));
        app.set_viewport_rows(200);
        assert_eq!(app.on_key(key(KeyCode::Up), &c), KeyOutcome::Ignored);
        assert_eq!(app.scroll, Scroll::FollowMid);
        let view = app.ladder_view(200).expect("data");
        assert_eq!((view.top, view.rows), (1051, 102));
        // Without a snapshot there is nothing to scroll.
        let mut empty = App::new();
        assert_eq!(empty.on_key(key(KeyCode::Down), &c), KeyOutcome::Ignored);
    }

    #[test]
    fn scroll_position_survives_a_new_bin_size() {
        let c = controls("1");
        let mut app = App::new();
        app.offer_snapshot(snapshot(&c));
        app.set_viewport_rows(5);
        for _ in 0..20 {
            app.on_key(key(KeyCode::Up), &c);
        }
        assert_eq!(app.scroll, Scroll::Centre(Dec::from_int(1020)));
        app.on_key(ch('+'), &c);
        app.offer_snapshot(snapshot(&c));
        // Bin 2: 1020 is bin 510; the 5 rows centre on it.
        assert_eq!(app.ladder_view(5).expect("data").top, 512);
    }

    #[test]
    fn view_toggles() {
        let c = controls("10");
        let mut app = App::new();
        assert_eq!(app.depth_mode, DepthMode::PerBin);
        assert_eq!(app.on_key(ch('m'), &c), KeyOutcome::Redraw);
        assert_eq!(app.depth_mode, DepthMode::Cumulative);
        app.on_key(ch('m'), &c);
        assert_eq!(app.depth_mode, DepthMode::PerBin);

        assert_eq!(app.bar_scale, BarScale::Linear);
        app.on_key(ch('l'), &c);
        assert_eq!(app.bar_scale, BarScale::Log);
        app.on_key(ch('l'), &c);
        assert_eq!(app.bar_scale, BarScale::Linear);

        assert!(!app.show_help);
        app.on_key(ch('?'), &c);
        assert!(app.show_help);
        app.on_key(ch('?'), &c);
        assert!(!app.show_help);
        assert_eq!(app.on_key(ch('x'), &c), KeyOutcome::Ignored);
    }

    #[test]
    fn esc_closes_help_before_it_quits() {
        let c = controls("10");
        let mut app = App::new();
        app.on_key(ch('?'), &c);
        assert_eq!(app.on_key(key(KeyCode::Esc), &c), KeyOutcome::Redraw);
        assert!(!app.show_help);
        assert!(!c.is_shutting_down());
        assert_eq!(app.on_key(key(KeyCode::Esc), &c), KeyOutcome::Quit);
        assert!(c.is_shutting_down());
    }

    #[test]
    fn freeze_keeps_the_old_snapshot() {
        let c = controls("1");
        let mut app = App::new();
        let first = snapshot(&c);
        assert!(app.offer_snapshot(first.clone()));
        app.on_key(ch('p'), &c);
        assert!(app.is_frozen());
        assert!(!app.wants_snapshot());
        let mut later = snapshot(&c);
        later.taken_at = 5_000;
        assert!(!app.offer_snapshot(later.clone()));
        assert_eq!(app.snapshot(), Some(&first));
        app.on_key(ch('p'), &c);
        assert!(!app.is_frozen());
        assert!(app.offer_snapshot(later.clone()));
        assert_eq!(app.snapshot(), Some(&later));
    }

    #[test]
    fn venue_keys_switch_venues_in_the_shared_config() {
        let c = controls("10");
        let mut app = App::new();
        app.on_key(ch('1'), &c);
        assert_eq!(c.agg().enabled, [false, true, true, true]);
        app.on_key(ch('3'), &c);
        app.on_key(ch('4'), &c);
        assert_eq!(c.agg().enabled, [false, true, false, false]);
        app.on_key(ch('1'), &c);
        app.on_key(ch('2'), &c);
        assert_eq!(c.agg().enabled, [true, false, false, false]);
        assert_eq!(app.on_key(ch('5'), &c), KeyOutcome::Ignored);
        assert_eq!(c.agg().enabled, [true, false, false, false]);
    }

    #[test]
    fn s_wakes_the_csv_writer() {
        let c = controls("10");
        let mut app = App::new();
        assert_eq!(c.write_now.notified().now_or_never(), None);
        assert_eq!(app.on_key(ch('s'), &c), KeyOutcome::Redraw);
        assert_eq!(c.write_now.notified().now_or_never(), Some(()));
    }

    #[test]
    fn quit_keys_request_shutdown() {
        for k in [
            ch('q'),
            key(KeyCode::Esc),
            KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL),
        ] {
            let c = controls("10");
            let mut app = App::new();
            assert_eq!(app.on_key(k, &c), KeyOutcome::Quit, "{k:?}");
            assert!(c.is_shutting_down(), "{k:?}");
        }
    }

    #[test]
    fn key_releases_are_ignored() {
        let c = controls("10");
        let mut app = App::new();
        let mut release = ch('q');
        release.kind = KeyEventKind::Release;
        assert_eq!(app.on_key(release, &c), KeyOutcome::Ignored);
        assert!(!c.is_shutting_down());
    }
}
