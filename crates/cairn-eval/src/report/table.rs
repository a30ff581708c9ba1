//! Plain-text tables for the terminal.

use crate::runner::{Report, StageReport};

/// The columns shown by default: Liang recall at every k, NDCG at the largest k, MRR, AUC, coverage and
/// novelty at the largest k, and RMSE/MAE where ratings were predicted.
pub fn default_columns(report: &Report) -> Vec<String> {
    let ks = &report.config.ranking.ks;
    let kmax = report.config.ranking.list_len();
    let has_ranking = report
        .stages
        .iter()
        .any(|s| s.models.iter().any(|m| !m.metrics.is_empty()));
    let mut cols: Vec<String> = Vec::new();
    if has_ranking {
        cols.extend(ks.iter().map(|k| format!("RecallLiang@{k}")));
        cols.push(format!("NDCG@{kmax}"));
        cols.push(format!("MRR@{kmax}"));
        if report.config.ranking.auc {
            cols.push("AUC".into());
        }
        cols.push(format!("Coverage@{kmax}"));
        cols.push(format!("Novelty@{kmax}"));
    }
    let has_rating = report
        .stages
        .iter()
        .any(|s| s.models.iter().any(|m| m.rating.is_some()));
    if has_rating {
        cols.push("RMSE".into());
        cols.push("MAE".into());
    }
    cols
}

/// One table per stage, then the mean over folds if there are folds.
pub fn render(report: &Report, columns: &[String]) -> String {
    let mut out = String::new();
    for stage in &report.stages {
        out.push_str(&format!(
            "{} / {}: {} fit users, {} items ({} ranked), {} evaluated users{}\n",
            report.protocol,
            stage.name,
            stage.n_fit_users,
            stage.n_items,
            stage.n_catalog,
            stage.n_eval_users,
            if stage.n_rating_pairs > 0 {
                format!(", {} rating pairs", stage.n_rating_pairs)
            } else {
                String::new()
            }
        ));
        out.push_str(&stage_table(stage, columns));
        out.push('\n');
        out.push_str(&fairness_tables(stage));
    }
    if !report.fold_means.is_empty() {
        out.push_str(&format!("{}: mean over folds\n", report.protocol));
        let mut header = vec!["model".to_string(), "folds".to_string()];
        header.extend(columns.iter().cloned());
        header.push("fit s".into());
        let rows: Vec<Vec<String>> = report
            .fold_means
            .iter()
            .map(|f| {
                let mut row = vec![f.model.clone(), f.folds.to_string()];
                row.extend(columns.iter().map(|c| fmt(f.metrics.get(c).copied())));
                row.push(fmt_secs(f.metrics.get("fit_s").copied()));
                row
            })
            .collect();
        out.push_str(&layout(&header, &rows));
    }
    out
}

fn stage_table(stage: &StageReport, columns: &[String]) -> String {
    let mut header = vec!["model".to_string()];
    header.extend(columns.iter().cloned());
    header.push("fit s".into());
    header.push("score s".into());
    let rows: Vec<Vec<String>> = stage
        .models
        .iter()
        .map(|m| {
            let mut row = vec![m.model.clone()];
            row.extend(columns.iter().map(|c| fmt(m.value(c))));
            row.push(fmt_secs(Some(m.fit_s)));
            row.push(fmt_secs(Some(m.score_s)));
            row
        })
        .collect();
    layout(&header, &rows)
}

/// Where the stage has item groups: accuracy, miscalibration and popularity bias at the k of the
/// group exposure, then each group's share of the position-discounted exposure per model against
/// its share of the catalog and of the training interactions. Empty otherwise.
pub fn fairness_tables(stage: &StageReport) -> String {
    let Some(k) = stage
        .models
        .iter()
        .find_map(|m| m.group_exposure.as_ref().map(|e| e.k))
    else {
        return String::new();
    };
    let metrics = [
        format!("NDCG@{k}"),
        format!("Miscalibration@{k}"),
        format!("ARP@{k}"),
        format!("Gini@{k}"),
    ];
    let mut header = vec!["model".to_string()];
    header.extend(metrics.iter().cloned());
    let rows: Vec<Vec<String>> = stage
        .models
        .iter()
        .filter(|m| m.group_exposure.is_some())
        .map(|m| {
            let mut row = vec![m.model.clone()];
            row.extend(metrics.iter().map(|c| fmt(m.value(c))));
            row
        })
        .collect();
    let mut out = format!("calibration and popularity bias (top-{k}):\n");
    out.push_str(&layout(&header, &rows));
    let exposed: Vec<_> = stage
        .models
        .iter()
        .filter_map(|m| m.group_exposure.as_ref().map(|e| (m.model.as_str(), e)))
        .collect();
    if let Some((_, first)) = exposed.first() {
        let mut header = vec![
            "group".to_string(),
            "catalog".to_string(),
            "interactions".to_string(),
        ];
        header.extend(exposed.iter().map(|(name, _)| name.to_string()));
        let pct = |v: Option<&f64>| format!("{:.1}%", 100.0 * v.copied().unwrap_or(0.0));
        let rows: Vec<Vec<String>> = first
            .groups
            .iter()
            .enumerate()
            .map(|(g, name)| {
                let mut row = vec![
                    name.clone(),
                    pct(first.catalog_share.get(g)),
                    pct(first.interaction_share.get(g)),
                ];
                row.extend(
                    exposed
                        .iter()
                        .map(|(_, e)| pct(e.discounted_exposure.get(g))),
                );
                row
            })
            .collect();
        out.push_str(&format!(
            "share of position-discounted top-{k} exposure per item group:\n"
        ));
        out.push_str(&layout(&header, &rows));
    }
    out.push('\n');
    out
}

fn fmt(v: Option<f64>) -> String {
    match v {
        Some(x) if x.is_finite() => format!("{x:.4}"),
        _ => "-".into(),
    }
}

fn fmt_secs(v: Option<f64>) -> String {
    match v {
        Some(x) => format!("{x:.3}"),
        None => "-".into(),
    }
}

/// Left-aligned first column, right-aligned numbers.
pub fn layout(header: &[String], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let line = |cells: &[String]| {
        cells
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(i, (c, w))| {
                if i == 0 {
                    format!("{c:<w$}")
                } else {
                    format!("{c:>w$}")
                }
            })
            .collect::<Vec<_>>()
            .join("  ")
    };
    let mut out = line(header);
    out.push('\n');
    for row in rows {
        out.push_str(&line(row));
        out.push('\n');
    }
    out
}
