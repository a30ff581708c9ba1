//! Small hand-written SVG charts, so that the HTML report is one self-contained file with no scripts.

const PALETTE: [&str; 8] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
];

pub fn color(i: usize) -> &'static str {
    PALETTE[i % PALETTE.len()]
}

pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const W: f64 = 400.0;
const H: f64 = 260.0;
const LEFT: f64 = 52.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 28.0;
const BOTTOM: f64 = 44.0;

/// A "nice" upper bound for the y axis.
fn nice_max(v: f64) -> f64 {
    if v <= 0.0 || !v.is_finite() {
        return 1.0;
    }
    let mag = 10f64.powf(v.log10().floor());
    for step in [1.0, 2.0, 2.5, 5.0, 10.0] {
        if step * mag >= v {
            return step * mag;
        }
    }
    10.0 * mag
}

fn frame(title: &str, y_max: f64, body: &str, x_axis: &str, legend: &[(String, usize)]) -> String {
    // Five intervals: every "nice" maximum (1, 2, 2.5, 5 × 10^n) then gives round tick labels.
    let ticks: Vec<(f64, String)> = (0..=5)
        .map(|t| (t as f64 / 5.0, tick(y_max * t as f64 / 5.0)))
        .collect();
    frame_with_ticks(title, &ticks, body, x_axis, legend)
}

/// The chart's frame with grid lines at `ticks`: (height as a fraction of the plot, label).
fn frame_with_ticks(
    title: &str,
    ticks: &[(f64, String)],
    body: &str,
    x_axis: &str,
    legend: &[(String, usize)],
) -> String {
    let mut s = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{h}" viewBox="0 0 {W} {h}" font-family="sans-serif" font-size="11">"#,
        h = H + 18.0 * legend.len().div_ceil(3) as f64
    );
    s.push_str(&format!(
        r#"<text x="{}" y="16" font-size="13" font-weight="bold">{}</text>"#,
        LEFT,
        esc(title)
    ));
    let plot_h = H - TOP - BOTTOM;
    for (fraction, label) in ticks {
        let y = TOP + plot_h - plot_h * fraction;
        s.push_str(&format!(
            r##"<line x1="{LEFT}" x2="{x2}" y1="{y:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{tx}" y="{ty:.1}" text-anchor="end">{}</text>"##,
            esc(label),
            x2 = W - RIGHT,
            tx = LEFT - 4.0,
            ty = y + 4.0
        ));
    }
    s.push_str(body);
    s.push_str(x_axis);
    s.push_str(&format!(
        r##"<line x1="{LEFT}" x2="{LEFT}" y1="{TOP}" y2="{yb}" stroke="#333"/><line x1="{LEFT}" x2="{xr}" y1="{yb}" y2="{yb}" stroke="#333"/>"##,
        yb = TOP + plot_h,
        xr = W - RIGHT
    ));
    for (n, (name, c)) in legend.iter().enumerate() {
        let x = LEFT + (n % 3) as f64 * 115.0;
        let y = H + 4.0 + 18.0 * (n / 3) as f64;
        s.push_str(&format!(
            r#"<rect x="{x}" y="{y}" width="10" height="10" fill="{}"/><text x="{}" y="{}">{}</text>"#,
            color(*c),
            x + 14.0,
            y + 9.0,
            esc(name)
        ));
    }
    s.push_str("</svg>");
    s
}

fn tick(v: f64) -> String {
    if v == 0.0 {
        "0".into()
    } else if v.abs() >= 10.0 {
        format!("{v:.0}")
    } else if v.abs() >= 1.0 {
        format!("{v:.1}")
    } else if (v * 100.0 - (v * 100.0).round()).abs() < 1e-9 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

/// Lines over shared x values (e.g. k), one per series; the x axis is categorical (evenly spaced).
pub fn line_chart(title: &str, xs: &[String], series: &[(String, Vec<Option<f64>>)]) -> String {
    let y_max = nice_max(
        series
            .iter()
            .flat_map(|(_, v)| v.iter().flatten())
            .copied()
            .fold(0.0, f64::max),
    );
    let plot_w = W - LEFT - RIGHT;
    let plot_h = H - TOP - BOTTOM;
    let x_at = |i: usize| {
        if xs.len() <= 1 {
            LEFT + plot_w / 2.0
        } else {
            LEFT + 20.0 + (plot_w - 40.0) * i as f64 / (xs.len() - 1) as f64
        }
    };
    let y_at = |v: f64| TOP + plot_h - plot_h * (v / y_max);
    let mut body = String::new();
    for (n, (_, values)) in series.iter().enumerate() {
        let pts: Vec<String> = values
            .iter()
            .enumerate()
            .filter_map(|(i, v)| v.map(|v| format!("{:.1},{:.1}", x_at(i), y_at(v))))
            .collect();
        body.push_str(&format!(
            r#"<polyline points="{}" fill="none" stroke="{}" stroke-width="2"/>"#,
            pts.join(" "),
            color(n)
        ));
        for p in &pts {
            let (x, y) = p.split_once(',').unwrap_or(("0", "0"));
            body.push_str(&format!(
                r#"<circle cx="{x}" cy="{y}" r="3" fill="{}"/>"#,
                color(n)
            ));
        }
    }
    let mut axis = String::new();
    for (i, x) in xs.iter().enumerate() {
        axis.push_str(&format!(
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            x_at(i),
            TOP + plot_h + 14.0,
            esc(x)
        ));
    }
    let legend: Vec<(String, usize)> = series
        .iter()
        .enumerate()
        .map(|(i, s)| (s.0.clone(), i))
        .collect();
    frame(title, y_max, &body, &axis, &legend)
}

/// Grouped bars: one group per category, one bar per series. `errors` (optional, per series and
/// category) draws interval whiskers.
pub fn bar_chart(
    title: &str,
    categories: &[String],
    series: &[(String, Vec<f64>)],
    errors: Option<&[Vec<(f64, f64)>]>,
    color_offset: usize,
) -> String {
    let hi = errors
        .map(|e| e.iter().flatten().map(|p| p.1).fold(0.0, f64::max))
        .unwrap_or(0.0);
    let y_max = nice_max(
        series
            .iter()
            .flat_map(|(_, v)| v.iter())
            .copied()
            .fold(hi, f64::max),
    );
    let plot_w = W - LEFT - RIGHT;
    let plot_h = H - TOP - BOTTOM;
    let group_w = plot_w / categories.len().max(1) as f64;
    let bar_w = (group_w * 0.8) / series.len().max(1) as f64;
    let y_at = |v: f64| TOP + plot_h - plot_h * (v.max(0.0) / y_max);
    let mut body = String::new();
    for (s, (_, values)) in series.iter().enumerate() {
        for (c, &v) in values.iter().enumerate() {
            let x = LEFT + group_w * c as f64 + group_w * 0.1 + bar_w * s as f64;
            let y = y_at(v);
            body.push_str(&format!(
                r#"<rect x="{x:.1}" y="{y:.1}" width="{:.1}" height="{:.1}" fill="{}"><title>{:.4}</title></rect>"#,
                (bar_w - 1.0).max(1.0),
                TOP + plot_h - y,
                color(s + color_offset),
                v
            ));
            if let Some((lo, hi)) = errors.and_then(|e| e.get(s)).and_then(|e| e.get(c)) {
                let cx = x + bar_w / 2.0;
                body.push_str(&format!(
                    r##"<line x1="{cx:.1}" x2="{cx:.1}" y1="{:.1}" y2="{:.1}" stroke="#000"/><line x1="{:.1}" x2="{:.1}" y1="{:.1}" y2="{:.1}" stroke="#000"/><line x1="{:.1}" x2="{:.1}" y1="{:.1}" y2="{:.1}" stroke="#000"/>"##,
                    y_at(*lo), y_at(*hi),
                    cx - 3.0, cx + 3.0, y_at(*lo), y_at(*lo),
                    cx - 3.0, cx + 3.0, y_at(*hi), y_at(*hi)
                ));
            }
        }
    }
    let mut axis = String::new();
    for (c, name) in categories.iter().enumerate() {
        axis.push_str(&format!(
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            LEFT + group_w * (c as f64 + 0.5),
            TOP + plot_h + 14.0,
            esc(name)
        ));
    }
    let legend: Vec<(String, usize)> = series
        .iter()
        .enumerate()
        .map(|(i, s)| (s.0.clone(), i + color_offset))
        .collect();
    frame(title, y_max, &body, &axis, &legend)
}

/// Grouped bars of shares (0..1) on a logarithmic y axis, one decade per grid line, so that a
/// distribution with 99% in one category still shows the other categories apart (0.5% and 0.05%
/// differ by a decade, not by a pixel). The axis starts one decade below the smallest positive
/// share; a zero share has no bar and is marked `0` at the axis.
pub fn log_share_chart(
    title: &str,
    categories: &[String],
    series: &[(String, Vec<f64>)],
    color_offset: usize,
) -> String {
    let smallest = series
        .iter()
        .flat_map(|(_, v)| v.iter())
        .copied()
        .filter(|v| *v > 0.0 && v.is_finite())
        .fold(1.0, f64::min);
    // Decades from 10^low (the axis) to 10^0 (100%), at least two.
    let low = (smallest.log10().floor() - 1.0).clamp(-9.0, -2.0);
    let decades = -low;
    let plot_w = W - LEFT - RIGHT;
    let plot_h = H - TOP - BOTTOM;
    let fraction = |v: f64| ((v.log10() - low) / decades).clamp(0.0, 1.0);
    let group_w = plot_w / categories.len().max(1) as f64;
    let bar_w = (group_w * 0.8) / series.len().max(1) as f64;
    let mut body = String::new();
    for (s, (_, values)) in series.iter().enumerate() {
        for (c, &v) in values.iter().enumerate() {
            let x = LEFT + group_w * c as f64 + group_w * 0.1 + bar_w * s as f64;
            if v > 0.0 && v.is_finite() {
                let height = plot_h * fraction(v);
                body.push_str(&format!(
                    r#"<rect x="{x:.1}" y="{:.1}" width="{:.1}" height="{height:.1}" fill="{}"><title>{}</title></rect>"#,
                    TOP + plot_h - height,
                    (bar_w - 1.0).max(1.0),
                    color(s + color_offset),
                    percent(v)
                ));
            } else {
                body.push_str(&format!(
                    r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="9" fill="{}">0</text>"#,
                    x + bar_w / 2.0,
                    TOP + plot_h - 3.0,
                    color(s + color_offset)
                ));
            }
        }
    }
    let mut axis = String::new();
    for (c, name) in categories.iter().enumerate() {
        axis.push_str(&format!(
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            LEFT + group_w * (c as f64 + 0.5),
            TOP + plot_h + 14.0,
            esc(name)
        ));
    }
    let ticks: Vec<(f64, String)> = (0..=decades as i32)
        .map(|d| {
            let v = 10f64.powi(low as i32 + d);
            let label = percent(v);
            let label = if label.contains('.') {
                let digits = label.trim_end_matches('%').trim_end_matches('0');
                format!("{}%", digits.trim_end_matches('.'))
            } else {
                label
            };
            (fraction(v), label)
        })
        .collect();
    let legend: Vec<(String, usize)> = series
        .iter()
        .enumerate()
        .map(|(i, s)| (s.0.clone(), i + color_offset))
        .collect();
    frame_with_ticks(title, &ticks, &body, &axis, &legend)
}

/// A share (0..1) as a percentage with two significant digits below 10%: `99%`, `4.5%`, `0.012%`.
pub fn percent(v: f64) -> String {
    let p = v * 100.0;
    if p == 0.0 || !p.is_finite() {
        "0%".into()
    } else if p.abs() >= 10.0 {
        format!("{p:.0}%")
    } else {
        let decimals = (1.0 - p.abs().log10().floor()).max(0.0) as usize;
        format!("{p:.decimals$}%")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_are_svg_and_escape_names() {
        let s = line_chart(
            "t",
            &["10".into(), "20".into()],
            &[("a<b".into(), vec![Some(0.1), Some(0.2)])],
        );
        assert!(s.starts_with("<svg") && s.ends_with("</svg>"));
        assert!(s.contains("a&lt;b") && !s.contains("a<b"));
        let b = bar_chart(
            "t",
            &["x".into()],
            &[("m".into(), vec![0.5])],
            Some(&[vec![(0.4, 0.6)]]),
            0,
        );
        assert!(b.contains("<rect") && b.contains("<title>0.5000</title>"));
        assert_eq!(nice_max(0.37), 0.5);
        assert_eq!(nice_max(7.0), 10.0);
    }

    /// The heights of the bars of series `color_index` in a chart, in category order.
    fn bar_heights(svg: &str, color_index: usize) -> Vec<f64> {
        svg.split("<rect ")
            .skip(1)
            .filter(|r| {
                r.contains(&format!("fill=\"{}\"", color(color_index))) && r.contains("<title>")
            })
            .map(|r| {
                let h = r.split("height=\"").nth(1).unwrap_or("");
                h[..h.find('"').unwrap_or(0)].parse().unwrap_or(f64::NAN)
            })
            .collect()
    }

    #[test]
    fn log_share_chart_separates_a_tail_that_a_linear_chart_flattens() {
        // 99% of the slots in decile 1, the rest thinning out by halves, the last decile empty.
        let shares = vec![
            0.99, 0.005, 0.0025, 0.0012, 0.0006, 0.0003, 0.00015, 0.00008, 0.00004, 0.0,
        ];
        let deciles: Vec<String> = (1..=10).map(|d| d.to_string()).collect();
        let series = [("model".to_string(), shares.clone())];
        let log = log_share_chart("slots", &deciles, &series, 0);
        let heights = bar_heights(&log, 0);
        // Nine bars (the empty decile has none, only a `0` mark), strictly decreasing, and every
        // step at least 5 pixels tall.
        assert_eq!(heights.len(), 9, "{log}");
        for pair in heights.windows(2) {
            assert!(pair[0] - pair[1] >= 5.0, "{heights:?}");
        }
        assert!(heights[8] >= 5.0, "{heights:?}");
        assert!(log.contains(">0</text>"));
        assert!(
            log.contains(">100%</text>") && log.contains(">0.0001%</text>"),
            "{log}"
        );
        assert!(log.contains("<title>99%</title>") && log.contains("<title>0.50%</title>"));
        // The same shares on the linear chart: deciles 2..9 are all under 2 pixels.
        let linear = bar_chart("slots", &deciles, &series, None, 0);
        let flat = bar_heights(&linear, 0);
        assert!(flat[1..9].iter().all(|h| *h < 2.0), "{flat:?}");
    }

    #[test]
    fn percentages_keep_two_significant_digits_below_ten() {
        assert_eq!(percent(0.99), "99%");
        assert_eq!(percent(0.045), "4.5%");
        assert_eq!(percent(0.00012), "0.012%");
        assert_eq!(percent(0.0), "0%");
    }
}
