//! The fitted ensemble as flat arrays, built for fast prediction.
//!
//! All trees share one node array and one leaf array. A child reference `c` is a node index when
//! `c >= 0` and the leaf `!c` when negative; a tree whose root is a leaf has a negative root.

use serde::{Deserialize, Serialize};

const MISSING_LEFT: u32 = 1 << 31;

/// One split: rows with `value <= threshold` go left, NaN goes where `missing_left` says.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Node {
    /// Feature index; the top bit says whether missing values go left (keeps the node at 16 bytes).
    feature_and_missing: u32,
    threshold: f32,
    pub(crate) left: i32,
    pub(crate) right: i32,
}

impl Node {
    pub fn new(feature: usize, threshold: f32, missing_left: bool, left: i32, right: i32) -> Self {
        let flag = if missing_left { MISSING_LEFT } else { 0 };
        Self {
            feature_and_missing: feature as u32 | flag,
            threshold,
            left,
            right,
        }
    }

    #[inline]
    pub fn feature(&self) -> usize {
        (self.feature_and_missing & !MISSING_LEFT) as usize
    }

    #[inline]
    pub fn threshold(&self) -> f32 {
        self.threshold
    }

    #[inline]
    pub fn missing_left(&self) -> bool {
        self.feature_and_missing & MISSING_LEFT != 0
    }

    #[inline]
    fn next(&self, value: f32) -> i32 {
        let go_left = if value.is_nan() {
            self.feature_and_missing & MISSING_LEFT != 0
        } else {
            value <= self.threshold
        };
        if go_left {
            self.left
        } else {
            self.right
        }
    }

    fn offset(mut self, nodes: i32, leaves: i32) -> Self {
        self.left = offset_child(self.left, nodes, leaves);
        self.right = offset_child(self.right, nodes, leaves);
        self
    }
}

fn offset_child(child: i32, nodes: i32, leaves: i32) -> i32 {
    if child >= 0 {
        child + nodes
    } else {
        !(!child + leaves)
    }
}

/// A tree as the learner produced it, with tree-local node and leaf indices.
pub(crate) struct LocalTree {
    pub nodes: Vec<Node>,
    pub split_gains: Vec<f32>,
    pub leaf_values: Vec<f32>,
    pub root: i32,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Forest {
    nodes: Vec<Node>,
    /// Loss reduction of each node's split, parallel to `nodes`; feeds feature importance.
    split_gains: Vec<f32>,
    leaf_values: Vec<f32>,
    roots: Vec<i32>,
    /// Where each tree's nodes and leaves start, so that early stopping can cut trees off.
    node_starts: Vec<u32>,
    leaf_starts: Vec<u32>,
}

impl Forest {
    pub fn n_trees(&self) -> usize {
        self.roots.len()
    }

    pub fn push(&mut self, tree: LocalTree) {
        let (nodes, leaves) = (self.nodes.len() as i32, self.leaf_values.len() as i32);
        self.node_starts.push(nodes as u32);
        self.leaf_starts.push(leaves as u32);
        self.roots.push(offset_child(tree.root, nodes, leaves));
        self.nodes
            .extend(tree.nodes.into_iter().map(|n| n.offset(nodes, leaves)));
        self.split_gains.extend(tree.split_gains);
        self.leaf_values.extend(tree.leaf_values);
    }

    /// Keeps the first `n_trees` trees.
    pub fn truncate(&mut self, n_trees: usize) {
        if n_trees >= self.n_trees() {
            return;
        }
        let (nodes, leaves) = (
            self.node_starts[n_trees] as usize,
            self.leaf_starts[n_trees] as usize,
        );
        self.nodes.truncate(nodes);
        self.split_gains.truncate(nodes);
        self.leaf_values.truncate(leaves);
        self.roots.truncate(n_trees);
        self.node_starts.truncate(n_trees);
        self.leaf_starts.truncate(n_trees);
    }

    /// Tree `tree`'s root reference (node when >= 0, leaf `!root` otherwise).
    pub fn root(&self, tree: usize) -> i32 {
        self.roots[tree]
    }

    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    pub fn leaf_values(&self) -> &[f32] {
        &self.leaf_values
    }

    /// Output of one tree; features past the end of `row` read as missing.
    #[inline]
    pub fn predict_tree(&self, tree: usize, row: &[f32]) -> f32 {
        let mut at = self.roots[tree];
        while at >= 0 {
            let node = &self.nodes[at as usize];
            at = node.next(row.get(node.feature()).copied().unwrap_or(f32::NAN));
        }
        self.leaf_values[!at as usize]
    }

    #[inline]
    pub fn predict(&self, row: &[f32]) -> f32 {
        (0..self.roots.len()).fold(0.0, |sum, t| sum + self.predict_tree(t, row))
    }

    pub fn feature_importance(&self, n_features: usize) -> Vec<f32> {
        let mut gains = vec![0f64; n_features];
        for (node, &gain) in self.nodes.iter().zip(&self.split_gains) {
            if let Some(slot) = gains.get_mut(node.feature()) {
                *slot += gain as f64;
            }
        }
        gains.into_iter().map(|g| g as f32).collect()
    }

    /// Largest feature index any node reads, for checking a deserialized model.
    pub fn max_feature(&self) -> Option<usize> {
        self.nodes.iter().map(Node::feature).max()
    }

    /// Every child and root reference points inside the arrays and only forward, so prediction on
    /// a deserialized forest can neither index out of bounds nor loop.
    pub fn is_well_formed(&self) -> bool {
        let valid = |c: i32, from: Option<usize>| {
            if c >= 0 {
                (c as usize) < self.nodes.len() && from.is_none_or(|f| c as usize > f)
            } else {
                (!c as usize) < self.leaf_values.len()
            }
        };
        self.split_gains.len() == self.nodes.len()
            && self.node_starts.len() == self.roots.len()
            && self.leaf_starts.len() == self.roots.len()
            && self.roots.iter().all(|&r| valid(r, None))
            && self
                .nodes
                .iter()
                .enumerate()
                .all(|(i, n)| valid(n.left, Some(i)) && valid(n.right, Some(i)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// f0 <= 0.5 ? (f1 <= 2 ? 1 : 2) : 3, NaN in f0 goes right, NaN in f1 goes left.
    fn small_tree() -> LocalTree {
        LocalTree {
            nodes: vec![
                Node::new(0, 0.5, false, 1, !2),
                Node::new(1, 2.0, true, !0, !1),
            ],
            split_gains: vec![4.0, 1.5],
            leaf_values: vec![1.0, 2.0, 3.0],
            root: 0,
        }
    }

    #[test]
    fn routes_values_and_missing() {
        let mut forest = Forest::default();
        forest.push(small_tree());
        assert_eq!(forest.predict(&[0.1, 1.0]), 1.0);
        assert_eq!(forest.predict(&[0.5, 2.5]), 2.0);
        assert_eq!(forest.predict(&[0.7, 0.0]), 3.0);
        assert_eq!(forest.predict(&[f32::NAN, 0.0]), 3.0);
        assert_eq!(forest.predict(&[0.0, f32::NAN]), 1.0);
        assert_eq!(forest.predict(&[0.0]), 1.0, "short rows read missing");
        assert!(forest.is_well_formed());
    }

    #[test]
    fn offsets_sum_trees_and_truncate() {
        let mut forest = Forest::default();
        forest.push(small_tree());
        forest.push(LocalTree {
            nodes: vec![],
            split_gains: vec![],
            leaf_values: vec![10.0],
            root: !0,
        });
        forest.push(small_tree());
        assert_eq!(forest.n_trees(), 3);
        assert_eq!(forest.predict(&[0.7, 0.0]), 16.0);
        assert_eq!(forest.feature_importance(3), vec![8.0, 3.0, 0.0]);
        assert!(forest.is_well_formed());
        forest.truncate(2);
        assert_eq!(forest.predict(&[0.7, 0.0]), 13.0);
        assert_eq!(forest.feature_importance(2), vec![4.0, 1.5]);
        assert!(forest.is_well_formed());
    }

    #[test]
    fn malformed_references_are_detected() {
        let mut forest = Forest::default();
        let mut tree = small_tree();
        tree.nodes[1].left = 0; // points back to the root: would loop forever
        forest.push(tree);
        assert!(!forest.is_well_formed());
    }
}
