//! Items and users: lists in id order a page at a time, a search by id, title or category, an item
//! page (fields, availability, events per day ([`super::popularity`]), similar items with their
//! sources) and a user page (the event timeline, newest first).
//!
//! A search reads the store's pages in id order and keeps the matches, reading at most
//! [`SCAN_LIMIT`] items per request; when it stops there the page offers to continue from where it
//! stopped. So no request reads the whole catalog, whatever its size.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use cairn_core::{Item, PropertyValue};
use maud::{html, Markup};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::Arc;

use super::models::urlencode;
use super::{ago, layout, when, Dash, PageError, Sess, P, Q};

/// Items a search reads at most per request.
pub const SCAN_LIMIT: usize = 5000;
/// Rows per page by default, and at most.
const DEFAULT_ROWS: usize = 25;
const MAX_ROWS: usize = 100;
/// Items read from the store per call while searching.
const SCAN_CHUNK: usize = 500;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ListQuery {
    /// Text to find in the id or the title (case-insensitive); also an exact id.
    q: Option<String>,
    /// Only items in this category.
    category: Option<String>,
    /// Continue after this id.
    after: Option<String>,
    /// Rows per page, 1 to [`MAX_ROWS`].
    rows: Option<usize>,
}

fn rows(rows: Option<usize>) -> Result<usize, PageError> {
    match rows.unwrap_or(DEFAULT_ROWS) {
        r @ 1..=MAX_ROWS => Ok(r),
        r => Err(PageError::bad(format!(
            "rows={r} is out of range; use 1 to {MAX_ROWS}"
        ))),
    }
}

fn non_empty(s: Option<String>) -> Option<String> {
    s.map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

/// One search's result: the matches, where to continue, and how many items were read.
struct Found {
    items: Vec<Item>,
    next: Option<String>,
    scanned: usize,
    /// The search stopped at [`SCAN_LIMIT`] rather than at a full page.
    cut: bool,
}

fn matches(item: &Item, text: Option<&str>, category: Option<&str>) -> bool {
    let category_ok = category.is_none_or(|c| item.categories.iter().any(|x| x == c));
    let text_ok = text.is_none_or(|t| {
        item.id.to_lowercase().contains(t)
            || item
                .title
                .as_deref()
                .is_some_and(|title| title.to_lowercase().contains(t))
    });
    category_ok && text_ok
}

pub(super) async fn items(
    State(dash): State<Dash>,
    axum::Extension(session): Sess,
    Q(q): Q<ListQuery>,
) -> Result<Html<String>, PageError> {
    let limit = rows(q.rows)?;
    let text = non_empty(q.q);
    let category = non_empty(q.category);
    let after = non_empty(q.after);
    let exact = match &text {
        Some(t) => {
            let t = t.clone();
            dash.app.run(move |e| Ok(e.get_item(&t).ok())).await?
        }
        None => None,
    };
    let (needle, cat) = (text.as_ref().map(|t| t.to_lowercase()), category.clone());
    let found = dash
        .app
        .run(move |e| {
            let mut found = Found {
                items: Vec::new(),
                next: None,
                scanned: 0,
                cut: false,
            };
            let mut cursor = after;
            loop {
                let chunk = if needle.is_none() && cat.is_none() {
                    limit
                } else {
                    SCAN_CHUNK
                };
                let page = e.list_items(cursor.as_deref(), chunk)?;
                let end = page.next_cursor.is_none();
                for item in page.items {
                    found.scanned += 1;
                    cursor = Some(item.id.clone());
                    if matches(&item, needle.as_deref(), cat.as_deref()) {
                        found.items.push(item);
                        if found.items.len() == limit {
                            break;
                        }
                    }
                    if found.scanned >= SCAN_LIMIT {
                        found.cut = true;
                        break;
                    }
                }
                if found.items.len() == limit || found.cut {
                    found.next = cursor;
                    break;
                }
                if end {
                    break;
                }
            }
            Ok(found)
        })
        .await?;
    let params = |after: &str| {
        let mut p = vec![("after", after.to_string())];
        if let Some(t) = &text {
            p.push(("q", t.clone()));
        }
        if let Some(c) = &category {
            p.push(("category", c.clone()));
        }
        if limit != DEFAULT_ROWS {
            p.push(("rows", limit.to_string()));
        }
        serde_urlencoded::to_string(p).unwrap_or_default()
    };
    let body = html! {
        form.search method="get" action="/items" role="search" {
            label for="q" { "Id or title" }
            input id="q" name="q" type="search" value=[text.as_deref()];
            label for="category" { "Category" }
            input id="category" name="category" type="text" value=[category.as_deref()];
            button type="submit" { "Search" }
        }
        @if let Some(item) = &exact {
            p.notice { "Exact id: " a href=(format!("/items/{}", urlencode(&item.id))) { (item.id) } }
        }
        @if found.items.is_empty() {
            p { "No item matches"
                @if found.cut { " among the " (found.scanned) " read" } "." }
        } @else {
            div.scroll { table {
                thead { tr { th { "Id" } th { "Title" } th { "Categories" } th { "Status" } } }
                tbody { @for item in &found.items {
                    tr {
                        td { a href=(format!("/items/{}", urlencode(&item.id))) { (item.id) } }
                        td { (item.title.as_deref().unwrap_or("")) }
                        td { (item.categories.join(", ")) }
                        td { (availability(item, cairn_core::now_unix())) }
                    }
                } }
            } }
        }
        nav.pager aria-label="Pages" {
            @if let Some(next) = &found.next {
                @if found.cut {
                    span.muted { "Read " (found.scanned) " items (the most one page reads). " }
                    a href=(format!("/items?{}", params(next))) rel="next" { "Continue the search →" }
                } @else {
                    a href=(format!("/items?{}", params(next))) rel="next" { "Next →" }
                }
            }
        }
    };
    Ok(layout("Items", "/items", &session, body))
}

fn availability(item: &Item, now: i64) -> &'static str {
    if item.hidden {
        "hidden"
    } else if item.available_from.is_some_and(|t| t.0 > now) {
        "not yet available"
    } else if item.available_until.is_some_and(|t| t.0 <= now) {
        "no longer available"
    } else {
        "recommendable"
    }
}

fn property(v: &PropertyValue) -> String {
    match v {
        PropertyValue::String(s) => s.clone(),
        other => serde_json::to_string(other).unwrap_or_default(),
    }
}

fn properties(props: &BTreeMap<String, PropertyValue>) -> Markup {
    html! {
        @if props.is_empty() { p.muted { "No properties." } }
        @else { dl.props { @for (k, v) in props { dt { (k) } dd { (property(v)) } } } }
    }
}

/// Similar items per page of an item.
const SIMILAR: usize = 10;

pub(super) async fn item(
    State(dash): State<Dash>,
    axum::Extension(session): Sess,
    P(id): P<String>,
) -> Result<Html<String>, PageError> {
    let key = id.clone();
    let item = dash.app.run(move |e| e.get_item(&key)).await?;
    let key = id.clone();
    let similar = dash
        .app
        .score(move |e| e.similar_items(&key, SIMILAR, None))
        .await;
    let (days, key) = (Arc::clone(&dash.item_days), id.clone());
    let popularity = dash
        .app
        .run(move |e| {
            // What was appended since the background task's last read (a bounded number of
            // events), so an event posted a moment ago is counted.
            days.catch_up(e, super::popularity::CATCH_UP_ON_PAGE)?;
            Ok(days.series(&key))
        })
        .await?;
    let now = cairn_core::now_unix();
    let body = html! {
        section.cards {
            div.card {
                h2 { "Fields" }
                dl.props {
                    dt { "Id" } dd { code { (item.id) } }
                    dt { "Title" } dd { (item.title.as_deref().unwrap_or("-")) }
                    dt { "Categories" } dd { @for c in &item.categories {
                        a.tag href=(format!("/items?category={}", urlencode(c))) { (c) } " "
                    } }
                    dt { "Tags" } dd { (item.tags.join(", ")) }
                    dt { "Status" } dd { (availability(&item, now)) }
                    dt { "Available" } dd {
                        (item.available_from.map_or("always".into(), |t| format!("from {}", when(t.0))))
                        @if let Some(u) = item.available_until { " until " (when(u.0)) }
                    }
                }
                @if let Some(d) = &item.description { p { (d) } }
            }
            div.card { h2 { "Properties" } (properties(&item.properties)) }
        }
        h2 { "Popularity over time" }
        (super::popularity::chart(&popularity))
        h2 { "Similar items" }
        @match &similar {
            Ok(list) => {
                @if list.items.is_empty() {
                    p.muted { "None: no model serves yet, or the item has no neighbours." }
                } @else {
                    (rec_table(&list.items))
                }
            },
            Err(e) => p.error { (e.message) },
        }
        p { a href=(format!("/preview?context={}", urlencode(&item.id))) { "Preview recommendations with this item as context →" } }
    };
    Ok(layout(
        &format!("Item {}", item.id),
        "/items",
        &session,
        body,
    ))
}

/// A recommendation list as a table: position, item, score, source, reason.
pub(super) fn rec_table(items: &[cairn_engine::Recommendation]) -> Markup {
    html! {
        div.scroll { table.recs {
            thead { tr { th { "#" } th { "Item" } th { "Score" } th { "Source" } th { "Reason" } } }
            tbody { @for (i, r) in items.iter().enumerate() {
                tr {
                    td { (i + 1) }
                    td { a href=(format!("/items/{}", urlencode(&r.item_id))) { (r.item_id) } }
                    td { (format!("{:.3}", r.score)) }
                    td { span.tag { (r.source.name()) } }
                    td { (r.reason) }
                }
            } }
        } }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct UserListQuery {
    /// An exact id (opens its page) or where to start the list.
    q: Option<String>,
    after: Option<String>,
    rows: Option<usize>,
}

pub(super) async fn users(
    State(dash): State<Dash>,
    axum::Extension(session): Sess,
    Q(q): Q<UserListQuery>,
) -> Result<Response, PageError> {
    let limit = rows(q.rows)?;
    let text = non_empty(q.q);
    if let Some(t) = &text {
        let key = t.clone();
        let exists = dash
            .app
            .run(move |e| Ok(e.get_user(&key).is_ok() || !e.user_events(&key, 1)?.is_empty()))
            .await?;
        if exists {
            return Ok(Redirect::to(&format!("/users/{}", urlencode(t))).into_response());
        }
    }
    // Without an exact match the list starts at the text (ids in order from there).
    let start = non_empty(q.after).or(text.clone());
    let page = dash
        .app
        .run(move |e| e.list_users(start.as_deref(), limit))
        .await?;
    let body = html! {
        form.search method="get" action="/users" role="search" {
            label for="q" { "User id" }
            input id="q" name="q" type="search" value=[text.as_deref()];
            button type="submit" { "Find" }
        }
        @if let Some(t) = &text { p.notice { "No user `" (t) "`; users from there on:" } }
        @if page.items.is_empty() { p { "No users." } }
        @else {
            div.scroll { table {
                thead { tr { th { "Id" } th { "Properties" } } }
                tbody { @for u in &page.items {
                    tr {
                        td { a href=(format!("/users/{}", urlencode(&u.id))) { (u.id) } }
                        td { (u.properties.iter().map(|(k, v)| format!("{k}: {}", property(v))).collect::<Vec<_>>().join(", ")) }
                    }
                } }
            } }
        }
        @if let Some(next) = &page.next_cursor {
            nav.pager aria-label="Pages" {
                a href=(format!("/users?after={}{}", urlencode(next), if limit != DEFAULT_ROWS { format!("&rows={limit}") } else { String::new() })) rel="next" { "Next →" }
            }
        }
    };
    Ok(layout("Users", "/users", &session, body).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TimelineQuery {
    /// The `next` of the previous page of events.
    before: Option<String>,
    rows: Option<usize>,
}

pub(super) async fn user(
    State(dash): State<Dash>,
    axum::Extension(session): Sess,
    P(id): P<String>,
    Q(q): Q<TimelineQuery>,
) -> Result<Html<String>, PageError> {
    let limit = rows(q.rows)?;
    let key = id.clone();
    let user = dash.app.run(move |e| Ok(e.get_user(&key).ok())).await?;
    let (key, before) = (id.clone(), non_empty(q.before));
    let events = dash
        .app
        .run(move |e| e.user_events_page(&key, before.as_deref(), limit))
        .await?;
    if user.is_none() && events.items.is_empty() {
        return Err(PageError::new(
            StatusCode::NOT_FOUND,
            format!("no user `{id}`: no user row and no events"),
        ));
    }
    let now = cairn_core::now_unix();
    let body = html! {
        section.cards {
            div.card {
                h2 { "Properties" }
                @match &user { Some(u) => (properties(&u.properties)), None => p.muted { "No user row (events only)." } }
                p { a href=(format!("/preview?user={}", urlencode(&id))) { "Preview this user's recommendations →" } }
            }
        }
        h2 { "Events, newest first" }
        @if events.items.is_empty() { p { "No events." } }
        @else {
            div.scroll { table {
                thead { tr { th { "When" } th { "Type" } th { "Item" } th { "Value" } th { "Log position" } } }
                tbody { @for ev in &events.items {
                    tr {
                        td { (when(ev.timestamp.0)) br; span.muted { (ago(now - ev.timestamp.0)) " ago" } }
                        td { (ev.event_type) }
                        td { a href=(format!("/items/{}", urlencode(&ev.item_id))) { (ev.item_id) } }
                        td { (ev.value.map(|v| v.to_string()).unwrap_or_default()) }
                        td { (ev.seq) }
                    }
                } }
            } }
        }
        @if let Some(next) = &events.next_cursor {
            nav.pager aria-label="Pages" {
                a href=(format!("/users/{}?before={}", urlencode(&id), urlencode(next))) rel="next" { "Older →" }
            }
        }
    };
    Ok(layout(&format!("User {id}"), "/users", &session, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_matches_id_title_and_category() {
        let mut item = Item::new("sku-42");
        item.title = Some("Red Shoes".into());
        item.categories = vec!["shoes".into()];
        assert!(matches(&item, Some("red"), None));
        assert!(matches(&item, Some("42"), Some("shoes")));
        assert!(!matches(&item, Some("blue"), None));
        assert!(!matches(&item, None, Some("hats")));
        assert!(matches(&item, None, None));
    }

    #[test]
    fn rows_are_bounded() {
        assert_eq!(rows(None).unwrap(), DEFAULT_ROWS);
        assert!(rows(Some(0)).is_err());
        assert!(rows(Some(MAX_ROWS + 1)).is_err());
        assert_eq!(rows(Some(MAX_ROWS)).unwrap(), MAX_ROWS);
    }
}
