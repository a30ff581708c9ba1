//! The self-contained HTML report: tables with intervals, metric@k curves, popularity bias, coverage
//! and a comparison of the models against the baseline. No scripts, no external resources.

use super::svg::{bar_chart, esc, line_chart};
use super::table::default_columns;
use crate::runner::{Report, StageReport};

const STYLE: &str = "body{font-family:sans-serif;max-width:1280px;margin:20px auto;padding:0 16px;color:#222}\
table{border-collapse:collapse;margin:8px 0 16px;font-size:13px}th,td{border:1px solid #ccc;padding:4px 8px;text-align:right}\
th:first-child,td:first-child{text-align:left}th{background:#f3f3f3}.ci{color:#777;font-size:11px}\
.charts{display:flex;flex-wrap:wrap;gap:12px}.charts svg{border:1px solid #eee;background:#fff}\
.note{color:#555;font-size:13px}h2{border-bottom:2px solid #ddd;padding-bottom:4px;margin-top:32px}\
.better{color:#1a7f37}.worse{color:#c62828}";

pub fn render(report: &Report) -> String {
    let mut h = String::new();
    h.push_str(&format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Cairn evaluation: {}</title><style>{STYLE}</style></head><body>",
        esc(&report.protocol)
    ));
    h.push_str("<h1>Cairn offline evaluation</h1>");
    let c = &report.config;
    h.push_str(&format!(
        "<p>Protocol <b>{}</b> on <code>{}</code>. Cut-offs k = {}. Intervals: {:.0}% percentile bootstrap over users ({} resamples, seed {}); ± is one standard error.</p>",
        esc(&report.protocol),
        esc(&report.source),
        c.ranking.ks.iter().map(|k| k.to_string()).collect::<Vec<_>>().join(", "),
        c.ci.level * 100.0,
        c.ci.resamples,
        c.ci.seed
    ));
    h.push_str("<p class=\"note\">Seen and fold-in items are excluded from every ranking; users without targets are skipped. \
RecallLiang@k = hits / min(k, |T|); NDCG uses binary gain (NDCGgraded: the target's rating as gain); ARP = mean training popularity \
of the recommended items; Gini = inequality of exposure over the catalog (0 = even). Definitions: docs/EVALUATION.md.</p>");
    let columns = default_columns(report);
    if !report.fold_means.is_empty() {
        h.push_str("<h2>Mean over folds</h2><table><tr><th>model</th><th>folds</th>");
        for col in &columns {
            h.push_str(&format!("<th>{}</th>", esc(col)));
        }
        h.push_str("</tr>");
        for f in &report.fold_means {
            h.push_str(&format!(
                "<tr><td>{}</td><td>{}</td>",
                esc(&f.model),
                f.folds
            ));
            for col in &columns {
                h.push_str(&format!("<td>{}</td>", fmt(f.metrics.get(col).copied())));
            }
            h.push_str("</tr>");
        }
        h.push_str("</table>");
    }
    for stage in &report.stages {
        stage_section(&mut h, report, stage, &columns);
    }
    h.push_str("</body></html>\n");
    h
}

fn fmt(v: Option<f64>) -> String {
    match v {
        Some(x) if x.is_finite() => format!("{x:.4}"),
        _ => "–".into(),
    }
}

fn stage_section(h: &mut String, report: &Report, stage: &StageReport, columns: &[String]) {
    h.push_str(&format!(
        "<h2>Stage {}</h2><p>{} training users, {} items ({} ranked per user), {} evaluated users{}.</p>",
        esc(&stage.name),
        stage.n_fit_users,
        stage.n_items,
        stage.n_catalog,
        stage.n_eval_users,
        if stage.models.iter().any(|m| m.rating.is_some()) {
            format!(", {} rating pairs", stage.n_rating_pairs)
        } else {
            String::new()
        }
    ));
    // Summary table with intervals.
    h.push_str("<table><tr><th>model</th>");
    for col in columns {
        h.push_str(&format!("<th>{}</th>", esc(col)));
    }
    h.push_str("<th>fit s</th><th>score s</th></tr>");
    for m in &stage.models {
        h.push_str(&format!("<tr><td>{}</td>", esc(&m.model)));
        for col in columns {
            let cell = if let Some(s) = m.metrics.get(col) {
                format!(
                    "{:.4} <span class=\"ci\">±{:.4}<br>[{:.4}, {:.4}]</span>",
                    s.mean, s.std_err, s.ci_low, s.ci_high
                )
            } else if let (Some(r), "RMSE") = (&m.rating, col.as_str()) {
                format!(
                    "{:.4} <span class=\"ci\">[{:.4}, {:.4}]</span>",
                    r.rmse, r.rmse_ci.0, r.rmse_ci.1
                )
            } else if let (Some(r), "MAE") = (&m.rating, col.as_str()) {
                format!(
                    "{:.4} <span class=\"ci\">[{:.4}, {:.4}]</span>",
                    r.mae, r.mae_ci.0, r.mae_ci.1
                )
            } else {
                fmt(m.value(col))
            };
            h.push_str(&format!("<td>{cell}</td>"));
        }
        h.push_str(&format!(
            "<td>{:.3}</td><td>{:.3}</td></tr>",
            m.fit_s, m.score_s
        ));
    }
    h.push_str("</table>");

    let ranked: Vec<_> = stage
        .models
        .iter()
        .filter(|m| !m.metrics.is_empty())
        .collect();
    if ranked.is_empty() {
        return;
    }
    let ks = &report.config.ranking.ks;
    let xs: Vec<String> = ks.iter().map(|k| k.to_string()).collect();
    let curve = |family: &str| -> Vec<(String, Vec<Option<f64>>)> {
        ranked
            .iter()
            .map(|m| {
                (
                    m.model.clone(),
                    ks.iter()
                        .map(|k| m.value(&format!("{family}@{k}")))
                        .collect(),
                )
            })
            .collect()
    };
    h.push_str("<h3>Accuracy at k</h3><div class=\"charts\">");
    for family in ["RecallLiang", "NDCG", "Precision", "MAP"] {
        h.push_str(&line_chart(&format!("{family}@k"), &xs, &curve(family)));
    }
    h.push_str(
        "</div><h3>Catalog coverage, exposure and popularity bias</h3><div class=\"charts\">",
    );
    h.push_str(&line_chart(
        "Coverage@k (share of catalog recommended)",
        &xs,
        &curve("Coverage"),
    ));
    h.push_str(&line_chart(
        "Gini@k of exposure (1 = concentrated)",
        &xs,
        &curve("Gini"),
    ));
    h.push_str(&line_chart(
        "ARP@k (mean popularity of recommended items)",
        &xs,
        &curve("ARP"),
    ));
    if let Some(k) = ranked
        .iter()
        .find_map(|m| m.popularity_bins.as_ref().map(|b| b.k))
    {
        let deciles: Vec<String> = (1..=10).map(|d| format!("{d}")).collect();
        let mut series: Vec<(String, Vec<f64>)> = ranked
            .iter()
            .filter_map(|m| {
                m.popularity_bins
                    .as_ref()
                    .map(|b| (m.model.clone(), b.recommended_share.clone()))
            })
            .collect();
        if let Some(b) = ranked.iter().find_map(|m| m.popularity_bins.as_ref()) {
            series.push((
                "training interactions".to_string(),
                b.training_share.clone(),
            ));
        }
        h.push_str(&bar_chart(
            &format!("Share of top-{k} slots per popularity decile"),
            &deciles,
            &series,
            None,
            0,
        ));
    }
    h.push_str("</div><p class=\"note\">Popularity deciles: the catalog sorted by number of training users and cut into ten \
equal parts (1 = the most popular tenth). A model free of popularity bias would spread its slots at least as evenly as the \
training interactions.</p>");

    // Model comparison: headline metrics with intervals, then paired tests against the baseline.
    let kmax = report.config.ranking.list_len();
    let mut headline: Vec<String> = vec![format!("NDCG@{kmax}")];
    if let Some(k) = ks.iter().find(|&&k| k >= 20).or(ks.first()) {
        headline.insert(0, format!("RecallLiang@{k}"));
    }
    if report.config.ranking.auc {
        headline.push("AUC".into());
    }
    h.push_str("<h3>Model comparison</h3><div class=\"charts\">");
    for metric in &headline {
        let values: Vec<f64> = ranked
            .iter()
            .map(|m| m.value(metric).unwrap_or(0.0))
            .collect();
        let errors: Vec<Vec<(f64, f64)>> = ranked
            .iter()
            .map(|m| {
                m.metrics
                    .get(metric)
                    .map(|s| vec![(s.ci_low, s.ci_high)])
                    .unwrap_or_default()
            })
            .collect();
        let series: Vec<(String, Vec<f64>)> = ranked
            .iter()
            .zip(&values)
            .map(|(m, v)| (m.model.clone(), vec![*v]))
            .collect();
        h.push_str(&bar_chart(
            &format!(
                "{metric} with {:.0}% interval",
                report.config.ci.level * 100.0
            ),
            std::slice::from_ref(metric),
            &series,
            Some(&errors),
            0,
        ));
    }
    h.push_str("</div>");
    let shown: Vec<_> = stage
        .comparisons
        .iter()
        .filter(|c| {
            headline.contains(&c.metric)
                || ks.iter().any(|k| c.metric == format!("RecallLiang@{k}"))
        })
        .collect();
    if !shown.is_empty() {
        h.push_str("<p>Paired comparison on the same users (difference = model − baseline; p from the paired t-test, interval from the bootstrap of the differences):</p>");
        h.push_str("<table><tr><th>model</th><th>baseline</th><th>metric</th><th>users</th><th>difference</th><th>interval</th><th>t</th><th>p</th></tr>");
        for c in shown {
            let r = &c.result;
            let class = if r.ci_low > 0.0 {
                "better"
            } else if r.ci_high < 0.0 {
                "worse"
            } else {
                ""
            };
            h.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"{class}\">{:+.4}</td><td>[{:+.4}, {:+.4}]</td><td>{:.2}</td><td>{}</td></tr>",
                esc(&c.model),
                esc(&c.baseline),
                esc(&c.metric),
                r.n,
                r.mean_diff,
                r.ci_low,
                r.ci_high,
                r.t,
                if r.p_value < 1e-4 { "&lt;0.0001".to_string() } else { format!("{:.4}", r.p_value) }
            ));
        }
        h.push_str("</table>");
    }
}
