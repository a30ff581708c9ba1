//! Reasons: the short human-readable explanation each recommended item carries, written from the
//! source that placed it (the history item it resembles most, the interest it matches, the
//! category it is popular in).

use cairn_core::StoredEvent;

use super::request::{Recommendation, RecommendationSource};
use crate::catalog::Catalog;
use cairn_pipeline::ModelSet;
use cairn_pipeline::{Context, Source};

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

/// What the reasons of one list are written from.
pub(super) struct Explainer<'a> {
    m: &'a ModelSet,
    catalog: &'a Catalog,
    ctx: &'a Context<'a>,
    history: &'a [StoredEvent],
    category: Option<&'a str>,
    /// The seeds the collaborative models know, for "because you …" reasons.
    cf_seeds: Vec<(u32, f32)>,
}

impl<'a> Explainer<'a> {
    pub(super) fn new(
        m: &'a ModelSet,
        catalog: &'a Catalog,
        ctx: &'a Context<'a>,
        history: &'a [StoredEvent],
        category: Option<&'a str>,
    ) -> Explainer<'a> {
        Explainer {
            m,
            catalog,
            ctx,
            history,
            category,
            cf_seeds: ctx
                .seeds
                .iter()
                .copied()
                .filter(|&(i, _)| (i as usize) < m.table.n_cf)
                .collect(),
        }
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
                let interest = m
                    .content
                    .as_ref()
                    .and_then(|c| {
                        let (column, _) = *c.model.explain(&ctx.seeds, r.item, 1).first()?;
                        c.space.feature(column)
                    })
                    .map(|f| {
                        f.name
                            .split_once(':')
                            .map_or(f.name.as_str(), |(_, v)| v)
                            .to_string()
                    });
                let new = table.first_seen[r.item as usize] == i64::MIN;
                match (interest, new) {
                    (Some(w), true) => format!("new, and it matches your interest in {w}"),
                    (Some(w), false) => format!("matches your interest in {w}"),
                    (None, true) => "new, and it matches your recent items".to_string(),
                    (None, false) => "matches your recent items".to_string(),
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
            Source::NewItems => popular_reason("new", primary.as_deref()),
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
        let m = Arc::new(fixture::models());
        let catalog = fixture::catalog(&m);
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
        let explainer = Explainer::new(&m, &catalog, &ctx, history, category);
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
                "new in jazz",
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
    fn a_content_match_says_whether_the_item_is_new() {
        let recs = explain(
            &["j0", "j1"],
            &[],
            None,
            &[
                ("n0", Source::Content, false),
                ("j2", Source::Content, false),
            ],
        );
        assert!(
            recs[0].reason.starts_with("new, and it matches your"),
            "{recs:?}"
        );
        assert!(recs[1].reason.starts_with("matches your"), "{recs:?}");
        assert!(recs
            .iter()
            .all(|r| r.source == RecommendationSource::Content));
    }

    #[test]
    fn an_explored_item_keeps_its_sources_reason_under_exploration() {
        let recs = explain(&[], &[], None, &[("j2", Source::Popular, true)]);
        assert_eq!(recs[0].source, RecommendationSource::Exploration);
        assert_eq!(recs[0].reason, "popular");
    }
}
