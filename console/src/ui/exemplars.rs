//! The detail view's trace exemplars box: one line per call, the selected
//! one highlighted (j/k move, `y` copies its trace id, `o` prints its link).

use ratatui::{
    Frame,
    layout::Rect,
    text::{Line, Span},
    widgets::{Block, Paragraph},
};

use super::theme;
use crate::view::{Tone, exemplars::ExemplarsView};

/// Rows the box wants: its lines and borders, at least one line.
pub(crate) fn height(view: &ExemplarsView) -> u16 {
    view.rows.len().max(1) as u16 + 2
}

pub(crate) fn render(frame: &mut Frame, area: Rect, view: &ExemplarsView) {
    let block = Block::bordered()
        .border_style(theme::border())
        .title(Span::styled(
            " traces (slowest, failures) · y copy · o link ",
            theme::title(),
        ));
    let mut lines: Vec<Line> = Vec::new();
    if let Some(note) = &view.note {
        lines.push(Line::styled(note.as_str(), theme::style(Tone::Dim)));
    }
    // Keep the selected row in sight when the box is shorter than the list.
    let visible = area.height.saturating_sub(2) as usize;
    let skip = view
        .selected
        .map_or(0, |s| (s + 1).saturating_sub(visible.max(1)));
    for (i, row) in view.rows.iter().enumerate().skip(skip) {
        let marker = if view.selected == Some(i) { "›" } else { " " };
        let mut line = Line::from(vec![
            Span::styled(marker, theme::style(Tone::Accent)),
            Span::styled(format!("{:>8}  ", row.age), theme::style(Tone::Dim)),
            Span::raw(format!("{:<12} ", row.operation)),
            Span::styled(
                format!("{:<18} ", row.outcome.text),
                theme::style(row.outcome.tone),
            ),
            Span::raw(row.trace_id.as_str()),
        ]);
        if view.selected == Some(i) {
            line = line.style(theme::selected());
        }
        lines.push(line);
    }
    frame.render_widget(Paragraph::new(lines).block(block), area);
}
