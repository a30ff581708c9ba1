//! Beyond-accuracy metrics: catalog coverage, intra-list diversity, novelty and popularity bias
//! (average recommendation popularity, Gini of exposure).

use cairn_core::CsrMatrix;

/// |union of the top-k of every list| / catalog size.
pub fn catalog_coverage<'a>(
    lists: impl IntoIterator<Item = &'a [u32]>,
    n_catalog: usize,
    k: usize,
) -> f64 {
    let mut seen = std::collections::HashSet::new();
    for list in lists {
        seen.extend(list.iter().take(k).copied());
    }
    if n_catalog == 0 {
        return 0.0;
    }
    seen.len() as f64 / n_catalog as f64
}

/// Mean over the list's items of −log2(max(c_i, 1) / n_users), with c_i the item's number of distinct
/// training users. `None` for an empty list.
pub fn novelty(list: &[u32], item_popularity: &[u32], n_users: usize) -> Option<f64> {
    if list.is_empty() || n_users == 0 {
        return None;
    }
    let n = n_users as f64;
    let total: f64 = list
        .iter()
        .map(|&i| -(f64::from(item_popularity[i as usize].max(1)) / n).log2())
        .sum();
    Some(total / list.len() as f64)
}

/// Average recommendation popularity (Abdollahpouri et al. 2019): mean over the list's items of their
/// number of distinct training users. `None` for an empty list.
pub fn average_popularity(list: &[u32], item_popularity: &[u32]) -> Option<f64> {
    (!list.is_empty()).then(|| {
        list.iter()
            .map(|&i| f64::from(item_popularity[i as usize]))
            .sum::<f64>()
            / list.len() as f64
    })
}

/// Gini coefficient of a non-negative distribution (0 = every item equally exposed, → 1 = all exposure
/// on one item): Σ_i (2i − n − 1) x_(i) / (n Σ x) over the values sorted ascending, i = 1..n.
pub fn gini(values: &[f64]) -> Option<f64> {
    let total: f64 = values.iter().sum();
    if values.is_empty() || total <= 0.0 {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(|a, b| a.total_cmp(b));
    let n = sorted.len() as f64;
    let weighted: f64 = sorted
        .iter()
        .enumerate()
        .map(|(i, x)| (2.0 * (i + 1) as f64 - n - 1.0) * x)
        .sum();
    Some(weighted / (n * total))
}

/// Item feature rows scaled to unit length, for cosine similarity.
#[derive(Debug, Clone)]
pub struct NormalizedFeatures {
    rows: CsrMatrix,
    inv_norm: Vec<f64>,
}

impl NormalizedFeatures {
    pub fn new(features: &CsrMatrix) -> Self {
        let inv_norm = (0..features.n_rows)
            .map(|r| {
                let norm: f64 = features
                    .row(r)
                    .1
                    .iter()
                    .map(|&v| f64::from(v) * f64::from(v))
                    .sum::<f64>()
                    .sqrt();
                if norm > 0.0 {
                    1.0 / norm
                } else {
                    0.0
                }
            })
            .collect();
        NormalizedFeatures {
            rows: features.clone(),
            inv_norm,
        }
    }

    /// Cosine of two items' feature vectors; 0 when either is all zeros.
    pub fn cosine(&self, a: u32, b: u32) -> f64 {
        let (ca, va) = self.rows.row(a as usize);
        let (cb, vb) = self.rows.row(b as usize);
        let (mut i, mut j, mut dot) = (0, 0, 0.0);
        while i < ca.len() && j < cb.len() {
            match ca[i].cmp(&cb[j]) {
                std::cmp::Ordering::Less => i += 1,
                std::cmp::Ordering::Greater => j += 1,
                std::cmp::Ordering::Equal => {
                    dot += f64::from(va[i]) * f64::from(vb[j]);
                    i += 1;
                    j += 1;
                }
            }
        }
        dot * self.inv_norm[a as usize] * self.inv_norm[b as usize]
    }
}

/// Mean over unordered pairs of the list's items of (1 − cosine). `None` for fewer than 2 items.
pub fn intra_list_diversity(list: &[u32], features: &NormalizedFeatures) -> Option<f64> {
    if list.len() < 2 {
        return None;
    }
    let mut sum = 0.0;
    let mut pairs = 0usize;
    for (x, &a) in list.iter().enumerate() {
        for &b in &list[x + 1..] {
            sum += 1.0 - features.cosine(a, b);
            pairs += 1;
        }
    }
    Some(sum / pairs as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_computed_values_from_metrics_py() {
        let lists: [&[u32]; 2] = [&[0, 1], &[1, 2]];
        assert!((catalog_coverage(lists, 10, 2) - 0.3).abs() < 1e-12);
        // ILD of [0,1,2] with g0=[1,0], g1=[1,1], g2=[0,1] = (3 - sqrt 2)/3
        let f = CsrMatrix::from_triplets(
            3,
            2,
            vec![(0, 0, 1.0), (1, 0, 1.0), (1, 1, 1.0), (2, 1, 1.0)],
        );
        let nf = NormalizedFeatures::new(&f);
        let ild = intra_list_diversity(&[0, 1, 2], &nf).unwrap();
        assert!((ild - (3.0 - 2f64.sqrt()) / 3.0).abs() < 1e-12);
        assert_eq!(intra_list_diversity(&[0], &nf), None);
        // Novelty with counts [50, 25, 1] of 100 users: [0,1] -> 1.5, [2] -> log2 100
        let pop = [50, 25, 1];
        assert!((novelty(&[0, 1], &pop, 100).unwrap() - 1.5).abs() < 1e-12);
        assert!((novelty(&[2], &pop, 100).unwrap() - 100f64.log2()).abs() < 1e-12);
        assert_eq!(average_popularity(&[0, 1], &pop), Some(37.5));
    }

    #[test]
    fn items_without_features_are_fully_dissimilar() {
        let f = CsrMatrix::from_triplets(2, 1, vec![(0, 0, 1.0)]);
        let nf = NormalizedFeatures::new(&f);
        assert_eq!(intra_list_diversity(&[0, 1], &nf), Some(1.0));
    }

    #[test]
    fn gini_of_equal_and_concentrated_exposure() {
        assert_eq!(gini(&[3.0, 3.0, 3.0]), Some(0.0));
        // one of four items gets everything: (2*4 - 4 - 1)/4 = 3/4
        assert_eq!(gini(&[0.0, 0.0, 0.0, 5.0]), Some(0.75));
        // [1, 2, 3]: (-2*1 + 0*2 + 2*3) / (3 * 6) = 4/18
        assert!((gini(&[2.0, 3.0, 1.0]).unwrap() - 4.0 / 18.0).abs() < 1e-12);
        assert_eq!(gini(&[0.0, 0.0]), None);
    }
}
