//! Terminal setup and restore, and a panic hook that restores the terminal before the message.

use std::io::{self, Stdout};
use std::panic::PanicHookInfo;
use std::sync::Arc;

use crossterm::execute;
use crossterm::terminal::{
    EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;

/// The dashboard's terminal.
pub type Tui = Terminal<CrosstermBackend<Stdout>>;

type PanicHook = dyn Fn(&PanicHookInfo<'_>) + Send + Sync + 'static;

/// Raw mode and the alternate screen for as long as it lives; dropping it restores the terminal
/// (also on an early return or an error) and puts back the panic hook that was there before.
pub struct TerminalSession {
    terminal: Tui,
    previous_hook: Arc<PanicHook>,
}

impl TerminalSession {
    /// Enter raw mode and the alternate screen, and install a panic hook that restores the
    /// terminal before the previous hook prints the panic.
    pub fn enter() -> io::Result<TerminalSession> {
        let previous_hook: Arc<PanicHook> = Arc::from(std::panic::take_hook());
        let chained = Arc::clone(&previous_hook);
        std::panic::set_hook(Box::new(move |info| {
            let _ = restore();
            chained(info);
        }));
        let terminal = enable_raw_mode()
            .and_then(|()| execute!(io::stdout(), EnterAlternateScreen))
            .and_then(|()| Terminal::new(CrosstermBackend::new(io::stdout())));
        match terminal {
            Ok(mut terminal) => {
                // A hidden cursor is cosmetic; failing to hide it is no reason to stop.
                let _ = terminal.hide_cursor();
                Ok(TerminalSession {
                    terminal,
                    previous_hook,
                })
            }
            Err(e) => {
                let _ = restore();
                reinstall(previous_hook);
                Err(e)
            }
        }
    }

    /// The terminal to draw on.
    pub fn terminal(&mut self) -> &mut Tui {
        &mut self.terminal
    }
}

impl Drop for TerminalSession {
    fn drop(&mut self) {
        let _ = self.terminal.show_cursor();
        let _ = restore();
        reinstall(Arc::clone(&self.previous_hook));
    }
}

fn reinstall(previous: Arc<PanicHook>) {
    // Only while not panicking: take_hook/set_hook panic when called from a panicking thread.
    if !std::thread::panicking() {
        let _ = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| previous(info)));
    }
}

/// Leave the alternate screen and raw mode (harmless when not in them).
pub fn restore() -> io::Result<()> {
    let raw = disable_raw_mode();
    let screen = execute!(io::stdout(), LeaveAlternateScreen, crossterm::cursor::Show);
    raw.and(screen)
}
