//! The latency histogram as a bar chart, with the buckets holding p50, p90,
//! p99 and max coloured and marked underneath; and the throughput sparkline.

use ratatui::{
    Frame,
    layout::{Constraint, Layout, Rect},
    text::{Line, Span},
    widgets::{Bar, BarChart, BarGroup, Block, Paragraph, Sparkline},
};

use super::theme;
use crate::view::{HistogramView, ThroughputView, Tone};

pub(crate) fn render(frame: &mut Frame, area: Rect, view: &HistogramView) {
    let block = Block::bordered()
        .border_style(theme::border())
        .title(Span::styled(format!(" {} ", view.title), theme::title()));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let [legend, bars, markers, axis] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Fill(1),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(inner);

    let mut spans = Vec::new();
    for (i, cell) in view.legend.iter().enumerate() {
        if i > 0 {
            spans.push(Span::raw("  "));
        }
        spans.push(theme::span(cell));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), legend);

    if view.bars.is_empty() {
        frame.render_widget(
            Paragraph::new(Span::styled(
                "no requests in the window",
                theme::style(Tone::Dim),
            )),
            bars,
        );
        return;
    }
    let (bar_width, gap) = bar_geometry(inner.width, view.bars.len() as u16);
    let chart = BarChart::default().bar_width(bar_width).bar_gap(gap).data(
        BarGroup::default().bars(
            &view
                .bars
                .iter()
                .map(|b| {
                    Bar::default()
                        .value(b.count)
                        .text_value(String::new())
                        .style(theme::style(b.tone))
                })
                .collect::<Vec<_>>(),
        ),
    );
    frame.render_widget(chart, bars);

    let x_of = |bucket: usize| inner.x.saturating_add(bucket as u16 * (bar_width + gap));
    let buf = frame.buffer_mut();
    let mut free_from = inner.x;
    for marker in &view.markers {
        let x = x_of(marker.bucket);
        if x < free_from || x >= inner.right() {
            continue;
        }
        let text = format!("▲{}", marker.label);
        let room = (inner.right() - x) as usize;
        let (end, _) = buf.set_stringn(x, markers.y, &text, room, theme::style(marker.tone));
        free_from = end + 1;
    }
    let (left, right) = &view.axis;
    buf.set_stringn(
        axis.x,
        axis.y,
        left,
        axis.width as usize,
        theme::style(Tone::Dim),
    );
    let last_end = x_of(view.bars.len() - 1) + bar_width;
    let right_x = last_end
        .saturating_sub(right.chars().count() as u16)
        .max(axis.x + left.chars().count() as u16 + 1);
    if right_x < axis.right() {
        buf.set_stringn(
            right_x,
            axis.y,
            right,
            (axis.right() - right_x) as usize,
            theme::style(Tone::Dim),
        );
    }
}

/// Bar width and gap so `bars` bars fill `width` cells as far as they can.
pub(crate) fn bar_geometry(width: u16, bars: u16) -> (u16, u16) {
    let bars = bars.max(1);
    if width >= bars * 2 {
        let gap = 1;
        (((width + gap) / bars).saturating_sub(gap).clamp(1, 8), gap)
    } else {
        (1, 0)
    }
}

pub(crate) fn render_throughput(frame: &mut Frame, area: Rect, view: &ThroughputView) {
    let block = Block::bordered()
        .border_style(theme::border())
        .title(Span::styled(format!(" {} ", view.title), theme::title()));
    let inner = block.inner(area);
    // The newest seconds, as many as fit.
    let skip = view.history.len().saturating_sub(inner.width as usize);
    let sparkline = Sparkline::default()
        .block(block)
        .style(theme::style(Tone::Bar))
        .data(view.history.iter().skip(skip).copied());
    frame.render_widget(sparkline, area);
}
