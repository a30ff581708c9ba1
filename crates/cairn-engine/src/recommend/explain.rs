//! Reasons: the short human-readable explanation each recommended item carries, written from the
//! source that placed it (the history item it resembles most, the interest it matches, the
//! category it is popular in).

use cairn_core::{Item, PropertyValue, StoredEvent, Timestamp};

use super::request::{Recommendation, RecommendationSource};
use crate::catalog::Catalog;
use cairn_pipeline::model_set::ContentIndex;
use cairn_pipeline::ModelSet;
use cairn_pipeline::{Context, PlacementConfig, Source};

/// What the user did, as it reads in "because you … \"title\"".
fn verb(event_type: &str) -> &'static str {
    match event_type {
        "view" => "viewed",
        "click" => "clicked",
        "like" => "liked",
        "add-to-cart" => "added to your cart",
        "purchase" => "bought",
        "rating" => "rated",
        _ => "interacted with",
    }
}

/// The reason of a non-personal item: `kind` ("popular", "trending", "new"), in `category` when
/// the item was chosen within one.
pub(super) fn popular_reason(kind: &str, category: Option<&str>) -> String {
    match category {
        Some(c) => format!("{kind} in {c}"),
        None => kind.to_string(),
    }
}

/// Item properties that date an item's arrival (its release or its creation), most specific
/// first: an RFC 3339 time, a `YYYY-MM-DD` date or unix seconds.
const DATE_PROPERTIES: &[&str] = &[
    "release_date",
    "released_at",
    "released",
    "published_at",
    "published",
    "created_at",
    "created",
    "added_at",
];

/// When the catalog says the item arrived, from the first date property that parses.
fn arrival(item: &Item) -> Option<i64> {
    DATE_PROPERTIES.iter().find_map(|key| {
        match item.properties.get(*key)? {
            PropertyValue::Number(n) if n.is_finite() => Timestamp::from_secs(*n as i64).ok(),
            PropertyValue::String(s) => Timestamp::parse(s)
                .or_else(|_| Timestamp::parse(&format!("{}T00:00:00Z", s.trim())))
                .ok(),
            _ => None,
        }
        .map(|t| t.0)
    })
}

/// How new an item is, as far as the data can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Freshness {
    /// The catalog dates its release or creation within the placement's `new_item_days`.
    New,
    /// Nobody had chosen it when the model was trained (it may be old: the catalog does not say).
    Undiscovered,
    /// First chosen within `new_item_days`, and still rarely.
    RecentlyDiscovered,
    /// None of the above.
    Known,
}

impl Freshness {
    /// As the start of a reason, or `None` for a known item.
    fn words(self) -> Option<&'static str> {
        match self {
            Freshness::New => Some("new"),
            Freshness::Undiscovered => Some("not yet discovered"),
            Freshness::RecentlyDiscovered => Some("recently discovered"),
            Freshness::Known => None,
        }
    }
}

/// The (at most two) features that contribute most to `item`'s match with `profile`, as one
/// phrase: "the category kitchen and the word \"kettle\"". Embedding dimensions, which mean
/// nothing to a reader, are passed over; `None` when nothing readable is shared.
pub(super) fn shared_features(
    content: &ContentIndex,
    profile: &[(u32, f32)],
    item: u32,
) -> Option<String> {
    let phrases: Vec<String> = content
        .model
        .explain_profile(profile, item, 8)
        .into_iter()
        .filter_map(|(column, _)| content.space.describe(column))
        .take(2)
        .collect();
    (!phrases.is_empty()).then(|| phrases.join(" and "))
}

/// What the reasons of one list are written from.
pub(super) struct Explainer<'a> {
    m: &'a ModelSet,
    catalog: &'a Catalog,
    ctx: &'a Context<'a>,
    history: &'a [StoredEvent],
    category: Option<&'a str>,
    /// The placement's `new_item_days`, for what counts as new.
    new_item_days: f64,
    /// The seeds the collaborative models know, for "because you …" reasons.
    cf_seeds: Vec<(u32, f32)>,
    /// The content profile of the seeds (those outside the item table included), for "matches
    /// your interest in …" reasons.
    content_profile: Vec<(u32, f32)>,
}

impl<'a> Explainer<'a> {
    pub(super) fn new(
        m: &'a ModelSet,
        catalog: &'a Catalog,
        ctx: &'a Context<'a>,
        history: &'a [StoredEvent],
        category: Option<&'a str>,
        placement: &PlacementConfig,
    ) -> Explainer<'a> {
        Explainer {
            m,
            catalog,
            ctx,
            history,
            category,
            new_item_days: placement.new_item_days,
            content_profile: m.content.as_ref().map_or_else(Vec::new, |c| {
                c.model
                    .profile_with(&ctx.seeds, &ctx.activity.unseen_features)
            }),
            cf_seeds: ctx
                .seeds
                .iter()
                .copied()
                .filter(|&(i, _)| (i as usize) < m.table.n_cf)
                .collect(),
        }
    }

    /// How new table item `item` is: by the catalog's date when it has one, else by when it was
    /// first chosen.
    fn freshness(&self, item: u32) -> Freshness {
        let (m, days) = (self.m, self.new_item_days);
        let id = m.table.ids.id(item);
        if let Some(arrived) = self.catalog.get(id).and_then(|it| arrival(it)) {
            if ((m.reference_time - arrived) as f64) < days * 86_400.0 {
                return Freshness::New;
            }
        }
        if m.table.first_seen[item as usize] == i64::MIN {
            Freshness::Undiscovered
        } else if m.table.is_new(item, m.reference_time, days) {
            Freshness::RecentlyDiscovered
        } else {
            Freshness::Known
        }
    }

    /// What `item` shares with the seeds, as a phrase (see [`shared_features`]).
    fn interest(&self, item: u32) -> Option<String> {
        shared_features(self.m.content.as_ref()?, &self.content_profile, item)
    }

    /// The reason for one item, from the source that placed it.
    pub(super) fn explain(&self, r: &cairn_pipeline::Ranked) -> Recommendation {
        let (m, catalog, ctx, history, category) =
            (self.m, self.catalog, self.ctx, self.history, self.category);
        let table = &m.table;
        let id = table.ids.id(r.item);
        let category_name = |c: u32| table.categories.id(c).to_string();
        let primary = table.primary_category(r.item).map(category_name);
        let reason = match r.source {
            Source::Embedding | Source::ItemKnn => {
                let because = ((r.item as usize) < table.n_cf)
                    .then(|| m.knn.strongest_reason(&self.cf_seeds, r.item))
                    .flatten();
                match because {
                    Some(h) => {
                        let h_id = table.ids.id(h);
                        let label = catalog.get(h_id).map_or(h_id, |it| it.label());
                        let v = history
                            .iter()
                            .rev()
                            .find(|e| e.item_id == h_id)
                            .map_or("chose", |e| verb(&e.event_type));
                        format!("because you {v} \"{label}\"")
                    }
                    None => "matches your recent items".to_string(),
                }
            }
            Source::Content => {
                let matches = match self.interest(r.item) {
                    Some(phrase) => format!("matches your interest in {phrase}"),
                    None => "matches your recent items".to_string(),
                };
                // Being chosen lately by a few is no news beside a match; only an item nobody
                // has chosen yet, or a new one, says so.
                match self.freshness(r.item) {
                    f @ (Freshness::New | Freshness::Undiscovered) => {
                        format!("{}, and it {matches}", f.words().unwrap_or_default())
                    }
                    Freshness::RecentlyDiscovered | Freshness::Known => matches,
                }
            }
            Source::CategoryPopular => {
                let weight = |c: &u32| {
                    ctx.activity
                        .category_affinity
                        .get(c)
                        .copied()
                        .unwrap_or(0.0)
                };
                let best = table
                    .categories_of(r.item)
                    .iter()
                    .copied()
                    .max_by(|a, b| weight(a).total_cmp(&weight(b)))
                    .map(category_name);
                popular_reason("popular", best.as_deref())
            }
            Source::Trending => popular_reason("trending", category.or(primary.as_deref())),
            Source::NewItems => popular_reason(
                self.freshness(r.item)
                    .words()
                    .unwrap_or("recently discovered"),
                primary.as_deref(),
            ),
            Source::Popular => popular_reason("popular", category),
        };
        Recommendation {
            item_id: id.to_string(),
            score: r.score,
            source: if r.explored {
                RecommendationSource::Exploration
            } else {
                r.source.into()
            },
            reason,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::recommend::fixture;
    use cairn_pipeline::{Activity, Ranked};

    #[test]
    fn a_non_personal_reason_names_its_category_when_it_has_one() {
        assert_eq!(popular_reason("popular", None), "popular");
        assert_eq!(popular_reason("trending", Some("jazz")), "trending in jazz");
    }

    #[test]
    fn each_event_type_reads_as_a_verb() {
        assert_eq!(verb("add-to-cart"), "added to your cart");
        assert_eq!(verb("purchase"), "bought");
        assert_eq!(verb("a-custom-type"), "interacted with");
    }

    /// Explains `ranked` for a user whose seeds are `seeds`, after `history`.
    fn explain(
        seeds: &[&str],
        history: &[StoredEvent],
        category: Option<&str>,
        ranked: &[(&str, Source, bool)],
    ) -> Vec<Recommendation> {
        explain_in(Vec::new(), seeds, history, category, ranked)
    }

    /// [`explain`], with `updated` items replacing the world's in the catalog.
    fn explain_in(
        updated: Vec<Item>,
        seeds: &[&str],
        history: &[StoredEvent],
        category: Option<&str>,
        ranked: &[(&str, Source, bool)],
    ) -> Vec<Recommendation> {
        let m = Arc::new(fixture::models());
        let mut catalog = fixture::catalog(&m);
        for item in updated {
            catalog.upsert(item);
        }
        let t = &m.table;
        let allow = |_: u32| true;
        let boost = |_: u32| 1.0;
        let seeds: Vec<(u32, f32)> = seeds
            .iter()
            .map(|id| (t.ids.get(id).unwrap(), 1.0))
            .collect();
        let pairs: Vec<(Option<u32>, f32)> = seeds.iter().map(|&(i, w)| (Some(i), w)).collect();
        let ctx = Context {
            activity: Activity::from_events(t, &pairs, &[]),
            seeds,
            allow: &allow,
            boost: &boost,
            window: 10,
            seed: 0,
        };
        let placement = PlacementConfig::default();
        let explainer = Explainer::new(&m, &catalog, &ctx, history, category, &placement);
        ranked
            .iter()
            .map(|&(id, source, explored)| {
                explainer.explain(&Ranked {
                    item: t.ids.get(id).unwrap(),
                    score: 0.5,
                    source,
                    explored,
                })
            })
            .collect()
    }

    #[test]
    fn a_collaborative_item_is_explained_by_the_history_item_it_resembles() {
        let history = [fixture::stored("u", "j0", "like", 1)];
        let recs = explain(
            &["j0"],
            &history,
            None,
            &[
                ("j1", Source::ItemKnn, false),
                ("j1", Source::Embedding, false),
            ],
        );
        for r in &recs {
            assert_eq!(r.reason, "because you liked \"jazz record 0\"");
            assert_eq!((r.item_id.as_str(), r.score), ("j1", 0.5));
        }
        assert_eq!(recs[0].source, RecommendationSource::ItemKnn);
        assert_eq!(recs[1].source, RecommendationSource::Embedding);

        // Without a seed the collaborative models know, the reason is the general one.
        let recs = explain(&["n0"], &[], None, &[("j1", Source::ItemKnn, false)]);
        assert_eq!(recs[0].reason, "matches your recent items");
    }

    #[test]
    fn a_non_personal_item_is_explained_by_its_source_and_category() {
        let recs = explain(
            &["r0"],
            &[],
            None,
            &[
                ("r1", Source::CategoryPopular, false),
                ("r1", Source::Trending, false),
                ("n0", Source::NewItems, false),
                ("j2", Source::Popular, false),
            ],
        );
        let reasons: Vec<&str> = recs.iter().map(|r| r.reason.as_str()).collect();
        assert_eq!(
            reasons,
            [
                "popular in rock",
                "trending in rock",
                "not yet discovered in jazz",
                "popular"
            ]
        );
        let sources: Vec<&str> = recs.iter().map(|r| r.source.name()).collect();
        assert_eq!(
            sources,
            ["category-popular", "trending", "new-items", "popular"]
        );

        // Within a requested category, trending and popular items name it.
        let recs = explain(
            &[],
            &[],
            Some("jazz"),
            &[
                ("r1", Source::Trending, false),
                ("j2", Source::Popular, false),
            ],
        );
        assert_eq!(recs[0].reason, "trending in jazz");
        assert_eq!(recs[1].reason, "popular in jazz");
    }

    #[test]
    fn a_content_match_names_the_feature_as_a_phrase_and_says_whether_nobody_chose_the_item_yet() {
        let recs = explain(
            &["j0", "j1"],
            &[],
            None,
            &[
                ("n0", Source::Content, false),
                ("j2", Source::Content, false),
            ],
        );
        assert_eq!(
            recs[0].reason,
            "not yet discovered, and it matches your interest in the category jazz"
        );
        assert_eq!(
            recs[1].reason,
            "matches your interest in the category jazz and the word \"jazz\""
        );
        assert!(recs
            .iter()
            .all(|r| r.source == RecommendationSource::Content));
    }

    /// The world's item `id` with a `release_date`.
    fn released(id: &str, date: &str) -> Item {
        let mut item = fixture::items().into_iter().find(|i| i.id == id).unwrap();
        item.properties
            .insert("release_date".into(), PropertyValue::String(date.into()));
        item
    }

    #[test]
    fn new_means_released_lately_by_the_catalog_s_own_date_and_nothing_else() {
        let ranked = [
            ("n0", Source::NewItems, false),
            ("n0", Source::Content, false),
        ];
        let reasons = |updated: Vec<Item>| -> Vec<String> {
            explain_in(updated, &["j0"], &[], None, &ranked)
                .into_iter()
                .map(|r| r.reason)
                .collect()
        };
        let undiscovered = [
            "not yet discovered in jazz",
            "not yet discovered, and it matches your interest in the category jazz",
        ];
        // Without a date, an item nobody chose is not called new: it may be years old.
        assert_eq!(reasons(Vec::new()), undiscovered);
        // Released the day before the last event (the fixture's events are from 2023-11-14).
        assert_eq!(
            reasons(vec![released("n0", "2023-11-13")]),
            [
                "new in jazz",
                "new, and it matches your interest in the category jazz"
            ]
        );
        // A 2008 release is not new, whoever discovers it.
        assert_eq!(reasons(vec![released("n0", "2008-05-01")]), undiscovered);
        assert_eq!(
            reasons(vec![released("n0", "2008-05-01T00:00:00Z")]),
            undiscovered
        );
        let mut created = fixture::items().into_iter().find(|i| i.id == "n0").unwrap();
        created
            .properties
            .insert("created_at".into(), PropertyValue::Number(1_700_000_000.0));
        assert_eq!(reasons(vec![created])[0], "new in jazz");
    }

    #[test]
    fn an_explored_item_keeps_its_sources_reason_under_exploration() {
        let recs = explain(&[], &[], None, &[("j2", Source::Popular, true)]);
        assert_eq!(recs[0].source, RecommendationSource::Exploration);
        assert_eq!(recs[0].reason, "popular");
    }
}
