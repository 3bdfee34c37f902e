//! The sweep CSV: header and row formatting (shortest round-trip floats, parallel
//! over blocks of rows); [`super::sink`] writes the rows in order.

use rayon::prelude::*;

use crate::model::Outcome;
use crate::sweep::Plan;

/// Per-firm outputs, in column order (MODEL.md section 5).
pub const FIRM_OUTPUTS: [&str; 6] = ["share", "price", "quality", "npv", "complement_npv", "exit_month"];
/// Per-scenario outputs, in column order.
pub const SCENARIO_OUTPUTS: [&str; 6] =
    ["outside_share", "open_share", "hhi", "consumer_surplus_npv", "max_iterations", "nonconverged_months"];

/// Rows formatted per parallel task.
const FORMAT_BLOCK: usize = 1024;

/// The CSV header: `scenario`, the axis paths, then the outputs.
pub fn header(plan: &Plan) -> Vec<String> {
    let mut h = vec!["scenario".to_string()];
    h.extend(plan.axes.iter().map(|a| a.path.clone()));
    for out in FIRM_OUTPUTS {
        h.extend(plan.firm_names.iter().map(|f| format!("{out}.{f}")));
    }
    h.extend(SCENARIO_OUTPUTS.iter().map(|s| s.to_string()));
    h
}

/// The header line, quoted where a name needs it.
pub fn header_line(plan: &Plan) -> Vec<u8> {
    let mut w = ::csv::Writer::from_writer(Vec::new());
    w.write_record(header(plan)).expect("writing to memory");
    w.into_inner().expect("writing to memory")
}

/// A float type whose values are written in shortest round-trip form.
pub trait Real: Copy + Send + Sync {
    fn write_to(self, buf: &mut Vec<u8>);
    fn to_f64(self) -> f64;
}

impl Real for f64 {
    fn write_to(self, buf: &mut Vec<u8>) {
        buf.extend_from_slice(ryu::Buffer::new().format(self).as_bytes());
    }
    fn to_f64(self) -> f64 {
        self
    }
}

impl Real for f32 {
    fn write_to(self, buf: &mut Vec<u8>) {
        buf.extend_from_slice(ryu::Buffer::new().format(self).as_bytes());
    }
    fn to_f64(self) -> f64 {
        self as f64
    }
}

fn int(buf: &mut Vec<u8>, v: impl itoa::Integer) {
    buf.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

/// Appends the CSV row of scenario `row` to `buf`.
pub fn format_row<F: Real>(plan: &Plan, row: u64, o: &Outcome<F>, buf: &mut Vec<u8>) {
    int(buf, row);
    for (a, axis) in plan.axes.iter().enumerate() {
        buf.push(b',');
        let v = plan.axis_value(row, a);
        if axis.is_integer() { int(buf, v as i64) } else { v.write_to(buf) }
    }
    let n = plan.base.n_firms;
    for series in [&o.share, &o.price, &o.quality, &o.npv, &o.complement_npv] {
        let is_price = std::ptr::eq(series, &o.price);
        for (i, v) in series[..n].iter().enumerate() {
            buf.push(b',');
            if !is_price || o.is_offered(i) {
                v.write_to(buf);
            }
        }
    }
    for &e in &o.exit_month[..n] {
        buf.push(b',');
        int(buf, e);
    }
    for v in [o.outside_share, o.open_share, o.hhi, o.consumer_surplus_npv] {
        buf.push(b',');
        v.write_to(buf);
    }
    buf.push(b',');
    int(buf, o.max_iterations);
    buf.push(b',');
    int(buf, o.nonconverged_months);
    buf.push(b'\n');
}

/// Formats a chunk in parallel blocks, in row order.
pub fn format_chunk<F: Real>(plan: &Plan, first_row: u64, outcomes: &[Outcome<F>]) -> Vec<Vec<u8>> {
    outcomes
        .par_chunks(FORMAT_BLOCK)
        .enumerate()
        .map(|(b, block)| {
            let mut buf = Vec::with_capacity(block.len() * 256);
            for (k, o) in block.iter().enumerate() {
                format_row(plan, first_row + (b * FORMAT_BLOCK + k) as u64, o, &mut buf);
            }
            buf
        })
        .collect()
}
