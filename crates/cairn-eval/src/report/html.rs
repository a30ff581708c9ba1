//! The self-contained HTML report: tables with intervals, metric@k curves, popularity bias, coverage
//! and a comparison of the models against the baseline. No scripts, no external resources.

use super::svg::{bar_chart, esc, line_chart, log_share_chart, percent};
use super::table::default_columns;
use crate::metrics::GroupExposure;
use crate::runner::{describe_hyperparameters, ModelReport, Report, StageReport};

const STYLE: &str = "body{font-family:sans-serif;max-width:1280px;margin:20px auto;padding:0 16px;color:#222}\
table{border-collapse:collapse;margin:8px 0 16px;font-size:13px}th,td{border:1px solid #ccc;padding:4px 8px;text-align:right}\
th:first-child,td:first-child{text-align:left}th{background:#f3f3f3}.ci{color:#777;font-size:11px}\
.charts{display:flex;flex-wrap:wrap;gap:12px}.charts svg{border:1px solid #eee;background:#fff}\
.note{color:#555;font-size:13px}h2{border-bottom:2px solid #ddd;padding-bottom:4px;margin-top:32px}\
.better{color:#1a7f37}.worse{color:#c62828}\
.warn{background:#fff4e5;border:1px solid #f0a020;padding:8px 12px;margin:12px 0;font-size:14px}\
table.run th{text-align:left}table.run td{text-align:left}code{font-size:12px}";

pub fn render(report: &Report) -> String {
    let mut h = String::new();
    h.push_str(&format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Cairn evaluation: {}</title><style>{STYLE}</style></head><body>",
        esc(&report.protocol)
    ));
    h.push_str("<h1>Cairn offline evaluation</h1>");
    run_header(&mut h, report);
    warnings(&mut h, report);
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
    let columns = html_columns(report);
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

/// Who ran what, when: version, date, command line, protocol and split, then every model with all
/// its hyperparameters.
fn run_header(h: &mut String, report: &Report) {
    let run = &report.run;
    h.push_str("<table class=\"run\">");
    let mut row = |name: &str, value: String| {
        h.push_str(&format!("<tr><th>{name}</th><td>{value}</td></tr>"));
    };
    row("Cairn version", esc(&run.version()));
    row("date (UTC)", esc(&run.date));
    if !run.command_line.is_empty() {
        row(
            "command line",
            format!("<code>{}</code>", esc(&run.command())),
        );
    }
    row("protocol", esc(&report.protocol));
    row("split", format!("<code>{}</code>", esc(&report.source)));
    h.push_str("</table>");
    if report.models.is_empty() {
        return;
    }
    h.push_str("<h2>Models</h2><table class=\"run\"><tr><th>label</th><th>model</th><th>hyperparameters</th></tr>");
    for m in &report.models {
        let params = if m.hyperparameters.is_empty() {
            "none".to_string()
        } else {
            esc(&describe_hyperparameters(&m.hyperparameters))
        };
        h.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td><code>{params}</code></td></tr>",
            esc(&m.label),
            esc(&m.name)
        ));
    }
    h.push_str("</table>");
}

/// The report's caveats, in a box that cannot be missed.
fn warnings(h: &mut String, report: &Report) {
    for w in &report.warnings {
        h.push_str(&format!("<p class=\"warn\"><b>Warning:</b> {}</p>", esc(w)));
    }
}

/// The table columns of the HTML report: the terminal's headline set, plus HitRate and ILD at the
/// largest k where the models have them (ILD needs item features).
fn html_columns(report: &Report) -> Vec<String> {
    let kmax = report.config.ranking.list_len();
    let mut cols = default_columns(report);
    for extra in [format!("HitRate@{kmax}"), format!("ILD@{kmax}")] {
        let present = report
            .stages
            .iter()
            .any(|s| s.models.iter().any(|m| m.metrics.contains_key(&extra)));
        if present && !cols.contains(&extra) {
            let at = cols.iter().position(|c| c == "RMSE").unwrap_or(cols.len());
            cols.insert(at, extra);
        }
    }
    cols
}

/// Every metric name of a stage's models, per-user and catalog-level, by family then k.
fn all_metric_names(stage: &StageReport) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for m in &stage.models {
        for name in m.metrics.keys().chain(m.aggregates.keys()) {
            if !names.contains(name) {
                names.push(name.clone());
            }
        }
    }
    names.sort_by_key(|n| match n.split_once('@') {
        Some((family, k)) => (family.to_string(), k.parse::<usize>().unwrap_or(usize::MAX)),
        None => (n.clone(), 0),
    });
    names
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
    if stage.models.iter().any(|m| m.rating.is_some()) {
        warnings(h, report);
    }
    let names = all_metric_names(stage);
    if !names.is_empty() {
        h.push_str("<details><summary>All metrics of this stage (every k)</summary><table><tr><th>metric</th>");
        for m in &stage.models {
            h.push_str(&format!("<th>{}</th>", esc(&m.model)));
        }
        h.push_str("</tr>");
        for name in &names {
            h.push_str(&format!("<tr><td>{}</td>", esc(name)));
            for m in &stage.models {
                h.push_str(&format!("<td>{}</td>", fmt(m.value(name))));
            }
            h.push_str("</tr>");
        }
        h.push_str("</table></details>");
    }

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
    for family in ["RecallLiang", "NDCG", "Precision", "MAP", "HitRate"] {
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
    if ranked
        .iter()
        .any(|m| m.metrics.keys().any(|k| k.starts_with("ILD@")))
    {
        h.push_str(&line_chart(
            "ILD@k (intra-list diversity, 1 = no shared features)",
            &xs,
            &curve("ILD"),
        ));
    }
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
        h.push_str(&log_share_chart(
            &format!("Share of top-{k} slots per popularity decile (log scale)"),
            &deciles,
            &series,
            0,
        ));
        h.push_str("</div>");
        h.push_str(&format!(
            "<table><tr><th>share of top-{k} slots</th>{}</tr>",
            deciles
                .iter()
                .map(|d| format!("<th>decile {d}</th>"))
                .collect::<String>()
        ));
        for (name, shares) in &series {
            h.push_str(&format!("<tr><td>{}</td>", esc(name)));
            for share in shares {
                h.push_str(&format!("<td>{}</td>", percent(*share)));
            }
            h.push_str("</tr>");
        }
        h.push_str("</table>");
    } else {
        h.push_str("</div>");
    }
    h.push_str("<p class=\"note\">Popularity deciles: the catalog sorted by number of training users and cut into ten \
equal parts (1 = the most popular tenth). The y axis is logarithmic (one grid line per factor of ten), so that the \
deciles that receive a small share stay apart when the most popular decile takes nearly every slot; 0 marks a decile \
that received no slot. A model free of popularity bias would spread its slots at least as evenly as the training \
interactions.</p>");

    fairness_section(h, report, &ranked);

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

/// Calibration and exposure by item group: the trade-off of accuracy against miscalibration and
/// popularity over the models in their order (a re-ranking knob swept from 0 to 1 gives the
/// curve), then each group's share of the exposure against its share of the catalog and of the
/// interactions.
fn fairness_section(h: &mut String, report: &Report, ranked: &[&ModelReport]) {
    let ks = &report.config.ranking.ks;
    let Some(k) = ks
        .iter()
        .copied()
        .find(|&k| k >= 10)
        .or(ks.first().copied())
    else {
        return;
    };
    let miscal = format!("Miscalibration@{k}");
    if !ranked.iter().any(|m| m.metrics.contains_key(&miscal)) {
        return;
    }
    let ndcg = format!("NDCG@{k}");
    let arp = format!("ARP@{k}");
    h.push_str("<h3>Calibration, popularity and accuracy</h3>");
    h.push_str(&format!(
        "<p class=\"note\">{miscal}: KL divergence between the group mix of the user's history and that of the top-{k} \
(Steck 2018; an item's weight split evenly over its groups; the list's mix smoothed with α = 0.01; 0 = calibrated). \
Relative values divide each model's mean by the first model's.</p>"
    ));
    let metrics = [&ndcg, &miscal, &arp];
    if ranked.len() >= 2 {
        let base: Vec<Option<f64>> = metrics.iter().map(|m| ranked[0].value(m)).collect();
        let xs: Vec<String> = ranked.iter().map(|m| m.model.clone()).collect();
        let series: Vec<(String, Vec<Option<f64>>)> = metrics
            .iter()
            .zip(&base)
            .map(|(metric, b)| {
                let values = ranked
                    .iter()
                    .map(|m| match (m.value(metric), b) {
                        (Some(v), Some(b)) if *b != 0.0 => Some(v / b),
                        _ => None,
                    })
                    .collect();
                (format!("{metric} (relative)"), values)
            })
            .collect();
        h.push_str("<div class=\"charts\">");
        h.push_str(&line_chart(
            &format!(
                "Trade-off: {ndcg}, {miscal} and {arp} relative to {}",
                ranked[0].model
            ),
            &xs,
            &series,
        ));
        h.push_str("</div>");
    }
    h.push_str("<table><tr><th>model</th>");
    for metric in metrics {
        h.push_str(&format!("<th>{}</th><th>change</th>", esc(metric)));
    }
    h.push_str("</tr>");
    for m in ranked {
        h.push_str(&format!("<tr><td>{}</td>", esc(&m.model)));
        for metric in metrics {
            let v = m.value(metric);
            let change = match (v, ranked[0].value(metric)) {
                (Some(v), Some(b)) if b != 0.0 => format!("{:+.1}%", 100.0 * (v / b - 1.0)),
                _ => "–".into(),
            };
            let cell = match m.metrics.get(metric) {
                Some(s) => format!(
                    "{:.4} <span class=\"ci\">[{:.4}, {:.4}]</span>",
                    s.mean, s.ci_low, s.ci_high
                ),
                None => fmt(v),
            };
            h.push_str(&format!("<td>{cell}</td><td>{change}</td>"));
        }
        h.push_str("</tr>");
    }
    h.push_str("</table>");

    let exposed: Vec<(&str, &GroupExposure)> = ranked
        .iter()
        .filter_map(|m| m.group_exposure.as_ref().map(|e| (m.model.as_str(), e)))
        .collect();
    let Some((_, first)) = exposed.first() else {
        return;
    };
    h.push_str(&format!(
        "<h3>Exposure by item group (top-{})</h3><p class=\"note\">Each group's share of the top-{} slots, \
position-discounted (rank r weighs 1/log2(r + 1), as in NDCG) and plain, against its share of the catalog and of \
the training interactions; an item in several groups is split evenly over them.</p>",
        first.k, first.k
    ));
    let mut series: Vec<(String, Vec<f64>)> = vec![
        ("catalog".to_string(), first.catalog_share.clone()),
        ("interactions".to_string(), first.interaction_share.clone()),
    ];
    series.extend(exposed.iter().map(|(name, e)| {
        (
            format!("{name} (discounted)"),
            e.discounted_exposure.clone(),
        )
    }));
    if exposed.len() <= 4 {
        h.push_str("<div class=\"charts\">");
        h.push_str(&bar_chart(
            "Share per group: catalog, interactions, exposure",
            &first.groups,
            &series,
            None,
            0,
        ));
        h.push_str("</div>");
    }
    h.push_str("<table><tr><th>group</th><th>catalog</th><th>interactions</th>");
    for (name, _) in &exposed {
        h.push_str(&format!(
            "<th>{0} discounted</th><th>{0} plain</th>",
            esc(name)
        ));
    }
    h.push_str("</tr>");
    for (g, group) in first.groups.iter().enumerate() {
        h.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td>",
            esc(group),
            percent(first.catalog_share[g]),
            percent(first.interaction_share[g])
        ));
        for (_, e) in &exposed {
            h.push_str(&format!(
                "<td>{}</td><td>{}</td>",
                percent(e.discounted_exposure.get(g).copied().unwrap_or(0.0)),
                percent(e.exposure.get(g).copied().unwrap_or(0.0))
            ));
        }
        h.push_str("</tr>");
    }
    h.push_str("</table>");
}

#[cfg(test)]
mod tests {
    use std::fmt::Write as _;

    use cairn_models::{ItemKnnConfig, ModelSpec, Silent};

    use super::*;
    use crate::runner::{positives_only_warning, ModelChoice, RunConfig};
    use crate::{splitters, RankingOptions};

    /// A MovieLens folder: 40 users rating 12 of 30 films in two genres, ratings 1 to 5.
    fn tiny_movielens(dir: &std::path::Path) {
        let mut ratings = String::from("userId,movieId,rating,timestamp\n");
        for u in 0..40u32 {
            for n in 0..12u32 {
                let film = if u % 2 == 0 {
                    (u + 7 * n) % 15
                } else {
                    15 + (u + 4 * n) % 15
                };
                let t = 1_600_000_000 + i64::from(n) * 86_400 + i64::from(u);
                writeln!(ratings, "{u},{film},{}.0,{t}", 1 + (u + n) % 5).unwrap();
            }
        }
        let mut movies = String::from("movieId,title,genres\n");
        for film in 0..30u32 {
            let genre = if film < 15 { "Comedy" } else { "Drama" };
            writeln!(movies, "{film},Film {film},{genre}|Feature").unwrap();
        }
        std::fs::write(dir.join("ratings.csv"), ratings).unwrap();
        std::fs::write(dir.join("movies.csv"), movies).unwrap();
    }

    /// Popularity, default and tuned item-kNN and the rating baseline on a holdout of
    /// [`tiny_movielens`], positives only when `min_rating` is set.
    fn report(min_rating: Option<f32>) -> Report {
        let dir = tempfile::tempdir().unwrap();
        tiny_movielens(dir.path());
        let split = splitters::split_dataset(dir.path(), "holdout", min_rating, 7).unwrap();
        let tuned = ModelChoice::Ranking(ModelSpec::ItemKnn(ItemKnnConfig {
            neighbours: 7,
            shrinkage: 2.5,
            ..ItemKnnConfig::default()
        }));
        let models = vec![
            ModelChoice::by_name("popularity").unwrap(),
            ModelChoice::by_name("item-knn").unwrap(),
            tuned,
            ModelChoice::by_name("baseline").unwrap(),
        ];
        let config = RunConfig {
            ranking: RankingOptions {
                ks: vec![5, 10],
                ..RankingOptions::default()
            },
            ..RunConfig::default()
        };
        let mut report = crate::run(&split, "tiny", &models, &config, &Silent).unwrap();
        report.run.command_line = vec![
            "cairn".into(),
            "eval".into(),
            "--out".into(),
            "my dir".into(),
        ];
        report
    }

    #[test]
    fn the_page_names_version_date_command_line_and_every_hyperparameter() {
        let report = report(None);
        let page = render(&report);
        assert!(page.contains(&format!("<td>{}</td>", env!("CARGO_PKG_VERSION"))));
        // The date as RFC 3339 UTC, e.g. 2026-12-07T03:45:51Z.
        let date = &report.run.date;
        assert!(
            date.len() == 20 && date.ends_with('Z') && date.as_bytes()[10] == b'T',
            "{date}"
        );
        assert!(page.contains(&format!("<td>{date}</td>")));
        assert!(page.contains("<code>cairn eval --out 'my dir'</code>"));
        assert!(page.contains("<td>holdout</td>"));
        // Labels: the defaults by name, the tuned one with what differs; full hyperparameters beside.
        let labels: Vec<&str> = report.models.iter().map(|m| m.label.as_str()).collect();
        assert_eq!(
            labels,
            [
                "popularity",
                "item-knn",
                "item-knn (neighbours=7, shrinkage=2.5)",
                "baseline"
            ]
        );
        assert!(page.contains("<td>item-knn (neighbours=7, shrinkage=2.5)</td><td>item-knn</td>"));
        assert!(
            page.contains("max_user_items="),
            "the defaults are listed too"
        );
        assert!(page.contains("neighbours=7, shrinkage=2.5, weighting=cosine"));
        assert!(!page.contains("item-knn#"));
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["run"]["cairn_version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(json["models"][2]["hyperparameters"]["neighbours"], 7);
        assert_eq!(
            json["stages"][0]["models"][2]["model"],
            "item-knn (neighbours=7, shrinkage=2.5)"
        );
    }

    #[test]
    fn hit_rate_and_ild_are_table_columns() {
        let report = report(None);
        let page = render(&report);
        let stage = report.stages.last().unwrap();
        let knn = &stage.models[1];
        assert!(knn.metrics.contains_key("ILD@10") && knn.metrics.contains_key("HitRate@10"));
        assert!(page.contains("<th>HitRate@10</th>") && page.contains("<th>ILD@10</th>"));
        // Every k in the all-metrics table, with the value the JSON has.
        assert!(page.contains("<td>HitRate@5</td>") && page.contains("<td>ILD@5</td>"));
        let ild5 = knn.metrics["ILD@5"].mean;
        assert!(page.contains(&format!("<td>{ild5:.4}</td>")));
    }

    #[test]
    fn rmse_on_positives_only_carries_a_warning() {
        let biased = report(Some(3.0));
        assert!(biased.stages[0].models.iter().any(|m| m.rating.is_some()));
        assert_eq!(biased.warnings, vec![positives_only_warning(3.0)]);
        let page = render(&biased);
        assert!(page.contains("class=\"warn\"") && page.contains("only on ratings &gt;= 3"));
        let json = serde_json::to_value(&biased).unwrap();
        assert!(json["warnings"][0]
            .as_str()
            .unwrap()
            .contains("--min-rating"));

        let all = report(None);
        assert!(all.warnings.is_empty());
        assert!(!render(&all).contains("class=\"warn\""));
    }

    #[test]
    fn the_popularity_chart_is_logarithmic_with_a_table_of_shares() {
        let page = render(&report(None));
        assert!(page.contains("per popularity decile (log scale)"));
        assert!(page.contains("<th>decile 10</th>"));
        assert!(page.contains("<td>training interactions</td>"));
    }

    #[test]
    fn calibration_trade_off_and_group_exposure_are_shown() {
        let report = report(None);
        let model = &report.stages[0].models[0];
        let miscal = &model.metrics["Miscalibration@10"];
        assert!(miscal.mean.is_finite() && miscal.mean >= 0.0);
        let exposure = model.group_exposure.as_ref().unwrap();
        let mut groups = exposure.groups.clone();
        groups.sort();
        assert_eq!(groups, ["Comedy", "Drama", "Feature"]);
        let total: f64 = exposure.discounted_exposure.iter().sum();
        assert!((total - 1.0).abs() < 1e-9);
        let page = render(&report);
        assert!(page.contains("Calibration, popularity and accuracy"));
        assert!(page.contains("Trade-off: NDCG@10, Miscalibration@10 and ARP@10"));
        assert!(page.contains("Exposure by item group (top-10)"));
        assert!(page.contains("<td>Comedy</td>") && page.contains("<td>Drama</td>"));
    }
}
