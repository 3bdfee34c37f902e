// The moat model (docs/model.md), in f32: one invocation solves one scenario (one
// row of a sweep). It mirrors the f64 CPU reference in src/model/: the same
// functions under the same names, one per step of the spec (start, then per
// month new_generation, release, offer_products, solve_markups, settle_money,
// end_month, and write_outputs), in the same order of operations, except where a
// comment says why not (solve's generations, train_all, settle_money's rivals,
// utility, shares, zeta_update, hhi_of).
//
// WGSL assumes finite math, so nothing here relies on inf or NaN: an unset
// markup is an explicit flag, maxima start from a flag instead of -inf, and
// every log is taken of a value known to be positive.
//
// Pipeline-overridable constants (set per pipeline by src/gpu/context.rs):
// N_FIRMS and N_SEGMENTS fix the shape of every scenario of a source. Before
// compiling, the host (src/gpu/source.rs) puts the generated layout in place of
// the `// @layout` line below and expands every
// `for (var j = 0u; j < N_FIRMS; j++)` loop (and the same over N_SEGMENTS) into
// one block per index, so every private array index is a constant: on llvmpipe
// that keeps the arrays in registers, and no such loop counts towards
// llvmpipe's silent cap of 65,535 loop iterations per invocation
// (src/gpu/mod.rs, `loop_iterations`). Those loops therefore never `break` or
// `continue`.
//
// llvmpipe runs both sides of every branch (masked), so code in a rarely taken
// branch costs as much as code that always runs: the markup loop keeps no
// special-case branch (see zeta_update).

override N_FIRMS: u32 = 4u;
override N_SEGMENTS: u32 = 3u;
override WORKGROUP_SIZE: u32 = 64u;

const MAX_FIRMS: u32 = 8u;
const MAX_SEGMENTS: u32 = 8u;

// ---------------------------------------------------------------------------
// Data layout, generated from the parameter and output tables (src/gpu/layout.rs):
// the structs ModelParams, FirmParams, SegmentParams and their loaders
// load_model, load_firm, load_segment; the struct Outputs and store_outputs;
// the offsets P_FIRMS, F_STRIDE, S_STRIDE, O_FIRMS, OF_STRIDE.
// @layout

override P_STRIDE: u32 = P_FIRMS + N_FIRMS * F_STRIDE + N_SEGMENTS * S_STRIDE;
override O_STRIDE: u32 = O_FIRMS + N_FIRMS * OF_STRIDE;

struct Chunk {
    // Scenarios in this dispatch.
    rows: u32,
    // Invocations per row of workgroups (groups in x times WORKGROUP_SIZE).
    row_pitch: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<storage, read> params: array<f32>;
@group(0) @binding(1) var<storage, read_write> outputs: array<u32>;
@group(0) @binding(2) var<uniform> chunk: Chunk;

// ---------------------------------------------------------------------------
// Numerical helpers

// ln(1 + x) for x > -1, accurate to a few ulp also for small |x|. Written as
// 2 atanh(x / (2 + x)) by its series where that converges fast, rather than the
// log(1+x)*x/((1+x)-1) trick, which a compiler allowed to reassociate may undo.
fn log1p(x: f32) -> f32 {
    if (x > -0.3 && x < 0.5) {
        let z = x / (2.0 + x);
        let z2 = z * z;
        // |z| < 0.2: the terms after z^13 are below 1e-10 relative.
        let p = 1.0 / 13.0;
        var s = p;
        s = s * z2 + 1.0 / 11.0;
        s = s * z2 + 1.0 / 9.0;
        s = s * z2 + 1.0 / 7.0;
        s = s * z2 + 1.0 / 5.0;
        s = s * z2 + 1.0 / 3.0;
        s = s * z2 + 1.0;
        return 2.0 * z * s;
    }
    return log(1.0 + x);
}

// e^x - 1, accurate also for small |x| (Taylor series up to x^10 for |x| < 0.5).
fn expm1(x: f32) -> f32 {
    if (abs(x) < 0.5) {
        var s = 1.0 / 3628800.0;
        s = s * x + 1.0 / 362880.0;
        s = s * x + 1.0 / 40320.0;
        s = s * x + 1.0 / 5040.0;
        s = s * x + 1.0 / 720.0;
        s = s * x + 1.0 / 120.0;
        s = s * x + 1.0 / 24.0;
        s = s * x + 1.0 / 6.0;
        s = s * x + 0.5;
        s = s * x + 1.0;
        return s * x;
    }
    return exp(x) - 1.0;
}

// The scenario's parameters.
var<private> mp: ModelParams;
var<private> firm: array<FirmParams, MAX_FIRMS>;
var<private> seg: array<SegmentParams, MAX_SEGMENTS>;

// Set when a loop ended before its own exit condition held: llvmpipe silently
// ends every loop of an invocation after 65,535 iterations in all. The loops
// that can run long (bisection, months, markup iterations) check their counters
// on the way out; the loops over firms and segments are expanded on the host.
var<private> loops_cut: bool;

// ---------------------------------------------------------------------------
// Section 1: capability from compute and data (src/model/scaling.rs)

const BISECTION_STEPS: u32 = 60u;
const LN_1E6: f32 = 13.815510557964274;
// Largest exponent handed to expm1 in effective_tokens: beyond it D/U > 5e34 and
// D' has long saturated at U (1 + R*); only ln g = -r/R* keeps growing, and the
// clamp keeps it finite (f32 overflows near e^88.7).
const MAX_LN_REPEAT: f32 = 80.0;

// (ln D', ln g) for ln D tokens of which U = e^ln_u are unique (Muennighoff et al.).
fn effective_tokens(ln_d: f32, ln_u: f32) -> vec2<f32> {
    if (ln_d <= ln_u) {
        return vec2<f32>(ln_d, 0.0);
    }
    let r = expm1(min(ln_d - ln_u, MAX_LN_REPEAT)); // r = D/U - 1
    let r_over = r / mp.repeat_scale;
    // D' = U (1 + R* (1 - e^(-r/R*)))
    let ln_dp = ln_u + log1p(-mp.repeat_scale * expm1(-r_over));
    return vec2<f32>(ln_dp, -r_over);
}

// train_all's inputs and results, per firm: ln(C/6) and ln U of the generation
// to train; its capability q and serving cost c.
var<private> tr_ln_c6: array<f32, MAX_FIRMS>;
var<private> tr_ln_u: array<f32, MAX_FIRMS>;
var<private> tr_q: array<f32, MAX_FIRMS>;
var<private> tr_c: array<f32, MAX_FIRMS>;

// Trains a generation of every firm at once: the reference's `train`
// (src/model/scaling.rs) for each firm, its 60 halvings run in one loop over all
// firms rather than one loop per firm, so that the loop is paid for once per
// generation (llvmpipe counts each iteration against its cap, and a GPU runs the
// firms' steps side by side). Firms that will not use the result (exited ones)
// are trained too: masking them would cost as much.
fn train_all() {
    let ln_beta_b = log(mp.beta * mp.b);
    let ln_alpha_a = log(mp.alpha * mp.a);
    var lo: array<f32, MAX_FIRMS>;
    var hi: array<f32, MAX_FIRMS>;
    for (var i = 0u; i < N_FIRMS; i++) {
        lo[i] = LN_1E6;
        hi[i] = tr_ln_c6[i] - LN_1E6;
    }
    // The spec's 60 halvings, stopped once one of them moves no end of any
    // bracket: from then on every halving repeats that one exactly (the same
    // midpoints, the same comparisons), so the result is bit for bit that of all
    // 60. In f32 a bracket some 30 wide stops shrinking after about 25 halvings.
    var halving = 0u;
    var settled = false;
    for (; halving < BISECTION_STEPS; halving++) {
        var moved = false;
        for (var i = 0u; i < N_FIRMS; i++) {
            let m = 0.5 * (lo[i] + hi[i]);
            let ln_d = tr_ln_c6[i] - m;
            let et = effective_tokens(ln_d, tr_ln_u[i]);
            // dL/dx > 0  <=>  ln(beta B) + ln g + ln D - (beta+1) ln D' > ln(alpha A) - alpha m
            if (ln_beta_b + et.y + ln_d - (mp.beta + 1.0) * et.x > ln_alpha_a - mp.alpha * m) {
                moved = moved || hi[i] != m;
                hi[i] = m;
            } else {
                moved = moved || lo[i] != m;
                lo[i] = m;
            }
        }
        if (!moved) {
            settled = true;
            break;
        }
    }
    if (!settled && halving != BISECTION_STEPS) {
        loops_cut = true;
    }
    for (var i = 0u; i < N_FIRMS; i++) {
        let x = 0.5 * (lo[i] + hi[i]);
        let ln_dp = effective_tokens(tr_ln_c6[i] - x, tr_ln_u[i]).x;
        let reducible_loss = mp.a * exp(-mp.alpha * x) + mp.b * exp(-mp.beta * ln_dp);
        tr_q[i] = mp.ln_loss_gap - log(reducible_loss);
        // c = cost_factor 2 N 1e6 infer_usd_per_flop = e^(x + ln(2e6 infer_usd_per_flop) + ln cost_factor)
        tr_c[i] = exp(x + mp.ln_serve + firm[i].ln_cost_factor);
    }
}

// ---------------------------------------------------------------------------
// Section 3: demand and the zeta-markup update (src/model/demand.rs)

// Below this total share, hhi is evaluated in a rescaled form (hhi_of).
const TINY_BOUGHT: f32 = 1e-30;
// A utility difference no scenario reaches: the start of a running maximum.
const FAR_BELOW: f32 = -1e30;

// The products of the month: product j is firm j's (no compaction; `offered` masks).
var<private> offered: array<bool, MAX_FIRMS>;
// Released weights: set at the release month of a firm alive then, for good.
var<private> released: array<bool, MAX_FIRMS>;
var<private> closed: array<bool, MAX_FIRMS>;
var<private> n_closed: u32;
var<private> quality: array<f32, MAX_FIRMS>;
var<private> cost: array<f32, MAX_FIRMS>;
var<private> price: array<f32, MAX_FIRMS>;
// The part of u_jk that is fixed within a month, cost included, relative to the
// segment's center: base_jk = a_k + beta_k Q_j + b_j + theta_k o_j - alpha_k c_j - center_k
// (see utility).
var<private> base: array<array<f32, MAX_SEGMENTS>, MAX_FIRMS>;
// center_k = max(0, max_j (a_k + beta_k Q_j + b_j + theta_k o_j - alpha_k c_j)): the
// largest utility at zero markup (or the outside option's 0), fixed within a month.
var<private> center: array<f32, MAX_SEGMENTS>;
// m_j for closed products, 0 for released ones (priced at cost).
var<private> margin: array<f32, MAX_FIRMS>;
// Section 3's result: S_j at the final prices and their sum (1 - s_out).
var<private> share: array<f32, MAX_FIRMS>;
var<private> bought: f32;

// Shares at one set of prices (demand::Shares), plus each product's shares
// relative to its largest over weighted segments, for the zeta update:
// sh_s[j][k] = e^(r_j) sh_rel[j][k], where r_j <= 0 is the largest u_jk - shift_k
// over weighted segments, so the largest weighted sh_rel[j][k] is
// 1 / denom_k >= 1 / (N_FIRMS + 1). sh_rel stays finite and positive where sh_s
// underflows in f32, the case the reference's rescaled branch handles (below
// Lambda_j = 1e-200 in f64).
var<private> sh_s: array<array<f32, MAX_SEGMENTS>, MAX_FIRMS>;
var<private> sh_rel: array<array<f32, MAX_SEGMENTS>, MAX_FIRMS>;
var<private> sh_shift: array<f32, MAX_SEGMENTS>;
var<private> sh_denom: array<f32, MAX_SEGMENTS>;

// u_jk - center_k, where u_jk = a_k + beta_k Q_j + b_j + theta_k o_j - alpha_k (c_j + m_j),
// as base_jk - alpha_k m_j with one rounding (fma). The reference evaluates
// base - alpha_k p_j; in f32 that difference of large terms (utilities of 20 to 40
// in quality-hungry or price-sensitive segments) is rounded to ulp(20) = 2e-6 or
// more, which jitters with every change of the markup and kept some fixed points
// from ever meeting tol = 1e-6. Here the cost and the center enter base once a
// month (a constant error, not a jitter), the products that compete for a segment
// have utilities near 0 relative to its center, and the markup's term is exact
// before the one rounding of the result.
fn utility(j: u32, k: u32) -> f32 {
    return fma(-seg[k].price_sens, margin[j], base[j][k]);
}

// s_jk = exp(u_jk) / (1 + sum_l exp(u_lk)), stably (subtract max(0, max_l u_lk)).
// Utilities are relative to the segment's center (see utility): sh_shift holds
// max(0, max_l u_lk) - center_k, and the outside option's utility is -center_k.
// The exponentials are taken relative to each product's largest weighted
// utility, so the same ones (one per product and segment, one per product) give
// both sh_s and sh_rel: llvmpipe runs both sides of every branch, so a separate
// rescaled branch would cost as much again.
fn shares() {
    var z: array<array<f32, MAX_SEGMENTS>, MAX_FIRMS>;
    for (var k = 0u; k < N_SEGMENTS; k++) {
        var shift = -center[k];
        for (var j = 0u; j < N_FIRMS; j++) {
            z[j][k] = utility(j, k);
            if (offered[j]) {
                shift = max(shift, z[j][k]);
            }
        }
        for (var j = 0u; j < N_FIRMS; j++) {
            z[j][k] -= shift; // <= 0 for offered products
        }
        sh_shift[k] = shift;
        sh_denom[k] = exp(-center[k] - shift); // the outside option: e^(0 - shift)
    }
    var e: array<array<f32, MAX_SEGMENTS>, MAX_FIRMS>;
    for (var j = 0u; j < N_FIRMS; j++) {
        var r = FAR_BELOW;
        for (var k = 0u; k < N_SEGMENTS; k++) {
            if (seg[k].weight > 0.0) {
                r = max(r, z[j][k]);
            }
        }
        let top = exp(min(r, 0.0)); // r <= 0 for offered products
        for (var k = 0u; k < N_SEGMENTS; k++) {
            // Segments of weight 0 enter no output; capping keeps them finite.
            let rel = exp(min(z[j][k] - r, 0.0));
            sh_rel[j][k] = rel;
            e[j][k] = select(0.0, rel * top, offered[j]); // e^(u_jk - shift_k)
            sh_denom[k] += e[j][k];
        }
    }
    for (var k = 0u; k < N_SEGMENTS; k++) {
        let inv = 1.0 / sh_denom[k];
        for (var j = 0u; j < N_FIRMS; j++) {
            sh_s[j][k] = e[j][k] * inv;
            sh_rel[j][k] *= inv;
        }
    }
}

// S_j = sum_k w_k s_jk
fn product_share(j: u32) -> f32 {
    var s = 0.0;
    for (var k = 0u; k < N_SEGMENTS; k++) {
        s += seg[k].weight * sh_s[j][k];
    }
    return s;
}

// s_out = sum_k w_k e^-shift_k / denom_k, from its own terms.
fn outside_share() -> f32 {
    var s = 0.0;
    for (var k = 0u; k < N_SEGMENTS; k++) {
        s += seg[k].weight * exp(-center[k] - sh_shift[k]) / sh_denom[k];
    }
    return s;
}

// ln(1 + sum_j exp(u_jk)) for segment k.
fn inclusive_value(k: u32) -> f32 {
    return center[k] + sh_shift[k] + log(sh_denom[k]);
}

// One zeta-markup update m_j <- (S_j + Gamma_j m_j) / Lambda_j, with S_j,
// Lambda_j = sum_k w_k alpha_k s_jk and Gamma_j = sum_k w_k alpha_k s_jk^2 all
// divided by e^(r_j) (see sh_rel): the reference's rescaled branch, here taken
// always. It is the same ratio, and in f32 the unscaled one would lose Lambda_j
// to underflow below about 1e-38.
fn zeta_update(j: u32, m: f32) -> f32 {
    var num = 0.0;
    var den = 0.0;
    for (var k = 0u; k < N_SEGMENTS; k++) {
        let wr = seg[k].weight * sh_rel[j][k];
        num += wr * (1.0 + seg[k].price_sens * sh_s[j][k] * m);
        den += seg[k].price_sens * wr;
    }
    return num / den;
}

// hhi = 1e4 sum_j (S_j / sum_l S_l)^2 for the current shares, 0 when nothing is
// bought. When the products' total share is tiny (it underflows in f32 long
// before it does in f64) the same ratios are evaluated with every term
// w_k e^(u_jk - shift_k) / denom_k divided by the largest e^(u_jk - shift_k), in
// logs. "Nothing is bought" is then judged as in the f64 reference, where
// bought = 0 exactly when every e^(u_jk - shift_k) of a weighted segment
// underflows (argument below F64_EXP_UNDERFLOW).
const F64_EXP_UNDERFLOW: f32 = -745.13;

fn hhi_of() -> f32 {
    var hhi = 0.0;
    if (bought > TINY_BOUGHT) {
        for (var j = 0u; j < N_FIRMS; j++) {
            if (offered[j]) {
                let x = share[j] / bought;
                hhi += x * x;
            }
        }
        return 1e4 * hhi;
    }
    var top = 0.0;
    var have_top = false;
    for (var j = 0u; j < N_FIRMS; j++) {
        for (var k = 0u; k < N_SEGMENTS; k++) {
            if (offered[j] && seg[k].weight > 0.0) {
                let z = utility(j, k) - sh_shift[k];
                if (!have_top || z > top) {
                    top = z;
                    have_top = true;
                }
            }
        }
    }
    if (!have_top || top < F64_EXP_UNDERFLOW) {
        return 0.0; // nothing on offer, or nothing bought
    }
    var scaled: array<f32, MAX_FIRMS>;
    var total = 0.0;
    for (var j = 0u; j < N_FIRMS; j++) {
        var s = 0.0;
        if (offered[j]) {
            for (var k = 0u; k < N_SEGMENTS; k++) {
                let z = utility(j, k) - sh_shift[k];
                // <= 0 for weighted segments (denom >= 1); weight-0 ones add nothing.
                s += seg[k].weight * exp(min(z - top - log(sh_denom[k]), 0.0));
            }
        }
        scaled[j] = s;
        total += s;
    }
    for (var j = 0u; j < N_FIRMS; j++) {
        let x = scaled[j] / total;
        hhi += x * x;
    }
    return 1e4 * hhi;
}

// ---------------------------------------------------------------------------
// Sections 2, 4 and 5: the month-by-month equilibrium (src/model/solve.rs)

// The state carried from month to month (section 2) and the running totals.
var<private> q: array<f32, MAX_FIRMS>;
var<private> c0: array<f32, MAX_FIRMS>;        // the current generation's serving cost
var<private> spend: array<f32, MAX_FIRMS>;     // the current generation's yearly spend
var<private> generations: array<f32, MAX_FIRMS>;
var<private> raised: array<f32, MAX_FIRMS>;
var<private> community: array<f32, MAX_FIRMS>;
var<private> cash: array<f32, MAX_FIRMS>;
var<private> alive: array<bool, MAX_FIRMS>;
var<private> markup: array<f32, MAX_FIRMS>;
var<private> markup_set: array<bool, MAX_FIRMS>; // false = unset
var<private> npv: array<f32, MAX_FIRMS>;
var<private> complement_npv: array<f32, MAX_FIRMS>;
var<private> exit_month: array<f32, MAX_FIRMS>;
var<private> first_release: i32;
var<private> any_release: bool;
var<private> markup_start: f32;
var<private> cs_npv: f32;
var<private> max_iterations: u32;
var<private> nonconverged_months: u32;

// Loads the scenario; section 1 for every firm, and section 2's initial state.
fn start(row: u32) {
    loops_cut = false;
    let pb = row * P_STRIDE;
    mp = load_model(pb);
    var markup_start_den = 0.0;
    for (var k = 0u; k < N_SEGMENTS; k++) {
        seg[k] = load_segment(pb + P_FIRMS + N_FIRMS * F_STRIDE + k * S_STRIDE);
        markup_start_den += seg[k].weight * seg[k].price_sens;
    }
    markup_start = 1.0 / markup_start_den;
    first_release = 0;
    any_release = false;
    for (var i = 0u; i < N_FIRMS; i++) {
        firm[i] = load_firm(pb + P_FIRMS + i * F_STRIDE);
        // The first generation is trained at month 0 by new_generation (solve).
        q[i] = FAR_BELOW;
        c0[i] = 0.0;
        spend[i] = 0.0;
        generations[i] = 0.0;
        raised[i] = 0.0;
        released[i] = false;
        community[i] = 0.0;
        cash[i] = firm[i].funding;
        alive[i] = true;
        markup[i] = 0.0;
        markup_set[i] = false;
        npv[i] = 0.0;
        complement_npv[i] = 0.0;
        exit_month[i] = -1.0;
    }
    cs_npv = 0.0;
    max_iterations = 0u;
    nonconverged_months = 0u;
}

// Section 2, generations: at the start of every month t with t mod G = 0, each
// alive firm trains a generation with spend and data grown at its yearly rates,
// exp((t/12) ln(1 + g)); its capability becomes the better of the old and the
// new, its serving cost and spend the new generation's. solve calls it at the
// start of each generation's months, month 0 included: there the growth factor
// is exactly 1, which gives the first generation (q starts below any capability).
fn new_generation(t: u32) {
    let years = f32(t) / 12.0;
    for (var i = 0u; i < N_FIRMS; i++) {
        tr_ln_c6[i] = firm[i].ln_c6 + years * firm[i].ln1p_spend_growth;
        tr_ln_u[i] = firm[i].ln_data_tokens + years * firm[i].ln1p_data_growth;
    }
    train_all();
    for (var i = 0u; i < N_FIRMS; i++) {
        if (alive[i]) {
            q[i] = max(q[i], tr_q[i]);
            c0[i] = tr_c[i];
            spend[i] = firm[i].train_spend * exp(years * firm[i].ln1p_spend_growth);
            generations[i] += 1.0;
        }
    }
}

// Section 2, release: at the start of its release month a firm that is alive
// becomes released, for the rest of the horizon; one that has exited never does.
fn release(t: i32) {
    for (var i = 0u; i < N_FIRMS; i++) {
        if (i32(firm[i].release_month) == t && alive[i]) {
            released[i] = true;
            if (!any_release) {
                first_release = t;
                any_release = true;
            }
        }
    }
}

// Section 2: every product on offer in month t, with its quality, cost, open
// flag, brand and (released) price; closed products start from last month's markup.
fn offer_products(t: i32) {
    n_closed = 0u;
    for (var i = 0u; i < N_FIRMS; i++) {
        let is_rel = released[i];
        offered[i] = is_rel || alive[i];
        closed[i] = false;
        price[i] = 0.0;
        margin[i] = 0.0;
        quality[i] = 0.0;
        cost[i] = 0.0;
        if (offered[i]) {
            var qj: f32;
            var cj: f32;
            var open: f32;
            var brand: f32;
            if (is_rel) {
                qj = q[i] + mp.community_quality * log1p(community[i]);
                cj = c0[i] / (1.0 + mp.community_cost * community[i]);
                open = 1.0;
                brand = firm[i].brand;
                price[i] = cj; // competing hosts serve open weights at cost
            } else {
                qj = q[i];
                cj = c0[i];
                open = 0.0;
                brand = firm[i].brand;
                if (any_release && t >= first_release) {
                    brand = firm[i].brand * exp(-mp.talent_decay * f32(t - first_release));
                }
                if (!markup_set[i]) {
                    markup[i] = markup_start;
                    markup_set[i] = true;
                }
                price[i] = cj + markup[i];
                margin[i] = markup[i];
                closed[i] = true;
                n_closed += 1u;
            }
            for (var k = 0u; k < N_SEGMENTS; k++) {
                base[i][k] = seg[k].intercept + seg[k].quality_taste * qj + brand + seg[k].open_taste * open - seg[k].price_sens * cj;
            }
            quality[i] = qj;
            cost[i] = cj;
        }
    }
    for (var k = 0u; k < N_SEGMENTS; k++) {
        center[k] = 0.0;
        for (var j = 0u; j < N_FIRMS; j++) {
            if (offered[j]) {
                center[k] = max(center[k], base[j][k]);
            }
        }
        for (var j = 0u; j < N_FIRMS; j++) {
            if (offered[j]) {
                base[j][k] -= center[k];
            }
        }
    }
}

// Section 3: Bertrand-Nash markups by the zeta fixed point, warm-started, then the
// shares once more at the final prices. As in the reference, the markup itself is
// the state and p = c + m: in f32 a markup recovered as p - c would lose its low
// bits whenever c >> m (a large model's serving cost), and the relative change
// could then never fall below tol.
fn solve_markups() {
    let max_iter = u32(mp.max_iter);
    var iterations = 0u;
    var converged = n_closed == 0u;
    loop {
        if (converged || iterations >= max_iter) {
            break;
        }
        shares();
        // max_j |m_new - m| / (1 + |m|) < tol, tested without the division.
        converged = true;
        var new_markup = markup;
        for (var j = 0u; j < N_FIRMS; j++) {
            if (closed[j]) {
                let old = markup[j];
                let m_new = zeta_update(j, old);
                converged = converged && abs(m_new - old) < mp.tol * (1.0 + abs(old));
                new_markup[j] = m_new;
            }
        }
        for (var j = 0u; j < N_FIRMS; j++) {
            if (closed[j]) {
                markup[j] = new_markup[j];
                margin[j] = markup[j];
                price[j] = cost[j] + markup[j];
            }
        }
        iterations += 1u;
    }
    if (!converged && iterations < max_iter) {
        loops_cut = true;
    }
    if (!converged) {
        nonconverged_months += 1u;
    }
    max_iterations = max(max_iterations, iterations);
    shares();
    bought = 0.0;
    for (var j = 0u; j < N_FIRMS; j++) {
        share[j] = 0.0;
        if (offered[j]) {
            share[j] = product_share(j);
            bought += share[j]; // 1 - s_out, from the products' own terms
        }
    }
}

// Section 4: consumer surplus, each alive firm's flows and cash, and investors'
// decision for a firm whose cash turns negative: refinance it while its product
// leads the best other released product by the hurdle, or let it exit.
fn settle_money(t: i32) {
    let market = mp.market0 * exp(f32(t) * mp.ln1p_market_growth);
    let d = exp(f32(t) * mp.ln_discount);
    var surplus = 0.0;
    for (var k = 0u; k < N_SEGMENTS; k++) {
        surplus += seg[k].weight * inclusive_value(k) / seg[k].price_sens;
    }
    cs_npv += d * market * surplus;

    // The best and second-best released product: lead_i compares with the best
    // released product other than i's own.
    var best = 0.0;
    var best_firm = N_FIRMS;
    var second = 0.0;
    var have_second = false;
    for (var l = 0u; l < N_FIRMS; l++) {
        if (released[l]) {
            if (best_firm == N_FIRMS || quality[l] > best) {
                second = best;
                have_second = best_firm != N_FIRMS;
                best = quality[l];
                best_firm = l;
            } else if (!have_second || quality[l] > second) {
                second = quality[l];
                have_second = true;
            }
        }
    }
    for (var i = 0u; i < N_FIRMS; i++) {
        if (offered[i] && alive[i]) {
            var direct = 0.0;
            if (!released[i]) {
                direct = market * share[i] * markup[i]; // p - c
            }
            let complement = firm[i].platform_revenue / 12.0 * mp.ad_uplift * bought;
            let flow = direct + complement - spend[i] / 12.0;
            npv[i] += d * flow;
            complement_npv[i] += d * complement;
            cash[i] += flow;
            // Short by more than a thousandth of a month's spend (cash_threshold).
            if (cash[i] < -spend[i] / 12000.0) {
                // lead_i: this product's quality over the best other released one's.
                let rival = select(best, second, best_firm == i);
                let have_rival = select(best_firm != N_FIRMS, have_second, best_firm == i);
                if (mp.investor_runway > 0.0 && (!have_rival || quality[i] - rival >= mp.investor_hurdle)) {
                    let top_up = mp.investor_runway * spend[i] / 12.0;
                    raised[i] += top_up - cash[i]; // financing, not a flow: npv is unchanged
                    cash[i] = top_up;
                } else {
                    alive[i] = false;
                    exit_month[i] = f32(t);
                    markup_set[i] = false;
                }
            }
        }
    }
}

// Section 4, end of month: the community stock of released weights, then the
// spillover to every firm that is not released.
fn end_month() {
    var best = 0.0;
    var any_released = false;
    for (var j = 0u; j < N_FIRMS; j++) {
        if (released[j]) {
            if (!any_released || quality[j] > best) {
                best = quality[j];
            }
            any_released = true;
            var gain = 0.0;
            // S^elasticity; shares below the smallest normal f32 add nothing.
            if (share[j] > 1.1754944e-38) {
                gain = exp(mp.community_elasticity * log(share[j]));
            }
            community[j] = (1.0 - mp.community_decay) * community[j] + mp.community_gain * gain;
        }
    }
    if (any_released) {
        for (var i = 0u; i < N_FIRMS; i++) {
            if (!released[i]) {
                q[i] += mp.catchup_rate * max(best - mp.spill_gap - q[i], 0.0);
            }
        }
    }
}

// Section 5: the last month as solved, and the totals over the horizon.
fn write_outputs(row: u32) {
    var o: Outputs;
    o.offered = 0u;
    var open_share = 0.0;
    for (var i = 0u; i < N_FIRMS; i++) {
        if (offered[i]) {
            o.offered |= 1u << i;
            o.quality[i] = quality[i];
            if (released[i]) {
                open_share += share[i];
            }
        } else {
            o.quality[i] = q[i];
        }
        o.share[i] = share[i];
        o.price[i] = price[i];
        o.npv[i] = npv[i];
        o.complement_npv[i] = complement_npv[i];
        o.exit_month[i] = exit_month[i];
        o.raised[i] = raised[i];
        o.generations[i] = generations[i];
    }
    o.outside_share = outside_share();
    o.open_share = open_share;
    o.hhi = hhi_of();
    o.consumer_surplus_npv = cs_npv;
    o.max_iterations = f32(max_iterations);
    o.nonconverged_months = f32(nonconverged_months);
    o.loops_cut = select(0u, 1u, loops_cut);
    store_outputs(row * O_STRIDE, o);
}

fn solve(row: u32) {
    start(row);
    let months = u32(mp.months);
    // The months as generations of G months (all of them when G = 0), each opened
    // by new_generation: a loop, not a test in every month, because llvmpipe runs
    // the body of an `if` for every lane, taken or not, but skips a loop that no
    // lane enters.
    let g = u32(mp.generation_months);
    let period = select(g, months, g == 0u);
    var t = 0u;
    loop {
        if (t >= months) {
            break;
        }
        new_generation(t);
        let end = min(t + period, months);
        for (; t < end; t++) {
            release(i32(t));
            offer_products(i32(t));
            solve_markups();
            settle_money(i32(t));
            // Not after the last month: its q is an output.
            if (t + 1u < months) {
                end_month();
            }
        }
    }
    if (t != months) {
        loops_cut = true;
    }
    write_outputs(row);
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let row = gid.y * chunk.row_pitch + gid.x;
    if (row >= chunk.rows) {
        return;
    }
    solve(row);
}
