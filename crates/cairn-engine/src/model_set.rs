//! The trained models that serving uses, fitted together from one snapshot and saved as one versioned
//! artifact file.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use std::collections::HashMap;

use cairn_content::{ContentModel, FeatureConfig, FeatureSpace};
use cairn_core::{IdMap, Item};
use cairn_models::{FittedModel, ItemKnn, ItemKnnConfig, Popularity, Trending};
use serde::{Deserialize, Serialize};

use crate::config::{ServeConfig, TrainConfig};
use crate::pipeline::ann::ItemIndex;
use crate::pipeline::retrieve::item_vectors;
use crate::pipeline::training::{fit_ranker, TrainedRanker};
use crate::pipeline::ItemTable;
use crate::snapshot::Snapshot;
use crate::EngineError;

const MAGIC: &[u8; 8] = b"CAIRNMS\0";
/// Bumped whenever the serialized layout changes; older files are refused with a clear error.
const FORMAT_VERSION: u32 = 4;
const LATEST: &str = "LATEST";

/// Item features and the content recommender, indexed like the [`ItemTable`] (so over items
/// nobody has touched too), so that new items can be matched to users by what they are.
#[derive(Serialize, Deserialize)]
pub struct ContentIndex {
    pub space: FeatureSpace,
    pub model: ContentModel,
}

impl ContentIndex {
    fn fit(table: &ItemTable, catalog: &[Item]) -> Result<Option<ContentIndex>, EngineError> {
        if catalog.is_empty() {
            return Ok(None);
        }
        let err = |e: cairn_content::ContentError| {
            EngineError::Artifact(format!("content features: {e}"))
        };
        let by_id: HashMap<&str, &Item> = catalog.iter().map(|i| (i.id.as_str(), i)).collect();
        // Items deleted since their events keep an empty feature row.
        let rows: Vec<Item> = (0..table.len() as u32)
            .map(|i| {
                let id = table.ids.id(i);
                by_id
                    .get(id)
                    .map_or_else(|| Item::new(id), |item| (*item).clone())
            })
            .collect();
        let space = FeatureSpace::fit_items(catalog, &FeatureConfig::default()).map_err(err)?;
        let model = ContentModel::new(space.item_matrix(&rows)).map_err(err)?;
        Ok(Some(ContentIndex { space, model }))
    }
}

#[derive(Serialize, Deserialize)]
pub struct ModelSet {
    pub version: String,
    pub trained_at: i64,
    /// Log position of the last event the models saw.
    pub last_seq: u64,
    pub reference_time: i64,
    pub n_users: usize,
    pub n_interactions: usize,
    /// The collaborative models' items (the first `items.len()` entries of `table`).
    pub items: IdMap,
    /// Every item the pipeline can consider, with the facts its stages use.
    pub table: ItemTable,
    pub popularity: Popularity,
    pub trending: Trending,
    pub knn: ItemKnn,
    /// The configured ranking model (`train.model`), when it is not item-kNN.
    pub main: Option<FittedModel>,
    /// Content model over every catalog item at training time, including items nobody has touched
    /// yet; `None` when the catalog was empty.
    pub content: Option<ContentIndex>,
    /// The pipeline's learned ranker; `None` when disabled or the log was too small.
    pub ranker: Option<TrainedRanker>,
    /// Nearest-neighbour index over the factor model's item vectors; `None` for small catalogs
    /// (scored exactly) and models without item vectors.
    pub ann: Option<ItemIndex>,
    /// Item indices by decreasing popularity / trending score (zero-score items left out).
    pub popular_order: Vec<u32>,
    pub trending_order: Vec<u32>,
}

fn order_by(scores: &[f32]) -> Vec<u32> {
    let mut order: Vec<u32> = (0..scores.len() as u32)
        .filter(|&i| scores[i as usize] > 0.0)
        .collect();
    order.sort_by(|&a, &b| {
        scores[b as usize]
            .total_cmp(&scores[a as usize])
            .then(a.cmp(&b))
    });
    order
}

impl ModelSet {
    /// Fits every model and the pipeline's ranker; `catalog` is the whole catalog (for the content
    /// model and the item table), in any order.
    pub fn fit(
        snapshot: &Snapshot,
        catalog: &[Item],
        config: &TrainConfig,
        serve: &ServeConfig,
        trained_at: i64,
    ) -> Result<ModelSet, EngineError> {
        let placement = serve
            .placements
            .get(&serve.default_placement)
            .ok_or_else(|| {
                EngineError::Artifact("serve.default_placement is not configured".into())
            })?;
        let ranker = fit_ranker(snapshot, catalog, config, serve, placement)?;
        let mut models = Self::fit_models(snapshot, catalog, config, trained_at)?;
        models.ranker = ranker;
        Ok(models)
    }

    /// Fits the retrieval models (everything but the ranker).
    pub fn fit_models(
        snapshot: &Snapshot,
        catalog: &[Item],
        config: &TrainConfig,
        trained_at: i64,
    ) -> Result<ModelSet, EngineError> {
        let matrix = snapshot.matrix();
        let timed = snapshot.timed();
        let n_items = snapshot.items.len();
        let day = 86_400.0;
        let popularity = Popularity::fit(
            n_items,
            &timed,
            snapshot.reference_time,
            config.popularity_half_life_days * day,
        );
        let trending = Trending::fit(
            n_items,
            &timed,
            snapshot.reference_time,
            (config.trending_window_hours * 3600.0) as i64,
            (config.trending_baseline_days * day) as i64,
        );
        let knn = ItemKnn::fit(
            &matrix.user_items,
            ItemKnnConfig {
                neighbours: config.knn_neighbours,
                shrinkage: config.knn_shrinkage,
                ..ItemKnnConfig::default()
            },
        );
        let main = match &config.model {
            None | Some(cairn_models::ModelSpec::ItemKnn(_)) => None,
            Some(spec) => Some(spec.fit_model(&matrix).map_err(|e| {
                EngineError::Artifact(format!("fitting train.model `{}`: {e}", spec.name()))
            })?),
        };
        let (first_seen, interactions) = snapshot.item_stats();
        let table = ItemTable::build(
            &snapshot.items,
            &first_seen,
            &interactions,
            &popularity.scores,
            catalog,
        );
        let content = ContentIndex::fit(&table, catalog)?;
        let ann = match main.as_ref() {
            Some(model) => match item_vectors(model) {
                Some((vectors, dim)) => {
                    let bias = match model {
                        FittedModel::Bpr(b) => Some(b.item_bias.as_slice()),
                        _ => None,
                    };
                    ItemIndex::build(vectors, dim, bias, &config.ann)?
                }
                None => None,
            },
            None => None,
        };
        Ok(ModelSet {
            version: format!("{trained_at}-{}", snapshot.last_seq),
            trained_at,
            last_seq: snapshot.last_seq,
            reference_time: snapshot.reference_time,
            n_users: matrix.n_users(),
            n_interactions: matrix.user_items.nnz(),
            popular_order: order_by(&popularity.scores),
            trending_order: order_by(&trending.scores),
            items: snapshot.items.clone(),
            popularity,
            trending,
            knn,
            main,
            table,
            content,
            ranker: None,
            ann,
        })
    }

    /// Writes `dir/model-<version>.cairn` atomically (temp file, fsync, rename) and points `LATEST` at it.
    pub fn save(&self, dir: &Path) -> Result<PathBuf, EngineError> {
        let io =
            |e: std::io::Error| EngineError::Artifact(format!("writing to {}: {e}", dir.display()));
        fs::create_dir_all(dir).map_err(io)?;
        let name = format!("model-{}.cairn", self.version);
        let path = dir.join(&name);
        let body = postcard::to_allocvec(self).map_err(|e| EngineError::Artifact(e.to_string()))?;
        write_atomically(&path, |f| {
            f.write_all(MAGIC)?;
            f.write_all(&FORMAT_VERSION.to_le_bytes())?;
            f.write_all(&body)
        })
        .map_err(io)?;
        write_atomically(&dir.join(LATEST), |f| f.write_all(name.as_bytes())).map_err(io)?;
        Ok(path)
    }

    pub fn load(path: &Path) -> Result<ModelSet, EngineError> {
        let err = |m: String| EngineError::Artifact(format!("{}: {m}", path.display()));
        let mut bytes = Vec::new();
        File::open(path)
            .and_then(|mut f| f.read_to_end(&mut bytes))
            .map_err(|e| err(e.to_string()))?;
        if bytes.len() < 12 || &bytes[..8] != MAGIC {
            return Err(err("not a Cairn model file".into()));
        }
        let version = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
        if version != FORMAT_VERSION {
            return Err(err(format!(
                "model format {version} is not the supported {FORMAT_VERSION}; retrain with `cairn train`"
            )));
        }
        postcard::from_bytes(&bytes[12..]).map_err(|e| err(format!("corrupt: {e}")))
    }

    /// The model `LATEST` points at in `dir`, if any.
    pub fn load_latest(dir: &Path) -> Result<Option<ModelSet>, EngineError> {
        let pointer = dir.join(LATEST);
        let name = match fs::read_to_string(&pointer) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(EngineError::Artifact(format!("{}: {e}", pointer.display()))),
        };
        Self::load(&dir.join(name.trim())).map(Some)
    }

    /// Deletes all but the newest `keep` model files other than `current`.
    pub fn prune(dir: &Path, keep: usize, current: &Path) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        let mut models: Vec<(std::time::SystemTime, PathBuf)> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "cairn") && p != current)
            .filter_map(|p| Some((p.metadata().ok()?.modified().ok()?, p)))
            .collect();
        models.sort();
        let excess = models.len().saturating_sub(keep.saturating_sub(1));
        for (_, p) in models.into_iter().take(excess) {
            let _ = fs::remove_file(p);
        }
    }
}

fn write_atomically(
    path: &Path,
    write: impl FnOnce(&mut File) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = File::create(&tmp)?;
    write(&mut f)?;
    f.sync_all()?;
    fs::rename(&tmp, path)?;
    if let Some(parent) = path.parent() {
        File::open(parent)?.sync_all()?;
    }
    Ok(())
}
