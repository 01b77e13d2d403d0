//! Server-rendered SVG charts for the metrics pages: no script, no build step. One chart kind
//! — stacked bars over a sequence (days, commits) — which is what the trunk-health figures
//! are. Every text is escaped; values are plain numbers.

use std::fmt::Write;

/// One stacked series.
pub struct Series<'a> {
    pub name: &'a str,
    /// A CSS colour.
    pub color: &'a str,
    pub values: Vec<f64>,
}

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 180.0;
const LEFT: f64 = 48.0;
const BOTTOM: f64 = 22.0;
const TOP: f64 = 8.0;

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn tick(value: f64) -> String {
    if value >= 100.0 || value == value.trunc() {
        format!("{value:.0}")
    } else {
        format!("{value:.2}")
    }
}

/// Stacked bars: one bar per label, the series stacked in order. `id` names the `<svg>`.
pub fn stacked_bars(id: &str, labels: &[String], series: &[Series<'_>], unit: &str) -> String {
    let n = labels.len();
    let totals: Vec<f64> = (0..n)
        .map(|i| {
            series
                .iter()
                .map(|s| s.values.get(i).copied().unwrap_or(0.0).max(0.0))
                .sum()
        })
        .collect();
    let max = totals.iter().copied().fold(0.0_f64, f64::max);
    let max = if max <= 0.0 { 1.0 } else { max };
    let plot_w = WIDTH - LEFT - 4.0;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let slot = if n == 0 { plot_w } else { plot_w / n as f64 };
    let bar = (slot * 0.8).max(1.0);
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg id="{id}" class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" role="img" xmlns="http://www.w3.org/2000/svg">"#,
        id = escape(id)
    );
    // Axis and three gridlines.
    for step in 0..=2 {
        let v = max * step as f64 / 2.0;
        let y = TOP + plot_h - plot_h * step as f64 / 2.0;
        let _ = write!(
            svg,
            r##"<line x1="{LEFT}" x2="{x2}" y1="{y:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{tx}" y="{ty:.1}" font-size="10" text-anchor="end" fill="#666">{label}{unit}</text>"##,
            x2 = WIDTH - 4.0,
            tx = LEFT - 4.0,
            ty = y + 3.0,
            label = tick(v),
            unit = escape(unit)
        );
    }
    for (i, label) in labels.iter().enumerate() {
        let x = LEFT + slot * i as f64 + (slot - bar) / 2.0;
        let mut base = 0.0;
        for s in series {
            let v = s.values.get(i).copied().unwrap_or(0.0).max(0.0);
            if v <= 0.0 {
                continue;
            }
            let h = plot_h * v / max;
            let y = TOP + plot_h - plot_h * base / max - h;
            let _ = write!(
                svg,
                r#"<rect x="{x:.1}" y="{y:.1}" width="{bar:.1}" height="{h:.1}" fill="{color}"><title>{label}: {name} {value}{unit}</title></rect>"#,
                color = escape(s.color),
                label = escape(label),
                name = escape(s.name),
                value = tick(v),
                unit = escape(unit)
            );
            base += v;
        }
    }
    // First and last labels under the axis.
    if let (Some(first), Some(last)) = (labels.first(), labels.last()) {
        let _ = write!(
            svg,
            r##"<text x="{LEFT}" y="{y}" font-size="10" fill="#666">{first}</text><text x="{x}" y="{y}" font-size="10" text-anchor="end" fill="#666">{last}</text>"##,
            y = HEIGHT - 6.0,
            x = WIDTH - 4.0,
            first = escape(first),
            last = escape(last)
        );
    }
    // Legend.
    let mut lx = LEFT + 8.0;
    for s in series {
        let _ = write!(
            svg,
            r#"<rect x="{lx:.1}" y="{TOP}" width="10" height="10" fill="{color}"/><text x="{tx:.1}" y="{ty}" font-size="10">{name}</text>"#,
            color = escape(s.color),
            tx = lx + 14.0,
            ty = TOP + 9.0,
            name = escape(s.name)
        );
        lx += 24.0 + 6.0 * s.name.len() as f64;
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_are_drawn_and_text_is_escaped() {
        let svg = stacked_bars(
            "red",
            &["2026-12-01".into(), "<2026-12-02>".into()],
            &[
                Series {
                    name: "real",
                    color: "#c00",
                    values: vec![0.2, 0.5],
                },
                Series {
                    name: "flaky",
                    color: "#e90",
                    values: vec![0.1, 0.0],
                },
            ],
            "",
        );
        assert!(svg.starts_with("<svg id=\"red\""));
        assert_eq!(
            svg.matches("<rect x=").count(),
            3 + 2,
            "3 bars and 2 legend keys"
        );
        assert!(svg.contains("&lt;2026-12-02&gt;"));
        assert!(!svg.contains("<2026-12-02>"));
        assert!(stacked_bars("e", &[], &[], "s").ends_with("</svg>"));
    }
}
