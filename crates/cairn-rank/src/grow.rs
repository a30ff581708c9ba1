//! Leaf-wise (best-first) growth of one regression tree on binned features.
//!
//! Each leaf keeps a gradient histogram per feature; the smaller child of a split is histogrammed
//! from its rows and the larger one is the parent's histogram minus the smaller's. Histograms are
//! built in parallel over features; within a feature the sum runs in row order, so the result does
//! not depend on the number of threads.

use rayon::prelude::*;

use crate::binning::{BinnedMatrix, FeatureBins};
use crate::forest::{LocalTree, Node};
use crate::lambda::GradHess;

/// Below this many (row, feature) updates a histogram is built on the calling thread.
const PARALLEL_HISTOGRAM_WORK: usize = 64 * 1024;
/// A split must reduce the loss by more than this to be taken.
const MIN_SPLIT_GAIN: f64 = 1e-12;

#[inline(always)]
fn accumulate<'g>(hist: &mut [BinStat], rows: impl Iterator<Item = (u8, &'g GradHess)>) {
    hist.fill(BinStat::default());
    for (bin, gh) in rows {
        let s = &mut hist[bin as usize];
        s.grad += gh.grad as f64;
        s.hess += gh.hess as f64;
        s.count += 1;
    }
}

pub(crate) struct TreeParams {
    pub max_leaves: usize,
    pub min_data_in_leaf: usize,
    pub min_sum_hessian: f64,
    pub l2: f64,
    pub learning_rate: f64,
}

#[derive(Clone, Copy, Default, Debug, PartialEq)]
struct Totals {
    grad: f64,
    hess: f64,
    count: usize,
}

impl Totals {
    fn add(self, other: Totals) -> Totals {
        Totals {
            grad: self.grad + other.grad,
            hess: self.hess + other.hess,
            count: self.count + other.count,
        }
    }

    fn sub(self, other: Totals) -> Totals {
        Totals {
            grad: self.grad - other.grad,
            hess: self.hess - other.hess,
            count: self.count - other.count,
        }
    }
}

#[derive(Clone, Copy, Default)]
struct BinStat {
    grad: f64,
    hess: f64,
    count: u32,
}

impl BinStat {
    fn totals(self) -> Totals {
        Totals {
            grad: self.grad,
            hess: self.hess,
            count: self.count as usize,
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Split {
    gain: f64,
    feature: usize,
    /// Present-value bins `1..=bin` go left.
    bin: usize,
    missing_left: bool,
    left: Totals,
    right: Totals,
}

struct Leaf {
    /// Range of `TreeLearner::rows` holding this leaf's rows.
    start: usize,
    end: usize,
    totals: Totals,
    hist: Option<Vec<BinStat>>,
    best: Option<Split>,
    /// Node and side whose child reference points at this leaf; `None` for the root.
    parent: Option<(usize, bool)>,
}

/// What one tree did to the training rows: leaf `i` holds `rows[ranges[i].0..ranges[i].1]`.
pub(crate) struct GrownTree {
    pub tree: LocalTree,
    pub leaf_ranges: Vec<(usize, usize)>,
}

pub(crate) struct TreeLearner<'a> {
    matrix: &'a BinnedMatrix,
    bins: &'a [FeatureBins],
    hist_offsets: Vec<usize>,
    pub rows: Vec<u32>,
    right_scratch: Vec<u32>,
    ordered: Vec<GradHess>,
    spare_hists: Vec<Vec<BinStat>>,
}

impl<'a> TreeLearner<'a> {
    pub fn new(matrix: &'a BinnedMatrix, bins: &'a [FeatureBins]) -> Self {
        let mut hist_offsets = Vec::with_capacity(bins.len() + 1);
        let mut at = 0;
        hist_offsets.push(0);
        for b in bins {
            at += b.n_bins();
            hist_offsets.push(at);
        }
        Self {
            matrix,
            bins,
            hist_offsets,
            rows: (0..matrix.n_rows as u32).collect(),
            right_scratch: Vec::new(),
            ordered: Vec::new(),
            spare_hists: Vec::new(),
        }
    }

    fn take_hist(&mut self) -> Vec<BinStat> {
        let len = *self.hist_offsets.last().unwrap_or(&0);
        self.spare_hists
            .pop()
            .unwrap_or_else(|| vec![BinStat::default(); len])
    }

    /// Histogram of rows `start..end` for the `features` allowed in this tree.
    fn build_hist(
        &mut self,
        start: usize,
        end: usize,
        grads: &[GradHess],
        features: &[usize],
    ) -> Vec<BinStat> {
        let mut hist = self.take_hist();
        let whole = start == 0 && end == self.matrix.n_rows;
        if !whole {
            // Gathering gradients once makes the per-feature loops read them sequentially.
            self.ordered.clear();
            self.ordered
                .extend(self.rows[start..end].iter().map(|&r| grads[r as usize]));
        }
        let rows = &self.rows[start..end];
        let ordered = if whole { grads } else { &self.ordered[..] };
        let matrix = self.matrix;

        let mut slices: Vec<(usize, &mut [BinStat])> = Vec::with_capacity(features.len());
        let mut rest = &mut hist[..];
        let mut consumed = 0;
        let mut wanted = features.iter().copied().peekable();
        for f in 0..self.bins.len() {
            let (this, tail) = rest.split_at_mut(self.hist_offsets[f + 1] - consumed);
            consumed = self.hist_offsets[f + 1];
            rest = tail;
            if wanted.peek() == Some(&f) {
                wanted.next();
                slices.push((f, this));
            }
        }
        let fill = |(f, slot): (usize, &mut [BinStat])| {
            let column = matrix.column(f);
            if whole {
                accumulate(slot, column.iter().copied().zip(ordered));
            } else {
                accumulate(slot, rows.iter().map(|&r| column[r as usize]).zip(ordered));
            }
        };
        if rows.len() * features.len() >= PARALLEL_HISTOGRAM_WORK {
            slices.into_par_iter().for_each(fill);
        } else {
            slices.into_iter().for_each(fill);
        }
        hist
    }

    fn leaf_score(&self, t: Totals, params: &TreeParams) -> f64 {
        t.grad * t.grad / (t.hess + params.l2)
    }

    fn best_split(
        &self,
        hist: &[BinStat],
        totals: Totals,
        features: &[usize],
        params: &TreeParams,
    ) -> Option<Split> {
        let parent_score = self.leaf_score(totals, params);
        let admissible =
            |t: &Totals| t.count >= params.min_data_in_leaf && t.hess >= params.min_sum_hessian;
        let mut best: Option<Split> = None;
        for &f in features {
            let h = &hist[self.hist_offsets[f]..self.hist_offsets[f + 1]];
            if h.len() < 3 {
                continue;
            }
            let missing = h[0].totals();
            let mut left = Totals::default();
            for (bin, stat) in h.iter().enumerate().take(h.len() - 1).skip(1) {
                left = left.add(stat.totals());
                let sides = [false, true];
                for missing_left in sides {
                    if missing_left && missing.count == 0 {
                        continue;
                    }
                    let l = if missing_left {
                        left.add(missing)
                    } else {
                        left
                    };
                    let r = totals.sub(l);
                    if !admissible(&l) || !admissible(&r) {
                        continue;
                    }
                    let gain =
                        self.leaf_score(l, params) + self.leaf_score(r, params) - parent_score;
                    if gain > MIN_SPLIT_GAIN && best.is_none_or(|b| gain > b.gain) {
                        // With no missing rows here, send unseen missing values to the bigger side.
                        let missing_left =
                            missing_left || (missing.count == 0 && l.count > r.count);
                        best = Some(Split {
                            gain,
                            feature: f,
                            bin,
                            missing_left,
                            left: l,
                            right: r,
                        });
                    }
                }
            }
        }
        best
    }

    /// Moves the rows of `start..end` that go left to the front, keeping row order on both sides.
    fn partition(&mut self, start: usize, end: usize, split: &Split) -> usize {
        let column = self.matrix.column(split.feature);
        self.right_scratch.clear();
        let mut write = start;
        for read in start..end {
            let row = self.rows[read];
            let bin = column[row as usize] as usize;
            let go_left = if bin == 0 {
                split.missing_left
            } else {
                bin <= split.bin
            };
            if go_left {
                self.rows[write] = row;
                write += 1;
            } else {
                self.right_scratch.push(row);
            }
        }
        self.rows[write..end].copy_from_slice(&self.right_scratch);
        write
    }

    /// Grows one tree on `grads` using only `features` (sorted ascending).
    pub fn grow(
        &mut self,
        grads: &[GradHess],
        features: &[usize],
        params: &TreeParams,
    ) -> GrownTree {
        let n = self.matrix.n_rows;
        for (i, r) in self.rows.iter_mut().enumerate() {
            *r = i as u32;
        }
        let root_hist = self.build_hist(0, n, grads, features);
        let totals = match features.first() {
            Some(&f) => root_hist[self.hist_offsets[f]..self.hist_offsets[f + 1]]
                .iter()
                .fold(Totals::default(), |acc, s| acc.add(s.totals())),
            None => grads.iter().fold(Totals::default(), |acc, gh| Totals {
                grad: acc.grad + gh.grad as f64,
                hess: acc.hess + gh.hess as f64,
                count: acc.count + 1,
            }),
        };
        let best = self.best_split(&root_hist, totals, features, params);
        let mut leaves = vec![Leaf {
            start: 0,
            end: n,
            totals,
            hist: Some(root_hist),
            best,
            parent: None,
        }];
        let mut nodes: Vec<Node> = Vec::new();
        let mut split_gains = Vec::new();

        while leaves.len() < params.max_leaves {
            let Some(chosen) = leaves
                .iter()
                .enumerate()
                .filter_map(|(i, l)| l.best.map(|b| (i, b.gain)))
                .fold(None, |acc: Option<(usize, f64)>, (i, g)| match acc {
                    Some((_, best)) if best >= g => acc,
                    _ => Some((i, g)),
                })
                .map(|(i, _)| i)
            else {
                break;
            };
            let split = leaves[chosen].best.take().expect("chosen leaf has a split");
            let (start, end) = (leaves[chosen].start, leaves[chosen].end);
            let mid = self.partition(start, end, &split);
            debug_assert_eq!(mid - start, split.left.count);

            let node_index = nodes.len();
            let left_leaf = chosen;
            let right_leaf = leaves.len();
            nodes.push(Node::new(
                split.feature,
                self.bins[split.feature].threshold(split.bin),
                split.missing_left,
                !(left_leaf as i32),
                !(right_leaf as i32),
            ));
            split_gains.push(split.gain as f32);
            if let Some((parent, is_left)) = leaves[chosen].parent {
                let child = if is_left {
                    &mut nodes[parent].left
                } else {
                    &mut nodes[parent].right
                };
                *child = node_index as i32;
            }

            let more_splits = leaves.len() + 1 < params.max_leaves;
            let can_split = |t: &Totals| more_splits && t.count >= 2 * params.min_data_in_leaf;
            let (need_left, need_right) = (can_split(&split.left), can_split(&split.right));
            let parent_hist = leaves[chosen].hist.take();
            let (left_hist, right_hist) = match parent_hist {
                Some(mut parent_hist) if need_left || need_right => {
                    let left_smaller = split.left.count <= split.right.count;
                    let (s_start, s_end) = if left_smaller {
                        (start, mid)
                    } else {
                        (mid, end)
                    };
                    let small = self.build_hist(s_start, s_end, grads, features);
                    let larger_needed = if left_smaller { need_right } else { need_left };
                    let large = if larger_needed {
                        // Only the features of this tree hold live sums; the rest is stale.
                        for &f in features {
                            let range = self.hist_offsets[f]..self.hist_offsets[f + 1];
                            for (p, s) in parent_hist[range.clone()].iter_mut().zip(&small[range]) {
                                p.grad -= s.grad;
                                p.hess -= s.hess;
                                p.count -= s.count;
                            }
                        }
                        Some(parent_hist)
                    } else {
                        self.spare_hists.push(parent_hist);
                        None
                    };
                    if left_smaller {
                        (Some(small), large)
                    } else {
                        (large, Some(small))
                    }
                }
                Some(parent_hist) => {
                    self.spare_hists.push(parent_hist);
                    (None, None)
                }
                None => (None, None),
            };
            let best_of = |hist: &Option<Vec<BinStat>>, totals: Totals, need: bool| match hist {
                Some(h) if need => self.best_split(h, totals, features, params),
                _ => None,
            };
            let left_best = best_of(&left_hist, split.left, need_left);
            let right_best = best_of(&right_hist, split.right, need_right);
            leaves[chosen] = Leaf {
                start,
                end: mid,
                totals: split.left,
                hist: left_hist,
                best: left_best,
                parent: Some((node_index, true)),
            };
            leaves.push(Leaf {
                start: mid,
                end,
                totals: split.right,
                hist: right_hist,
                best: right_best,
                parent: Some((node_index, false)),
            });
        }

        let leaf_values = leaves
            .iter()
            .map(|l| {
                let denominator = l.totals.hess + params.l2;
                if denominator > 0.0 {
                    (-l.totals.grad / denominator * params.learning_rate) as f32
                } else {
                    0.0
                }
            })
            .collect();
        let leaf_ranges = leaves.iter().map(|l| (l.start, l.end)).collect();
        for leaf in leaves {
            if let Some(h) = leaf.hist {
                self.spare_hists.push(h);
            }
        }
        GrownTree {
            tree: LocalTree {
                root: if nodes.is_empty() { !0 } else { 0 },
                nodes,
                split_gains,
                leaf_values,
            },
            leaf_ranges,
        }
    }
}
