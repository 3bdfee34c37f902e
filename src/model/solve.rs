//! MODEL.md sections 2, 4 and 5: the month-by-month equilibrium of one scenario.

use super::demand::{self, Shares};
use super::scaling::TrainCache;
use super::{MAX_FIRMS, MAX_SEGMENTS, Outcome, Scenario};

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
    /// Cash after this month's money step.
    pub cash: [f64; MAX_FIRMS],
    pub outside_share: f64,
    pub iterations: u32,
    pub converged: bool,
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

/// Solves one scenario, reusing trained models from `cache` (the hot path of a CPU sweep).
pub fn solve_with<O: Observer>(sc: &Scenario, obs: &mut O, cache: &mut TrainCache) -> Outcome {
    let m = &sc.model;
    let segs = sc.segments();
    let nf = sc.n_firms;

    // Section 1: every firm's trained model.
    let mut q0 = [0.0; MAX_FIRMS];
    let mut c0 = [0.0; MAX_FIRMS];
    for (i, firm) in sc.firms().iter().enumerate() {
        let t = cache.train(i, m, &sc.scaling, firm);
        q0[i] = t.q0;
        c0[i] = t.c0;
    }

    // Section 2: first release month t*, and the state carried between months.
    let first_release = sc.firms().iter().map(|f| f.release_month).filter(|&r| r >= 0).min();
    let mut q = q0;
    let mut community = [0.0f64; MAX_FIRMS];
    let mut cash = [0.0; MAX_FIRMS];
    let mut alive = [false; MAX_FIRMS];
    let mut markup = [f64::NAN; MAX_FIRMS]; // NaN = unset
    let mut npv = [0.0; MAX_FIRMS];
    let mut complement_npv = [0.0; MAX_FIRMS];
    let mut out = Outcome::<f64> { exit_month: [-1; MAX_FIRMS], ..Default::default() };
    for (i, firm) in sc.firms().iter().enumerate() {
        cash[i] = firm.funding;
        alive[i] = true;
    }
    let markup_start = 1.0 / segs.iter().map(|s| s.weight * s.price_sens).sum::<f64>();

    let mut cs_npv = 0.0;
    let mut shares = Shares::default();
    for t in 0..m.months {
        let ti = t as i32;
        // Products on offer this month, compacted: product j belongs to firm[j].
        let mut n = 0;
        let mut firm_of = [0usize; MAX_FIRMS];
        let mut released = [false; MAX_FIRMS];
        let mut quality = [0.0; MAX_FIRMS];
        let mut cost = [0.0; MAX_FIRMS];
        let mut price = [0.0; MAX_FIRMS];
        let mut base = [[0.0; MAX_SEGMENTS]; MAX_FIRMS];
        let mut closed = [0usize; MAX_FIRMS];
        let mut n_closed = 0;
        for (i, firm) in sc.firms().iter().enumerate() {
            let is_released = firm.release_month >= 0 && ti >= firm.release_month;
            if !(is_released || alive[i]) {
                continue;
            }
            let (qj, cj, open, brand);
            if is_released {
                qj = q0[i] + m.community_quality * community[i].ln_1p();
                cj = c0[i] / (1.0 + m.community_cost * community[i]);
                open = 1.0;
                brand = firm.brand;
                price[n] = cj; // competing hosts serve open weights at cost
            } else {
                qj = q[i];
                cj = c0[i];
                open = 0.0;
                brand = match first_release {
                    Some(ts) if ti >= ts => firm.brand * (-m.talent_decay * (ti - ts) as f64).exp(),
                    _ => firm.brand,
                };
                if markup[i].is_nan() {
                    markup[i] = markup_start;
                }
                price[n] = cj + markup[i];
                closed[n_closed] = n;
                n_closed += 1;
            }
            for (k, seg) in segs.iter().enumerate() {
                base[n][k] = seg.intercept + seg.quality_taste * qj + brand + seg.open_taste * open;
            }
            firm_of[n] = i;
            released[n] = is_released;
            quality[n] = qj;
            cost[n] = cj;
            n += 1;
        }

        // Section 3: Bertrand-Nash markups by the zeta fixed point, warm-started. The
        // markups are the iterated state (prices follow as cost + markup), as the spec
        // states the update, so no markup is recovered from a price by subtraction.
        let mut iterations = 0;
        let mut converged = n_closed == 0;
        while !converged && iterations < m.max_iter {
            demand::shares(segs, n, &base, &price, &mut shares);
            let mut change = 0.0f64;
            let mut updated = markup;
            for &j in &closed[..n_closed] {
                let old = markup[firm_of[j]];
                let new = demand::zeta_update(segs, &shares, &base, &price, j, old);
                change = change.max((new - old).abs() / (1.0 + old.abs()));
                updated[firm_of[j]] = new;
            }
            markup = updated;
            for &j in &closed[..n_closed] {
                price[j] = cost[j] + markup[firm_of[j]];
            }
            iterations += 1;
            converged = change < m.tol;
        }
        if !converged {
            out.nonconverged_months += 1;
        }
        out.max_iterations = out.max_iterations.max(iterations);
        // Shares once more at the final prices.
        demand::shares(segs, n, &base, &price, &mut shares);
        let mut share = [0.0; MAX_FIRMS];
        let mut bought = 0.0;
        for (j, s) in share[..n].iter_mut().enumerate() {
            *s = demand::product_share(segs, &shares, j);
            bought += *s; // 1 - s_out, from the products' own terms
        }

        // Section 4: money and exits.
        let market = m.market0 * (1.0 + m.market_growth).powi(ti);
        let d = m.discount.powi(ti);
        let surplus: f64 = segs.iter().enumerate().map(|(k, seg)| seg.weight * demand::inclusive_value(&shares, k) / seg.price_sens).sum();
        cs_npv += d * market * surplus;

        let alive_at_start = alive;
        let last = t + 1 == m.months;
        for j in 0..n {
            let i = firm_of[j];
            if !alive[i] {
                continue;
            }
            let firm = &sc.firms[i];
            let direct = if released[j] {
                0.0
            } else {
                market * share[j] * markup[i] // p_i - c_i
            };
            let complement = firm.platform_revenue / 12.0 * m.ad_uplift * bought;
            let flow = direct + complement - firm.train_spend / 12.0;
            npv[i] += d * flow;
            complement_npv[i] += d * complement;
            cash[i] += flow;
            if cash[i] < 0.0 {
                alive[i] = false;
                out.exit_month[i] = ti;
                markup[i] = f64::NAN;
            }
        }

        if O::ACTIVE || last {
            let mut offered = 0u32;
            let mut rec = MonthRecord {
                month: t,
                quality: q,
                outside_share: demand::outside_share(segs, &shares),
                iterations,
                converged,
                cash,
                ..Default::default()
            };
            for i in 0..nf {
                if alive_at_start[i] {
                    rec.alive |= 1 << i;
                }
            }
            for j in 0..n {
                let i = firm_of[j];
                offered |= 1 << i;
                if released[j] {
                    rec.released |= 1 << i;
                }
                rec.quality[i] = quality[j];
                rec.price[i] = price[j];
                rec.cost[i] = cost[j];
                rec.share[i] = share[j];
            }
            rec.offered = offered;
            if O::ACTIVE {
                obs.month(&rec);
            }
            if last {
                // Section 5: the final month as solved.
                out.offered = offered;
                out.share = rec.share;
                out.price = rec.price;
                out.quality = rec.quality;
                out.outside_share = rec.outside_share;
                let mut open_share = 0.0;
                let mut hhi = 0.0;
                for j in 0..n {
                    if released[j] {
                        open_share += share[j];
                    }
                    if bought > 0.0 {
                        let x = share[j] / bought;
                        hhi += x * x;
                    }
                }
                out.open_share = open_share;
                out.hhi = 1e4 * hhi;
            }
        }

        // End of month: community stock of released weights, then spillover to the rest.
        let mut best = f64::NEG_INFINITY;
        for j in 0..n {
            if released[j] {
                best = best.max(quality[j]);
                let i = firm_of[j];
                let gain = if share[j] > 0.0 { share[j].powf(m.community_elasticity) } else { 0.0 };
                community[i] = (1.0 - m.community_decay) * community[i] + m.community_gain * gain;
            }
        }
        if best > f64::NEG_INFINITY {
            for (i, firm) in sc.firms().iter().enumerate() {
                let is_released = firm.release_month >= 0 && ti >= firm.release_month;
                if !is_released {
                    q[i] += m.catchup_rate * (best - m.spill_gap - q[i]).max(0.0);
                }
            }
        }
    }

    out.npv = npv;
    out.complement_npv = complement_npv;
    out.consumer_surplus_npv = cs_npv;
    out
}
