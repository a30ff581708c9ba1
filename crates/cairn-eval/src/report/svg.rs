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
    // Five intervals: every "nice" maximum (1, 2, 2.5, 5 × 10^n) then gives round tick labels.
    for t in 0..=5 {
        let v = y_max * t as f64 / 5.0;
        let y = TOP + plot_h - plot_h * t as f64 / 5.0;
        s.push_str(&format!(
            r##"<line x1="{LEFT}" x2="{x2}" y1="{y:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{tx}" y="{ty:.1}" text-anchor="end">{}</text>"##,
            tick(v),
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
}
