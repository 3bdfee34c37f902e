// The moat model, version 1 (shared/MODEL.md), in f32: one invocation solves one
// scenario (one row of a sweep). It mirrors the f64 CPU reference in
// src/model/{scaling,demand,solve}.rs: same names, same order of operations,
// except where a comment says why not (shares and zeta_update).
//
// WGSL assumes finite math, so nothing here relies on inf or NaN: an unset
// markup is an explicit flag, maxima start from a flag instead of -inf, and
// every log is taken of a value known to be positive.
//
// Pipeline-overridable constants (set per pipeline by src/gpu/context.rs):
// N_FIRMS and N_SEGMENTS fix the shape of every scenario of a source. Before
// compiling, the host expands every `for (var j = 0u; j < N_FIRMS; j++)` loop
// (and the same over N_SEGMENTS) into one block per index (src/gpu/source.rs),
// so every private array index is a constant: on llvmpipe that keeps the arrays
// in registers, and no such loop counts towards llvmpipe's silent cap of 65,535
// loop iterations per invocation (src/gpu/mod.rs, `loop_iterations`). Those
// loops therefore never `break` or `continue`.
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
// Data layout: identical to src/gpu/layout.rs (a unit test compares the two).
//
// params: array<f32>, P_STRIDE floats per scenario: a header of P_FIRMS floats,
// then N_FIRMS blocks of F_STRIDE floats, then N_SEGMENTS blocks of S_STRIDE.
// Integers are stored as f32 values (exact below 2^24), never as raw bits. Fields named LN_* were computed on
// the host in f64 and rounded once to f32 (ranges that f32 cannot hold directly).
const P_MONTHS: u32 = 0u;
const P_MAX_ITER: u32 = 1u;
const P_TOL: u32 = 2u;
const P_LN_DISCOUNT: u32 = 3u;      // ln(discount)
const P_MARKET0: u32 = 4u;
const P_LN1P_GROWTH: u32 = 5u;      // ln(1 + market_growth)
const P_LN_SERVE: u32 = 6u;         // ln(2 * 1e6 * infer_usd_per_flop)
const P_SPILL_GAP: u32 = 7u;
const P_CATCHUP_RATE: u32 = 8u;
const P_TALENT_DECAY: u32 = 9u;
const P_COMMUNITY_GAIN: u32 = 10u;
const P_COMMUNITY_DECAY: u32 = 11u;
const P_COMMUNITY_ELASTICITY: u32 = 12u;
const P_COMMUNITY_QUALITY: u32 = 13u;
const P_COMMUNITY_COST: u32 = 14u;
const P_AD_UPLIFT: u32 = 15u;
const P_A: u32 = 16u;
const P_B: u32 = 17u;
const P_ALPHA: u32 = 18u;
const P_BETA: u32 = 19u;
const P_REPEAT_SCALE: u32 = 20u;
const P_LN_LOSS_GAP: u32 = 21u;     // ln(loss_ref - E)
const P_FIRMS: u32 = 22u;
// firm block
const F_LN_C6: u32 = 0u;            // ln(train_spend / train_usd_per_flop / 6)
const F_LN_U: u32 = 1u;             // ln(data_tokens)
const F_RELEASE_MONTH: u32 = 2u;    // -1 = never
const F_BRAND: u32 = 3u;
const F_PLATFORM_REVENUE: u32 = 4u;
const F_TRAIN_SPEND: u32 = 5u;
const F_FUNDING: u32 = 6u;
const F_STRIDE: u32 = 7u;
// segment block
const S_WEIGHT: u32 = 0u;
const S_INTERCEPT: u32 = 1u;
const S_PRICE_SENS: u32 = 2u;
const S_QUALITY_TASTE: u32 = 3u;
const S_OPEN_TASTE: u32 = 4u;
const S_STRIDE: u32 = 5u;

override P_STRIDE: u32 = P_FIRMS + N_FIRMS * F_STRIDE + N_SEGMENTS * S_STRIDE;

// outputs: array<u32>, O_STRIDE words per scenario: a header of O_FIRMS words,
// then N_FIRMS blocks of OF_STRIDE words. f32 values are stored as their bits.
const O_OFFERED: u32 = 0u;          // u32 bitmask
const O_OUTSIDE_SHARE: u32 = 1u;
const O_OPEN_SHARE: u32 = 2u;
const O_HHI: u32 = 3u;
const O_CONSUMER_SURPLUS_NPV: u32 = 4u;
const O_MAX_ITERATIONS: u32 = 5u;   // u32
const O_NONCONVERGED_MONTHS: u32 = 6u; // u32
const O_LOOPS_CUT: u32 = 7u;        // u32: 1 when a loop ended early (llvmpipe's cap)
const O_FIRMS: u32 = 8u;
const OF_SHARE: u32 = 0u;
const OF_PRICE: u32 = 1u;
const OF_QUALITY: u32 = 2u;
const OF_NPV: u32 = 3u;
const OF_COMPLEMENT_NPV: u32 = 4u;
const OF_EXIT_MONTH: u32 = 5u;      // i32 bits
const OF_STRIDE: u32 = 6u;

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

// ---------------------------------------------------------------------------
// Section 1: capability from compute and data (src/model/scaling.rs)

const BISECTION_STEPS: u32 = 60u;
const LN_1E6: f32 = 13.815510557964274;
// Largest exponent handed to expm1 in effective_tokens: beyond it D/U > 5e34 and
// D' has long saturated at U (1 + R*); only ln g = -r/R* keeps growing, and the
// clamp keeps it finite (f32 overflows near e^88.7).
const MAX_LN_REPEAT: f32 = 80.0;

var<private> sc_a: f32;
var<private> sc_b: f32;
var<private> sc_alpha: f32;
var<private> sc_beta: f32;
var<private> sc_repeat_scale: f32;

// (ln D', ln g) for ln D tokens of which U = e^ln_u are unique (Muennighoff et al.).
fn effective_tokens(ln_d: f32, ln_u: f32) -> vec2<f32> {
    if (ln_d <= ln_u) {
        return vec2<f32>(ln_d, 0.0);
    }
    let r = expm1(min(ln_d - ln_u, MAX_LN_REPEAT)); // r = D/U - 1
    let r_over = r / sc_repeat_scale;
    // D' = U (1 + R* (1 - e^(-r/R*)))
    let ln_dp = ln_u + log1p(-sc_repeat_scale * expm1(-r_over));
    return vec2<f32>(ln_dp, -r_over);
}

struct Trained {
    // x = ln N
    ln_params: f32,
    reducible_loss: f32,
    q0: f32,
    c0: f32,
}

// Set when a loop ended before its own exit condition held: llvmpipe silently
// ends every loop of an invocation after 65,535 iterations in all. The loops
// that can run long (bisection, months, markup iterations) check their counters
// on the way out; the loops over firms and segments are expanded on the host.
var<private> loops_cut: bool;

fn train(ln_c6: f32, ln_u: f32, ln_loss_gap: f32, ln_serve: f32) -> Trained {
    let ln_beta_b = log(sc_beta * sc_b);
    let ln_alpha_a = log(sc_alpha * sc_a);

    var lo = LN_1E6;
    var hi = ln_c6 - LN_1E6;
    var halving = 0u;
    for (; halving < BISECTION_STEPS; halving++) {
        let m = 0.5 * (lo + hi);
        let ln_d = ln_c6 - m;
        let et = effective_tokens(ln_d, ln_u);
        // dL/dx > 0  <=>  ln(beta B) + ln g + ln D - (beta+1) ln D' > ln(alpha A) - alpha m
        if (ln_beta_b + et.y + ln_d - (sc_beta + 1.0) * et.x > ln_alpha_a - sc_alpha * m) {
            hi = m;
        } else {
            lo = m;
        }
    }
    if (halving != BISECTION_STEPS) {
        loops_cut = true;
    }
    let x = 0.5 * (lo + hi);

    let ln_dp = effective_tokens(ln_c6 - x, ln_u).x;
    var t: Trained;
    t.ln_params = x;
    t.reducible_loss = sc_a * exp(-sc_alpha * x) + sc_b * exp(-sc_beta * ln_dp);
    t.q0 = ln_loss_gap - log(t.reducible_loss);
    // c0 = 2 N 1e6 infer_usd_per_flop = e^(x + ln(2e6 infer_usd_per_flop))
    t.c0 = exp(x + ln_serve);
    return t;
}

// ---------------------------------------------------------------------------
// Section 3: demand and the zeta-markup update (src/model/demand.rs)

// Below this total share, hhi is evaluated in a rescaled form (hhi_of).
const TINY_BOUGHT: f32 = 1e-30;
// A utility difference no scenario reaches: the start of a running maximum.
const FAR_BELOW: f32 = -1e30;

// Segments.
var<private> seg_weight: array<f32, MAX_SEGMENTS>;
var<private> seg_intercept: array<f32, MAX_SEGMENTS>;
var<private> seg_price_sens: array<f32, MAX_SEGMENTS>;
var<private> seg_quality_taste: array<f32, MAX_SEGMENTS>;
var<private> seg_open_taste: array<f32, MAX_SEGMENTS>;

// Products of the month: product j is firm j's (no compaction; `offered` masks).
var<private> offered: array<bool, MAX_FIRMS>;
var<private> base: array<array<f32, MAX_SEGMENTS>, MAX_FIRMS>;
var<private> price: array<f32, MAX_FIRMS>;

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

// u_jk = base_jk - alpha_k p_j
fn utility(k: u32, b: f32, p: f32) -> f32 {
    return b - seg_price_sens[k] * p;
}

// s_jk = exp(u_jk) / (1 + sum_l exp(u_lk)), stably (subtract max(0, max_l u_lk)).
// The exponentials are taken relative to each product's largest weighted
// utility, so the same ones (one per product and segment, one per product) give
// both sh_s and sh_rel: llvmpipe runs both sides of every branch, so a separate
// rescaled branch would cost as much again.
fn shares() {
    var z: array<array<f32, MAX_SEGMENTS>, MAX_FIRMS>;
    for (var k = 0u; k < N_SEGMENTS; k++) {
        var shift = 0.0;
        for (var j = 0u; j < N_FIRMS; j++) {
            z[j][k] = utility(k, base[j][k], price[j]);
            if (offered[j]) {
                shift = max(shift, z[j][k]);
            }
        }
        for (var j = 0u; j < N_FIRMS; j++) {
            z[j][k] -= shift; // <= 0 for offered products
        }
        sh_shift[k] = shift;
        sh_denom[k] = exp(-shift);
    }
    var e: array<array<f32, MAX_SEGMENTS>, MAX_FIRMS>;
    for (var j = 0u; j < N_FIRMS; j++) {
        var r = FAR_BELOW;
        for (var k = 0u; k < N_SEGMENTS; k++) {
            if (seg_weight[k] > 0.0) {
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
        s += seg_weight[k] * sh_s[j][k];
    }
    return s;
}

// s_out = sum_k w_k e^-shift_k / denom_k, from its own terms.
fn outside_share() -> f32 {
    var s = 0.0;
    for (var k = 0u; k < N_SEGMENTS; k++) {
        s += seg_weight[k] * exp(-sh_shift[k]) / sh_denom[k];
    }
    return s;
}

// ln(1 + sum_j exp(u_jk)) for segment k.
fn inclusive_value(k: u32) -> f32 {
    return sh_shift[k] + log(sh_denom[k]);
}

// One zeta-markup update m_j <- (S_j + Gamma_j m_j) / Lambda_j, with S_j,
// Lambda_j = sum_k w_k alpha_k s_jk and Gamma_j = sum_k w_k alpha_k s_jk^2 all
// divided by e^(r_j) (see sh_rel): the reference's rescaled branch, here taken
// always. It is the same ratio, and in f32 the unscaled one would lose Lambda_j
// to underflow below about 1e-38.
fn zeta_update(j: u32, markup: f32) -> f32 {
    var num = 0.0;
    var den = 0.0;
    for (var k = 0u; k < N_SEGMENTS; k++) {
        let wr = seg_weight[k] * sh_rel[j][k];
        num += wr * (1.0 + seg_price_sens[k] * sh_s[j][k] * markup);
        den += seg_price_sens[k] * wr;
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

fn hhi_of(share: ptr<function, array<f32, MAX_FIRMS>>, bought: f32) -> f32 {
    var hhi = 0.0;
    if (bought > TINY_BOUGHT) {
        for (var j = 0u; j < N_FIRMS; j++) {
            if (offered[j]) {
                let x = (*share)[j] / bought;
                hhi += x * x;
            }
        }
        return 1e4 * hhi;
    }
    var top = 0.0;
    var have_top = false;
    for (var j = 0u; j < N_FIRMS; j++) {
        for (var k = 0u; k < N_SEGMENTS; k++) {
            if (offered[j] && seg_weight[k] > 0.0) {
                let z = utility(k, base[j][k], price[j]) - sh_shift[k];
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
                let z = utility(k, base[j][k], price[j]) - sh_shift[k];
                // <= 0 for weighted segments (denom >= 1); weight-0 ones add nothing.
                s += seg_weight[k] * exp(min(z - top - log(sh_denom[k]), 0.0));
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

fn par(row_base: u32, offset: u32) -> f32 {
    return params[row_base + offset];
}

fn put_f32(out_base: u32, offset: u32, v: f32) {
    outputs[out_base + offset] = bitcast<u32>(v);
}

fn put_u32(out_base: u32, offset: u32, v: u32) {
    outputs[out_base + offset] = v;
}

fn solve(row: u32) {
    loops_cut = false;
    let pb = row * P_STRIDE;
    let months = u32(par(pb, P_MONTHS));
    let max_iter = u32(par(pb, P_MAX_ITER));
    let tol = par(pb, P_TOL);
    let ln_discount = par(pb, P_LN_DISCOUNT);
    let market0 = par(pb, P_MARKET0);
    let ln1p_growth = par(pb, P_LN1P_GROWTH);
    let ln_serve = par(pb, P_LN_SERVE);
    let spill_gap = par(pb, P_SPILL_GAP);
    let catchup_rate = par(pb, P_CATCHUP_RATE);
    let talent_decay = par(pb, P_TALENT_DECAY);
    let community_gain = par(pb, P_COMMUNITY_GAIN);
    let community_decay = par(pb, P_COMMUNITY_DECAY);
    let community_elasticity = par(pb, P_COMMUNITY_ELASTICITY);
    let community_quality = par(pb, P_COMMUNITY_QUALITY);
    let community_cost = par(pb, P_COMMUNITY_COST);
    let ad_uplift = par(pb, P_AD_UPLIFT);
    sc_a = par(pb, P_A);
    sc_b = par(pb, P_B);
    sc_alpha = par(pb, P_ALPHA);
    sc_beta = par(pb, P_BETA);
    sc_repeat_scale = par(pb, P_REPEAT_SCALE);
    let ln_loss_gap = par(pb, P_LN_LOSS_GAP);

    let sb = pb + P_FIRMS + N_FIRMS * F_STRIDE;
    var markup_start_den = 0.0;
    for (var k = 0u; k < N_SEGMENTS; k++) {
        let o = sb + k * S_STRIDE;
        seg_weight[k] = par(o, S_WEIGHT);
        seg_intercept[k] = par(o, S_INTERCEPT);
        seg_price_sens[k] = par(o, S_PRICE_SENS);
        seg_quality_taste[k] = par(o, S_QUALITY_TASTE);
        seg_open_taste[k] = par(o, S_OPEN_TASTE);
        markup_start_den += seg_weight[k] * seg_price_sens[k];
    }
    let markup_start = 1.0 / markup_start_den;

    // Section 1: every firm's trained model; section 2: t* and the carried state.
    var release_month: array<i32, MAX_FIRMS>;
    var brand0: array<f32, MAX_FIRMS>;
    var platform_revenue: array<f32, MAX_FIRMS>;
    var train_spend: array<f32, MAX_FIRMS>;
    var q0: array<f32, MAX_FIRMS>;
    var c0: array<f32, MAX_FIRMS>;
    var q: array<f32, MAX_FIRMS>;
    var community: array<f32, MAX_FIRMS>;
    var cash: array<f32, MAX_FIRMS>;
    var alive: array<bool, MAX_FIRMS>;
    var markup: array<f32, MAX_FIRMS>;
    var markup_set: array<bool, MAX_FIRMS>; // false = unset
    var npv: array<f32, MAX_FIRMS>;
    var complement_npv: array<f32, MAX_FIRMS>;
    var exit_month: array<i32, MAX_FIRMS>;
    var first_release = 0;
    var any_release = false;
    for (var i = 0u; i < N_FIRMS; i++) {
        let o = pb + P_FIRMS + i * F_STRIDE;
        let t = train(par(o, F_LN_C6), par(o, F_LN_U), ln_loss_gap, ln_serve);
        q0[i] = t.q0;
        c0[i] = t.c0;
        release_month[i] = i32(par(o, F_RELEASE_MONTH));
        brand0[i] = par(o, F_BRAND);
        platform_revenue[i] = par(o, F_PLATFORM_REVENUE);
        train_spend[i] = par(o, F_TRAIN_SPEND);
        if (release_month[i] >= 0 && (!any_release || release_month[i] < first_release)) {
            first_release = release_month[i];
            any_release = true;
        }
        q[i] = q0[i];
        community[i] = 0.0;
        cash[i] = par(o, F_FUNDING);
        alive[i] = true;
        markup[i] = 0.0;
        markup_set[i] = false;
        npv[i] = 0.0;
        complement_npv[i] = 0.0;
        exit_month[i] = -1;
    }

    var cs_npv = 0.0;
    var max_iterations = 0u;
    var nonconverged_months = 0u;
    // The month's products and shares; after the loop, those of the last month.
    var released: array<bool, MAX_FIRMS>;
    var quality: array<f32, MAX_FIRMS>;
    var share: array<f32, MAX_FIRMS>;
    var bought = 0.0;
    var t = 0u;
    for (; t < months; t++) {
        let ti = i32(t);
        // Products on offer this month.
        var closed: array<bool, MAX_FIRMS>;
        var cost: array<f32, MAX_FIRMS>;
        var n_closed = 0u;
        for (var i = 0u; i < N_FIRMS; i++) {
            let is_released = release_month[i] >= 0 && ti >= release_month[i];
            released[i] = is_released;
            offered[i] = is_released || alive[i];
            closed[i] = false;
            price[i] = 0.0;
            quality[i] = 0.0;
            cost[i] = 0.0;
            if (offered[i]) {
                var qj: f32;
                var cj: f32;
                var open: f32;
                var brand: f32;
                if (is_released) {
                    qj = q0[i] + community_quality * log1p(community[i]);
                    cj = c0[i] / (1.0 + community_cost * community[i]);
                    open = 1.0;
                    brand = brand0[i];
                    price[i] = cj; // competing hosts serve open weights at cost
                } else {
                    qj = q[i];
                    cj = c0[i];
                    open = 0.0;
                    brand = brand0[i];
                    if (any_release && ti >= first_release) {
                        brand = brand0[i] * exp(-talent_decay * f32(ti - first_release));
                    }
                    if (!markup_set[i]) {
                        markup[i] = markup_start;
                        markup_set[i] = true;
                    }
                    price[i] = cj + markup[i];
                    closed[i] = true;
                    n_closed += 1u;
                }
                for (var k = 0u; k < N_SEGMENTS; k++) {
                    base[i][k] = seg_intercept[k] + seg_quality_taste[k] * qj + brand + seg_open_taste[k] * open;
                }
                quality[i] = qj;
                cost[i] = cj;
            }
        }

        // Section 3: Bertrand-Nash markups by the zeta fixed point, warm-started.
        // As in the reference, the markup itself is the state and p = c + m: in f32
        // a markup recovered as p - c would lose its low bits whenever c >> m (a
        // large model's serving cost), and the relative change could then never
        // fall below tol.
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
                    converged = converged && abs(m_new - old) < tol * (1.0 + abs(old));
                    new_markup[j] = m_new;
                }
            }
            for (var j = 0u; j < N_FIRMS; j++) {
                if (closed[j]) {
                    markup[j] = new_markup[j];
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
        // Shares once more at the final prices.
        shares();
        bought = 0.0;
        for (var j = 0u; j < N_FIRMS; j++) {
            share[j] = 0.0;
            if (offered[j]) {
                share[j] = product_share(j);
                bought += share[j]; // 1 - s_out, from the products' own terms
            }
        }

        // Section 4: money and exits.
        let market = market0 * exp(f32(t) * ln1p_growth);
        let d = exp(f32(t) * ln_discount);
        var surplus = 0.0;
        for (var k = 0u; k < N_SEGMENTS; k++) {
            surplus += seg_weight[k] * inclusive_value(k) / seg_price_sens[k];
        }
        cs_npv += d * market * surplus;

        for (var i = 0u; i < N_FIRMS; i++) {
            if (offered[i] && alive[i]) {
                var direct = 0.0;
                if (!released[i]) {
                    direct = market * share[i] * markup[i]; // p - c
                }
                let complement = platform_revenue[i] / 12.0 * ad_uplift * bought;
                let flow = direct + complement - train_spend[i] / 12.0;
                npv[i] += d * flow;
                complement_npv[i] += d * complement;
                cash[i] += flow;
                if (cash[i] < 0.0) {
                    alive[i] = false;
                    exit_month[i] = ti;
                    markup_set[i] = false;
                }
            }
        }

        // End of month: community stock of released weights, then spillover to the
        // rest (not after the last month: its q is an output).
        if (t + 1u == months) {
            continue;
        }
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
                    gain = exp(community_elasticity * log(share[j]));
                }
                community[j] = (1.0 - community_decay) * community[j] + community_gain * gain;
            }
        }
        if (any_released) {
            for (var i = 0u; i < N_FIRMS; i++) {
                if (!released[i]) {
                    q[i] += catchup_rate * max(best - spill_gap - q[i], 0.0);
                }
            }
        }
    }

    if (t != months) {
        loops_cut = true;
    }

    // Section 5: the last month as solved, and the totals.
    let ob = row * O_STRIDE;
    var offered_mask = 0u;
    var open_share = 0.0;
    for (var i = 0u; i < N_FIRMS; i++) {
        let fb = ob + O_FIRMS + i * OF_STRIDE;
        if (offered[i]) {
            offered_mask |= 1u << i;
            put_f32(fb, OF_QUALITY, quality[i]);
            if (released[i]) {
                open_share += share[i];
            }
        } else {
            put_f32(fb, OF_QUALITY, q[i]);
        }
        put_f32(fb, OF_SHARE, share[i]);
        put_f32(fb, OF_PRICE, price[i]);
        put_f32(fb, OF_NPV, npv[i]);
        put_f32(fb, OF_COMPLEMENT_NPV, complement_npv[i]);
        put_u32(fb, OF_EXIT_MONTH, bitcast<u32>(exit_month[i]));
    }
    put_u32(ob, O_OFFERED, offered_mask);
    put_f32(ob, O_OUTSIDE_SHARE, outside_share());
    put_f32(ob, O_OPEN_SHARE, open_share);
    put_f32(ob, O_HHI, hhi_of(&share, bought));
    put_f32(ob, O_CONSUMER_SURPLUS_NPV, cs_npv);
    put_u32(ob, O_MAX_ITERATIONS, max_iterations);
    put_u32(ob, O_NONCONVERGED_MONTHS, nonconverged_months);
    put_u32(ob, O_LOOPS_CUT, select(0u, 1u, loops_cut));
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let row = gid.y * chunk.row_pitch + gid.x;
    if (row >= chunk.rows) {
        return;
    }
    solve(row);
}
