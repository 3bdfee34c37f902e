//! `[reduce.best]`: a strategy map. For every world (a combination of the other
//! axes' values) the value of the choice axis that maximizes (or minimizes) the
//! objective, ties going to the first in axis order; per group, how many worlds
//! choose each value and the mean of every reduced output at the chosen value and
//! at the reference value.

use super::stats::MeanAcc;

/// The strategy map's state in one group.
#[derive(Clone, Debug, PartialEq)]
pub struct BestState {
    pub worlds: u64,
    /// Worlds choosing each value of the choice axis.
    pub choices: Vec<u64>,
    /// Per reduced output: its values at the chosen value of each world.
    pub at_best: Vec<MeanAcc>,
    /// Per reduced output: its values at the reference value of each world.
    pub at_ref: Vec<MeanAcc>,
}

impl BestState {
    pub fn new(values: usize, outputs: usize) -> BestState {
        BestState {
            worlds: 0,
            choices: vec![0; values],
            at_best: vec![MeanAcc::default(); outputs],
            at_ref: vec![MeanAcc::default(); outputs],
        }
    }

    pub fn merge(&mut self, o: &BestState) {
        self.worlds += o.worlds;
        for (a, b) in self.choices.iter_mut().zip(&o.choices) {
            *a += b;
        }
        for (a, b) in self.at_best.iter_mut().zip(&o.at_best) {
            a.merge(b);
        }
        for (a, b) in self.at_ref.iter_mut().zip(&o.at_ref) {
            a.merge(b);
        }
    }

    /// The share of worlds choosing value `k` (None without worlds).
    pub fn share(&self, k: usize) -> Option<f64> {
        (self.worlds > 0).then(|| self.choices[k] as f64 / self.worlds as f64)
    }
}

/// The chosen index among a world's objective values: the first largest (or
/// smallest) that is a number; the first value when none is.
#[inline]
pub fn choose(objective: impl Iterator<Item = f64>, maximize: bool) -> usize {
    let mut best: Option<(usize, f64)> = None;
    for (k, v) in objective.enumerate() {
        if v.is_nan() {
            continue;
        }
        let better = match best {
            None => true,
            Some((_, b)) => {
                if maximize {
                    v > b
                } else {
                    v < b
                }
            }
        };
        if better {
            best = Some((k, v));
        }
    }
    best.map_or(0, |b| b.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ties_go_to_the_first_and_nan_is_never_chosen() {
        assert_eq!(choose([1.0, 3.0, 3.0, 2.0].into_iter(), true), 1);
        assert_eq!(choose([1.0, 3.0, 0.5, 0.5].into_iter(), false), 2);
        assert_eq!(choose([f64::NAN, -1.0, f64::NAN].into_iter(), true), 1);
        assert_eq!(choose([f64::NAN, f64::NAN].into_iter(), true), 0);
    }
}
