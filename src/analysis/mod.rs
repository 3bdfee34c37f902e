//! Reading a sweep's file back, through the one reader [`SweepFile`] (header and
//! manifest read once; rows as a stream, or whole columns): [`plot`] draws an
//! output over one or two axes, [`summarize`] tables every output per group of
//! rows. Both stream the file row by row (one pass to see the axes' values, one
//! to aggregate) and keep only aggregates, so the file's size does not matter.
//! [`sensitivity`] and [`discover`] read the columns they need, once.
//!
//! What is an axis and what is an output comes from the header alone (the
//! `scenario` column, the axis paths, then the outputs of `output::csv`); the
//! manifest beside the file (it must match the header) adds the sweep's name
//! and which axes are logspace or loguniform. An axis with many distinct
//! values (a sampling design draws a new one for every row) is cut into bins.
//!
//! A sweep written as Parquet (`run --format parquet`, told apart by its magic
//! bytes) is read the same way, row group by row group: its column names are the
//! header, its manifest the one beside it or else the footer's
//! `moatsweep.manifest`, and every value is the number the CSV of the same run
//! holds (an f32 through its shortest decimal, as the CSV writes it; a null as an
//! empty cell), so every analysis prints the same for either file.

mod bootstrap;
pub mod discover;
mod font;
mod image;
pub mod plot;
pub mod reduced;
pub mod sensitivity;
pub mod summarize;
pub mod sweep_file;

use std::collections::{HashMap, HashSet};

use crate::model::NEVER;
use crate::model::outputs::{OUTPUTS, Scope};
pub use sweep_file::SweepFile;

/// Distinct values an axis may have before it is cut into bins.
const MAX_VALUES: usize = 100;
/// Bins of an axis with more than [`MAX_VALUES`] distinct values.
const BINS: usize = 25;

/// What one pass sees of an axis column.
struct Seen {
    /// Distinct values (bits), `never` excluded, up to one more than [`MAX_VALUES`].
    distinct: HashSet<u64>,
    min: f64,
    max: f64,
    never: bool,
}

impl Default for Seen {
    fn default() -> Self {
        Seen { distinct: HashSet::new(), min: f64::INFINITY, max: f64::NEG_INFINITY, never: false }
    }
}

impl Seen {
    fn add(&mut self, name: &str, v: f64) {
        if is_never(name, v) {
            self.never = true;
            return;
        }
        self.min = self.min.min(v);
        self.max = self.max.max(v);
        if self.distinct.len() <= MAX_VALUES {
            self.distinct.insert(v.to_bits());
        }
    }
}

/// How an axis's values are grouped and shown: one slot per distinct value,
/// or, past [`MAX_VALUES`] distinct values, one per equal-width bin (equal in
/// log on a log scale); `never` gets a slot of its own, the last. Slots are in
/// ascending order of value.
pub struct AxisScale {
    /// The axis path (its CSV column).
    pub name: String,
    /// Whether the axis is shown on a log scale: the manifest calls it
    /// logspace or loguniform; without a manifest, its values are
    /// geometrically spaced, or (binned) positive and spanning two decades.
    pub log: bool,
    grouping: Grouping,
    /// Whether `never` occurs.
    never: bool,
}

enum Grouping {
    /// The distinct values, ascending, and the slot of each (by its bits).
    Values(Vec<f64>, HashMap<u64, usize>),
    /// `n` equal bins from `lo` to `hi` (log10 of the values on a log scale).
    Bins { lo: f64, hi: f64, n: usize },
}

impl AxisScale {
    /// Number of slots.
    pub fn slots(&self) -> usize {
        self.never as usize
            + match &self.grouping {
                Grouping::Values(values, _) => values.len(),
                Grouping::Bins { n, .. } => *n,
            }
    }

    /// The slot of value `v`, which was seen in the pass that made the scale.
    pub fn slot(&self, v: f64) -> usize {
        if is_never(&self.name, v) {
            return self.slots() - 1;
        }
        match &self.grouping {
            Grouping::Values(_, index) => index[&v.to_bits()],
            Grouping::Bins { lo, hi, n } => {
                let at = (self.display(v) - lo) / (hi - lo) * *n as f64;
                (at.max(0.0) as usize).min(n - 1)
            }
        }
    }

    /// Whether slot `i` is `never`.
    pub fn is_never_slot(&self, i: usize) -> bool {
        self.never && i == self.slots() - 1
    }

    /// The number of bins, when the axis is cut into bins.
    pub fn bins(&self) -> Option<usize> {
        match self.grouping {
            Grouping::Bins { n, .. } => Some(n),
            Grouping::Values(..) => None,
        }
    }

    /// Where slot `i` is drawn: its value or its bin's centre (log10 of it on
    /// a log scale); `never` one step (the last spacing) after the last slot.
    pub fn position(&self, i: usize) -> f64 {
        let n = self.slots() - self.never as usize;
        if self.is_never_slot(i) {
            return match n {
                0 => 0.0,
                1 => self.position(0) + 1.0,
                _ => 2.0 * self.position(n - 1) - self.position(n - 2),
            };
        }
        self.display(self.value(i))
    }

    /// The value slot `i` stands for: the value itself, its bin's centre
    /// (geometric on a log scale), or `never` (-1).
    pub fn value(&self, i: usize) -> f64 {
        if self.is_never_slot(i) {
            return NEVER as f64;
        }
        match &self.grouping {
            Grouping::Values(values, _) => values[i],
            Grouping::Bins { lo, hi, n } => self.undisplay(lo + (hi - lo) * (i as f64 + 0.5) / *n as f64),
        }
    }

    /// The bounds [from, to) of bin `i`, for a binned axis.
    pub fn bin(&self, i: usize) -> Option<(f64, f64)> {
        match &self.grouping {
            Grouping::Bins { lo, hi, n } if !self.is_never_slot(i) => {
                let edge = |k: usize| self.undisplay(lo + (hi - lo) * k as f64 / *n as f64);
                Some((edge(i), edge(i + 1)))
            }
            _ => None,
        }
    }

    /// Slot `i` as shown: `never`, or its value with at most `digits`
    /// significant digits.
    pub fn label(&self, i: usize, digits: usize) -> String {
        if self.is_never_slot(i) { "never".to_string() } else { fmt_number(self.value(i), digits) }
    }

    fn display(&self, v: f64) -> f64 {
        if self.log { v.log10() } else { v }
    }

    fn undisplay(&self, d: f64) -> f64 {
        if self.log { 10f64.powf(d) } else { d }
    }
}

/// Whether `column` is an output of a sweep CSV rather than an axis.
fn is_output(column: &str) -> bool {
    OUTPUTS.iter().any(|o| match o.scope {
        Scope::Scenario => o.name == column,
        Scope::Firm => column.split_once('.').is_some_and(|(head, _)| head == o.name),
    })
}

/// Whether an axis column may hold `never` (written -1): a firm's release month.
fn is_month_axis(name: &str) -> bool {
    name.starts_with("firm.") && name.ends_with(".release_month")
}

/// Whether `v` is `never` on the axis `name`.
fn is_never(name: &str, v: f64) -> bool {
    v == NEVER as f64 && is_month_axis(name)
}

/// Sorted distinct values, three or more, all positive, with one common ratio.
fn is_geometric(sorted: &[f64]) -> bool {
    if sorted.len() < 3 || sorted[0] <= 0.0 {
        return false;
    }
    let ratio = sorted[1] / sorted[0];
    ratio > 1.0 && sorted.windows(2).all(|w| ((w[1] / w[0]) / ratio - 1.0).abs() < 1e-6)
}

/// `v` with at most `digits` significant digits, trailing zeros dropped, in
/// scientific notation when it is very large or very small (`1.6e8`, `0.0147`).
pub fn fmt_number(v: f64, digits: usize) -> String {
    if v == 0.0 || !v.is_finite() {
        return format!("{}", v + 0.0);
    }
    let exp = v.abs().log10().floor() as i32;
    let trim = |s: &str| {
        if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_string() } else { s.to_string() }
    };
    if (-3..6).contains(&exp) {
        let decimals = (digits as i32 - 1 - exp).max(0) as usize;
        trim(&format!("{v:.decimals$}"))
    } else {
        let s = format!("{v:.prec$e}", prec = digits.saturating_sub(1));
        let (mantissa, exponent) = s.split_once('e').expect("`e` format has an exponent");
        format!("{}e{exponent}", trim(mantissa))
    }
}

/// Count, sum, smallest and largest of a column's values.
#[derive(Clone, Copy, Debug)]
pub struct Stats {
    pub n: u64,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
}

impl Default for Stats {
    fn default() -> Self {
        Stats { n: 0, sum: 0.0, min: f64::INFINITY, max: f64::NEG_INFINITY }
    }
}

impl Stats {
    /// Adds one value.
    pub fn add(&mut self, v: f64) {
        self.n += 1;
        self.sum += v;
        self.min = self.min.min(v);
        self.max = self.max.max(v);
    }

    /// The mean, or `None` when no value was added.
    pub fn mean(&self) -> Option<f64> {
        (self.n > 0).then(|| self.sum / self.n as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_short() {
        assert_eq!(fmt_number(0.0, 3), "0");
        assert_eq!(fmt_number(12.0, 3), "12");
        assert_eq!(fmt_number(0.0014677992676220694, 3), "0.00147");
        assert_eq!(fmt_number(5e7, 3), "5e7");
        assert_eq!(fmt_number(1.6e8, 3), "1.6e8");
        assert_eq!(fmt_number(-2299605603.53, 6), "-2.29961e9");
        assert_eq!(fmt_number(0.1, 3), "0.1");
        assert_eq!(fmt_number(1e-6, 3), "1e-6");
    }

    #[test]
    fn geometric_spacing_is_detected() {
        assert!(is_geometric(&[1.0, 10.0, 100.0]));
        assert!(is_geometric(&[5e7, 5e8, 5e9]));
        assert!(!is_geometric(&[1.0, 2.0, 3.0]));
        assert!(!is_geometric(&[0.0, 1.0, 2.0]));
        assert!(!is_geometric(&[1.0, 10.0]));
    }

    #[test]
    fn never_is_last_and_named() {
        let scale = |name: &str| {
            let mut seen = Seen::default();
            for v in [12.0, -1.0, 0.0, 6.0] {
                seen.add(name, v);
            }
            SweepFile::bare(name, false).scale(1, seen)
        };
        let months = scale("firm.open.release_month");
        assert_eq!(months.slots(), 4);
        assert_eq!((months.slot(-1.0), months.label(3, 3)), (3, "never".to_string()));
        assert_eq!((months.slot(0.0), months.slot(12.0)), (0, 2));
        assert_eq!(months.position(3), 18.0, "one step after the last month");
        let plain = scale("model.spill_gap");
        assert_eq!((plain.slot(-1.0), plain.label(0, 3)), (0, "-1".to_string()));
    }

    #[test]
    fn many_values_are_binned() {
        let mut seen = Seen::default();
        for k in 0..1000 {
            seen.add("firm.open.train_spend", 1e8 * 10f64.powf(k as f64 / 999.0 * 2.0));
        }
        let s = SweepFile::bare("firm.open.train_spend", false).scale(1, seen);
        assert!(s.bins() == Some(BINS) && s.log, "two decades of positive values: log bins");
        assert_eq!(s.slots(), BINS);
        assert_eq!((s.slot(1e8), s.slot(1e10)), (0, BINS - 1));
        let (from, to) = s.bin(0).unwrap();
        assert!((from - 1e8).abs() < 1.0 && (to / from - 10f64.powf(2.0 / BINS as f64)).abs() < 1e-9);
        assert!((s.value(0) / (from * to).sqrt() - 1.0).abs() < 1e-12, "geometric centre");
    }
}
