//! The detail view of one namespace: process summary, health message and
//! details, throughput sparkline, latency histogram and its event log. The
//! health box grows to show every detail (see [`super::health`]), and takes
//! the sparkline's half too when half a line is not enough.

use ratatui::{
    Frame,
    layout::{Constraint, Layout, Rect},
    text::{Line, Span},
    widgets::{Block, Paragraph},
};

use super::{exemplars, health, histogram, theme};
use crate::view::{Cell, DetailView, LatencyView, Tone};

/// Rows of the health / throughput band, borders included; less on short
/// terminals so the histogram keeps its height.
const BAND_HEIGHT: u16 = 6;
const BAND_HEIGHT_SHORT: u16 = 4;
const SHORT: u16 = 26;
/// The histogram's minimum: borders, legend, two rows of bars, markers, axis.
const HISTOGRAM_MIN: u16 = 7;
/// The event log's minimum: borders and one event.
const EVENTS_MIN: u16 = 3;
/// The trace list's minimum: borders and one trace.
const TRACES_MIN: u16 = 3;

pub(crate) fn render(frame: &mut Frame, area: Rect, detail: &DetailView) {
    let summary_height = detail.summary.len() as u16;
    let base = if area.height < SHORT {
        BAND_HEIGHT_SHORT
    } else {
        BAND_HEIGHT
    };
    // The band may take what the histogram, trace list and event log can spare.
    let room = area
        .height
        .saturating_sub(1 + summary_height + HISTOGRAM_MIN + TRACES_MIN + EVENTS_MIN)
        .max(base);
    let [half, _] = Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)])
        .areas(Rect { height: 1, ..area });
    let mut health_lines = health::lines(&detail.health, half.width.saturating_sub(2));
    let mut full_width = false;
    if health_lines.len() as u16 + 2 > room {
        let wide = health::lines(&detail.health, area.width.saturating_sub(2));
        if wide.len() < health_lines.len() {
            health_lines = wide;
            full_width = true;
        }
    }
    let band_height = (health_lines.len() as u16 + 2).clamp(base, room);
    let rest = area.height.saturating_sub(1 + summary_height + band_height);
    // The histogram gets three fifths of what is left, the event log the rest.
    let histogram_height = (rest * 3 / 5).max(HISTOGRAM_MIN).min(rest);
    let [title, summary, band, latency, bottom] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(summary_height),
        Constraint::Length(band_height),
        Constraint::Length(histogram_height),
        Constraint::Fill(1),
    ])
    .areas(area);
    // The trace list takes what it needs, up to half of what is below the
    // histogram and never the event log's last row; the event log the rest.
    let traces_height = exemplars::height(&detail.exemplars)
        .min(bottom.height / 2)
        .min(bottom.height.saturating_sub(EVENTS_MIN))
        .max(TRACES_MIN.min(bottom.height));
    let [traces, events] =
        Layout::vertical([Constraint::Length(traces_height), Constraint::Fill(1)]).areas(bottom);
    exemplars::render(frame, traces, &detail.exemplars);

    frame.render_widget(
        Paragraph::new(Span::styled(format!(" {}", detail.title), theme::title())),
        title,
    );
    let lines: Vec<Line> = detail.summary.iter().map(|cells| line(cells)).collect();
    frame.render_widget(Paragraph::new(lines), summary);

    let [health, throughput] = if full_width {
        [band, Rect::default()]
    } else {
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(band)
    };
    let shown = usize::from(band_height.saturating_sub(2));
    if health_lines.len() > shown && shown > 0 {
        // Only a terminal too small for the list gets here; say so.
        let hidden = health_lines.len() - shown + 1;
        health_lines.truncate(shown - 1);
        health_lines.push(Line::styled(
            format!("… {hidden} more lines: enlarge the terminal"),
            theme::style(Tone::Dim),
        ));
    }
    frame.render_widget(Paragraph::new(health_lines).block(boxed("health")), health);

    match &detail.latency {
        LatencyView::Ready {
            histogram: h,
            throughput: t,
        } => {
            if !full_width {
                histogram::render_throughput(frame, throughput, t);
            }
            histogram::render(frame, latency, h);
        }
        LatencyView::Loading => {
            if !full_width {
                note(frame, throughput, "throughput", "loading…");
            }
            note(frame, latency, "latency", "loading…");
        }
        LatencyView::NotAvailable(why) => {
            if !full_width {
                note(frame, throughput, "throughput", "n/a");
            }
            note(frame, latency, "latency", why);
        }
    }

    let mut event_lines: Vec<Line> = Vec::new();
    if let Some(why) = &detail.events_note {
        event_lines.push(Line::styled(why.as_str(), theme::style(Tone::Dim)));
    } else if detail.events.is_empty() {
        event_lines.push(Line::styled("no events yet", theme::style(Tone::Dim)));
    }
    for e in &detail.events {
        event_lines.push(Line::from(vec![
            Span::styled(format!("{:>8}  ", e.age), theme::style(Tone::Dim)),
            Span::styled(format!("{:<19} ", e.kind.text), theme::style(e.kind.tone)),
            Span::raw(format!("{:<10} ", e.pid)),
            Span::raw(e.reason.as_str()),
        ]));
    }
    frame.render_widget(Paragraph::new(event_lines).block(boxed("events")), events);
}

fn line(cells: &[Cell]) -> Line<'_> {
    let mut spans = vec![Span::raw(" ")];
    spans.extend(cells.iter().map(theme::span));
    Line::from(spans)
}

fn boxed(title: &str) -> Block<'_> {
    Block::bordered()
        .border_style(theme::border())
        .title(Span::styled(format!(" {title} "), theme::title()))
}

fn note(frame: &mut Frame, area: Rect, title: &str, text: &str) {
    frame.render_widget(
        Paragraph::new(Span::styled(text, theme::style(Tone::Dim))).block(boxed(title)),
        area,
    );
}
