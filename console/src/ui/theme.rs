//! The console's colours: one style per [`Tone`].

use ratatui::style::{Color, Modifier, Style};

use crate::view::{Cell, Tone};

pub(crate) fn style(tone: Tone) -> Style {
    match tone {
        Tone::Normal => Style::new(),
        Tone::Dim => Style::new().fg(Color::DarkGray),
        Tone::Good => Style::new().fg(Color::Green),
        Tone::Warn => Style::new().fg(Color::Yellow),
        Tone::Bad => Style::new().fg(Color::Red),
        Tone::Accent => Style::new().fg(Color::Magenta),
        Tone::Bar => Style::new().fg(Color::Cyan),
    }
}

/// A cell as a span in its tone.
pub(crate) fn span(cell: &Cell) -> ratatui::text::Span<'_> {
    ratatui::text::Span::styled(cell.text.as_str(), style(cell.tone))
}

pub(crate) fn title() -> Style {
    Style::new().add_modifier(Modifier::BOLD)
}

pub(crate) fn selected() -> Style {
    Style::new().add_modifier(Modifier::REVERSED)
}

pub(crate) fn border() -> Style {
    Style::new().fg(Color::DarkGray)
}
