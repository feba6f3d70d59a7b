//! Pure render functions: `(&App, &FrameInfo) → buffer`. No clock, no locks, no terminal.
//!
//! Screen layout (rows from the top; heights adapt to the terminal, minimum 60×16):
//!
//! ```text
//!  BTC/USD [DEMO]  mid 100002.5  bid 100000.00 / ask 100005.00  spread 5.00 (0.50 bp)  14:03:07
//!  bin $10 · window ±2% · bids 12.345 · asks 10.210 · imbalance +9.4%            [FROZEN]
//! ─ depth · per bin · linear ── █ binance ▓ coinbase ▒ kraken ░ bitfinex ── rows 3–16 of 41 ─
//!    1.250            ░▒▓▓████  100020  ███▓▓▒░                  2.400   K
//!      bid qty   bid bars ◄──  ►100000◄  ──► ask bars   ask qty      ends (book data ends)
//!    ... one row per bin, highest price on top, bars stacked by venue from the price out ...
//! ─ venues ─────────────────────────────────────────────────────────────────────────────
//!  # venue    state     weight    msg/s   age    lat levels b/a  covered         rs/gp/ck reason
//!  1 binance  live      0.50       10.0 120ms   30ms 60/60       99852–100148    0/0/0    in sync
//!  ... one row per venue, Venue::ALL order (the 1–4 keys) ...
//!  keys: + - bin  ↑ ↓ PgUp PgDn scroll  c centre  1-4 venues  m cumulative  l log ...
//!  csv: 14:03:05 (2s ago) agg_snapshot.csv · 41 rows · binance coinbase
//!  last error: none
//! ```
//!
//! The venue panel drops its column header below 20 rows, the footer folds to two lines below 24,
//! and the venue columns drop (covered, latency, levels) as the width shrinks, the reason always
//! keeping the rest of the line. Below [`MIN_WIDTH`]×[`MIN_HEIGHT`] a message replaces the screen.

use std::fmt::Write as _;

use ratatui::Frame;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use time::UtcOffset;

use super::app::{App, BarScale, DepthMode, LOG_DECADES, LadderView, Scroll};
use crate::aggregate::{Bin, Snapshot, VenueSummary};
use crate::control::{Controls, Mode, WriteStatus};
use crate::decimal::Dec;
use crate::types::Venue;
use crate::venue::{FeedState, Millis};

/// Narrowest terminal the dashboard draws in.
pub const MIN_WIDTH: u16 = 60;
/// Shortest terminal the dashboard draws in.
pub const MIN_HEIGHT: u16 = 16;
/// The market shown.
pub const SYMBOL: &str = "BTC/USD";

/// Bar glyph of each venue, by [`Venue::index`]: the stack shows each venue's share by its shade.
pub const VENUE_GLYPHS: [char; 4] = ['█', '▓', '▒', '░'];
/// Letter marking a bin a venue's book does not reach, by [`Venue::index`].
pub const VENUE_LETTERS: [char; 4] = ['B', 'C', 'K', 'F'];

const VENUE_COLOURS: [Color; 4] = [Color::Yellow, Color::Blue, Color::Magenta, Color::Cyan];
const BID_SHADES: [Color; 4] = [
    Color::Indexed(46),
    Color::Indexed(40),
    Color::Indexed(34),
    Color::Indexed(28),
];
const ASK_SHADES: [Color; 4] = [
    Color::Indexed(196),
    Color::Indexed(160),
    Color::Indexed(124),
    Color::Indexed(88),
];
const QTY_WIDTH: u16 = 8;
const ENDS_WIDTH: u16 = 4;
const DIM: Style = Style::new().fg(Color::DarkGray);

/// Everything drawn besides the app state, read once per frame by the caller: the clock is passed
/// in so a frame is a pure function of its inputs.
#[derive(Clone, Debug, PartialEq)]
pub struct FrameInfo {
    /// Now (Unix ms): the header clock and the age of the last write.
    pub now_ms: Millis,
    /// Local time offset; `None` shows UTC, labelled as such.
    pub utc_offset: Option<UtcOffset>,
    /// Live, demo or replay (the badge).
    pub mode: Mode,
    /// The last CSV write.
    pub last_write: Option<WriteStatus>,
    /// The last error.
    pub last_error: Option<String>,
}

impl FrameInfo {
    /// Read the shared controls for one frame.
    pub fn from_controls(
        controls: &Controls,
        now_ms: Millis,
        utc_offset: Option<UtcOffset>,
    ) -> Self {
        FrameInfo {
            now_ms,
            utc_offset,
            mode: controls.mode.clone(),
            last_write: controls.last_write(),
            last_error: controls.last_error(),
        }
    }
}

/// Where each part of the screen goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScreenLayout {
    /// Two header rows.
    pub header: Rect,
    /// Depth section title row.
    pub depth_title: Rect,
    /// Ladder rows.
    pub ladder: Rect,
    /// Venue panel (title, optional column header, one row per venue).
    pub venues: Rect,
    /// Footer rows.
    pub footer: Rect,
}

/// The layout for a terminal area, `None` when it is below the minimum size.
pub fn screen_layout(area: Rect) -> Option<ScreenLayout> {
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        return None;
    }
    let footer_h = if area.height >= 24 { 3 } else { 2 };
    let venues_h = if area.height >= 20 { 6 } else { 5 };
    let header_h = 2;
    let ladder_h = area.height - footer_h - venues_h - header_h - 1;
    let row = |y: u16, h: u16| Rect::new(area.x, area.y + y, area.width, h);
    Some(ScreenLayout {
        header: row(0, header_h),
        depth_title: row(header_h, 1),
        ladder: row(header_h + 1, ladder_h),
        venues: row(header_h + 1 + ladder_h, venues_h),
        footer: row(header_h + 1 + ladder_h + venues_h, footer_h),
    })
}

/// Ladder rows a terminal of this size shows (for the scroll limits).
pub fn ladder_rows(area: Rect) -> usize {
    screen_layout(area).map_or(1, |l| l.ladder.height as usize)
}

/// Draw the whole screen.
pub fn render(frame: &mut Frame<'_>, app: &App, info: &FrameInfo) {
    let area = frame.area();
    render_to_buffer(frame.buffer_mut(), area, app, info);
}

/// Draw the whole screen into a buffer area.
pub fn render_to_buffer(buf: &mut Buffer, area: Rect, app: &App, info: &FrameInfo) {
    let Some(layout) = screen_layout(area) else {
        render_too_small(buf, area);
        return;
    };
    render_header(buf, layout.header, app, info);
    let view = app.ladder_view(layout.ladder.height as usize);
    render_depth_title(buf, layout.depth_title, app, view);
    match (app.snapshot(), view) {
        (Some(snap), Some(view)) => render_ladder(buf, layout.ladder, app, snap, view),
        (snap, _) => {
            let text = if snap.is_none() {
                "waiting for the first snapshot…"
            } else {
                "no live book is included: see the venue states below"
            };
            centred(buf, layout.ladder, text, DIM);
        }
    }
    if let Some(snap) = app.snapshot() {
        render_venue_panel(buf, layout.venues, snap);
    }
    render_footer(buf, layout.footer, info);
    if app.show_help {
        render_help(buf, area);
    }
}

fn render_too_small(buf: &mut Buffer, area: Rect) {
    let lines = [
        format!("terminal too small: {}×{}", area.width, area.height),
        format!("depthagg needs at least {MIN_WIDTH}×{MIN_HEIGHT}"),
        "q quits".to_string(),
    ];
    let top = area.y + area.height.saturating_sub(lines.len() as u16) / 2;
    for (i, line) in lines.iter().enumerate() {
        let y = top + i as u16;
        if y >= area.bottom() {
            break;
        }
        let w = line.chars().count() as u16;
        let x = area.x + area.width.saturating_sub(w) / 2;
        let style = if i == 0 {
            Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD)
        } else {
            Style::new()
        };
        buf.set_stringn(x, y, line, area.width as usize, style);
    }
}

fn centred(buf: &mut Buffer, area: Rect, text: &str, style: Style) {
    if area.height == 0 {
        return;
    }
    let w = text.chars().count() as u16;
    let x = area.x + area.width.saturating_sub(w) / 2;
    buf.set_stringn(
        x,
        area.y + area.height / 2,
        text,
        area.width as usize,
        style,
    );
}

/// Write a line left-aligned and, when given, a right-aligned part that wins the space.
fn line_with_right(buf: &mut Buffer, area: Rect, y: u16, left: &Line<'_>, right: &Line<'_>) {
    let rw = right.width() as u16;
    let rx = area.right().saturating_sub(rw);
    let left_max = if rw > 0 {
        rx.saturating_sub(area.x + 1)
    } else {
        area.width
    };
    buf.set_line(area.x, y, left, left_max);
    if rw > 0 {
        buf.set_line(rx, y, right, rw);
    }
}

fn mode_badge(mode: &Mode, long: bool) -> Option<Span<'static>> {
    let badge = Style::new().fg(Color::Black).add_modifier(Modifier::BOLD);
    match mode {
        Mode::Live => None,
        Mode::Demo if long => Some(Span::styled(
            " DEMO · simulated data ",
            badge.bg(Color::Yellow),
        )),
        Mode::Demo => Some(Span::styled(" DEMO ", badge.bg(Color::Yellow))),
        Mode::Replay(path) if long => {
            let name = path.file_name().map_or_else(
                || path.display().to_string(),
                |n| n.to_string_lossy().into(),
            );
            Some(Span::styled(
                format!(" REPLAY · {name} "),
                badge.bg(Color::Magenta),
            ))
        }
        Mode::Replay(_) => Some(Span::styled(" REPLAY ", badge.bg(Color::Magenta))),
    }
}

/// Draw the first `(left, right)` pair that fits the width (the last one, clipped, otherwise).
fn fitting_line(buf: &mut Buffer, area: Rect, y: u16, variants: &[(Line<'_>, Line<'_>)]) {
    let fits = |(l, r): &&(Line<'_>, Line<'_>)| {
        let gap = u16::from(r.width() > 0);
        l.width() + r.width() + gap as usize <= area.width as usize
    };
    if let Some((left, right)) = variants.iter().find(fits).or(variants.last()) {
        line_with_right(buf, area, y, left, right);
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Detail {
    Full,
    Short,
    Tight,
    Minimal,
}

fn render_header(buf: &mut Buffer, area: Rect, app: &App, info: &FrameInfo) {
    let snap = app.snapshot();
    let bold = Style::new().add_modifier(Modifier::BOLD);
    let (mid, bid, ask) = snap.map_or((None, None, None), |s| (s.mid, s.best_bid, s.best_ask));
    let top = |detail: Detail| {
        let mut spans = vec![Span::styled(SYMBOL, bold)];
        if let Some(badge) = mode_badge(&info.mode, detail == Detail::Full) {
            spans.push(Span::raw(" "));
            spans.push(badge);
        }
        spans.push(Span::raw("  mid "));
        spans.push(Span::styled(opt_price(mid), bold.fg(Color::Yellow)));
        let tight = matches!(detail, Detail::Tight | Detail::Minimal);
        if detail != Detail::Minimal {
            spans.push(Span::raw(if tight { "  " } else { "  bid " }));
            spans.push(Span::styled(opt_price(bid), Style::new().fg(Color::Green)));
            spans.push(Span::raw(if tight { " / " } else { " / ask " }));
            spans.push(Span::styled(opt_price(ask), Style::new().fg(Color::Red)));
        }
        if let (Some(b), Some(a), Some(m)) = (bid, ask, mid) {
            let spread = fmt_price(a.saturating_sub(b));
            let bp = (a.to_f64() - b.to_f64()) / m.to_f64() * 10_000.0;
            spans.push(Span::raw(match detail {
                Detail::Full => format!("  spread {spread} ({bp:.2} bp)"),
                Detail::Short => format!("  spread {spread}"),
                Detail::Tight | Detail::Minimal => format!("  spr {spread}"),
            }));
        }
        Line::from(spans)
    };
    let clock = Line::from(Span::styled(clock_text(info.now_ms, info.utc_offset), bold));
    fitting_line(
        buf,
        area,
        area.y,
        &[
            (top(Detail::Full), clock.clone()),
            (top(Detail::Short), clock.clone()),
            (top(Detail::Tight), clock.clone()),
            (top(Detail::Minimal), clock),
        ],
    );

    if area.height < 2 {
        return;
    }
    let second = |detail: Detail| {
        let Some(s) = snap else {
            return Line::default();
        };
        let (bids, asks) = s.totals();
        let sep = Span::styled(" · ", DIM);
        let imbalance = if bids + asks > 0.0 {
            format!("{:+.1}%", (bids - asks) / (bids + asks) * 100.0)
        } else {
            "—".to_string()
        };
        let full = detail == Detail::Full;
        Line::from(vec![
            Span::raw(format!("bin ${}", s.bin_size)),
            sep.clone(),
            Span::raw(if full {
                format!("window {}", s.window)
            } else {
                s.window.to_string()
            }),
            sep.clone(),
            Span::raw("bids "),
            Span::styled(fmt_qty(bids), Style::new().fg(Color::Green)),
            if full {
                Span::raw(" asks ")
            } else {
                Span::styled(" · asks ", DIM)
            },
            Span::styled(fmt_qty(asks), Style::new().fg(Color::Red)),
            Span::raw(if full { " BTC in window" } else { "" }),
            sep,
            Span::raw(if full { "imbalance " } else { "imb " }),
            Span::raw(imbalance),
        ])
    };
    let frozen = |long: bool| {
        if !app.is_frozen() {
            return Line::default();
        }
        let text = if long {
            " FROZEN · p resumes "
        } else {
            " FROZEN "
        };
        Line::from(Span::styled(
            text,
            Style::new()
                .fg(Color::Black)
                .bg(Color::Cyan)
                .add_modifier(Modifier::BOLD),
        ))
    };
    fitting_line(
        buf,
        area,
        area.y + 1,
        &[
            (second(Detail::Full), frozen(true)),
            (second(Detail::Short), frozen(true)),
            (second(Detail::Short), frozen(false)),
        ],
    );
}

fn render_depth_title(buf: &mut Buffer, area: Rect, app: &App, view: Option<LadderView>) {
    fill_rule(buf, area);
    let mode = match app.depth_mode {
        DepthMode::PerBin => "per bin",
        DepthMode::Cumulative => "cumulative from mid",
    };
    let scale = match app.bar_scale {
        BarScale::Linear => "linear",
        BarScale::Log => "log",
    };
    let bold = Style::new().add_modifier(Modifier::BOLD);
    let left = |detail: Detail| {
        let mut spans = vec![Span::raw("─ ")];
        let per_bin = app.depth_mode == DepthMode::PerBin;
        if detail == Detail::Minimal {
            let mode = if per_bin { "bin" } else { "cum" };
            let scale = if app.bar_scale == BarScale::Linear {
                "lin"
            } else {
                "log"
            };
            spans.push(Span::styled(format!("{mode}·{scale}"), bold));
            spans.push(Span::raw(" "));
        } else if detail == Detail::Tight {
            let mode = if per_bin { "per bin" } else { "cumulative" };
            spans.push(Span::styled(format!("{mode} · {scale}"), bold));
            spans.push(Span::raw(" ─ "));
        } else {
            spans.push(Span::styled(format!("depth · {mode} · {scale}"), bold));
            spans.push(Span::raw(" ── "));
        }
        for v in Venue::ALL {
            let i = v.index();
            spans.push(Span::styled(
                VENUE_GLYPHS[i].to_string(),
                Style::new().fg(BID_SHADES[i]),
            ));
            if matches!(detail, Detail::Tight | Detail::Minimal) {
                let gap = if i == 3 && detail == Detail::Minimal {
                    ""
                } else {
                    " "
                };
                spans.push(Span::styled(
                    format!("{}{gap}", v.name()),
                    Style::new().fg(VENUE_COLOURS[i]),
                ));
            } else {
                spans.push(Span::styled(
                    VENUE_GLYPHS[i].to_string(),
                    Style::new().fg(ASK_SHADES[i]),
                ));
                spans.push(Span::styled(
                    format!(" {} ", v.name()),
                    Style::new().fg(VENUE_COLOURS[i]),
                ));
            }
        }
        if detail == Detail::Full {
            spans.push(Span::raw("── "));
            spans.push(Span::styled("B C K F", bold));
            spans.push(Span::raw(": that book's data ends before this price "));
        }
        Line::from(spans)
    };
    let right = |detail: Detail| {
        let Some(v) = view else {
            return Line::default();
        };
        let (lo, hi) = v.extent;
        let total = hi - lo + 1;
        let first = hi - v.top + 1;
        let last = first + v.rows as i64 - 1;
        let scrolled = matches!(app.scroll, Scroll::Centre(_));
        let text = match (detail, scrolled) {
            (Detail::Tight | Detail::Minimal, false) => format!(" {first}–{last}/{total} ─"),
            (Detail::Tight | Detail::Minimal, true) => {
                format!(" {first}–{last}/{total} scrolled ─")
            }
            (_, false) => format!(" rows {first}–{last} of {total} · following mid ─"),
            (_, true) => format!(" rows {first}–{last} of {total} · scrolled, c re-centres ─"),
        };
        Line::from(Span::styled(text, DIM))
    };
    fitting_line(
        buf,
        area,
        area.y,
        &[
            (left(Detail::Full), right(Detail::Full)),
            (left(Detail::Short), right(Detail::Full)),
            (left(Detail::Short), right(Detail::Tight)),
            (left(Detail::Tight), right(Detail::Tight)),
            (left(Detail::Minimal), right(Detail::Minimal)),
        ],
    );
}

fn fill_rule(buf: &mut Buffer, area: Rect) {
    for x in area.left()..area.right() {
        buf[(x, area.y)].set_char('─').set_style(DIM);
    }
}

/// One ladder row's numbers.
struct LadderRow<'a> {
    k: i64,
    bin: Option<&'a Bin>,
    bids: [f64; 4],
    asks: [f64; 4],
}

/// Running totals from the mid outwards, per venue: bids summed from the top down, asks from the
/// bottom up, so a row holds everything between the mid and its bin.
struct Cumulative {
    /// `bid_from[j]` = Σ bids of bins `j..`.
    bid_from: Vec<[f64; 4]>,
    /// `ask_upto[j]` = Σ asks of bins `..j`.
    ask_upto: Vec<[f64; 4]>,
}

impl Cumulative {
    fn new(bins: &[Bin]) -> Cumulative {
        let n = bins.len();
        let mut bid_from = vec![[0.0; 4]; n + 1];
        for j in (0..n).rev() {
            bid_from[j] = add4(bid_from[j + 1], bins[j].buy_by_venue);
        }
        let mut ask_upto = vec![[0.0; 4]; n + 1];
        for j in 0..n {
            ask_upto[j + 1] = add4(ask_upto[j], bins[j].sell_by_venue);
        }
        Cumulative { bid_from, ask_upto }
    }
}

fn add4(a: [f64; 4], b: [f64; 4]) -> [f64; 4] {
    std::array::from_fn(|i| a[i] + b[i])
}

fn ladder_rows_of<'a>(app: &App, snap: &'a Snapshot, view: LadderView) -> Vec<LadderRow<'a>> {
    let size = snap.bin_size;
    let bins = &snap.bins;
    let cumulative = (app.depth_mode == DepthMode::Cumulative).then(|| Cumulative::new(bins));
    let mut rows = Vec::with_capacity(view.rows);
    for r in 0..view.rows as i64 {
        let k = view.top - r;
        // First bin at or above row k.
        let j = bins.partition_point(|b| size.index_of(b.price) < k);
        let bin = bins.get(j).filter(|b| size.index_of(b.price) == k);
        let (bids, asks) = match &cumulative {
            None => bin.map_or(([0.0; 4], [0.0; 4]), |b| (b.buy_by_venue, b.sell_by_venue)),
            Some(c) => {
                let upto = if bin.is_some() { j + 1 } else { j };
                (c.bid_from[j], c.ask_upto[upto])
            }
        };
        rows.push(LadderRow { k, bin, bids, asks });
    }
    rows
}

/// Cells a quantity fills of `width`, against the largest quantity in view.
fn bar_cells(qty: f64, max: f64, width: u16, scale: BarScale) -> u16 {
    if qty <= 0.0 || max <= 0.0 || width == 0 {
        return 0;
    }
    let frac = match scale {
        BarScale::Linear => qty / max,
        BarScale::Log => ((qty / max).log10() + LOG_DECADES) / LOG_DECADES,
    };
    let cells = (frac.clamp(0.0, 1.0) * width as f64).round() as u16;
    // Any positive quantity shows: one cell rather than none.
    cells.clamp(1, width)
}

/// Draw a stacked bar from the price column outwards (`dir` = -1 leftwards, +1 rightwards).
#[allow(clippy::too_many_arguments)]
fn draw_stacked_bar(
    buf: &mut Buffer,
    inner_x: u16,
    y: u16,
    dir: i32,
    parts: &[f64; 4],
    cells: u16,
    shades: &[Color; 4],
) {
    let total: f64 = parts.iter().sum();
    if cells == 0 || total <= 0.0 {
        return;
    }
    let mut start = 0u16;
    let mut acc = 0.0;
    for i in 0..4 {
        acc += parts[i];
        let end = ((acc / total) * cells as f64).round() as u16;
        let end = if i == 3 { cells } else { end.min(cells) };
        for p in start..end {
            let x = (inner_x as i32 + dir * p as i32) as u16;
            buf[(x, y)].set_char(VENUE_GLYPHS[i]).set_fg(shades[i]);
        }
        start = start.max(end);
    }
}

fn render_ladder(buf: &mut Buffer, area: Rect, app: &App, snap: &Snapshot, view: LadderView) {
    let size = snap.bin_size;
    let rows = ladder_rows_of(app, snap, view);
    let price_dp = size.get().scale();
    let mid_k = snap.mid.map(|m| size.index_of(m));
    let price_w = rows
        .iter()
        .map(|r| size.price_of(r.k).to_fixed(price_dp).len() as u16)
        .max()
        .unwrap_or(0)
        + 2;
    // qty ␣ bar ␣ price ␣ bar ␣ qty ␣ ends
    let fixed = 2 * QTY_WIDTH + price_w + ENDS_WIDTH + 5;
    let bar_w = area.width.saturating_sub(fixed) / 2;
    let x_bid_qty = area.x;
    let x_bid_bar = x_bid_qty + QTY_WIDTH + 1;
    let x_price = x_bid_bar + bar_w + 1;
    let x_ask_bar = x_price + price_w + 1;
    let x_ask_qty = x_ask_bar + bar_w + 1;
    let x_ends = x_ask_qty + QTY_WIDTH + 1;

    let max = rows
        .iter()
        .map(|r| r.bids.iter().sum::<f64>().max(r.asks.iter().sum::<f64>()))
        .fold(0.0f64, f64::max);
    // Bin index range each included venue's book covers (the same rule as `Bin::covered`), for
    // rows no bin stands for.
    let reach: [Option<(i64, i64)>; 4] = std::array::from_fn(|i| {
        let v = &snap.venues[i];
        if !v.included {
            return None;
        }
        let lo = v.coverage.low.or(v.coverage.high)?;
        let hi = v.coverage.high.or(v.coverage.low)?;
        Some((size.index_of(lo), size.index_of(hi)))
    });

    let top_pad = area.height.saturating_sub(rows.len() as u16) / 2;
    let mut text = String::with_capacity(24);
    for (r, row) in rows.iter().enumerate() {
        let y = area.y + top_pad + r as u16;
        if y >= area.bottom() {
            break;
        }
        let bid_total: f64 = row.bids.iter().sum();
        let ask_total: f64 = row.asks.iter().sum();
        if bid_total > 0.0 {
            text.clear();
            let _ = write!(text, "{:>w$}", fmt_qty(bid_total), w = QTY_WIDTH as usize);
            buf.set_stringn(
                x_bid_qty,
                y,
                &text,
                QTY_WIDTH as usize,
                Style::new().fg(Color::Green),
            );
        }
        if ask_total > 0.0 {
            buf.set_stringn(
                x_ask_qty,
                y,
                fmt_qty(ask_total),
                QTY_WIDTH as usize,
                Style::new().fg(Color::Red),
            );
        }
        let bid_cells = bar_cells(bid_total, max, bar_w, app.bar_scale);
        let ask_cells = bar_cells(ask_total, max, bar_w, app.bar_scale);
        if bar_w > 0 {
            draw_stacked_bar(
                buf,
                x_bid_bar + bar_w - 1,
                y,
                -1,
                &row.bids,
                bid_cells,
                &BID_SHADES,
            );
            draw_stacked_bar(buf, x_ask_bar, y, 1, &row.asks, ask_cells, &ASK_SHADES);
        }

        // Price, with ►◄ around the bin that holds the mid.
        let price = size.price_of(row.k).to_fixed(price_dp);
        let is_mid = mid_k == Some(row.k);
        text.clear();
        let inner = (price_w - 2) as usize;
        if is_mid {
            let _ = write!(text, "►{price:^inner$}◄");
        } else {
            let _ = write!(text, " {price:^inner$} ");
        }
        let style = if is_mid {
            Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD)
        } else if row.bin.is_none() {
            DIM
        } else {
            Style::new()
        };
        buf.set_stringn(x_price, y, &text, price_w as usize, style);

        // Venues whose book data ends before this bin.
        for i in 0..4 {
            let covered = match row.bin {
                Some(b) => b.covered[i] || !snap.venues[i].included,
                None => reach[i].is_none_or(|(lo, hi)| lo <= row.k && row.k <= hi),
            };
            if !covered && x_ends + (i as u16) < area.right() {
                buf[(x_ends + i as u16, y)]
                    .set_char(VENUE_LETTERS[i])
                    .set_fg(VENUE_COLOURS[i]);
            }
        }
    }
}

fn state_style(state: FeedState) -> Style {
    match state {
        FeedState::Live => Style::new().fg(Color::Green).add_modifier(Modifier::BOLD),
        FeedState::Connecting | FeedState::Syncing => Style::new().fg(Color::Yellow),
        FeedState::Stale => Style::new()
            .fg(Color::Indexed(208))
            .add_modifier(Modifier::BOLD),
        FeedState::Resyncing => Style::new().fg(Color::Magenta).add_modifier(Modifier::BOLD),
        FeedState::Blocked => Style::new()
            .fg(Color::White)
            .bg(Color::Red)
            .add_modifier(Modifier::BOLD),
        FeedState::Down => Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum VenueColumn {
    Name,
    State,
    Weight,
    Rate,
    Age,
    Counters,
    Levels,
    Latency,
    Covered,
}

impl VenueColumn {
    /// In the order they are given space as the terminal widens.
    const BY_PRIORITY: [VenueColumn; 9] = [
        VenueColumn::Name,
        VenueColumn::State,
        VenueColumn::Weight,
        VenueColumn::Rate,
        VenueColumn::Age,
        VenueColumn::Counters,
        VenueColumn::Levels,
        VenueColumn::Latency,
        VenueColumn::Covered,
    ];

    fn width(self) -> u16 {
        match self {
            VenueColumn::Name => 10,
            VenueColumn::State => 9,
            VenueColumn::Weight => 8,
            VenueColumn::Rate => 6,
            VenueColumn::Age => 5,
            VenueColumn::Counters => 8,
            VenueColumn::Levels => 11,
            VenueColumn::Latency => 6,
            VenueColumn::Covered => 15,
        }
    }

    fn title(self) -> &'static str {
        match self {
            VenueColumn::Name => "# venue",
            VenueColumn::State => "state",
            VenueColumn::Weight => "weight",
            VenueColumn::Rate => " msg/s",
            VenueColumn::Age => "  age",
            VenueColumn::Counters => "rs/gp/ck",
            VenueColumn::Levels => "levels b/a",
            VenueColumn::Latency => "   lat",
            VenueColumn::Covered => "covered",
        }
    }

    fn cell(self, v: &VenueSummary) -> (String, Style) {
        let i = v.venue.index();
        match self {
            VenueColumn::Name => {
                let style =
                    if v.weight > 0.0 && v.excluded_because.as_deref() != Some("switched off") {
                        Style::new().fg(VENUE_COLOURS[i])
                    } else {
                        Style::new()
                            .fg(VENUE_COLOURS[i])
                            .add_modifier(Modifier::CROSSED_OUT)
                    };
                (format!("{} {}", i + 1, v.venue.name()), style)
            }
            VenueColumn::State => (v.state.name().to_string(), state_style(v.state)),
            VenueColumn::Weight => {
                let off = v.excluded_because.as_deref() == Some("switched off");
                if off {
                    (
                        format!("{:.2} off", v.weight),
                        Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
                    )
                } else {
                    (format!("{:.2}", v.weight), Style::new())
                }
            }
            VenueColumn::Rate => {
                let r = v.counters.msgs_per_sec;
                let text = if r < 100.0 {
                    format!("{r:>6.1}")
                } else {
                    format!("{r:>6.0}")
                };
                (text, Style::new())
            }
            VenueColumn::Age => (
                format!("{:>5}", fmt_age(v.last_update_age_ms)),
                Style::new(),
            ),
            VenueColumn::Counters => {
                let c = &v.counters;
                let text = format!("{}/{}/{}", c.resyncs, c.gaps, c.checksums_failed);
                let style = if c.resyncs + c.gaps + c.checksums_failed > 0 {
                    Style::new().fg(Color::Yellow)
                } else {
                    Style::new()
                };
                (text, style)
            }
            VenueColumn::Levels => (format!("{}/{}", v.levels.0, v.levels.1), Style::new()),
            VenueColumn::Latency => (format!("{:>6}", fmt_age(v.latency_ms)), Style::new()),
            VenueColumn::Covered => {
                let text = match (v.coverage.low, v.coverage.high) {
                    (Some(lo), Some(hi)) => format!("{}–{}", lo.to_fixed(0), hi.to_fixed(0)),
                    (Some(lo), None) => format!("{}–", lo.to_fixed(0)),
                    (None, Some(hi)) => format!("–{}", hi.to_fixed(0)),
                    (None, None) => "—".to_string(),
                };
                (text, Style::new())
            }
        }
    }
}

/// Width the reason keeps, at the least, before more columns are shown.
const MIN_REASON_WIDTH: u16 = 24;

fn venue_columns(width: u16) -> Vec<VenueColumn> {
    let mut used = 0u16;
    let mut chosen = Vec::new();
    for c in VenueColumn::BY_PRIORITY {
        if used + c.width() + 1 + MIN_REASON_WIDTH > width {
            break;
        }
        used += c.width() + 1;
        chosen.push(c);
    }
    // Shown in reading order, not priority order.
    let order = |c: &VenueColumn| match c {
        VenueColumn::Name => 0,
        VenueColumn::State => 1,
        VenueColumn::Weight => 2,
        VenueColumn::Rate => 3,
        VenueColumn::Age => 4,
        VenueColumn::Latency => 5,
        VenueColumn::Levels => 6,
        VenueColumn::Covered => 7,
        VenueColumn::Counters => 8,
    };
    chosen.sort_by_key(order);
    chosen
}

fn venue_reason(v: &VenueSummary) -> String {
    match (&v.excluded_because, v.state) {
        // A live venue left out for a setting: say which, then the feed's own reason.
        (Some(why), FeedState::Live) => format!("not in aggregate ({why}) · {}", v.reason),
        _ => v.reason.clone(),
    }
}

fn render_venue_panel(buf: &mut Buffer, area: Rect, snap: &Snapshot) {
    if area.height == 0 {
        return;
    }
    fill_rule(buf, Rect::new(area.x, area.y, area.width, 1));
    buf.set_string(
        area.x,
        area.y,
        "─ venues ",
        Style::new().add_modifier(Modifier::BOLD),
    );
    let columns = venue_columns(area.width);
    let mut y = area.y + 1;
    let with_header = area.height >= 6;
    if with_header {
        let mut x = area.x;
        for c in &columns {
            buf.set_stringn(x, y, c.title(), c.width() as usize, DIM);
            x += c.width() + 1;
        }
        buf.set_stringn(x, y, "reason", area.right().saturating_sub(x) as usize, DIM);
        y += 1;
    }
    for v in &snap.venues {
        if y >= area.bottom() {
            break;
        }
        let mut x = area.x;
        for c in &columns {
            let (text, style) = c.cell(v);
            buf.set_stringn(x, y, &text, c.width() as usize, style);
            x += c.width() + 1;
        }
        let reason = venue_reason(v);
        let room = area.right().saturating_sub(x) as usize;
        let style = match v.state {
            FeedState::Live => Style::new(),
            FeedState::Blocked | FeedState::Down => Style::new().fg(Color::Red),
            _ => Style::new().fg(Color::Yellow),
        };
        buf.set_stringn(x, y, ellipsize(&reason, room), room, style);
        y += 1;
    }
}

fn ellipsize(text: &str, width: usize) -> std::borrow::Cow<'_, str> {
    if text.chars().count() <= width {
        return text.into();
    }
    if width == 0 {
        return "".into();
    }
    let mut s: String = text.chars().take(width - 1).collect();
    s.push('…');
    s.into()
}

const KEY_HELP: [&str; 3] = [
    "keys: +/- bin  ↑↓ PgUp PgDn scroll  c centre  1-4 venues  m cumulative  l log  s save csv  p freeze  ? help  q quit",
    "+/- bin  ↑↓ PgUp/Dn scroll  c centre  1-4 venue  m cumul  l log  s save  p freeze  ? help  q quit",
    "+/- bin ↑↓ scroll c centre 1-4 venue m cum l log s save p freeze ? q",
];

fn render_footer(buf: &mut Buffer, area: Rect, info: &FrameInfo) {
    let mut y = area.y;
    if area.height >= 3 {
        let keys = KEY_HELP
            .iter()
            .find(|k| k.chars().count() <= area.width as usize)
            .unwrap_or(&KEY_HELP[2]);
        buf.set_stringn(area.x, y, keys, area.width as usize, DIM);
        y += 1;
    }
    let full = csv_line(info, false);
    let csv = if full.width() <= area.width as usize {
        full
    } else {
        csv_line(info, true)
    };
    buf.set_line(area.x, y, &csv, area.width);
    y += 1;
    if y >= area.bottom() {
        return;
    }
    let error = match &info.last_error {
        Some(e) => Line::from(vec![
            Span::styled(
                "last error: ",
                Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
            ),
            Span::styled(e.clone(), Style::new().fg(Color::Red)),
        ]),
        None => Line::from(Span::styled("last error: none", DIM)),
    };
    let right = if area.height < 3 {
        Line::from(Span::styled("? help  q quit", DIM))
    } else {
        Line::default()
    };
    line_with_right(buf, area, y, &error, &right);
}

fn csv_line(info: &FrameInfo, short: bool) -> Line<'static> {
    let label = Span::styled("csv: ", Style::new().add_modifier(Modifier::BOLD));
    let Some(w) = &info.last_write else {
        return Line::from(vec![label, Span::styled("no snapshot written yet", DIM)]);
    };
    // The header clock names the zone; the time here is in the same one.
    let clock = clock_text(w.at, info.utc_offset);
    let when = format!(
        "{} ({} ago) ",
        clock.trim_end_matches(" UTC"),
        fmt_age(Some(info.now_ms - w.at))
    );
    if let Some(e) = &w.error {
        return Line::from(vec![
            label,
            Span::raw(when),
            Span::styled(
                format!("write FAILED ({}): {e}", w.path.display()),
                Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
            ),
        ]);
    }
    let venues = if w.venues.is_empty() {
        "no venue".to_string()
    } else if short {
        w.venues.iter().map(|v| VENUE_LETTERS[v.index()]).collect()
    } else {
        let names: Vec<&str> = w.venues.iter().map(|v| v.name()).collect();
        names.join(" ")
    };
    Line::from(vec![
        label,
        Span::raw(when),
        Span::styled(w.path.display().to_string(), Style::new().fg(Color::Cyan)),
        Span::raw(format!(" · {} rows · {venues}", w.rows)),
    ])
}

const HELP_TEXT: [&str; 20] = [
    "+  ]      bin size up   (1 2 5 10 20 50 100 250 500 1000 USD)",
    "-  [      bin size down",
    "↑ ↓       scroll one bin        PgUp PgDn  one page",
    "c  Home   centre on the mid and follow it",
    "1 2 3 4   take binance / coinbase / kraken / bitfinex out",
    "          of the aggregate (and the CSV) or put it back",
    "m         per-bin or cumulative depth (from the mid out)",
    "l         linear or log bars (log: 4 decades)",
    "s         write agg_snapshot.csv now",
    "p         freeze the display (data keeps flowing)",
    "?         this help (Esc closes it)",
    "q Esc ^C  quit",
    "",
    "bars      weighted quantity stacked by venue from the price",
    "          out: █ binance ▓ coinbase ▒ kraken ░ bitfinex",
    "          (green bids, red asks; scaled to the largest in view)",
    "►price◄   the bin that holds the consolidated mid",
    "B C K F   right of a row: that venue's book data ends before",
    "          this price (the book reaches no further; it says",
    "          nothing about the exchange's liquidity there)",
];

fn render_help(buf: &mut Buffer, area: Rect) {
    let w = (HELP_TEXT
        .iter()
        .map(|l| l.chars().count())
        .max()
        .unwrap_or(0) as u16
        + 4)
    .min(area.width);
    let h = (HELP_TEXT.len() as u16 + 2).min(area.height);
    let rect = Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    );
    let frame_style = Style::new().fg(Color::Cyan);
    for y in rect.top()..rect.bottom() {
        for x in rect.left()..rect.right() {
            let edge_y = y == rect.top() || y == rect.bottom() - 1;
            let edge_x = x == rect.left() || x == rect.right() - 1;
            let ch = match (edge_x, edge_y) {
                (true, true) => match (x == rect.left(), y == rect.top()) {
                    (true, true) => '┌',
                    (false, true) => '┐',
                    (true, false) => '└',
                    (false, false) => '┘',
                },
                (true, false) => '│',
                (false, true) => '─',
                (false, false) => ' ',
            };
            let cell = &mut buf[(x, y)];
            cell.reset();
            cell.set_char(ch);
            if edge_x || edge_y {
                cell.set_style(frame_style);
            }
        }
    }
    buf.set_string(
        rect.x + 2,
        rect.y,
        " help · ? or Esc closes ",
        frame_style.add_modifier(Modifier::BOLD),
    );
    for (i, line) in HELP_TEXT.iter().enumerate() {
        let y = rect.y + 1 + i as u16;
        if y + 1 >= rect.bottom() {
            break;
        }
        buf.set_stringn(rect.x + 2, y, line, (w - 4) as usize, Style::new());
    }
}

/// `HH:MM:SS` at the offset, or `HH:MM:SS UTC` without one.
pub fn clock_text(ms: Millis, offset: Option<UtcOffset>) -> String {
    let Ok(t) = time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000) else {
        return "--:--:--".to_string();
    };
    let t = t.to_offset(offset.unwrap_or(UtcOffset::UTC));
    let suffix = if offset.is_none() { " UTC" } else { "" };
    format!(
        "{:02}:{:02}:{:02}{suffix}",
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// A price for the header: at least two decimals, more when the value has them.
pub fn fmt_price(p: Dec) -> String {
    p.to_fixed(p.scale().clamp(2, 8))
}

fn opt_price(p: Option<Dec>) -> String {
    p.map_or_else(|| "—".to_string(), fmt_price)
}

/// A quantity in at most eight characters.
pub fn fmt_qty(q: f64) -> String {
    if q >= 99_999.5 {
        format!("{q:.0}")
    } else if q >= 9_999.95 {
        format!("{q:.1}")
    } else if q >= 999.995 {
        format!("{q:.2}")
    } else {
        format!("{q:.3}")
    }
}

/// An age or a latency: `45ms`, `3.2s`, `42s`, `5m`, `2h`, or `—`.
pub fn fmt_age(ms: Option<i64>) -> String {
    let Some(ms) = ms else {
        return "—".to_string();
    };
    let ms = ms.max(0);
    if ms < 1_000 {
        format!("{ms}ms")
    } else if ms < 10_000 {
        format!("{:.1}s", ms as f64 / 1000.0)
    } else if ms < 120_000 {
        format!("{}s", ms / 1000)
    } else if ms < 7_200_000 {
        format!("{}m", ms / 60_000)
    } else {
        format!("{}h", ms / 3_600_000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_and_latencies() {
        let f = |ms| fmt_age(Some(ms));
        assert_eq!(
            [f(0), f(999), f(1_000), f(9_949), f(10_000), f(119_999)],
            ["0ms", "999ms", "1.0s", "9.9s", "10s", "119s"]
        );
        assert_eq!([f(120_000), f(7_200_000), f(-5)], ["2m", "2h", "0ms"]);
        assert_eq!(fmt_age(None), "—");
    }

    #[test]
    fn quantities_fit_eight_characters() {
        let q = [0.0, 1.8555, 999.99, 1234.5678, 12345.67, 123456.7];
        let text: Vec<String> = q.iter().map(|&x| fmt_qty(x)).collect();
        assert_eq!(
            text,
            ["0.000", "1.855", "999.990", "1234.57", "12345.7", "123457"]
        );
    }

    #[test]
    fn prices_keep_their_digits() {
        let d = |s| Dec::parse(s).expect("valid decimal");
        assert_eq!(fmt_price(d("100000")), "100000.00");
        assert_eq!(fmt_price(d("100000.005")), "100000.005");
        assert_eq!(fmt_price(d("0.5")), "0.50");
    }

    #[test]
    fn clock_is_local_when_the_offset_is_known() {
        let ms = 1_735_787_045_999;
        assert_eq!(clock_text(ms, None), "03:04:05 UTC");
        let plus_two = UtcOffset::from_hms(2, 0, 0).expect("valid offset");
        assert_eq!(clock_text(ms, Some(plus_two)), "05:04:05");
    }

    #[test]
    fn bars_scale_linear_and_log() {
        assert_eq!(bar_cells(5.0, 10.0, 20, BarScale::Linear), 10);
        assert_eq!(bar_cells(10.0, 10.0, 20, BarScale::Linear), 20);
        // Any positive quantity shows one cell.
        assert_eq!(bar_cells(0.001, 10.0, 20, BarScale::Linear), 1);
        assert_eq!(bar_cells(0.0, 10.0, 20, BarScale::Linear), 0);
        // Log: two decades below the largest over four decades is half the width.
        assert_eq!(bar_cells(0.1, 10.0, 20, BarScale::Log), 10);
        assert_eq!(bar_cells(10.0, 10.0, 20, BarScale::Log), 20);
        assert_eq!(bar_cells(1e-9, 10.0, 20, BarScale::Log), 1);
    }

    #[test]
    fn venue_columns_give_way_to_the_reason() {
        let cols = |w| venue_columns(w).len();
        assert_eq!([cols(60), cols(80), cols(120), cols(200)], [3, 6, 9, 9]);
    }

    #[test]
    fn layout_fills_the_terminal() {
        for (w, h, ladder) in [(60, 16, 6), (80, 24, 12), (120, 40, 28), (200, 60, 48)] {
            let l = screen_layout(Rect::new(0, 0, w, h)).expect("big enough");
            assert_eq!(l.ladder.height, ladder, "{w}×{h}");
            assert_eq!(l.footer.bottom(), h, "{w}×{h}");
        }
        assert_eq!(screen_layout(Rect::new(0, 0, 59, 16)), None);
        assert_eq!(screen_layout(Rect::new(0, 0, 60, 15)), None);
    }
}
