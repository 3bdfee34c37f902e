//! The data layout shared by the host and `shaders/moat.wgsl`, generated from the
//! parameter table (`src/model/params.rs`) and the output table
//! (`src/model/outputs.rs`): one flat f32 parameter vector per scenario in, one
//! flat u32 output vector per scenario out. Nothing here is numbered by hand:
//! [`wgsl_declarations`] writes the kernel's structs, loaders, store function and
//! offsets from the same lists that [`pack`] and [`unpack`] use, and
//! `src/gpu/source.rs` puts them into the shader before it is compiled.
//!
//! Parameters ([`param_stride`] f32 per scenario): a header of [`ParamLayout::header`]
//! fields (model and scaling), then `n_firms` blocks of [`ParamLayout::firm`]
//! fields, then `n_segments` blocks of [`ParamLayout::segment`] fields. Each
//! parameter is sent as its table row's [`Gpu`] form says: its value, its log or
//! ln(1 + value), computed on the host in f64 (logs by [`crate::detmath`], which
//! the device's expansion repeats bit for bit) and rounded once to f32; parameters
//! marked [`Gpu::Derived`] reach the kernel only through a field of [`DERIVED`].
//! Integers (months, max_iter, release_month) are sent as f32 values, exact below
//! 2^24 (the validated ranges stop at 100,000); never as raw bits, which a device
//! that flushes denormals or canonicalises NaNs on load could alter.
//!
//! Outputs ([`out_stride`] u32 per scenario): a header of [`O_FIRMS`] words (the
//! offered-products mask, the loops-cut flag, then the per-scenario outputs in
//! table order), then `n_firms` blocks of [`OF_STRIDE`] words (the per-firm
//! outputs in table order). Every output is an f32 stored as its bits, integer
//! outputs as exact f32 values.

use std::fmt::Write;
use std::sync::OnceLock;

use crate::detmath;
use crate::model::Scenario;
use crate::model::outputs::{self, N_FIRM_OUTPUTS, N_SCENARIO_OUTPUTS, Out, Outcome};
use crate::model::params::{Gpu, Group, PARAMS, ParamSpec};

/// A kernel input computed on the host from several parameters, where f32 could
/// not hold the parts or would lose the result to cancellation.
pub struct Derived {
    pub group: Group,
    /// The field's name in the kernel.
    pub name: &'static str,
    /// The parameters it combines (group, name): each is marked [`Gpu::Derived`]
    /// in the table unless the kernel also needs it alone.
    pub inputs: &'static [(Group, &'static str)],
    pub value: fn(&Scenario, usize) -> f64,
}

/// The derived fields, by block.
pub static DERIVED: &[Derived] = &[
    // c0 = 2 N 1e6 infer_usd_per_flop = e^(x + ln_serve): 1e-19 and 1e12 are beyond f32's reach together.
    Derived {
        group: Group::Model,
        name: "ln_serve",
        inputs: &[(Group::Model, "infer_usd_per_flop")],
        value: |sc, _| detmath::ln(2.0 * 1e6 * sc.model.infer_usd_per_flop),
    },
    // q0 = ln(loss_ref - E) - ln R: loss_ref - E is a difference of nearby values.
    Derived {
        group: Group::Scaling,
        name: "ln_loss_gap",
        inputs: &[(Group::Scaling, "E"), (Group::Scaling, "loss_ref")],
        value: |sc, _| detmath::ln(sc.scaling.loss_ref - sc.scaling.e),
    },
    // ln(C/6) of the first generation: spend near 1e9 over a price near 1e-18.
    Derived {
        group: Group::Firm,
        name: "ln_c6",
        inputs: &[(Group::Firm, "train_spend"), (Group::Model, "train_usd_per_flop")],
        // TrainInputs::ln_c6's quotient, with moatsweep's own log.
        value: |sc, i| detmath::ln(sc.firms[i].train_spend / sc.model.train_usd_per_flop / 6.0),
    },
];

/// Where a field's value comes from.
#[derive(Clone, Copy)]
enum Source {
    Param(&'static ParamSpec),
    Derived(&'static Derived),
}

/// One f32 of a parameter block.
#[derive(Clone)]
pub struct Field {
    /// The field's name in the kernel's struct: the parameter's name, with `ln_`
    /// or `ln1p_` in front when its log is sent.
    pub name: String,
    source: Source,
}

impl Field {
    #[inline]
    fn value(&self, sc: &Scenario, idx: usize) -> f64 {
        match self.source {
            Source::Param(p) => {
                let v = (p.get)(sc, idx);
                match p.gpu {
                    Gpu::Value => v,
                    Gpu::Ln => detmath::ln(v),
                    Gpu::Ln1p => detmath::ln_1p(v),
                    Gpu::Derived => unreachable!("derived parameters are not fields"),
                }
            }
            Source::Derived(d) => (d.value)(sc, idx),
        }
    }
}

/// How a field turns the parameters it reads into its f64 value before the
/// rounding to f32 (for the device's expansion, `super::expand`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldFn {
    Value,
    Ln,
    Ln1p,
    /// A field of [`DERIVED`], by name.
    Derived(&'static str),
}

/// One word of a scenario's parameter vector: how its value is made and the
/// parameters (table row, firm or segment index) it reads, in the order of the
/// derived field's inputs.
#[derive(Clone)]
pub struct FieldReads {
    pub word: usize,
    pub how: FieldFn,
    pub reads: Vec<(&'static ParamSpec, usize)>,
}

/// What every word of a scenario's vector reads (shape `n_firms` x `n_segments`).
pub fn field_reads(n_firms: usize, n_segments: usize) -> Vec<FieldReads> {
    let l = param_layout();
    let mut out = Vec::new();
    let mut push = |fields: &[Field], index: usize| {
        for f in fields {
            let (how, reads) = match f.source {
                Source::Param(p) => {
                    let how = match p.gpu {
                        Gpu::Value => FieldFn::Value,
                        Gpu::Ln => FieldFn::Ln,
                        Gpu::Ln1p => FieldFn::Ln1p,
                        Gpu::Derived => unreachable!("derived parameters are not fields"),
                    };
                    (how, vec![(p, index)])
                }
                Source::Derived(d) => {
                    let reads = d
                        .inputs
                        .iter()
                        .map(|&(g, name)| {
                            let spec = crate::model::params::spec(g, name).expect("a derived field reads rows of the table");
                            (spec, if g == d.group { index } else { 0 })
                        })
                        .collect();
                    (FieldFn::Derived(d.name), reads)
                }
            };
            out.push(FieldReads { word: out.len(), how, reads });
        }
    };
    push(&l.header, 0);
    for i in 0..n_firms {
        push(&l.firm, i);
    }
    for k in 0..n_segments {
        push(&l.segment, k);
    }
    out
}

/// The three parameter blocks.
pub struct ParamLayout {
    /// Model and scaling parameters: the header of each scenario's vector.
    pub header: Vec<Field>,
    pub firm: Vec<Field>,
    pub segment: Vec<Field>,
}

impl ParamLayout {
    /// The offset of firm `i`'s field `name` in a scenario's vector.
    pub fn firm_offset(&self, i: usize, name: &str) -> usize {
        let k = self.firm.iter().position(|f| f.name == name).unwrap_or_else(|| panic!("no firm field {name}"));
        self.header.len() + i * self.firm.len() + k
    }
}

/// The parameter layout, built once from the table.
pub fn param_layout() -> &'static ParamLayout {
    static LAYOUT: OnceLock<ParamLayout> = OnceLock::new();
    LAYOUT.get_or_init(|| {
        let block = |groups: &[Group]| -> Vec<Field> {
            let mut fields: Vec<Field> = PARAMS
                .iter()
                .filter(|p| groups.contains(&p.group) && p.gpu != Gpu::Derived)
                .map(|p| {
                    let prefix = match p.gpu {
                        Gpu::Ln => "ln_",
                        Gpu::Ln1p => "ln1p_",
                        _ => "",
                    };
                    Field { name: format!("{prefix}{}", p.name.to_lowercase()), source: Source::Param(p) }
                })
                .collect();
            fields.extend(
                DERIVED.iter().filter(|d| groups.contains(&d.group)).map(|d| Field { name: d.name.into(), source: Source::Derived(d) }),
            );
            fields
        };
        ParamLayout { header: block(&[Group::Model, Group::Scaling]), firm: block(&[Group::Firm]), segment: block(&[Group::Segment]) }
    })
}

/// f32 values per scenario in the parameter buffer (WGSL `P_STRIDE`).
pub fn param_stride(n_firms: usize, n_segments: usize) -> usize {
    let l = param_layout();
    l.header.len() + n_firms * l.firm.len() + n_segments * l.segment.len()
}

/// Writes the parameter vector of `sc` into `dst` (exactly `param_stride` floats).
pub fn pack(sc: &Scenario, dst: &mut [f32]) {
    let l = param_layout();
    debug_assert_eq!(dst.len(), param_stride(sc.n_firms, sc.n_segments));
    let (head, rest) = dst.split_at_mut(l.header.len());
    for (d, f) in head.iter_mut().zip(&l.header) {
        *d = f.value(sc, 0) as f32;
    }
    let (firms, segments) = rest.split_at_mut(sc.n_firms * l.firm.len());
    for (i, block) in firms.chunks_exact_mut(l.firm.len()).enumerate() {
        for (d, f) in block.iter_mut().zip(&l.firm) {
            *d = f.value(sc, i) as f32;
        }
    }
    for (k, block) in segments.chunks_exact_mut(l.segment.len()).enumerate() {
        for (d, f) in block.iter_mut().zip(&l.segment) {
            *d = f.value(sc, k) as f32;
        }
    }
}

/// Output word 0: bit i set when firm i offers a product in the last month.
pub const O_OFFERED: usize = 0;
/// Output word 1: 1 when one of the kernel's long loops ended before its exit
/// condition held (llvmpipe's loop cap, see `super::LLVMPIPE_LOOP_CAP`): the row is then wrong.
pub const O_LOOPS_CUT: usize = 1;
/// Start of the per-firm output blocks (= header length).
pub const O_FIRMS: usize = 2 + N_SCENARIO_OUTPUTS;
/// Words per firm block.
pub const OF_STRIDE: usize = N_FIRM_OUTPUTS;

/// u32 words per scenario in the output buffer (WGSL `O_STRIDE`).
pub const fn out_stride(n_firms: usize) -> usize {
    O_FIRMS + n_firms * OF_STRIDE
}

/// The word of output `out` (of firm `firm`, for per-firm outputs) in a scenario's output vector.
pub fn word(out: Out, firm: usize) -> usize {
    let spec = out.spec();
    match spec.scope {
        outputs::Scope::Scenario => 2 + outputs::scenario_outputs().position(|o| o.out == out).expect("in the table"),
        outputs::Scope::Firm => O_FIRMS + firm * OF_STRIDE + outputs::firm_outputs().position(|o| o.out == out).expect("in the table"),
    }
}

/// Reads one scenario's outputs (exactly `out_stride(n_firms)` words).
pub fn unpack(src: &[u32], n_firms: usize) -> Outcome<f32> {
    debug_assert_eq!(src.len(), out_stride(n_firms));
    let mut out = Outcome::<f32>::default();
    for (k, spec) in outputs::scenario_outputs().enumerate() {
        out.set_scenario(spec.out, f32::from_bits(src[2 + k]));
    }
    for i in 0..n_firms {
        let block = &src[O_FIRMS + i * OF_STRIDE..][..OF_STRIDE];
        for (k, spec) in outputs::firm_outputs().enumerate() {
            out.firm_values_mut(spec.out)[i] = f32::from_bits(block[k]);
        }
        if src[O_OFFERED] & (1 << i) == 0 {
            out.firm_values_mut(Out::Price)[i] = f32::NAN; // not offered: an empty cell
        }
    }
    out
}

/// The kernel's declarations of both layouts: constants, the parameter structs and
/// their loaders, the output struct and its store function. `src/gpu/source.rs`
/// puts this text into the shader in place of its `// @layout` line.
pub fn wgsl_declarations() -> String {
    let l = param_layout();
    let mut s = String::new();
    let _ = writeln!(s, "// Generated by src/gpu/layout.rs from the tables in src/model/params.rs and src/model/outputs.rs.");
    let _ = writeln!(s, "const P_FIRMS: u32 = {}u;", l.header.len());
    let _ = writeln!(s, "const F_STRIDE: u32 = {}u;", l.firm.len());
    let _ = writeln!(s, "const S_STRIDE: u32 = {}u;", l.segment.len());
    for (ty, load, fields) in
        [("ModelParams", "load_model", &l.header), ("FirmParams", "load_firm", &l.firm), ("SegmentParams", "load_segment", &l.segment)]
    {
        let _ = writeln!(s, "struct {ty} {{");
        for f in fields {
            let _ = writeln!(s, "    {}: f32,", f.name);
        }
        let _ = writeln!(s, "}}");
        let args: Vec<String> = (0..fields.len()).map(|k| format!("params[at + {k}u]")).collect();
        let _ = writeln!(s, "fn {load}(at: u32) -> {ty} {{\n    return {ty}({});\n}}", args.join(", "));
    }
    let _ = writeln!(s, "const O_FIRMS: u32 = {O_FIRMS}u;");
    let _ = writeln!(s, "const OF_STRIDE: u32 = {OF_STRIDE}u;");
    let _ = writeln!(s, "struct Outputs {{\n    offered: u32,\n    loops_cut: u32,");
    for o in outputs::scenario_outputs() {
        let _ = writeln!(s, "    {}: f32,", o.name);
    }
    for o in outputs::firm_outputs() {
        let _ = writeln!(s, "    {}: array<f32, MAX_FIRMS>,", o.name);
    }
    let _ = writeln!(s, "}}");
    let _ = writeln!(s, "fn store_outputs(ob: u32, o: Outputs) {{");
    let _ = writeln!(s, "    outputs[ob + {O_OFFERED}u] = o.offered;\n    outputs[ob + {O_LOOPS_CUT}u] = o.loops_cut;");
    for (k, o) in outputs::scenario_outputs().enumerate() {
        let _ = writeln!(s, "    outputs[ob + {}u] = bitcast<u32>(o.{});", 2 + k, o.name);
    }
    let _ = writeln!(s, "    for (var i = 0u; i < N_FIRMS; i++) {{\n        let fb = ob + O_FIRMS + i * OF_STRIDE;");
    for (k, o) in outputs::firm_outputs().enumerate() {
        let _ = writeln!(s, "        outputs[fb + {k}u] = bitcast<u32>(o.{}[i]);", o.name);
    }
    let _ = writeln!(s, "    }}\n}}");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::params::baseline;

    /// Every parameter reaches the kernel: each is a field, or an input of a derived
    /// field; and moving any one of them moves the packed vector.
    #[test]
    fn every_parameter_reaches_the_packed_vector() {
        for p in PARAMS {
            let derived = DERIVED.iter().any(|d| d.inputs.contains(&(p.group, p.name)));
            assert!(p.gpu != Gpu::Derived || derived, "{}.{} is marked Derived but no derived field uses it", p.group.prefix(), p.name);
            for d in DERIVED {
                for (g, n) in d.inputs {
                    assert!(PARAMS.iter().any(|q| q.group == *g && q.name == *n), "derived {} names an unknown parameter {n}", d.name);
                }
            }
            let sc = baseline();
            let (nf, ns) = (sc.n_firms, sc.n_segments);
            let mut a = vec![0.0; param_stride(nf, ns)];
            pack(&sc, &mut a);
            let mut moved = sc;
            let idx = 1;
            let v = (p.get)(&sc, idx);
            (p.set)(
                &mut moved,
                idx,
                if v == 0.0 {
                    0.5
                } else if p.is(crate::model::params::model::months()) || p.is(crate::model::params::model::max_iter()) {
                    v + 1.0
                } else {
                    v * 0.75
                },
            );
            let mut b = vec![0.0; param_stride(nf, ns)];
            pack(&moved, &mut b);
            assert_ne!(a, b, "{}.{} does not reach the packed vector", p.group.prefix(), p.name);
        }
    }

    #[test]
    fn unpack_reads_every_output_from_its_word() {
        let nf = 3;
        let mut w = vec![0u32; out_stride(nf)];
        let mut k = 0.0f32;
        let mut want = Vec::new();
        for (name, col) in outputs::columns(&["a".into(), "b".into(), "c".into()]) {
            k += 1.0;
            w[word(col.spec.out, col.firm)] = k.to_bits();
            want.push((name, col, k));
        }
        w[O_OFFERED] = 0b101;
        let o = unpack(&w, nf);
        for (name, col, k) in want {
            let got = o.get(col);
            if col.spec.out == Out::Price && col.firm == 1 {
                assert!(got.is_nan(), "firm 1 offers nothing: its price is empty");
            } else {
                assert_eq!(got, k, "{name}");
            }
        }
    }

    #[test]
    fn the_declarations_name_every_field_once() {
        let wgsl = wgsl_declarations();
        let l = param_layout();
        for f in l.header.iter().chain(&l.firm).chain(&l.segment) {
            assert_eq!(wgsl.matches(&format!("    {}: f32,", f.name)).count(), 1, "{}", f.name);
        }
        for o in crate::model::outputs::OUTPUTS {
            assert!(wgsl.contains(&format!("o.{}", o.name)), "{}", o.name);
        }
        assert!(wgsl.contains(&format!("const P_FIRMS: u32 = {}u;", l.header.len())));
    }
}
