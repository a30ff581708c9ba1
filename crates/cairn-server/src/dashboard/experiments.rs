//! Experiments: the list with a create form, one page per experiment with its counts and
//! analysis (A/B: differences to the control with fixed and always-valid intervals, the SRM
//! check and the decision; interleaving: the preference with its interval), and stop / ship
//! behind a confirmation page. Everything goes through the engine's experiment calls
//! ([`cairn_engine::Engine::create_experiment`], `experiment_results`, `stop_experiment`,
//! `ship_experiment`), as the routes of `/v1/experiments` do.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use cairn_engine::registry::VersionStatus;
use cairn_engine::{
    Experiment, ExperimentKind, ExperimentResults, ExperimentStatus, NewExperiment, VariantDef,
};
use maud::{html, Markup};
use serde::Deserialize;

use super::live::fmt_num;
use super::models::urlencode;
use super::session::Session;
use super::{
    ago, audit, audit_identity, csrf_field, doc_ref, layout, when, Dash, PageError, Sess, F, P, Q,
};

/// Variant rows of the create form.
pub(super) const FORM_VARIANTS: usize = 4;

fn kind_name(k: ExperimentKind) -> &'static str {
    match k {
        ExperimentKind::Ab => "A/B",
        ExperimentKind::Interleaving => "interleaving",
    }
}

fn status_name(s: ExperimentStatus) -> &'static str {
    match s {
        ExperimentStatus::Running => "running",
        ExperimentStatus::Stopped => "stopped",
        ExperimentStatus::Shipped => "shipped",
    }
}

fn pct(v: f64) -> String {
    format!("{}%", fmt_num(v * 100.0))
}

/// A signed figure with 4 decimals (differences, interval ends).
fn signed(v: f64) -> String {
    if v.is_finite() {
        format!("{v:+.4}")
    } else {
        "-".into()
    }
}

fn p_value(p: f64) -> String {
    if !p.is_finite() {
        "-".into()
    } else if p < 0.0001 {
        "< 0.0001".into()
    } else {
        format!("{p:.4}")
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ListQuery {
    /// The message of a change just made.
    done: Option<String>,
}

/// What the create form holds (also to show it again, filled in, after a refusal).
#[derive(Debug, Default, Clone)]
pub(super) struct Draft {
    id: String,
    description: String,
    kind: String,
    placement: String,
    namespace: String,
    traffic: String,
    planned_users: String,
    /// (name, model version, placement, weight) per row.
    variants: Vec<[String; 4]>,
}

impl Draft {
    fn initial(default_placement: &str) -> Draft {
        let mut variants = vec![<[String; 4]>::default(); FORM_VARIANTS];
        variants[0][0] = "control".into();
        variants[1][0] = "treatment".into();
        for v in &mut variants {
            v[3] = "1".into();
        }
        Draft {
            kind: "ab".into(),
            placement: default_placement.into(),
            traffic: "1".into(),
            planned_users: "10000".into(),
            variants,
            ..Draft::default()
        }
    }

    /// Reads the form's fields (`csrf` was checked by the gate); unknown fields are a 400.
    fn from_fields(fields: &[(String, String)]) -> Result<Draft, PageError> {
        let mut d = Draft {
            variants: vec![<[String; 4]>::default(); FORM_VARIANTS],
            ..Draft::default()
        };
        for (k, v) in fields {
            let v = v.trim().to_string();
            match k.as_str() {
                "csrf" => {}
                "id" => d.id = v,
                "description" => d.description = v,
                "type" => d.kind = v,
                "placement" => d.placement = v,
                "namespace" => d.namespace = v,
                "traffic" => d.traffic = v,
                "planned_users" => d.planned_users = v,
                other => {
                    let slot = other.rsplit_once('_').and_then(|(field, n)| {
                        let n: usize = n.parse().ok()?;
                        let col = ["name", "model", "vplacement", "weight"]
                            .iter()
                            .position(|f| *f == field)?;
                        (1..=FORM_VARIANTS).contains(&n).then_some((n - 1, col))
                    });
                    match slot {
                        Some((row, col)) => d.variants[row][col] = v,
                        None => {
                            return Err(PageError::bad(format!("unknown form field `{other}`")))
                        }
                    }
                }
            }
        }
        Ok(d)
    }

    /// The definition to create; a field that does not parse is a 400 naming it.
    fn to_new(&self) -> Result<NewExperiment, PageError> {
        let kind = match self.kind.as_str() {
            "" | "ab" => ExperimentKind::Ab,
            "interleaving" => ExperimentKind::Interleaving,
            other => {
                return Err(PageError::bad(format!(
                    "type: `{other}` is not an experiment type; use ab or interleaving"
                )))
            }
        };
        let traffic = if self.traffic.is_empty() {
            1.0
        } else {
            self.traffic
                .parse::<f64>()
                .map_err(|_| PageError::bad("traffic: a number in (0, 1], e.g. 0.5"))?
        };
        let planned_users = if self.planned_users.is_empty() {
            10_000
        } else {
            self.planned_users
                .parse::<u64>()
                .map_err(|_| PageError::bad("planned users: a whole number, e.g. 10000"))?
        };
        let some = |s: &str| (!s.is_empty()).then(|| s.to_string());
        let mut variants = Vec::new();
        for (i, [name, model, placement, weight]) in self.variants.iter().enumerate() {
            if name.is_empty() {
                if !model.is_empty() || !placement.is_empty() {
                    return Err(PageError::bad(format!(
                        "variant {}: give it a name, or leave its row empty",
                        i + 1
                    )));
                }
                continue;
            }
            let weight = if weight.is_empty() {
                1
            } else {
                weight.parse::<u32>().map_err(|_| {
                    PageError::bad(format!("variant {}: the weight is a whole number", i + 1))
                })?
            };
            variants.push(VariantDef {
                name: name.clone(),
                weight,
                model_version: some(model),
                placement: some(placement),
            });
        }
        Ok(NewExperiment {
            id: self.id.clone(),
            description: self.description.clone(),
            kind,
            placement: some(&self.placement),
            variants,
            namespace: some(&self.namespace),
            traffic,
            planned_users,
            salt: None,
        })
    }
}

/// The list of experiments, newest first, and the create form.
pub(super) async fn list(
    State(dash): State<Dash>,
    axum::Extension(session): Sess,
    Q(q): Q<ListQuery>,
) -> Result<Html<String>, PageError> {
    let default = dash.app.engine.config().serve.default_placement.clone();
    list_page(
        &dash,
        &session,
        q.done.as_deref(),
        None,
        &Draft::initial(&default),
    )
    .await
}

async fn list_page(
    dash: &Dash,
    session: &Session,
    done: Option<&str>,
    refused: Option<&str>,
    draft: &Draft,
) -> Result<Html<String>, PageError> {
    let engine = &dash.app.engine;
    let mut experiments: Vec<(Experiment, Option<String>)> = dash
        .app
        .run(|e| {
            Ok(e.experiments()
                .into_iter()
                .map(|x| {
                    let problem = e.experiment_problem(&x.id);
                    (x, problem)
                })
                .collect())
        })
        .await?;
    experiments.reverse();
    let versions = dash.app.run(|e| e.model_versions()).await?;
    let models: Vec<String> = versions
        .iter()
        .rev()
        .filter(|v| v.artifact_present && v.meta.status != VersionStatus::Refused)
        .map(|v| v.meta.version.clone())
        .collect();
    let placements: Vec<String> = engine.config().serve.placements.keys().cloned().collect();
    let now = cairn_core::now_unix();
    let running = experiments
        .iter()
        .filter(|(x, _)| x.status == ExperimentStatus::Running)
        .count();
    let body = html! {
        @if let Some(done) = done { p.notice role="status" { (done) } }
        (doc_ref("Experiments"))
        h2 { "Experiments" }
        @if experiments.is_empty() {
            p.muted { "No experiment yet. Create one below, or with POST /v1/experiments." }
        } @else {
            p.muted { (experiments.len()) (if experiments.len() == 1 { " experiment, " } else { " experiments, " }) (running) " running; newest first." }
            div.scroll {
                table {
                    thead { tr {
                        th { "Id" } th { "Type" } th { "Placement" } th { "Variants" }
                        th { "Traffic" } th { "Status" } th { "Created" }
                    } }
                    tbody {
                        @for (x, problem) in &experiments {
                            tr {
                                td { a href=(format!("/experiments/{}", urlencode(&x.id))) { code { (x.id) } }
                                    @if !x.description.is_empty() { br; span.muted { (x.description) } }
                                }
                                td { (kind_name(x.kind)) }
                                td { (x.placement) }
                                td { @for (i, v) in x.variants.iter().enumerate() {
                                    @if i > 0 { ", " }
                                    (v.name)
                                } }
                                td { (pct(x.traffic)) }
                                td {
                                    (status_name(x.status))
                                    @if let Some(p) = problem { br; span.bad { (p) } }
                                }
                                td { (when(x.created_at)) br; span.muted { (ago(now - x.created_at)) " ago, by " (x.created_by) } }
                            }
                        }
                    }
                }
            }
        }
        h2 id="create" { "Create an experiment" }
        @if let Some(r) = refused { p.error role="alert" { (r) } }
        (create_form(session, draft, &placements, &models))
    };
    Ok(layout("Experiments", "/experiments", session, body))
}

fn create_form(session: &Session, d: &Draft, placements: &[String], models: &[String]) -> Markup {
    html! {
        form.preview method="post" action="/experiments" {
            (csrf_field(session))
            div.fields {
                div {
                    label for="exp-id" { "Id" }
                    input id="exp-id" name="id" type="text" required maxlength="64" value=(d.id)
                        aria-describedby="exp-id-help";
                    span.muted id="exp-id-help" { "1 to 64 letters, digits, -, _ or ." }
                }
                div {
                    label for="exp-type" { "Type" }
                    select id="exp-type" name="type" {
                        option value="ab" selected[d.kind != "interleaving"] { "A/B" }
                        option value="interleaving" selected[d.kind == "interleaving"] { "interleaving (exactly two variants)" }
                    }
                }
                div {
                    label for="exp-placement" { "Placement" }
                    select id="exp-placement" name="placement" {
                        @for p in placements {
                            option value=(p) selected[*p == d.placement] { (p) }
                        }
                    }
                }
                div {
                    label for="exp-traffic" { "Traffic (share of all users, 0 to 1)" }
                    input id="exp-traffic" name="traffic" type="text" inputmode="decimal" value=(d.traffic);
                }
                div {
                    label for="exp-namespace" { "Namespace (optional)" }
                    input id="exp-namespace" name="namespace" type="text" maxlength="64" value=(d.namespace);
                }
                div {
                    label for="exp-planned" { "Planned users" }
                    input id="exp-planned" name="planned_users" type="text" inputmode="numeric" value=(d.planned_users);
                }
                div.wide {
                    label for="exp-description" { "Description (optional)" }
                    input id="exp-description" name="description" type="text" maxlength="500" value=(d.description);
                }
            }
            fieldset.variants {
                legend { "Variants (the first is the control; leave a row's name empty to skip it)" }
                @for (i, [name, model, vplacement, weight]) in d.variants.iter().enumerate() {
                    @let n = i + 1;
                    div.fields {
                        div {
                            label for=(format!("name_{n}")) { "Variant " (n) " name" }
                            input id=(format!("name_{n}")) name=(format!("name_{n}")) type="text" maxlength="64" value=(name);
                        }
                        div {
                            label for=(format!("model_{n}")) { "Model version" }
                            select id=(format!("model_{n}")) name=(format!("model_{n}")) {
                                option value="" selected[model.is_empty()] { "the champion" }
                                @for m in models {
                                    option value=(m) selected[m == model] { (m) }
                                }
                            }
                        }
                        div {
                            label for=(format!("vplacement_{n}")) { "Placement configuration" }
                            select id=(format!("vplacement_{n}")) name=(format!("vplacement_{n}")) {
                                option value="" selected[vplacement.is_empty()] { "the experiment's placement" }
                                @for p in placements {
                                    option value=(p) selected[p == vplacement] { (p) }
                                }
                            }
                        }
                        div {
                            label for=(format!("weight_{n}")) { "Weight" }
                            input id=(format!("weight_{n}")) name=(format!("weight_{n}")) type="text" inputmode="numeric" value=(weight);
                        }
                    }
                }
            }
            div.row { button type="submit" { "Create and start" } }
        }
    }
}

/// Creates an experiment from the form: to its page when done, else the form again with the
/// engine's message (and the refusal's status).
pub(super) async fn create(
    State(dash): State<Dash>,
    axum::Extension(session): Sess,
    F(fields): F<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let draft = Draft::from_fields(&fields)?;
    let new = match draft.to_new() {
        Ok(n) => n,
        Err(e) => {
            let page = list_page(&dash, &session, None, Some(&e.message), &draft).await?;
            return Ok((e.status, page).into_response());
        }
    };
    let who = format!("{} via dashboard", session.who);
    let result = dash.app.run(move |e| e.create_experiment(new, &who)).await;
    let (key_id, key_name) = audit_identity(&session);
    let status = match &result {
        Ok(_) => 303,
        Err(e) => e.status.as_u16(),
    };
    audit(
        &dash,
        &key_id,
        &key_name,
        "POST /v1/experiments (dashboard)",
        Some(draft.id.clone()),
        status,
    )
    .await;
    match result {
        Ok(x) => {
            let done = format!("Experiment {} created; it runs now.", x.id);
            Ok(Redirect::to(&format!(
                "/experiments/{}?done={}",
                urlencode(&x.id),
                urlencode(&done)
            ))
            .into_response())
        }
        Err(e) => {
            let page = list_page(&dash, &session, None, Some(&e.message), &draft).await?;
            Ok((e.status, page).into_response())
        }
    }
}

/// The definition, results and analysis of one experiment, with its stop and ship buttons.
pub(super) async fn show(
    State(dash): State<Dash>,
    axum::Extension(session): Sess,
    P(id): P<String>,
    Q(q): Q<ListQuery>,
) -> Result<Html<String>, PageError> {
    let (x, problem, r) = dash
        .app
        .run(move |e| {
            let r = e.experiment_results(&id)?;
            Ok((e.experiment(&id)?, e.experiment_problem(&id), r))
        })
        .await?;
    let now = cairn_core::now_unix();
    let enc = urlencode(&x.id);
    let body = html! {
        @if let Some(done) = &q.done { p.notice role="status" { (done) } }
        p { a href="/experiments" { "← All experiments" } }
        (doc_ref("Results and decisions"))
        section.cards {
            div.card {
                h2 { "Definition" }
                dl {
                    dt { "Type" } dd { (kind_name(x.kind)) }
                    dt { "Placement" } dd { (x.placement) }
                    dt { "Traffic" } dd { (pct(x.traffic)) " of all users (buckets " (x.slot.start) "–" (x.slot.end) " of namespace " code { (x.slot.namespace) } ")" }
                    dt { "Planned users" } dd { (x.planned_users) }
                    dt { "Salt" } dd { code { (x.salt) } }
                    dt { "Created" } dd { (when(x.created_at)) " (" (ago(now - x.created_at)) " ago) by " (x.created_by) }
                    @if !x.description.is_empty() { dt { "Description" } dd { (x.description) } }
                }
            }
            div.card {
                h2 { "Status" }
                p class=(if x.status == ExperimentStatus::Running && problem.is_none() { "ok" } else { "" }) { (status_name(x.status)) }
                @if let Some(p) = &problem { p.bad { (p) } }
                @if let Some(t) = x.stopped_at { p { "Stopped " (when(t)) "." } }
                @if let Some(s) = &x.shipped {
                    p { "Shipped " strong { (s.variant) } " " (when(s.at)) " by " (s.by) ": " (s.reason) }
                    @if let Some(m) = &s.promoted_model { p { "Model " code { (m) } " became the champion." } }
                    @if let Some(p) = &s.default_placement { p { "Placement " code { (p) } "'s configuration serves " (x.placement) "." } }
                }
                div.row {
                    @if x.status == ExperimentStatus::Running {
                        a.button href=(format!("/experiments/{enc}/confirm?action=stop")) { "Stop…" }
                    }
                }
            }
        }
        h2 { "Variants" }
        p.muted { (r.users) " users with an impression or an attributed event; " (r.users_with_pre_period) " of them with events before the start (CUPED)." }
        (variants_table(&x, &r, &enc))
        @match x.kind {
            ExperimentKind::Ab => (ab_analysis(&x, &r)),
            ExperimentKind::Interleaving => (preference(&x, &r)),
        }
    };
    Ok(layout(
        &format!("Experiment {}", x.id),
        "/experiments",
        &session,
        body,
    ))
}

fn variants_table(x: &Experiment, r: &ExperimentResults, enc: &str) -> Markup {
    let shippable = x.status != ExperimentStatus::Shipped;
    html! {
        div.scroll {
            table {
                thead { tr {
                    th { "Variant" } th { "Model" } th { "Placement config" } th { "Weight" }
                    th { "Users" } th { "Impressions" } th { "Clicks" } th { "Conversions" }
                    th { "CTR" } th { "Conversion" } th { "" }
                } }
                tbody {
                    @for (i, v) in x.variants.iter().enumerate() {
                        @let res = r.variants.iter().find(|rv| rv.name == v.name);
                        tr {
                            td { strong { (v.name) } @if i == 0 { " " span.tag { "control" } } }
                            td { @match &v.model_version { Some(m) => code { (m) }, None => span.muted { "champion" } } }
                            td { @match &v.placement { Some(p) => (p), None => span.muted { (x.placement) } } }
                            td { (v.weight) }
                            @match res {
                                Some(rv) => {
                                    td { (rv.users) } td { (rv.impressions) } td { (rv.clicks) } td { (rv.conversions) }
                                    td { (pct(rv.ctr)) } td { (pct(rv.conversion_rate)) }
                                },
                                None => { td { "-" } td { "-" } td { "-" } td { "-" } td { "-" } td { "-" } },
                            }
                            td {
                                @if shippable {
                                    a.button href=(format!("/experiments/{enc}/confirm?action=ship&variant={}", urlencode(&v.name))) { "Ship…" }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn ab_analysis(x: &Experiment, r: &ExperimentResults) -> Markup {
    let name = |i: usize| {
        x.variants
            .get(i)
            .map_or_else(|| format!("#{i}"), |v| v.name.clone())
    };
    html! {
        h2 { "Analysis" }
        @if let Some(err) = &r.analysis_error { p.muted { "No analysis yet: " (err) } }
        @if let Some(a) = &r.analysis {
            @let decision = serde_json::to_value(&a.decision).unwrap_or_default();
            @let action = decision["action"].as_str().unwrap_or("").replace('_', " ");
            section.cards {
                div.card {
                    h2 { "Decision" }
                    p class=(if action == "ship" { "ok" } else if action == "stop" { "bad" } else { "" }) {
                        strong { (action) }
                        @if let Some(v) = decision["variant"].as_str() { " " (v) }
                    }
                    p { (a.reason) }
                }
                div.card {
                    h2 { "Sample ratio" }
                    p class=(if a.srm.flagged { "bad" } else { "ok" }) {
                        @if a.srm.flagged { "Mismatch: the split is not what the weights say" } @else { "No mismatch" }
                        " (χ² p " (p_value(a.srm.p_value)) ", always-valid p " (p_value(a.srm.always_valid_p)) ")"
                    }
                    dl {
                        @for (i, o) in a.srm.observed.iter().enumerate() {
                            dt { (name(i)) }
                            dd { (o) " users, expected " (fmt_num(a.srm.expected.get(i).copied().unwrap_or(f64::NAN))) }
                        }
                    }
                }
            }
            h2 { "Differences to the control" }
            p.muted { "Treatment minus control. The fixed interval is valid at the planned horizon only; the always-valid interval may be read at any time. Holm's p is adjusted across all comparisons." }
            div.scroll {
                table.nowrap {
                    thead { tr {
                        th { "Variant" } th { "Metric" } th { "Control" } th { "Treatment" }
                        th { "Difference" } th { "95% interval (fixed)" } th { "Always-valid interval" }
                        th { "p" } th { "Always-valid p" } th { "Holm p" } th { "Significant" } th { "CUPED" }
                    } }
                    tbody {
                        @for c in &a.comparisons {
                            tr {
                                td { (name(c.variant)) }
                                td { (c.metric.name()) }
                                td { (fmt_num(c.control_value)) }
                                td { (fmt_num(c.treatment_value)) }
                                td { (signed(c.difference)) @if c.relative.is_finite() { br; span.muted { "(" (format!("{:+.1}", c.relative * 100.0)) "%)" } } }
                                td { "[" (signed(c.interval.lo)) ", " (signed(c.interval.hi)) "]" }
                                td { "[" (signed(c.always_valid.lo)) ", " (signed(c.always_valid.hi)) "]" }
                                td { (p_value(c.p_value)) }
                                td { (p_value(c.always_valid_p)) }
                                td { (p_value(c.holm_p)) }
                                td class=(if c.significant { "ok" } else { "" }) { (if c.significant { "yes" } else { "no" }) }
                                td { @match &c.cuped {
                                    Some(cu) if cu.applied => { "variance −" (pct(cu.variance_reduction)) },
                                    _ => span.muted { "no" },
                                } }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn preference(x: &Experiment, r: &ExperimentResults) -> Markup {
    let treatment = x
        .variants
        .get(1)
        .map_or("the second variant", |v| v.name.as_str());
    let control = x
        .variants
        .first()
        .map_or("the first variant", |v| v.name.as_str());
    html! {
        h2 { "Preference" }
        @match &r.preference {
            Some(p) => {
                p.muted { "Per user, the share of clicks on " (treatment) "'s items minus " (control) "'s, in [-1, 1]; positive favours " (treatment) "." }
                dl {
                    dt { "Users" } dd { (p.users) " (" (p.prefer_treatment) " prefer " (treatment) ", " (p.prefer_control) " prefer " (control) ", " (p.ties) " ties)" }
                    dt { "Mean preference" } dd { strong { (signed(p.mean_preference)) } " ± " (format!("{:.4}", p.std_error)) " (standard error)" }
                    dt { "95% interval" } dd { "[" (signed(p.interval.0)) ", " (signed(p.interval.1)) "]" }
                    dt { "p (z test)" } dd { (p_value(p.p_value)) }
                    dt { "p (sign test)" } dd { (p_value(p.sign_test_p)) }
                }
            },
            None => p.muted { "No user has clicked yet." },
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ConfirmQuery {
    action: String,
    variant: Option<String>,
}

/// The confirmation page of a stop or ship: what changes, and a reason to give.
pub(super) async fn confirm(
    State(dash): State<Dash>,
    axum::Extension(session): Sess,
    P(id): P<String>,
    Q(q): Q<ConfirmQuery>,
) -> Result<Html<String>, PageError> {
    let x = dash.app.run(move |e| e.experiment(&id)).await?;
    let (title, what) = match (q.action.as_str(), &q.variant) {
        ("stop", None) => (
            format!("Stop experiment {}", x.id),
            format!(
                "Stop {}: its users get the default lists of {} again from the moment you \
                 confirm; its results stay readable. A stopped experiment cannot run again.",
                x.id, x.placement
            ),
        ),
        ("stop", Some(_)) => return Err(PageError::bad("a stop takes no variant")),
        ("ship", Some(v)) => {
            let Some(def) = x.variants.iter().find(|d| &d.name == v) else {
                return Err(PageError::new(
                    StatusCode::NOT_FOUND,
                    format!("experiment {} has no variant `{v}`", x.id),
                ));
            };
            let mut what = format!("Ship variant {v} of {}: the experiment stops", x.id);
            if let Some(m) = &def.model_version {
                what.push_str(&format!(
                    "; model version {m} becomes the champion (recorded in the model history)"
                ));
            }
            if let Some(p) = &def.placement {
                what.push_str(&format!(
                    "; placement {p}'s configuration serves {} from now on",
                    x.placement
                ));
            }
            what.push('.');
            (format!("Ship {v} of {}", x.id), what)
        }
        ("ship", None) => return Err(PageError::bad("a ship needs a variant")),
        (other, _) => {
            return Err(PageError::bad(format!(
                "`{other}` is not an action; use stop or ship"
            )))
        }
    };
    let enc = urlencode(&x.id);
    let body = html! {
        p { (what) }
        form.stack method="post" action=(format!("/experiments/{enc}/confirm")) {
            (csrf_field(&session))
            input type="hidden" name="action" value=(q.action);
            @if let Some(v) = &q.variant { input type="hidden" name="variant" value=(v); }
            label for="reason" { "Reason (recorded in the experiment's history)" }
            input id="reason" name="reason" type="text" required maxlength="500" autofocus;
            div.row {
                button type="submit" { "Confirm" }
                a href=(format!("/experiments/{enc}")) { "Cancel" }
            }
        }
    };
    Ok(layout(&title, "/experiments", &session, body))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ActionForm {
    #[allow(dead_code)] // Checked by the gate before the handler runs.
    csrf: String,
    action: String,
    variant: Option<String>,
    reason: String,
}

/// Carries out a confirmed stop or ship and goes back to the experiment's page.
pub(super) async fn confirmed(
    State(dash): State<Dash>,
    axum::Extension(session): Sess,
    P(id): P<String>,
    F(form): F<ActionForm>,
) -> Result<Response, PageError> {
    let reason = form.reason.trim().to_string();
    let n = reason.chars().count();
    if n == 0 || n > 500 {
        return Err(PageError::bad(
            "say why in 1 to 500 characters; it is recorded in the experiment's history",
        ));
    }
    let who = format!("{} via dashboard", session.who);
    let (key_id, key_name) = audit_identity(&session);
    let target = id.clone();
    let (action, result) = match (form.action.as_str(), form.variant) {
        ("stop", None) => {
            let result = dash
                .app
                .run(move |e| e.stop_experiment(&target, &who, &reason))
                .await;
            (
                format!("POST /v1/experiments/{id}/stop (dashboard)"),
                result,
            )
        }
        ("ship", Some(variant)) => {
            let result = dash
                .app
                .run(move |e| e.ship_experiment(&target, &variant, &who, &reason))
                .await;
            (
                format!("POST /v1/experiments/{id}/ship (dashboard)"),
                result,
            )
        }
        _ => {
            return Err(PageError::bad(
                "use action=stop, or action=ship with a variant",
            ))
        }
    };
    let status = match &result {
        Ok(_) => 303,
        Err(e) => e.status.as_u16(),
    };
    audit(&dash, &key_id, &key_name, &action, Some(id.clone()), status).await;
    let x = result?;
    let done = match &x.shipped {
        Some(s) => format!("Variant {} shipped; the experiment stopped.", s.variant),
        None => "Stopped: its users get the default lists again.".to_string(),
    };
    Ok(Redirect::to(&format!(
        "/experiments/{}?done={}",
        urlencode(&x.id),
        urlencode(&done)
    ))
    .into_response())
}
