//! The forest re-laid for scoring many rows at once: each tree is walked by a block of rows in
//! lockstep, a fixed number of branch-free steps (the tree's depth), so that the rows' walks
//! overlap in the pipeline instead of each split costing a mispredicted branch.
//!
//! A leaf becomes a node whose both children are itself, so a row that reaches a leaf early stays
//! there for the remaining steps. Per row the tree outputs are added in tree order starting from
//! 0.0, exactly as [`Forest::predict`] adds them, so predictions are bit-identical.

use std::sync::OnceLock;

use crate::forest::Forest;

/// Rows walked together; enough independent loads to hide a node fetch's latency.
const BLOCK: usize = 16;
const MISSING_LEFT: u32 = 1 << 31;

#[derive(Clone, Copy, Debug)]
struct StepNode {
    /// Feature index; the top bit says whether missing values go left.
    feature_and_missing: u32,
    threshold: f32,
    /// Left, right.
    children: [u32; 2],
}

impl StepNode {
    #[inline(always)]
    fn feature(&self) -> usize {
        (self.feature_and_missing & !MISSING_LEFT) as usize
    }

    /// The same routing as the forest's node, without a branch.
    #[inline(always)]
    fn next<const MAY_BE_MISSING: bool>(&self, value: f32) -> u32 {
        let go_left = if MAY_BE_MISSING {
            let missing_left = self.feature_and_missing & MISSING_LEFT != 0;
            (value <= self.threshold) | (value.is_nan() & missing_left)
        } else {
            value <= self.threshold
        };
        self.children[usize::from(!go_left)]
    }
}

#[derive(Clone, Debug, Default)]
pub(crate) struct Lockstep {
    nodes: Vec<StepNode>,
    /// Output of the leaf at each node index (0 at splits).
    values: Vec<f32>,
    /// Per tree: root node and depth (steps until every row sits on a leaf).
    trees: Vec<(u32, u32)>,
    width: usize,
}

impl Lockstep {
    /// Lays out `forest` for rows of `width` features. A split on a feature at or past `width`
    /// always sees a missing value (as [`Forest::predict`] reads it), so it becomes a split that
    /// always sends rows the missing side.
    pub fn build(forest: &Forest, width: usize) -> Lockstep {
        let mut out = Lockstep {
            width,
            ..Lockstep::default()
        };
        for tree in 0..forest.n_trees() {
            let root = out.nodes.len() as u32;
            let depth = out.append(forest, forest.root(tree));
            out.trees.push((root, depth));
        }
        out
    }

    /// Appends the subtree at forest reference `at` (node when >= 0, leaf `!at` otherwise) and
    /// returns its depth. Forest trees are shallow (bounded by `max_leaves`), so recursion is safe.
    fn append(&mut self, forest: &Forest, at: i32) -> u32 {
        let me = self.nodes.len() as u32;
        if at < 0 {
            self.nodes.push(StepNode {
                feature_and_missing: 0,
                threshold: 0.0,
                children: [me, me],
            });
            self.values.push(forest.leaf_values()[!at as usize]);
            return 0;
        }
        let node = &forest.nodes()[at as usize];
        let (feature, threshold, missing_left) = if node.feature() < self.width {
            (node.feature() as u32, node.threshold(), node.missing_left())
        } else if node.missing_left() {
            // Always left: every present value is <= +inf and missing goes left.
            (0, f32::INFINITY, true)
        } else {
            // Always right: nothing compares <= NaN and missing goes right.
            (0, f32::NAN, false)
        };
        self.nodes.push(StepNode {
            feature_and_missing: feature | if missing_left { MISSING_LEFT } else { 0 },
            threshold,
            children: [0, 0],
        });
        self.values.push(0.0);
        let left = self.nodes.len() as u32;
        let left_depth = self.append(forest, node.left);
        let right = self.nodes.len() as u32;
        let right_depth = self.append(forest, node.right);
        self.nodes[me as usize].children = [left, right];
        1 + left_depth.max(right_depth)
    }

    /// Scores the first `out.len()` rows of `rows` (row-major, `width` features each); `rows`
    /// must hold at least that many complete rows.
    pub fn predict_rows(&self, rows: &[f32], out: &mut [f32]) {
        let width = self.width;
        debug_assert!(rows.len() >= out.len() * width);
        if width == 0 {
            // Without features no tree can split: every tree is one leaf.
            let sum = self
                .trees
                .iter()
                .fold(0.0, |s, &(root, _)| s + self.values[root as usize]);
            out.fill(sum);
            return;
        }
        for (block, scores) in rows.chunks(BLOCK * width).zip(out.chunks_mut(BLOCK)) {
            // Most blocks have no missing value; their splits need only the comparison.
            if block.iter().any(|v| v.is_nan()) {
                self.predict_block::<true>(block, scores);
            } else {
                self.predict_block::<false>(block, scores);
            }
        }
    }

    #[inline]
    fn predict_block<const MAY_BE_MISSING: bool>(&self, rows: &[f32], out: &mut [f32]) {
        let n = out.len();
        let width = self.width;
        let mut sums = [0f32; BLOCK];
        let mut at = [0u32; BLOCK];
        let mut base = [0usize; BLOCK];
        for (r, b) in base.iter_mut().enumerate().take(n) {
            *b = r * width;
        }
        for &(root, depth) in &self.trees {
            at[..n].fill(root);
            for _ in 0..depth {
                for r in 0..n {
                    let node = &self.nodes[at[r] as usize];
                    at[r] = node.next::<MAY_BE_MISSING>(rows[base[r] + node.feature()]);
                }
            }
            for r in 0..n {
                sums[r] += self.values[at[r] as usize];
            }
        }
        out.copy_from_slice(&sums[..n]);
    }
}

/// A [`Lockstep`] built on first use and never serialized (it is derived from the forest). Two
/// caches always compare equal, so a ranker's equality is its model's.
#[derive(Clone, Debug, Default)]
pub(crate) struct LockstepCache(OnceLock<Lockstep>);

impl LockstepCache {
    pub fn get_or_build(&self, forest: &Forest, width: usize) -> &Lockstep {
        self.0.get_or_init(|| Lockstep::build(forest, width))
    }
}

impl PartialEq for LockstepCache {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forest::{LocalTree, Node};
    use proptest::prelude::*;

    /// A random tree over `features` features (some splits may read past them), `leaves` leaves,
    /// grown by splitting a random leaf each time, as best-first growth does.
    fn random_tree(seed: &[u32], features: usize, leaves: usize) -> LocalTree {
        let mut pick = seed.iter().copied().cycle();
        let mut next = move |n: usize| pick.next().unwrap_or(0) as usize % n.max(1);
        // Children of each node; a leaf slot is (parent node, side) or the root.
        let mut nodes: Vec<Node> = Vec::new();
        let mut leaf_values = vec![next(1000) as f32 / 100.0 - 5.0];
        // Where each leaf is referenced from: None = root.
        let mut leaf_parent: Vec<Option<(usize, bool)>> = vec![None];
        let mut root = !0i32;
        while leaf_values.len() < leaves {
            let split = next(leaf_values.len());
            let node = nodes.len() as i32;
            let new_leaf = leaf_values.len() as i32;
            nodes.push(Node::new(
                next(features + 2),
                next(200) as f32 / 100.0 - 1.0,
                next(2) == 0,
                !(split as i32),
                !new_leaf,
            ));
            match leaf_parent[split] {
                None => root = node,
                Some((p, left)) => {
                    let n = &mut nodes[p];
                    if left {
                        n.left = node;
                    } else {
                        n.right = node;
                    }
                }
            }
            leaf_parent[split] = Some((node as usize, true));
            leaf_parent.push(Some((node as usize, false)));
            leaf_values.push(next(1000) as f32 / 100.0 - 5.0);
        }
        LocalTree {
            split_gains: vec![1.0; nodes.len()],
            nodes,
            leaf_values,
            root,
        }
    }

    fn value() -> impl Strategy<Value = f32> {
        prop_oneof![
            8 => -1.2f32..1.2,
            1 => Just(f32::NAN),
            1 => prop::sample::select(vec![-1.0f32, 0.0, 0.5, f32::INFINITY, f32::NEG_INFINITY]),
        ]
    }

    proptest! {
        #[test]
        fn lockstep_equals_the_tree_walk(
            seeds in prop::collection::vec(prop::collection::vec(any::<u32>(), 1..64), 1..12),
            leaves in 1usize..24,
            width in 1usize..6,
            n_rows in 0usize..70,
            values in prop::collection::vec(value(), 1..240),
            missing in any::<bool>(),
        ) {
            let mut forest = Forest::default();
            for seed in &seeds {
                forest.push(random_tree(seed, width, leaves));
            }
            prop_assert!(forest.is_well_formed());
            // Blocks without a missing value take a path of their own.
            let present = |v: &f32| missing || !v.is_nan();
            let rows: Vec<f32> = values
                .iter()
                .copied()
                .map(|v| if present(&v) { v } else { 0.25 })
                .cycle()
                .take(n_rows * width)
                .collect();
            let lockstep = Lockstep::build(&forest, width);
            let mut got = vec![0f32; rows.len() / width];
            lockstep.predict_rows(&rows, &mut got);
            for (row, g) in rows.chunks_exact(width).zip(&got) {
                prop_assert_eq!(forest.predict(row).to_bits(), g.to_bits());
            }
        }
    }

    #[test]
    fn depth_counts_the_longest_path() {
        let mut forest = Forest::default();
        forest.push(LocalTree {
            nodes: vec![
                Node::new(0, 0.5, false, 1, !2),
                Node::new(1, 2.0, true, !0, !1),
            ],
            split_gains: vec![1.0, 1.0],
            leaf_values: vec![1.0, 2.0, 3.0],
            root: 0,
        });
        forest.push(LocalTree {
            nodes: vec![],
            split_gains: vec![],
            leaf_values: vec![10.0],
            root: !0,
        });
        let l = Lockstep::build(&forest, 2);
        assert_eq!(l.trees.iter().map(|t| t.1).collect::<Vec<_>>(), [2, 0]);
        let mut out = [0f32; 3];
        l.predict_rows(&[0.1, 1.0, 0.7, 0.0, f32::NAN, f32::NAN], &mut out);
        assert_eq!(out, [11.0, 13.0, 13.0]);
        let no_features = Lockstep::build(&forest_of_leaf(4.0), 0);
        let mut out = [0f32; 2];
        no_features.predict_rows(&[], &mut out);
        assert_eq!(out, [4.0, 4.0]);
    }

    fn forest_of_leaf(value: f32) -> Forest {
        let mut forest = Forest::default();
        forest.push(LocalTree {
            nodes: vec![],
            split_gains: vec![],
            leaf_values: vec![value],
            root: !0,
        });
        forest
    }
}
