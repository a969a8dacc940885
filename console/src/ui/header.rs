//! The two header lines: brand, connection state and proxy address (the
//! fullest wording that fits); then the totals.

use ratatui::{
    Frame,
    layout::Rect,
    style::{Color, Modifier, Style, Stylize},
    text::{Line, Span},
    widgets::Paragraph,
};

use super::{fitting, theme};
use crate::view::HeaderView;

pub(crate) fn render(frame: &mut Frame, area: Rect, header: &HeaderView) {
    let brand = Span::styled(
        " PRISM ",
        Style::new()
            .fg(Color::Black)
            .bg(Color::Cyan)
            .add_modifier(Modifier::BOLD),
    );
    let mut first = Line::from(vec![
        brand,
        Span::raw(" "),
        theme::span(&header.connection).add_modifier(Modifier::BOLD),
        Span::raw("  "),
    ]);
    let left = u16::try_from(first.width()).unwrap_or(u16::MAX);
    let proxy = fitting(&header.proxy, area.width.saturating_sub(left));
    first.push_span(Span::styled(proxy, theme::style(crate::view::Tone::Dim)));
    let mut second = vec![Span::raw(" ")];
    for (i, cell) in header.totals.iter().enumerate() {
        if i > 0 {
            second.push(Span::styled(" │ ", theme::border()));
        }
        second.push(theme::span(cell));
    }
    frame.render_widget(Paragraph::new(vec![first, Line::from(second)]), area);
}
