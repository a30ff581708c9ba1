//! The sparse user × item interaction matrix that every collaborative model trains on.

use serde::{Deserialize, Serialize};

use crate::id_map::IdMap;

/// One aggregated interaction: (row, column, value).
pub type Triplet = (u32, u32, f32);

/// Compressed sparse rows with f32 values. Column indices within a row are sorted and unique.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CsrMatrix {
    pub n_rows: usize,
    pub n_cols: usize,
    /// `indptr[r]..indptr[r + 1]` is row r's range in `indices` and `values`.
    pub indptr: Vec<usize>,
    pub indices: Vec<u32>,
    pub values: Vec<f32>,
}

impl CsrMatrix {
    /// Builds from triplets in any order; duplicates are summed.
    pub fn from_triplets(n_rows: usize, n_cols: usize, mut triplets: Vec<Triplet>) -> Self {
        triplets.sort_unstable_by_key(|&(r, c, _)| (r, c));
        let mut indptr = vec![0usize; n_rows + 1];
        let mut indices = Vec::with_capacity(triplets.len());
        let mut values: Vec<f32> = Vec::with_capacity(triplets.len());
        let mut last: Option<(u32, u32)> = None;
        for (r, c, v) in triplets {
            assert!(
                (r as usize) < n_rows && (c as usize) < n_cols,
                "triplet out of bounds"
            );
            if last == Some((r, c)) {
                *values.last_mut().expect("a previous value") += v;
                continue;
            }
            last = Some((r, c));
            indptr[r as usize + 1] += 1;
            indices.push(c);
            values.push(v);
        }
        for r in 0..n_rows {
            indptr[r + 1] += indptr[r];
        }
        CsrMatrix {
            n_rows,
            n_cols,
            indptr,
            indices,
            values,
        }
    }

    pub fn nnz(&self) -> usize {
        self.indices.len()
    }

    pub fn row(&self, r: usize) -> (&[u32], &[f32]) {
        let range = self.indptr[r]..self.indptr[r + 1];
        (&self.indices[range.clone()], &self.values[range])
    }

    pub fn row_len(&self, r: usize) -> usize {
        self.indptr[r + 1] - self.indptr[r]
    }

    /// The transpose, in O(nnz).
    pub fn transpose(&self) -> CsrMatrix {
        let mut counts = vec![0usize; self.n_cols + 1];
        for &c in &self.indices {
            counts[c as usize + 1] += 1;
        }
        for c in 0..self.n_cols {
            counts[c + 1] += counts[c];
        }
        let indptr = counts.clone();
        let mut next = counts;
        let mut indices = vec![0u32; self.nnz()];
        let mut values = vec![0f32; self.nnz()];
        for r in 0..self.n_rows {
            let (cols, vals) = self.row(r);
            for (&c, &v) in cols.iter().zip(vals) {
                let at = next[c as usize];
                indices[at] = r as u32;
                values[at] = v;
                next[c as usize] += 1;
            }
        }
        CsrMatrix {
            n_rows: self.n_cols,
            n_cols: self.n_rows,
            indptr,
            indices,
            values,
        }
    }

    /// A copy with every stored value replaced by `f(value)`.
    pub fn map_values(&self, f: impl Fn(f32) -> f32) -> CsrMatrix {
        CsrMatrix {
            values: self.values.iter().map(|&v| f(v)).collect(),
            ..self.clone()
        }
    }
}

/// Interactions with the id maps that give rows and columns their meaning.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct InteractionMatrix {
    pub users: IdMap,
    pub items: IdMap,
    /// users × items, values are aggregated positive strengths.
    pub user_items: CsrMatrix,
}

impl InteractionMatrix {
    /// Builds from `(user, item, strength)` rows; strengths of a repeated pair are summed and pairs whose
    /// total is not positive are dropped (a dislike cancels a view).
    pub fn from_rows<'a>(rows: impl IntoIterator<Item = (&'a str, &'a str, f32)>) -> Self {
        let mut users = IdMap::new();
        let mut items = IdMap::new();
        let mut triplets = Vec::new();
        for (u, i, v) in rows {
            triplets.push((users.intern(u), items.intern(i), v));
        }
        Self::from_triplets(users, items, triplets)
    }

    pub fn from_triplets(users: IdMap, items: IdMap, triplets: Vec<Triplet>) -> Self {
        let summed = CsrMatrix::from_triplets(users.len(), items.len(), triplets);
        let positive: Vec<Triplet> = (0..summed.n_rows)
            .flat_map(|r| {
                let (cols, vals) = summed.row(r);
                cols.iter()
                    .zip(vals)
                    .filter(|(_, &v)| v > 0.0)
                    .map(move |(&c, &v)| (r as u32, c, v))
                    .collect::<Vec<_>>()
            })
            .collect();
        let user_items = CsrMatrix::from_triplets(users.len(), items.len(), positive);
        InteractionMatrix {
            users,
            items,
            user_items,
        }
    }

    pub fn n_users(&self) -> usize {
        self.users.len()
    }

    pub fn n_items(&self) -> usize {
        self.items.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn duplicates_sum_and_non_positive_pairs_drop() {
        let m = InteractionMatrix::from_rows([
            ("u1", "a", 1.0),
            ("u1", "a", 2.0),
            ("u1", "b", 1.0),
            ("u1", "b", -4.0),
            ("u2", "b", 1.0),
        ]);
        assert_eq!(m.n_users(), 2);
        assert_eq!(m.n_items(), 2);
        let (cols, vals) = m.user_items.row(0);
        assert_eq!(cols, &[0]);
        assert_eq!(vals, &[3.0]);
        assert_eq!(m.user_items.row(1).0, &[1]);
    }

    proptest! {
        #[test]
        fn transpose_twice_is_identity(rows in prop::collection::vec((0u32..20, 0u32..30, 0.1f32..5.0), 0..200)) {
            let m = CsrMatrix::from_triplets(20, 30, rows);
            let t = m.transpose();
            prop_assert_eq!(t.nnz(), m.nnz());
            prop_assert_eq!(t.transpose(), m.clone());
            for r in 0..m.n_rows {
                let (cols, _) = m.row(r);
                prop_assert!(cols.windows(2).all(|w| w[0] < w[1]));
            }
        }
    }
}
