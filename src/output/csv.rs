//! The sweep CSV: header and row formatting (shortest round-trip floats, parallel
//! over blocks of rows); [`super::sink`] writes the rows in order.

use rayon::prelude::*;

use crate::model::Outcome;
use crate::model::outputs::{self, Column, Empty, OutKind};
use crate::sweep::Plan;

/// Rows formatted per parallel task.
const FORMAT_BLOCK: usize = 1024;

/// The CSV header: `scenario`, the axis paths, then the output columns (the
/// output table's order, `src/model/outputs.rs`).
pub fn header(plan: &Plan) -> Vec<String> {
    let mut h = vec!["scenario".to_string()];
    h.extend(plan.axes.iter().map(|a| a.path.clone()));
    h.extend(outputs::columns(&plan.firm_names).into_iter().map(|(name, _)| name));
    h
}

/// The header line, quoted where a name needs it.
pub fn header_line(plan: &Plan) -> Vec<u8> {
    let mut w = ::csv::Writer::from_writer(Vec::new());
    w.write_record(header(plan)).expect("writing to memory");
    w.into_inner().expect("writing to memory")
}

/// A float type whose values are written in shortest round-trip form.
pub trait Real: Copy + Send + Sync + Into<f64> {
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

/// Appends the CSV row of scenario `row` to `buf`: its index, its axis values and
/// every output column (empty where the table says so and the value is NaN).
pub fn format_row<F: Real>(plan: &Plan, cols: &[Column], row: u64, o: &Outcome<F>, buf: &mut Vec<u8>) {
    int(buf, row);
    for (a, axis) in plan.axes.iter().enumerate() {
        buf.push(b',');
        let v = plan.axis_value(row, a);
        if axis.is_integer() { int(buf, v as i64) } else { v.write_to(buf) }
    }
    for &c in cols {
        buf.push(b',');
        let v = o.get(c);
        match c.spec.kind {
            OutKind::Integer => int(buf, v.to_f64() as i64),
            OutKind::Real if c.spec.empty != Empty::Never && v.to_f64().is_nan() => {}
            OutKind::Real => v.write_to(buf),
        }
    }
    buf.push(b'\n');
}

/// The output columns of `plan`, in CSV order.
pub fn output_columns(plan: &Plan) -> Vec<Column> {
    outputs::columns(&plan.firm_names).into_iter().map(|(_, c)| c).collect()
}

/// Formats a chunk in parallel blocks, in row order.
pub fn format_chunk<F: Real>(plan: &Plan, first_row: u64, outcomes: &[Outcome<F>]) -> Vec<Vec<u8>> {
    let cols = output_columns(plan);
    outcomes
        .par_chunks(FORMAT_BLOCK)
        .enumerate()
        .map(|(b, block)| {
            let mut buf = Vec::with_capacity(block.len() * 256);
            for (k, o) in block.iter().enumerate() {
                format_row(plan, &cols, first_row + (b * FORMAT_BLOCK + k) as u64, o, &mut buf);
            }
            buf
        })
        .collect()
}
