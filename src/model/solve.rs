//! docs/model.md sections 2, 4 and 5: the month-by-month equilibrium of one scenario.
//!
//! [`solve_with`] reads as the spec does; each step is one function, and the WGSL
//! kernel (`shaders/moat.wgsl`) has a function of the same name for each:
//! - [`new_generations`]: section 2, every G months each alive firm trains anew;
//! - [`release`]: section 2, alive firms release at their release month;
//! - [`offer_products`]: section 2, the products on offer this month;
//! - [`solve_markups`]: section 3, the Bertrand-Nash markups;
//! - [`settle_money`]: section 4, money, investors and exits;
//! - [`end_month`]: section 4, community stock and spillover;
//! - [`write_outputs`]: section 5, the last month as solved.

use super::demand::{self, Shares};
use super::scaling::{TrainCache, TrainInputs};
use super::{MAX_FIRMS, MAX_SEGMENTS, Out, Outcome, Scenario};

/// What one month looked like, for `moatsweep scenario` and for tests.
#[derive(Clone, Copy, Debug, Default)]
pub struct MonthRecord {
    pub month: u32,
    /// Bit i set when firm i offers a product this month.
    pub offered: u32,
    /// Bit i set when firm i is released this month.
    pub released: u32,
    /// Bit i set when firm i is alive at the start of this month.
    pub alive: u32,
    /// Q_i of the product offered, or q_i when firm i offers none.
    pub quality: [f64; MAX_FIRMS],
    pub price: [f64; MAX_FIRMS],
    pub cost: [f64; MAX_FIRMS],
    pub share: [f64; MAX_FIRMS],
    /// Cash after this month's money step (investors' top-up included).
    pub cash: [f64; MAX_FIRMS],
    /// Cash after this month's flows, before any investors' decision.
    pub cash_before_investors: [f64; MAX_FIRMS],
    /// lead_i - investor_hurdle for a firm whose cash turned negative this month
    /// (section 4; +inf when no other product is released), NaN for the others.
    pub investor_margin: [f64; MAX_FIRMS],
    /// The current generation's yearly training spend.
    pub spend: [f64; MAX_FIRMS],
    /// Generations trained so far.
    pub generations: [u32; MAX_FIRMS],
    /// Investors' money so far.
    pub raised: [f64; MAX_FIRMS],
    pub outside_share: f64,
    pub iterations: u32,
    pub converged: bool,
    /// The fixed point's contraction at its last iteration: the change of the
    /// markups projected on the previous change, <d_n, d_(n-1)> / <d_(n-1), d_(n-1)>
    /// (negative when the markups oscillate); NaN below two iterations.
    pub contraction: f64,
}

/// Receives each solved month; [`NoTrace`] compiles to nothing in a sweep.
pub trait Observer {
    const ACTIVE: bool;
    fn month(&mut self, record: &MonthRecord);
}

/// The observer of a sweep: records nothing.
pub struct NoTrace;

impl Observer for NoTrace {
    const ACTIVE: bool = false;
    fn month(&mut self, _: &MonthRecord) {}
}

impl<F: FnMut(&MonthRecord)> Observer for F {
    const ACTIVE: bool = true;
    fn month(&mut self, record: &MonthRecord) {
        self(record)
    }
}

/// Solves one scenario.
pub fn solve(sc: &Scenario) -> Outcome {
    solve_with(sc, &mut NoTrace, &mut TrainCache::default())
}

/// Solves one scenario, handing every month to `obs`.
pub fn solve_traced<O: Observer>(sc: &Scenario, obs: &mut O) -> Outcome {
    solve_with(sc, obs, &mut TrainCache::default())
}

/// The state carried from month to month (docs/model.md section 2), and the
/// running totals of section 5.
struct State {
    /// q_i: capability (new generations and spillover move it).
    q: [f64; MAX_FIRMS],
    /// c0_i: the current generation's serving cost.
    c0: [f64; MAX_FIRMS],
    /// spend_i: the current generation's yearly training spend.
    spend: [f64; MAX_FIRMS],
    /// n_i: generations trained.
    generations: [u32; MAX_FIRMS],
    released: [bool; MAX_FIRMS],
    raised: [f64; MAX_FIRMS],
    /// K_i: community stock of released weights.
    community: [f64; MAX_FIRMS],
    cash: [f64; MAX_FIRMS],
    alive: [bool; MAX_FIRMS],
    /// m_i: last month's markup, the fixed point's warm start; NaN = unset.
    markup: [f64; MAX_FIRMS],
    npv: [f64; MAX_FIRMS],
    complement_npv: [f64; MAX_FIRMS],
    exit_month: [i32; MAX_FIRMS],
    /// t*: the first month in which a firm was released, once one has been.
    first_release: Option<i32>,
    /// 1 / sum_k w_k alpha_k: where an unset markup starts.
    markup_start: f64,
    cs_npv: f64,
    max_iterations: u32,
    nonconverged_months: u32,
}

/// The products on offer in one month, compacted: product j is firm `firm_of[j]`'s.
struct Month {
    t: i32,
    n: usize,
    firm_of: [usize; MAX_FIRMS],
    released: [bool; MAX_FIRMS],
    quality: [f64; MAX_FIRMS],
    cost: [f64; MAX_FIRMS],
    price: [f64; MAX_FIRMS],
    /// The price-free part of u_jk: a_k + beta_k Q_j + b_j + theta_k o_j.
    base: [[f64; MAX_SEGMENTS]; MAX_FIRMS],
    /// The closed products (indices j), whose markups the fixed point sets.
    closed: [usize; MAX_FIRMS],
    n_closed: usize,
    /// Section 3's result: S_j at the final prices, and their sum (1 - s_out).
    share: [f64; MAX_FIRMS],
    bought: f64,
    iterations: u32,
    converged: bool,
    contraction: f64,
}

/// Solves one scenario, reusing trained models from `cache` (the hot path of a CPU sweep).
pub fn solve_with<O: Observer>(sc: &Scenario, obs: &mut O, cache: &mut TrainCache) -> Outcome {
    let mut st = start(sc, cache);
    let mut shares = Shares::default();
    let months = sc.model.months;
    let mut out = Outcome::default();
    let mut decisions = Decisions::default();
    for t in 0..months {
        new_generations(sc, &mut st, t, cache);
        release(sc, &mut st, t as i32);
        let mut month = offer_products(sc, &mut st, t as i32);
        solve_markups(sc, &mut st, &mut month, &mut shares);
        let alive_at_start = st.alive;
        settle_money(sc, &mut st, &month, &shares, &mut decisions);
        let last = t + 1 == months;
        if O::ACTIVE || last {
            let rec = record(sc, &st, &month, &shares, alive_at_start, &decisions);
            if O::ACTIVE {
                obs.month(&rec);
            }
            if last {
                write_outputs(&st, &month, &rec, &mut out);
            }
        }
        end_month(sc, &mut st, &month);
    }
    out
}

/// Section 1 for every firm, and section 2's initial state.
fn start(sc: &Scenario, cache: &mut TrainCache) -> State {
    let mut st = State {
        q: [0.0; MAX_FIRMS],
        c0: [0.0; MAX_FIRMS],
        spend: [0.0; MAX_FIRMS],
        generations: [0; MAX_FIRMS],
        released: [false; MAX_FIRMS],
        raised: [0.0; MAX_FIRMS],
        community: [0.0; MAX_FIRMS],
        cash: [0.0; MAX_FIRMS],
        alive: [false; MAX_FIRMS],
        markup: [f64::NAN; MAX_FIRMS],
        npv: [0.0; MAX_FIRMS],
        complement_npv: [0.0; MAX_FIRMS],
        exit_month: [-1; MAX_FIRMS],
        first_release: None,
        markup_start: 1.0 / sc.segments().iter().map(|s| s.weight * s.price_sens).sum::<f64>(),
        cs_npv: 0.0,
        max_iterations: 0,
        nonconverged_months: 0,
    };
    for (i, firm) in sc.firms().iter().enumerate() {
        let t = cache.train(i, 0, &TrainInputs::first_generation(&sc.model, &sc.scaling, firm));
        st.c0[i] = firm.cost_factor * t.c0;
        st.q[i] = t.q0;
        st.spend[i] = firm.train_spend;
        st.generations[i] = 1;
        st.cash[i] = firm.funding;
        st.alive[i] = true;
    }
    st
}

/// Section 2, generations: at the start of every month t > 0 with t mod G = 0,
/// each alive firm trains a new generation with spend and data grown at its
/// yearly rates, (1 + g)^(t/12); its capability becomes the better of the old and
/// the new, its serving cost and spend the new generation's.
fn new_generations(sc: &Scenario, st: &mut State, t: u32, cache: &mut TrainCache) {
    let g = sc.model.generation_months;
    if g == 0 || t == 0 || !t.is_multiple_of(g) {
        return;
    }
    for (i, firm) in sc.firms().iter().enumerate() {
        if !st.alive[i] {
            continue;
        }
        let inputs = TrainInputs::generation(&sc.model, &sc.scaling, firm, t);
        let trained = cache.train(i, (t / g) as usize, &inputs);
        st.q[i] = st.q[i].max(trained.q0);
        st.c0[i] = firm.cost_factor * trained.c0;
        st.spend[i] = inputs.spend;
        st.generations[i] += 1;
    }
}

/// Section 2, release: at the start of its release month a firm that is alive
/// becomes released, for the rest of the horizon; one that has exited never does.
fn release(sc: &Scenario, st: &mut State, t: i32) {
    for (i, firm) in sc.firms().iter().enumerate() {
        if firm.release_month == t && st.alive[i] {
            st.released[i] = true;
            st.first_release.get_or_insert(t);
        }
    }
}

/// Section 2: every product on offer in month `t`, with its quality, cost, open
/// flag, brand and (released) price; closed products start from last month's markup.
fn offer_products(sc: &Scenario, st: &mut State, t: i32) -> Month {
    let m = &sc.model;
    let mut mo = Month {
        t,
        n: 0,
        firm_of: [0; MAX_FIRMS],
        released: [false; MAX_FIRMS],
        quality: [0.0; MAX_FIRMS],
        cost: [0.0; MAX_FIRMS],
        price: [0.0; MAX_FIRMS],
        base: [[0.0; MAX_SEGMENTS]; MAX_FIRMS],
        closed: [0; MAX_FIRMS],
        n_closed: 0,
        share: [0.0; MAX_FIRMS],
        bought: 0.0,
        iterations: 0,
        converged: false,
        contraction: f64::NAN,
    };
    for (i, firm) in sc.firms().iter().enumerate() {
        let released = st.released[i];
        if !(released || st.alive[i]) {
            continue;
        }
        let n = mo.n;
        let (qj, cj, open, brand);
        if released {
            qj = st.q[i] + m.community_quality * st.community[i].ln_1p();
            cj = st.c0[i] / (1.0 + m.community_cost * st.community[i]);
            open = 1.0;
            brand = firm.brand;
            mo.price[n] = cj; // competing hosts serve open weights at cost
        } else {
            qj = st.q[i];
            cj = st.c0[i];
            open = 0.0;
            brand = match st.first_release {
                Some(ts) if t >= ts => firm.brand * (-m.talent_decay * (t - ts) as f64).exp(),
                _ => firm.brand,
            };
            if st.markup[i].is_nan() {
                st.markup[i] = st.markup_start;
            }
            mo.price[n] = cj + st.markup[i];
            mo.closed[mo.n_closed] = n;
            mo.n_closed += 1;
        }
        for (k, seg) in sc.segments().iter().enumerate() {
            mo.base[n][k] = seg.intercept + seg.quality_taste * qj + brand + seg.open_taste * open;
        }
        mo.firm_of[n] = i;
        mo.released[n] = released;
        mo.quality[n] = qj;
        mo.cost[n] = cj;
        mo.n += 1;
    }
    mo
}

/// Section 3: Bertrand-Nash markups by the zeta fixed point, warm-started, then the
/// shares once more at the final prices. The markups are the iterated state (prices
/// follow as cost + markup), as the spec states the update, so no markup is
/// recovered from a price by subtraction.
fn solve_markups(sc: &Scenario, st: &mut State, mo: &mut Month, shares: &mut Shares) {
    let m = &sc.model;
    let segs = sc.segments();
    let mut iterations = 0;
    let mut converged = mo.n_closed == 0;
    let mut last_step = [0.0; MAX_FIRMS];
    while !converged && iterations < m.max_iter {
        demand::shares(segs, mo.n, &mo.base, &mo.price, shares);
        let mut change = 0.0f64;
        let mut updated = st.markup;
        let (mut along, mut before) = (0.0, 0.0);
        for &j in &mo.closed[..mo.n_closed] {
            let old = st.markup[mo.firm_of[j]];
            let new = demand::zeta_update(segs, shares, &mo.base, &mo.price, j, old);
            change = change.max((new - old).abs() / (1.0 + old.abs()));
            updated[mo.firm_of[j]] = new;
            along += (new - old) * last_step[j];
            before += last_step[j] * last_step[j];
            last_step[j] = new - old;
        }
        if iterations > 0 {
            mo.contraction = along / before;
        }
        st.markup = updated;
        for &j in &mo.closed[..mo.n_closed] {
            mo.price[j] = mo.cost[j] + st.markup[mo.firm_of[j]];
        }
        iterations += 1;
        converged = change < m.tol;
    }
    if !converged {
        st.nonconverged_months += 1;
    }
    st.max_iterations = st.max_iterations.max(iterations);
    mo.iterations = iterations;
    mo.converged = converged;
    demand::shares(segs, mo.n, &mo.base, &mo.price, shares);
    mo.bought = 0.0;
    for j in 0..mo.n {
        mo.share[j] = demand::product_share(segs, shares, j);
        mo.bought += mo.share[j]; // 1 - s_out, from the products' own terms
    }
}

/// What investors saw this month, for the trace (`verify` counts decisions near
/// the hurdle as knife edges).
#[derive(Clone, Copy)]
struct Decisions {
    cash_before: [f64; MAX_FIRMS],
    margin: [f64; MAX_FIRMS],
}

impl Default for Decisions {
    fn default() -> Self {
        Decisions { cash_before: [0.0; MAX_FIRMS], margin: [f64::NAN; MAX_FIRMS] }
    }
}

/// Section 4: consumer surplus, each alive firm's flows and cash, and investors'
/// decision for a firm whose cash turns negative: refinance it while its product
/// leads the best other released product by the hurdle, or let it exit.
fn settle_money(sc: &Scenario, st: &mut State, mo: &Month, shares: &Shares, decisions: &mut Decisions) {
    let m = &sc.model;
    let segs = sc.segments();
    let market = m.market0 * (1.0 + m.market_growth).powi(mo.t);
    let d = m.discount.powi(mo.t);
    let surplus: f64 = segs.iter().enumerate().map(|(k, seg)| seg.weight * demand::inclusive_value(shares, k) / seg.price_sens).sum();
    st.cs_npv += d * market * surplus;

    for j in 0..mo.n {
        let i = mo.firm_of[j];
        if !st.alive[i] {
            continue;
        }
        let firm = &sc.firms[i];
        let direct = if mo.released[j] {
            0.0
        } else {
            market * mo.share[j] * st.markup[i] // p_i - c_i
        };
        let complement = firm.platform_revenue / 12.0 * m.ad_uplift * mo.bought;
        let flow = direct + complement - st.spend[i] / 12.0;
        st.npv[i] += d * flow;
        st.complement_npv[i] += d * complement;
        st.cash[i] += flow;
        decisions.cash_before[i] = st.cash[i];
        decisions.margin[i] = f64::NAN;
        if st.cash[i] < cash_threshold(st.spend[i]) {
            // lead_i: this product's quality over the best other released one's.
            let rival = (0..mo.n).filter(|&l| l != j && mo.released[l]).map(|l| mo.quality[l]).fold(f64::NEG_INFINITY, f64::max);
            let lead = mo.quality[j] - rival; // +inf when nothing else is released
            decisions.margin[i] = lead - m.investor_hurdle;
            if m.investor_runway > 0.0 && lead >= m.investor_hurdle {
                let top_up = m.investor_runway * st.spend[i] / 12.0;
                st.raised[i] += top_up - st.cash[i]; // financing, not a flow: npv is unchanged
                st.cash[i] = top_up;
            } else {
                st.alive[i] = false;
                st.exit_month[i] = mo.t;
                st.markup[i] = f64::NAN;
            }
        }
    }
}

/// Section 4: investors decide when a firm's cash falls below minus a thousandth
/// of a month's training spend, not below 0: a refinanced firm without income
/// reaches exactly 0 after `investor_runway` months, and the sign of that zero is
/// rounding's (version 3, docs/model.md section 10).
#[inline]
pub fn cash_threshold(spend: f64) -> f64 {
    -spend / 12000.0
}

/// Section 4, end of month: the community stock of released weights, then the
/// spillover to every firm that is not released.
fn end_month(sc: &Scenario, st: &mut State, mo: &Month) {
    let m = &sc.model;
    let mut best = f64::NEG_INFINITY;
    for j in 0..mo.n {
        if mo.released[j] {
            best = best.max(mo.quality[j]);
            let i = mo.firm_of[j];
            let gain = if mo.share[j] > 0.0 { mo.share[j].powf(m.community_elasticity) } else { 0.0 };
            st.community[i] = (1.0 - m.community_decay) * st.community[i] + m.community_gain * gain;
        }
    }
    if best > f64::NEG_INFINITY {
        for i in 0..sc.n_firms {
            if !st.released[i] {
                st.q[i] += m.catchup_rate * (best - m.spill_gap - st.q[i]).max(0.0);
            }
        }
    }
}

/// The month as `moatsweep scenario` and the outputs see it, per firm.
fn record(sc: &Scenario, st: &State, mo: &Month, shares: &Shares, alive_at_start: [bool; MAX_FIRMS], decisions: &Decisions) -> MonthRecord {
    let mut rec = MonthRecord {
        month: mo.t as u32,
        quality: st.q,
        outside_share: demand::outside_share(sc.segments(), shares),
        iterations: mo.iterations,
        converged: mo.converged,
        contraction: mo.contraction,
        cash: st.cash,
        cash_before_investors: decisions.cash_before,
        investor_margin: decisions.margin,
        spend: st.spend,
        generations: st.generations,
        raised: st.raised,
        ..Default::default()
    };
    for i in 0..sc.n_firms {
        if alive_at_start[i] {
            rec.alive |= 1 << i;
        }
    }
    for j in 0..mo.n {
        let i = mo.firm_of[j];
        rec.offered |= 1 << i;
        if mo.released[j] {
            rec.released |= 1 << i;
        }
        rec.quality[i] = mo.quality[j];
        rec.price[i] = mo.price[j];
        rec.cost[i] = mo.cost[j];
        rec.share[i] = mo.share[j];
    }
    rec
}

/// Section 5: the last month as solved, and the totals over the horizon.
fn write_outputs(st: &State, mo: &Month, rec: &MonthRecord, out: &mut Outcome) {
    let mut price = rec.price;
    for (i, p) in price.iter_mut().enumerate() {
        if rec.offered & (1 << i) == 0 {
            *p = f64::NAN; // not offered: an empty cell
        }
    }
    *out.firm_values_mut(Out::Share) = rec.share;
    *out.firm_values_mut(Out::Price) = price;
    *out.firm_values_mut(Out::Quality) = rec.quality;
    *out.firm_values_mut(Out::Npv) = st.npv;
    *out.firm_values_mut(Out::ComplementNpv) = st.complement_npv;
    *out.firm_values_mut(Out::ExitMonth) = st.exit_month.map(f64::from);
    *out.firm_values_mut(Out::Raised) = st.raised;
    *out.firm_values_mut(Out::Generations) = st.generations.map(f64::from);
    let mut open_share = 0.0;
    let mut hhi = 0.0;
    for j in 0..mo.n {
        if mo.released[j] {
            open_share += mo.share[j];
        }
        if mo.bought > 0.0 {
            let x = mo.share[j] / mo.bought;
            hhi += x * x;
        }
    }
    out.set_scenario(Out::OutsideShare, rec.outside_share);
    out.set_scenario(Out::OpenShare, open_share);
    out.set_scenario(Out::Hhi, 1e4 * hhi);
    out.set_scenario(Out::ConsumerSurplusNpv, st.cs_npv);
    out.set_scenario(Out::MaxIterations, st.max_iterations as f64);
    out.set_scenario(Out::NonconvergedMonths, st.nonconverged_months as f64);
}
