//! Terminal dashboard (ratatui + crossterm).
//!
//! [`run`] owns the terminal for as long as the dashboard is up. One `tokio::select!` loop waits
//! for a key, a 50 ms tick (venue versions and the clock are checked there) or shutdown, and draws
//! only when data, input or the displayed second changed, at most [`MAX_FPS`] times a second. A
//! snapshot is taken only when a frame is drawn (notify-then-pull: no queue between the venues and
//! the screen), so the keyboard never waits on the network.
//!
//! [`app`] holds the state and the key handling, [`render`] the pure render functions (the screen
//! layout is drawn in its doc comment), [`terminal`] the setup, restore and panic hook.

pub mod app;
pub mod render;
pub mod terminal;

use std::sync::Arc;
use std::time::{Duration, Instant};

use crossterm::event::{Event, EventStream};
use futures_util::StreamExt;
use time::UtcOffset;

use crate::aggregate::take_snapshot;
use crate::control::Controls;
use crate::engine::SharedVenue;
use crate::venue::Millis;

pub use app::{App, KeyOutcome};
pub use render::{FrameInfo, render};

/// Frame rate cap.
pub const MAX_FPS: u64 = 20;
/// How often venue versions and the clock are checked.
const TICK: Duration = Duration::from_millis(50);

/// Run the dashboard until the user quits or shutdown is requested elsewhere. The terminal is
/// restored on every way out (return, error, panic). Quitting calls
/// [`Controls::request_shutdown`].
///
/// The clock shows local time when the local offset can be found; inside a multi-threaded
/// runtime it usually cannot (see [`local_offset`]), then the clock shows UTC, labelled. Call
/// [`run_with_offset`] with an offset found before the runtime started to show local time.
pub async fn run(venues: Vec<SharedVenue>, controls: Arc<Controls>) -> color_eyre::Result<()> {
    run_with_offset(venues, controls, local_offset()).await
}

static LOCAL_OFFSET: std::sync::OnceLock<Option<UtcOffset>> = std::sync::OnceLock::new();

/// Read the local UTC offset once. On Unix the platform tells it safely only while the process has
/// a single thread, so `main` calls this before starting the tokio runtime.
pub fn init_local_offset() {
    LOCAL_OFFSET.get_or_init(|| UtcOffset::current_local_offset().ok());
}

/// The local UTC offset read by [`init_local_offset`] (or now, if it was not called).
pub fn local_offset() -> Option<UtcOffset> {
    *LOCAL_OFFSET.get_or_init(|| UtcOffset::current_local_offset().ok())
}

/// [`run`] with the clock's UTC offset given (`None`: UTC).
pub async fn run_with_offset(
    venues: Vec<SharedVenue>,
    controls: Arc<Controls>,
    utc_offset: Option<UtcOffset>,
) -> color_eyre::Result<()> {
    let mut session = terminal::TerminalSession::enter()?;
    // The session restores the terminal when dropped, after the loop ends in any way.
    let result = event_loop(session.terminal(), &venues, &controls, utc_offset).await;
    drop(session);
    result
}

fn now_ms() -> Millis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as Millis)
}

fn versions_sum(venues: &[SharedVenue]) -> u64 {
    venues
        .iter()
        .map(|v| v.version())
        .fold(0, u64::wrapping_add)
}

async fn event_loop(
    terminal: &mut terminal::Tui,
    venues: &[SharedVenue],
    controls: &Controls,
    utc_offset: Option<UtcOffset>,
) -> color_eyre::Result<()> {
    let mut app = App::new();
    let mut events = EventStream::new();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut shutdown = controls.shutdown.subscribe();
    let min_frame = Duration::from_millis(1000 / MAX_FPS);

    let mut dirty = true;
    let mut last_draw: Option<Instant> = None;
    let mut seen_versions = versions_sum(venues);
    let mut seen_second = now_ms() / 1000;

    loop {
        if controls.is_shutting_down() {
            return Ok(());
        }
        if dirty && last_draw.is_none_or(|t| t.elapsed() >= min_frame) {
            let now = now_ms();
            seen_second = now / 1000;
            seen_versions = versions_sum(venues);
            let area = terminal.size()?;
            app.set_viewport_rows(render::ladder_rows(ratatui::layout::Rect::new(
                0,
                0,
                area.width,
                area.height,
            )));
            if app.wants_snapshot() {
                let cfg = controls.agg_config();
                app.offer_snapshot(take_snapshot(venues, &cfg, now));
            }
            let info = FrameInfo::from_controls(controls, now, utc_offset);
            terminal.draw(|frame| render(frame, &app, &info))?;
            dirty = false;
            last_draw = Some(Instant::now());
        }
        tokio::select! {
            event = events.next() => match event {
                Some(Ok(Event::Key(key))) => match app.on_key(key, controls) {
                    KeyOutcome::Quit => return Ok(()),
                    KeyOutcome::Redraw => dirty = true,
                    KeyOutcome::Ignored => {}
                },
                Some(Ok(Event::Resize(_, _))) => dirty = true,
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e.into()),
                // No more input (stdin closed): nothing can quit the dashboard but shutdown.
                None => {
                    let _ = shutdown.wait_for(|&stop| stop).await;
                    return Ok(());
                }
            },
            _ = tick.tick() => {
                if versions_sum(venues) != seen_versions || now_ms() / 1000 != seen_second {
                    dirty = true;
                }
            }
            changed = shutdown.changed() => {
                if changed.is_err() || *shutdown.borrow() {
                    return Ok(());
                }
            }
        }
    }
}
