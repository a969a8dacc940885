//! The main view: one row per namespace. Columns that do not fit the width
//! are dropped, least useful first, so the table works at 80 columns.

use ratatui::{
    Frame,
    layout::{Constraint, Rect},
    text::{Line, Span, Text},
    widgets::{Block, Paragraph, Row, Table, TableState, Wrap},
};

use super::theme;
use crate::{
    app::Column,
    view::{TableView, Tone},
};

/// Dropped in this order when the terminal is too narrow; the namespace and
/// health columns always stay.
const DROP_ORDER: [Column; 11] = [
    Column::Pattern,
    Column::ClientErrorRate,
    Column::Backend,
    Column::P50,
    Column::Restarts,
    Column::Uptime,
    Column::ErrorRate,
    Column::Rps,
    Column::P99,
    Column::Pid,
    Column::State,
];

const SPACING: u16 = 1;

/// Width of a column; the namespace column takes what is left, at least this.
fn width(column: Column) -> u16 {
    match column {
        Column::Namespace => 10,
        Column::Pattern => 12,
        Column::Backend => 8,
        Column::State => 10,
        Column::Health => 9,
        Column::Pid => 7,
        Column::Uptime => 7,
        Column::Restarts => 9,
        Column::Rps | Column::ErrorRate | Column::ClientErrorRate | Column::P50 | Column::P99 => 6,
    }
}

/// The columns that fit in `width` cells, in display order.
pub(crate) fn columns_for(available: u16) -> Vec<Column> {
    let mut columns = Column::ALL.to_vec();
    let needed = |columns: &[Column]| -> u16 {
        columns.iter().map(|&c| width(c)).sum::<u16>()
            + SPACING * (columns.len() as u16).saturating_sub(1)
    };
    for drop in DROP_ORDER {
        if needed(&columns) <= available {
            break;
        }
        columns.retain(|&c| c != drop);
    }
    columns
}

pub(crate) fn render(frame: &mut Frame, area: Rect, table: &TableView) {
    let mut block = Block::bordered()
        .border_style(theme::border())
        .title(Span::styled(format!(" {} ", table.title), theme::title()));
    if let Some(event) = &table.proxy_event {
        block = block.title_bottom(Span::styled(
            format!(" {} ", event.text),
            theme::style(event.tone),
        ));
    }
    let inner = block.inner(area);
    if let Some(empty) = &table.empty {
        frame.render_widget(
            Paragraph::new(Span::styled(empty.as_str(), theme::style(Tone::Dim)))
                .wrap(Wrap { trim: true })
                .block(block),
            area,
        );
        return;
    }
    let columns = columns_for(inner.width);
    let widths = columns.iter().map(|&c| match c {
        Column::Namespace => Constraint::Fill(1),
        c => Constraint::Length(width(c)),
    });
    let header = Row::new(
        columns
            .iter()
            .map(|&c| Text::from(table.headers[c.index()].as_str())),
    )
    .style(theme::title());
    let rows = table.rows.iter().map(|cells| {
        Row::new(
            columns
                .iter()
                .map(|&c| Line::from(theme::span(&cells[c.index()]))),
        )
    });
    let widget = Table::new(rows, widths)
        .header(header)
        .column_spacing(SPACING)
        .block(block)
        .row_highlight_style(theme::selected());
    let mut state = TableState::default().with_selected(table.selected);
    frame.render_stateful_widget(widget, area, &mut state);
}
