//! Non-finite output values (NaN or an infinity) that a run wrote or reduced: how
//! many per output column, and the first row holding one. The parameter ranges
//! (docs/model.md, "Parameters") are set so that none should occur; any that still
//! does is counted here, recorded in the checkpoint (so that `--resume` keeps the
//! count) and in the manifest (`nonfinite`: column -> count, with
//! `first_nonfinite_row`; absent when there are none, so that clean runs' manifests
//! are unchanged; `merge` adds the shards' up), and fails the run (exit status 1,
//! after its files are complete) unless `--allow-nonfinite` is given.
//!
//! An empty cell is not a non-finite value: a price is NaN when the firm offers no
//! product in the last month, and then its share is exactly 0 and it has exited
//! (a firm offers a product while it is alive or released). A NaN price beside a
//! share other than 0, or of a firm that never exited, is a non-finite value.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::outputs::{Column, Empty, Out};
use crate::model::{Outcome, outputs};

/// Non-finite values per column, and the first row (or reduction position) with one.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NonFinite {
    /// Column name -> how many rows hold a non-finite value in it.
    pub columns: BTreeMap<String, u64>,
    /// The first row holding one (None when there are none).
    pub first_row: Option<u64>,
}

impl NonFinite {
    pub fn is_empty(&self) -> bool {
        self.columns.is_empty()
    }

    /// Non-finite values in all columns together.
    pub fn total(&self) -> u64 {
        self.columns.values().sum()
    }

    /// Counts a non-finite value of `column` in `row`.
    pub fn hit(&mut self, row: u64, column: &str) {
        *self.columns.entry(column.to_string()).or_insert(0) += 1;
        self.first_row = Some(self.first_row.map_or(row, |r| r.min(row)));
    }

    /// Adds another count (of other rows: a later chunk, another shard).
    pub fn add(&mut self, other: &NonFinite) {
        for (c, n) in &other.columns {
            *self.columns.entry(c.clone()).or_insert(0) += n;
        }
        self.first_row = match (self.first_row, other.first_row) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }

    /// One line for stderr: `3 non-finite values (npv.open: 2, hhi: 1), the first in row 17`.
    pub fn summary(&self) -> String {
        let cols: Vec<String> = self.columns.iter().map(|(c, n)| format!("{c}: {n}")).collect();
        let n = self.total();
        let first = self.first_row.map_or(String::new(), |r| format!(", the first in row {r}"));
        format!("{n} non-finite value{} ({}){first}", if n == 1 { "" } else { "s" }, cols.join(", "))
    }

    /// The manifest's form: `None` when there are none.
    pub fn manifest(&self) -> (Option<BTreeMap<String, u64>>, Option<u64>) {
        if self.is_empty() { (None, None) } else { (Some(self.columns.clone()), self.first_row) }
    }

    /// Read back from a manifest's `nonfinite` and `first_nonfinite_row`.
    pub fn from_manifest(columns: Option<&BTreeMap<String, u64>>, first_row: Option<u64>) -> NonFinite {
        NonFinite { columns: columns.cloned().unwrap_or_default(), first_row: columns.and(first_row) }
    }
}

/// Whether column `c` of `o` holds a non-finite value (an empty cell does not).
#[inline]
pub fn is_nonfinite<F: Copy + Into<f64>>(o: &Outcome<F>, c: Column) -> bool {
    let v = o.get_f64(c);
    if v.is_finite() {
        return false;
    }
    // An empty price: NaN with a share of exactly 0, of a firm that exited (it offers no product).
    let empty = c.spec.empty == Empty::NotOffered
        && v.is_nan()
        && o.firm(Out::Share, c.firm).into() == 0.0
        && o.firm(Out::ExitMonth, c.firm).into() >= 0.0;
    !empty
}

/// The non-finite values among `outcomes` (rows `first_row..`), by the names of
/// `cols` (the sweep's output columns, [`outputs::columns`]): each as (row, index into `cols`).
pub fn scan<F: Copy + Into<f64>>(cols: &[(String, Column)], first_row: u64, outcomes: &[Outcome<F>]) -> Vec<(u64, usize)> {
    let mut hits = Vec::new();
    for (k, o) in outcomes.iter().enumerate() {
        for (j, (_, c)) in cols.iter().enumerate() {
            if is_nonfinite(o, *c) {
                hits.push((first_row + k as u64, j));
            }
        }
    }
    hits
}

/// The output columns of a sweep of `firms`, named as in its header.
pub fn columns(firms: &[String]) -> Vec<(String, Column)> {
    outputs::columns(firms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_add_up_and_keep_the_first_row() {
        let mut a = NonFinite::default();
        assert!(a.is_empty() && a.manifest() == (None, None));
        a.hit(9, "hhi");
        a.hit(4, "npv.open");
        let mut b = NonFinite::default();
        b.hit(2, "hhi");
        a.add(&b);
        assert_eq!(a.columns.get("hhi"), Some(&2));
        assert_eq!(a.columns.get("npv.open"), Some(&1));
        assert_eq!((a.total(), a.first_row), (3, Some(2)));
        assert_eq!(a.summary(), "3 non-finite values (hhi: 2, npv.open: 1), the first in row 2");
        let (cols, first) = a.manifest();
        assert_eq!(NonFinite::from_manifest(cols.as_ref(), first), a);
    }

    #[test]
    fn an_empty_price_is_not_nonfinite_but_a_nan_price_that_sells_is() {
        let firms = vec!["a".to_string(), "b".to_string()];
        let cols = columns(&firms);
        let col = |name: &str| cols.iter().position(|(n, _)| n == name).unwrap();
        let mut o = Outcome::<f64>::default();
        // Firm a exited and offers nothing (price NaN, share 0): an empty cell.
        o.set(cols[col("price.a")].1, f64::NAN);
        o.set(cols[col("exit_month.a")].1, 3.0);
        o.set(cols[col("exit_month.b")].1, -1.0);
        // Firm b sells with a NaN price.
        o.set(cols[col("share.b")].1, 0.25);
        o.set(cols[col("price.b")].1, f64::NAN);
        o.set(cols[col("hhi")].1, f64::INFINITY);
        o.set(cols[col("npv.a")].1, f64::NEG_INFINITY);
        let hits = scan(&cols, 7, &[o]);
        let names: Vec<&str> = hits.iter().map(|&(_, j)| cols[j].0.as_str()).collect();
        assert_eq!(names, ["price.b", "npv.a", "hhi"]);
        // A NaN price with a share of 0 (it underflowed) of a firm that never exited
        // is offered, so not an empty cell.
        o.set(cols[col("share.b")].1, 0.0);
        assert!(is_nonfinite(&o, cols[col("price.b")].1));
        o.set(cols[col("exit_month.b")].1, 5.0);
        assert!(!is_nonfinite(&o, cols[col("price.b")].1));
        assert!(hits.iter().all(|&(r, _)| r == 7));
    }
}
