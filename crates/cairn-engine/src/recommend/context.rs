//! Context assembly: what one request gives the pipeline. The user's history and the request's
//! context items become history events (hence seeds and activity); the user's stated interests
//! add to the activity; the request's rules, category and exclusions become the check every
//! proposed item passes and the boost it gets.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashSet;
use std::hash::{Hash, Hasher};

use cairn_core::{Item, PropertyValue, Scalar, StoredEvent, User};
use cairn_expr::UserContext;

use super::lists::may_list;
use super::request::RecommendRequest;
use super::rules::RequestRules;
use crate::catalog::{Catalog, TableItems};
use cairn_pipeline::{Activity, HistoryConfig, HistoryEvent, ItemTable, ModelSet, Seeds};

/// Strength of a context item: the newest, strongest kind of signal.
const CONTEXT_STRENGTH: f32 = 8.0;

/// The request's signals as the pipeline's history: the user's events (`history`, with each
/// event's table index in `history_items`) unless the placement is seeded by the context only,
/// then the context items unless it is seeded by the user only.
pub(super) fn history_events(
    table: &ItemTable,
    history: &[StoredEvent],
    history_items: &[Option<u32>],
    context_items: &[String],
    seeds: Seeds,
    strength: impl Fn(&StoredEvent) -> f32,
    now: i64,
) -> Vec<HistoryEvent> {
    let mut events: Vec<HistoryEvent> = Vec::new();
    if seeds != Seeds::Context {
        events.extend(
            history
                .iter()
                .zip(history_items)
                .map(|(e, &item)| HistoryEvent {
                    item,
                    strength: strength(e),
                    timestamp: e.timestamp.0,
                }),
        );
    }
    if seeds != Seeds::User {
        // Context items count as the newest, strongest signals.
        let newest = events
            .iter()
            .map(|e| e.timestamp)
            .max()
            .unwrap_or(now)
            .max(now);
        events.extend(context_items.iter().map(|id| HistoryEvent {
            item: table.ids.get(id),
            strength: CONTEXT_STRENGTH,
            timestamp: newest,
        }));
    }
    events
}

/// The item id of each of [`history_events`]' events, in the same order.
pub(super) fn event_ids<'a>(
    history: &'a [StoredEvent],
    context_items: &'a [String],
    seeds: Seeds,
) -> Vec<&'a str> {
    let mut ids: Vec<&str> = Vec::new();
    if seeds != Seeds::Context {
        ids.extend(history.iter().map(|e| e.item_id.as_str()));
    }
    if seeds != Seeds::User {
        ids.extend(context_items.iter().map(String::as_str));
    }
    ids
}

/// The request's signals about items the model's table lacks (created after the last training):
/// what the pipeline can still learn from them.
#[derive(Debug, Default, PartialEq)]
pub(super) struct Unseen {
    /// Their content features, each item's row times its seed weight (decayed like the seeds).
    pub features: Vec<(u32, f32)>,
    /// Per event about one: the table categories of its item, and the event's strength.
    pub categories: Vec<(Vec<u32>, f32)>,
}

/// The [`Unseen`] signals of `events`, whose items are `ids` (see [`event_ids`]); items absent
/// from the catalog too are ignored.
pub(super) fn unseen(
    m: &ModelSet,
    catalog: &Catalog,
    events: &[HistoryEvent],
    ids: &[&str],
    history: &HistoryConfig,
) -> Unseen {
    let mut out = Unseen::default();
    // The unseen items as local indices, so that their weights come from the seeds' own rule.
    let mut items: Vec<&Item> = Vec::new();
    let mut local: Vec<HistoryEvent> = Vec::with_capacity(events.len());
    for (e, id) in events.iter().zip(ids) {
        let mut item = None;
        if e.item.is_none() {
            if let Some(it) = catalog.get(id) {
                let at = match items.iter().position(|other| other.id == *id) {
                    Some(at) => at,
                    None => {
                        items.push(it);
                        items.len() - 1
                    }
                };
                let categories: Vec<u32> = it
                    .categories
                    .iter()
                    .filter_map(|c| m.table.categories.get(c))
                    .collect();
                out.categories.push((categories, e.strength));
                item = Some(at as u32);
            }
        }
        local.push(HistoryEvent { item, ..*e });
    }
    if let Some(content) = &m.content {
        let weights =
            cairn_pipeline::seeds(&local, history.recent_items, history.recency_half_life_days);
        for (at, w) in weights {
            let row = content.space.transform_item(items[at as usize]);
            out.features
                .extend(row.into_iter().map(|(c, v)| (c, v * w)));
        }
    }
    out
}

/// The user's activity over `events` (with the categories of the `unseen` items' events), with
/// the categories their properties name.
pub(super) fn activity(
    table: &ItemTable,
    events: &[HistoryEvent],
    unseen: Unseen,
    user: Option<&User>,
) -> Activity {
    let stated = stated_categories(table, user);
    let pairs: Vec<(Option<u32>, f32)> = events.iter().map(|e| (e.item, e.strength)).collect();
    let mut activity = Activity::from_events_and_unseen(table, &pairs, &unseen.categories, &stated);
    activity.unseen_features = unseen.features;
    activity
}

/// Categories the user's properties name (a string or list of strings equal to a category),
/// e.g. `{"interests": ["jazz", "blues"]}`: stated interests for users without history.
pub(super) fn stated_categories(table: &ItemTable, user: Option<&User>) -> Vec<u32> {
    let Some(user) = user else { return Vec::new() };
    let mut out = Vec::new();
    let mut add = |s: &str| {
        if let Some(c) = table.categories.get(s) {
            if !out.contains(&c) {
                out.push(c);
            }
        }
    };
    for value in user.properties.values() {
        match value {
            PropertyValue::String(s) => add(s),
            PropertyValue::List(list) => {
                for v in list {
                    if let Scalar::String(s) = v {
                        add(s);
                    }
                }
            }
            _ => {}
        }
    }
    out
}

/// The categories of the items in the history, for expressions naming `user.categories`; empty
/// when no expression needs them (`needed`), since reading them costs a catalog look-up per event.
pub(super) fn seen_categories<'a>(
    catalog: &'a Catalog,
    history: &[StoredEvent],
    needed: bool,
) -> HashSet<&'a str> {
    if needed {
        history
            .iter()
            .filter_map(|e| catalog.get(&e.item_id))
            .flat_map(|i| i.categories.iter().map(String::as_str))
            .collect()
    } else {
        HashSet::new()
    }
}

/// Items that may not appear, as sorted table indices (ids outside the table cannot be proposed
/// anyway): pins, context items, and the seen items (`seen`, the table indices of every item of
/// the user's whole history) when the request asks.
pub(super) fn excluded(table: &ItemTable, req: &RecommendRequest, seen: &[u32]) -> Vec<u32> {
    let mut exclude: Vec<u32> = req
        .pins
        .iter()
        .map(|(id, _)| id)
        .chain(&req.context_items)
        .filter_map(|id| table.ids.get(id))
        .collect();
    if req.exclude_seen {
        exclude.extend_from_slice(seen);
    }
    exclude.sort_unstable();
    exclude.dedup();
    exclude
}

/// The request's rules over table items: which may appear, and how much each one's relevance is
/// multiplied by. The pipeline calls both for every candidate, so they read the item only when
/// some rule needs it.
pub(super) struct ItemRules<'a> {
    items: TableItems<'a>,
    now: i64,
    category: Option<&'a str>,
    rules: &'a RequestRules,
    user: &'a UserContext<'a>,
    /// Sorted table indices (see [`excluded`]).
    exclude: Vec<u32>,
    /// Without a category or filter expression the item itself need not be read.
    reads_item: bool,
}

impl<'a> ItemRules<'a> {
    pub(super) fn new(
        items: TableItems<'a>,
        now: i64,
        category: Option<&'a str>,
        rules: &'a RequestRules,
        user: &'a UserContext<'a>,
        exclude: Vec<u32>,
    ) -> ItemRules<'a> {
        ItemRules {
            items,
            now,
            category,
            rules,
            user,
            exclude,
            reads_item: category.is_some() || rules.filter.is_some(),
        }
    }

    /// Whether item `i` may appear: not excluded, available, in the category, matching the filter.
    pub(super) fn allows(&self, i: u32) -> bool {
        self.exclude.binary_search(&i).is_err()
            && if self.reads_item {
                self.items.get(i).is_some_and(|item| {
                    may_list(item, self.now, self.category)
                        && self
                            .rules
                            .filter
                            .as_ref()
                            .is_none_or(|f| f.matches(item, self.user))
                })
            } else {
                self.items.recommendable(i, self.now)
            }
    }

    /// The product of the factors of the boosts item `i` matches (1 without boosts).
    pub(super) fn boost(&self, i: u32) -> f32 {
        match self.rules.boosts.is_empty() {
            true => 1.0,
            false => self
                .rules
                .boost(self.items.get(i).map(|a| a.as_ref()), self.user),
        }
    }
}

/// The exploration seed of a list: fixed for a user until they act or the model changes, so a
/// refresh does not reshuffle the list, while new events or a retraining draw new explorations.
pub(super) fn seed_of(
    user_id: &str,
    model_version: &str,
    history_len: usize,
    newest_event: i64,
) -> u64 {
    let mut h = DefaultHasher::new();
    (user_id, model_version, history_len, newest_event).hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use super::*;
    use crate::recommend::fixture::{self, NOW};

    fn index(table: &ItemTable, id: &str) -> u32 {
        table.ids.get(id).unwrap()
    }

    fn view_strength(e: &StoredEvent) -> f32 {
        if e.event_type == "view" {
            1.0
        } else {
            3.0
        }
    }

    #[test]
    fn the_placements_seeds_choose_the_history_the_context_or_both() {
        let m = fixture::models();
        let t = &m.table;
        let history = vec![
            fixture::stored("u", "j0", "view", 100),
            fixture::stored("u", "gone", "like", 200),
        ];
        let history_items: Vec<Option<u32>> =
            history.iter().map(|e| t.ids.get(&e.item_id)).collect();
        let context = vec!["r1".to_string()];
        let events = |seeds| {
            history_events(
                t,
                &history,
                &history_items,
                &context,
                seeds,
                view_strength,
                NOW,
            )
        };
        let user = events(Seeds::User);
        assert_eq!(
            user,
            [
                HistoryEvent {
                    item: Some(index(t, "j0")),
                    strength: 1.0,
                    timestamp: 100,
                },
                HistoryEvent {
                    item: None,
                    strength: 3.0,
                    timestamp: 200,
                },
            ]
        );
        let page = events(Seeds::Context);
        assert_eq!(
            page,
            [HistoryEvent {
                item: Some(index(t, "r1")),
                strength: CONTEXT_STRENGTH,
                timestamp: NOW,
            }]
        );
        assert_eq!(events(Seeds::Both), [user, page].concat());
    }

    #[test]
    fn context_items_are_never_older_than_the_newest_event() {
        let m = fixture::models();
        let t = &m.table;
        let history = vec![fixture::stored("u", "j0", "view", NOW + 500)];
        let history_items = vec![t.ids.get("j0")];
        let context = vec!["r1".to_string(), "unknown".to_string()];
        let events = history_events(
            t,
            &history,
            &history_items,
            &context,
            Seeds::Both,
            view_strength,
            NOW,
        );
        assert_eq!(events.len(), 3);
        assert!(events[1..].iter().all(|e| e.timestamp == NOW + 500));
        assert_eq!(events[2].item, None);
    }

    #[test]
    fn excluded_are_pins_context_items_and_when_asked_the_seen_items() {
        let m = fixture::models();
        let t = &m.table;
        let mut req = RecommendRequest {
            pins: vec![("r2".into(), 1), ("unknown".into(), 2), ("j1".into(), 3)],
            context_items: vec!["j1".into()],
            ..RecommendRequest::default()
        };
        let seen = [index(t, "j0"), index(t, "j1")];
        let mut want = vec![index(t, "j1"), index(t, "r2")];
        want.sort_unstable();
        assert_eq!(excluded(t, &req, &seen), want);
        req.exclude_seen = true;
        want.push(index(t, "j0"));
        want.sort_unstable();
        assert_eq!(excluded(t, &req, &seen), want);
    }

    #[test]
    fn stated_categories_are_the_properties_that_name_a_category() {
        let m = fixture::models();
        let t = &m.table;
        let mut user = User::new("u");
        user.properties = BTreeMap::from([
            ("age".into(), PropertyValue::Number(30.0)),
            ("favourite".into(), PropertyValue::String("rock".into())),
            (
                "interests".into(),
                PropertyValue::List(vec![
                    Scalar::String("jazz".into()),
                    Scalar::String("blues".into()),
                    Scalar::String("rock".into()),
                ]),
            ),
        ]);
        let category = |c: &str| t.categories.get(c).unwrap();
        assert_eq!(
            stated_categories(t, Some(&user)),
            [category("rock"), category("jazz")]
        );
        assert!(stated_categories(t, None).is_empty());

        // Without events, the stated interests are the whole activity.
        let activity = activity(t, &[], Unseen::default(), Some(&user));
        assert_eq!(activity.events, 0);
        assert_eq!(activity.category_affinity.len(), 2);
        assert!((activity.category_affinity[&category("jazz")] - 0.5).abs() < 1e-6);
    }

    #[test]
    fn the_users_categories_are_read_only_when_an_expression_needs_them() {
        let m = Arc::new(fixture::models());
        let catalog = fixture::catalog(&m);
        let history = vec![
            fixture::stored("u", "j0", "view", 1),
            fixture::stored("u", "r1", "view", 2),
            fixture::stored("u", "gone", "view", 3),
        ];
        assert!(seen_categories(&catalog, &history, false).is_empty());
        assert_eq!(
            seen_categories(&catalog, &history, true),
            HashSet::from(["jazz", "rock"])
        );
    }

    #[test]
    fn item_rules_check_exclusion_availability_category_and_filter() {
        let m = Arc::new(fixture::models());
        let catalog = fixture::catalog(&m);
        let t = &m.table;
        let (properties, seen, categories) = (BTreeMap::new(), HashSet::new(), HashSet::new());
        let user = UserContext {
            properties: &properties,
            seen_items: &seen,
            categories: &categories,
        };
        let parse = |filter: Option<&str>, boosts: Vec<(String, f32)>| {
            RequestRules::parse(&RecommendRequest {
                k: 5,
                filter: filter.map(String::from),
                boosts,
                ..RecommendRequest::default()
            })
            .unwrap()
        };
        let allowed = |rules: &ItemRules| -> Vec<String> {
            (0..t.len() as u32)
                .filter(|&i| rules.allows(i))
                .map(|i| t.ids.id(i).to_string())
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect()
        };

        let none = parse(None, Vec::new());
        let excluding_j0 = ItemRules::new(
            catalog.for_table(&m),
            NOW,
            None,
            &none,
            &user,
            vec![index(t, "j0")],
        );
        assert_eq!(
            allowed(&excluding_j0),
            ["j1", "j2", "j3", "j4", "n0", "r0", "r1", "r2", "r3"]
        );
        assert_eq!(excluding_j0.boost(index(t, "j1")), 1.0);

        let rock = ItemRules::new(
            catalog.for_table(&m),
            NOW,
            Some("rock"),
            &none,
            &user,
            vec![],
        );
        assert_eq!(allowed(&rock), ["r0", "r1", "r2", "r3"]);

        let filtered = parse(
            Some(r#"title contains "record 1""#),
            vec![
                (r#"category == "jazz""#.into(), 2.0),
                ("id == 'j1'".into(), 1.5),
            ],
        );
        let rules = ItemRules::new(catalog.for_table(&m), NOW, None, &filtered, &user, vec![]);
        assert_eq!(allowed(&rules), ["j1", "r1"]);
        assert_eq!(rules.boost(index(t, "j1")), 3.0);
        assert_eq!(rules.boost(index(t, "j2")), 2.0);
        assert_eq!(rules.boost(index(t, "r1")), 1.0);
    }

    #[test]
    fn the_exploration_seed_changes_only_when_the_user_acts_or_the_model_changes() {
        let seed = seed_of("u", "v1", 10, 1_000);
        assert_eq!(seed, seed_of("u", "v1", 10, 1_000));
        for other in [
            seed_of("w", "v1", 10, 1_000),
            seed_of("u", "v2", 10, 1_000),
            seed_of("u", "v1", 11, 1_000),
            seed_of("u", "v1", 10, 1_001),
        ] {
            assert_ne!(seed, other);
        }
    }
}
