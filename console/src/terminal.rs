//! Terminal setup and restore. Raw mode and the alternate screen are undone
//! however the console ends: normal exit and `?` errors through [`Tui`]'s
//! `Drop`, panics through the hook [`init`] installs.

use std::{
    io::{self, Stdout, stdout},
    ops::{Deref, DerefMut},
    sync::Once,
};

use ratatui::{
    Terminal,
    backend::CrosstermBackend,
    crossterm::{
        cursor, execute,
        terminal::{EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode},
    },
};

use crate::Error;

/// The terminal in raw mode on the alternate screen; restored on drop.
pub(crate) struct Tui {
    terminal: Terminal<CrosstermBackend<Stdout>>,
}

/// Enters raw mode and the alternate screen.
///
/// Fails with [`Error::Terminal`] when stdout is not a terminal; nothing is
/// left changed then.
pub(crate) fn init() -> Result<Tui, Error> {
    install_panic_hook();
    enable_raw_mode().map_err(Error::Terminal)?;
    let setup = execute!(stdout(), EnterAlternateScreen, cursor::Hide)
        .and_then(|()| Terminal::new(CrosstermBackend::new(stdout())));
    match setup {
        Ok(terminal) => Ok(Tui { terminal }),
        Err(e) => {
            let _ = restore();
            Err(Error::Terminal(e))
        }
    }
}

/// Leaves raw mode and the alternate screen, and shows the cursor again.
/// Safe to call more than once.
pub(crate) fn restore() -> io::Result<()> {
    // Raw mode first: it matters most if the rest fails.
    disable_raw_mode()?;
    execute!(stdout(), LeaveAlternateScreen, cursor::Show)
}

/// Restores the terminal before the default hook prints the panic, so the
/// message is readable and the shell usable.
fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let _ = restore();
            previous(info);
        }));
    });
}

impl Deref for Tui {
    type Target = Terminal<CrosstermBackend<Stdout>>;
    fn deref(&self) -> &Self::Target {
        &self.terminal
    }
}

impl DerefMut for Tui {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.terminal
    }
}

impl Drop for Tui {
    fn drop(&mut self) {
        let _ = restore();
    }
}
