//! The log view: one box of pattern output lines, each a dim prefix (time,
//! pid, stream) then the text with the search's matches highlighted; the
//! line `n`/`N` moved to is drawn reversed. Lines longer than the box are
//! cut at its edge, not wrapped, so one line is one row.

use ratatui::{
    Frame,
    layout::Rect,
    style::{Modifier, Stylize},
    text::{Line, Span},
    widgets::{Block, Paragraph},
};

use super::theme;
use crate::view::{
    Tone,
    logs::{LogRow, LogsView},
};

pub(crate) fn render(frame: &mut Frame, area: Rect, view: &LogsView) {
    let block = Block::bordered()
        .border_style(theme::border())
        .title(Span::styled(format!(" {} ", view.title), theme::title()));
    let lines: Vec<Line> = match &view.empty {
        Some(note) if view.rows.is_empty() => {
            vec![Line::styled(note.as_str(), theme::style(Tone::Dim))]
        }
        _ => view.rows.iter().map(line).collect(),
    };
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

fn line(row: &LogRow) -> Line<'_> {
    let mut spans = vec![theme::span(&row.prefix), Span::raw(" ")];
    spans.extend(row.text.iter().map(|cell| {
        let span = theme::span(cell);
        if cell.tone == Tone::Accent {
            span.add_modifier(Modifier::BOLD)
        } else {
            span
        }
    }));
    let line = Line::from(spans);
    if row.current {
        line.patch_style(theme::selected())
    } else {
        line
    }
}
