//! Draws a [`View`] into a buffer: a title, a progress gauge, a line of
//! figures, and the latency histogram as horizontal bars. Pure — nothing is
//! computed here beyond laying out what the view holds.

use ratatui::{
    buffer::Buffer,
    layout::{Constraint, Layout, Rect},
    style::{Color, Style},
    text::Line,
    widgets::{Block, Gauge, Paragraph, Widget},
};

use crate::{stats::Bucket, table::micros, tui::View};

pub fn render(view: &View, area: Rect, buf: &mut Buffer) {
    let [title, gauge, figures, histogram, help] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(3),
        Constraint::Length(2),
        Constraint::Min(3),
        Constraint::Length(1),
    ])
    .areas(area);
    let Some(snap) = &view.snapshot else {
        Paragraph::new("prism-bench: starting…").render(title, buf);
        return;
    };
    let path = snap.path.map_or("-", |p| p.name());
    Paragraph::new(format!(
        "prism-bench — path {}/{}: {path} — {}",
        snap.path_index + 1,
        snap.path_count.max(1),
        snap.phase.name()
    ))
    .render(title, buf);

    Gauge::default()
        .block(Block::bordered().title("progress"))
        .gauge_style(Style::default().fg(Color::Cyan))
        .ratio(snap.progress.clamp(0.0, 1.0))
        .render(gauge, buf);

    let recorder = &snap.measured.recorder;
    let summary = recorder.summary();
    Paragraph::new(vec![
        Line::from(format!(
            "rps {:.1}   completed {}   measured ok {}   errors {}",
            view.rps,
            snap.completed,
            recorder.ok(),
            recorder.error_count()
        )),
        Line::from(format!(
            "p50 {}   p90 {}   p99 {}   p99.9 {}   max {}",
            micros(summary.p50_us),
            micros(summary.p90_us),
            micros(summary.p99_us),
            micros(summary.p999_us),
            micros(summary.max_us)
        )),
    ])
    .render(figures, buf);

    let block = Block::bordered().title("latency (measured, successful)");
    let inner = block.inner(histogram);
    block.render(histogram, buf);
    let buckets = recorder.log_buckets();
    let shown = &buckets[buckets.len().saturating_sub(inner.height as usize)..];
    Paragraph::new(histogram_lines(shown, inner.width as usize)).render(inner, buf);

    Paragraph::new("q: quit (stops the run)")
        .style(Style::default().fg(Color::DarkGray))
        .render(help, buf);
}

/// One line per bucket: `  ≤ 256µs │■■■■■■■ 1234`, bars scaled to the
/// largest count within `width` columns.
pub fn histogram_lines(buckets: &[Bucket], width: usize) -> Vec<Line<'static>> {
    let most = buckets.iter().map(|b| b.count).max().unwrap_or(0).max(1);
    let labels: Vec<String> = buckets
        .iter()
        .map(|b| format!("≤ {}", micros(b.upper_us as f64)))
        .collect();
    let label_width = labels.iter().map(|l| l.chars().count()).max().unwrap_or(0);
    let counts: Vec<String> = buckets.iter().map(|b| b.count.to_string()).collect();
    let count_width = counts.iter().map(String::len).max().unwrap_or(0);
    let bar_room = width.saturating_sub(label_width + count_width + 4);
    buckets
        .iter()
        .zip(labels.iter().zip(&counts))
        .map(|(b, (label, count))| {
            let bar = (b.count as u128 * bar_room as u128 / most as u128) as usize;
            Line::from(format!(
                "{label:>label_width$} │{} {count}",
                "■".repeat(bar)
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::{paths::PathKind, tui::tests::snapshot};

    fn text(buf: &Buffer) -> String {
        let area = buf.area;
        (0..area.height)
            .map(|y| {
                (0..area.width)
                    .map(|x| buf[(x, y)].symbol().to_string())
                    .collect::<String>()
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn bars_scale_to_the_largest_bucket() {
        let lines = histogram_lines(
            &[
                Bucket {
                    upper_us: 128,
                    count: 10,
                },
                Bucket {
                    upper_us: 256,
                    count: 5,
                },
            ],
            30,
        );
        let rendered: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
        assert_eq!(rendered[0], format!("≤ 128µs │{} 10", "■".repeat(17)));
        assert_eq!(rendered[1], format!("≤ 256µs │{} 5", "■".repeat(8)));
        assert!(rendered.iter().all(|l| l.chars().count() <= 30));
        assert!(histogram_lines(&[], 30).is_empty());
    }

    #[test]
    fn draws_the_path_phase_rate_and_histogram() {
        let mut view = View::default();
        let mut snap = snapshot(Instant::now(), PathKind::Pattern, 1234);
        snap.measured.recorder.record_ok(Duration::from_micros(200));
        view.update(snap);
        let area = Rect::new(0, 0, 70, 14);
        let mut buf = Buffer::empty(area);
        render(&view, area, &mut buf);
        let screen = text(&buf);
        for needle in [
            "path 1/3: pattern — measuring",
            "progress",
            "completed 1234",
            "p50 200µs",
            "≤ 256µs",
            "q: quit",
        ] {
            assert!(
                screen.contains(needle),
                "{needle:?} missing from:\n{screen}"
            );
        }
    }

    #[test]
    fn draws_before_the_first_snapshot() {
        let area = Rect::new(0, 0, 40, 8);
        let mut buf = Buffer::empty(area);
        render(&View::default(), area, &mut buf);
        assert!(text(&buf).contains("starting"));
    }
}
