//! Hand-derived tests of the rules of docs/model.md (version 2) that the other
//! suites cover only by regression figures or by CPU/GPU agreement, where a wrong
//! rule that both backends share would pass.
//!
//! Every expected value here is computed by the test from the spec's formulas
//! with its own arithmetic: the scaling law minimised through its own derivative
//! in plain (not log) arithmetic, logit demand per segment, Bertrand prices as
//! best responses (a bisection on each firm's first-order condition, not the
//! zeta iteration the model uses), the community recursion, the growth rules and
//! the money step month by month. Rules that show in the outputs run on every
//! backend present (the f64 reference to 1e-9 relative, the f32 kernel to the
//! output table's tolerances, `src/model/outputs.rs`); rules that show only in
//! intermediates are checked on the reference's month-by-month trace.

mod common;

use common::{TestBackend, backends};
use moatsweep::model::params::{DEFAULT_FIRM_NAMES, baseline};
use moatsweep::model::scaling::{TrainInputs, train};
use moatsweep::model::{MonthRecord, NEVER, Out, Outcome, Scenario, Segment, solve_traced};

// ---------------------------------------------------------------------------
// The test's own arithmetic.

/// A model trained by the test from docs/model.md section 1.
#[derive(Clone, Copy, Debug)]
struct Mine {
    /// x = ln N at the optimum.
    x: f64,
    /// Training compute C (FLOP).
    c: f64,
    /// Tokens trained on, D = C / (6N).
    d: f64,
    /// Reducible loss R = A N^-alpha + B D'^-beta.
    reducible: f64,
    q: f64,
    c0: f64,
}

/// D' and g = dD'/dD for D tokens of which U are unique (Muennighoff et al.):
/// D' = U + U R* (1 - e^(-r/R*)) with r = D/U - 1 once D > U. With `repeat` false
/// every token counts fully (D' = D): the rule switched off, for contrast.
fn effective(sc: &Scenario, d: f64, u: f64, repeat: bool) -> (f64, f64) {
    let rs = sc.scaling.repeat_scale;
    if !repeat || d <= u {
        (d, 1.0)
    } else {
        let r = d / u - 1.0;
        (u + u * rs * (1.0 - (-r / rs).exp()), (-r / rs).exp())
    }
}

/// Section 1 evaluated directly: L(N) = E + A N^-alpha + B D'^-beta with
/// D = C / (6N), minimised over x = ln N in the spec's bracket by bisecting the
/// sign of dL/dx = beta B g D D'^(-beta-1) - alpha A N^-alpha (computed here in
/// plain arithmetic, not in the reference's logs) until the bracket cannot shrink.
fn my_train(sc: &Scenario, spend: f64, u: f64, repeat: bool) -> Mine {
    let s = &sc.scaling;
    let c = spend / sc.model.train_usd_per_flop;
    let c6 = c / 6.0;
    let slope = |x: f64| {
        let n = x.exp();
        let d = c6 / n;
        let (dp, g) = effective(sc, d, u, repeat);
        s.beta * s.b * g * d * dp.powf(-s.beta - 1.0) - s.alpha * s.a * n.powf(-s.alpha)
    };
    let (mut lo, mut hi) = (1e6f64.ln(), (c6 / 1e6).ln());
    assert!(slope(lo) < 0.0 && slope(hi) > 0.0, "the test's bracket does not hold the minimum");
    loop {
        let m = 0.5 * (lo + hi);
        if m <= lo || m >= hi {
            break;
        }
        if slope(m) > 0.0 {
            hi = m;
        } else {
            lo = m;
        }
    }
    let x = 0.5 * (lo + hi);
    let n = x.exp();
    let d = c6 / n;
    let (dp, _) = effective(sc, d, u, repeat);
    let reducible = s.a * n.powf(-s.alpha) + s.b * dp.powf(-s.beta);
    Mine { x, c, d, reducible, q: (s.loss_ref - s.e).ln() - reducible.ln(), c0: 2.0 * n * 1e6 * sc.model.infer_usd_per_flop }
}

/// One product on offer in a month, as section 2 describes it.
#[derive(Clone, Copy, Debug)]
struct Product {
    quality: f64,
    cost: f64,
    /// The brand in this month (talent decay applied by the caller).
    brand: f64,
    /// Released: open flag 1 and priced at cost; otherwise closed, priced in equilibrium.
    open: bool,
}

/// A month's market solved by the test (section 3 and the surplus of section 4).
#[derive(Clone, Debug)]
struct Market {
    /// p_j - c_j: 0 for open products.
    markup: Vec<f64>,
    price: Vec<f64>,
    /// S_j.
    share: Vec<f64>,
    /// s_out.
    outside: f64,
    /// sum_k w_k ln(1 + sum_j e^(u_jk)) / alpha_k: CS_t / M_t.
    surplus: f64,
}

/// Per segment k: s_jk and ln(1 + sum_j e^(u_jk)), u_jk = a_k + beta_k Q_j + b_j +
/// theta_k o_j - alpha_k p_j (logit with the outside option at utility 0).
fn logit(sc: &Scenario, products: &[Product], price: &[f64]) -> (Vec<Vec<f64>>, Vec<f64>) {
    let mut s = vec![vec![0.0; sc.n_segments]; products.len()];
    let mut inclusive = vec![0.0; sc.n_segments];
    for (k, seg) in sc.segments().iter().enumerate() {
        let u: Vec<f64> = products
            .iter()
            .zip(price)
            .map(|(p, &pr)| {
                seg.intercept + seg.quality_taste * p.quality + p.brand + if p.open { seg.open_taste } else { 0.0 } - seg.price_sens * pr
            })
            .collect();
        let denom = 1.0 + u.iter().map(|x| x.exp()).sum::<f64>();
        for j in 0..products.len() {
            s[j][k] = u[j].exp() / denom;
        }
        inclusive[k] = denom.ln();
    }
    (s, inclusive)
}

/// The Bertrand-Nash equilibrium of section 3 found as the test's own way: each
/// closed firm's best response to the others' prices is the root of its
/// first-order condition S_j - (Lambda_j - Gamma_j) m_j (positive at m_j = 0,
/// negative once m_j is far above 1 / alpha of the least price-sensitive segment),
/// found by bisection; best responses are repeated, firm by firm, until no price
/// moves.
fn market(sc: &Scenario, products: &[Product]) -> Market {
    let segs = sc.segments();
    let n = products.len();
    let mut markup = vec![0.0; n];
    let price_of = |markup: &[f64]| -> Vec<f64> { (0..n).map(|j| products[j].cost + markup[j]).collect() };
    let min_alpha = segs.iter().filter(|s| s.weight > 0.0).map(|s| s.price_sens).fold(f64::INFINITY, f64::min);
    let foc = |markup: &[f64], j: usize| {
        let (s, _) = logit(sc, products, &price_of(markup));
        let (mut big_s, mut lambda, mut gamma) = (0.0, 0.0, 0.0);
        for (k, seg) in segs.iter().enumerate() {
            big_s += seg.weight * s[j][k];
            lambda += seg.weight * seg.price_sens * s[j][k];
            gamma += seg.weight * seg.price_sens * s[j][k] * s[j][k];
        }
        big_s - (lambda - gamma) * markup[j]
    };
    let mut rounds = 0;
    loop {
        let mut moved = 0.0f64;
        for j in (0..n).filter(|&j| !products[j].open) {
            let mut m = markup.clone();
            let (mut lo, mut hi) = (0.0, 4.0 / min_alpha);
            m[j] = hi;
            while foc(&m, j) > 0.0 {
                hi *= 2.0;
                m[j] = hi;
            }
            loop {
                let mid = 0.5 * (lo + hi);
                if mid <= lo || mid >= hi {
                    break;
                }
                m[j] = mid;
                if foc(&m, j) > 0.0 {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            let best = 0.5 * (lo + hi);
            moved = moved.max((best - markup[j]).abs() / (1.0 + best));
            markup[j] = best;
        }
        rounds += 1;
        if moved < 1e-15 {
            break;
        }
        assert!(rounds < 10_000, "the test's best responses do not settle");
    }
    let price = price_of(&markup);
    let (s, inclusive) = logit(sc, products, &price);
    let share: Vec<f64> = (0..n).map(|j| segs.iter().enumerate().map(|(k, g)| g.weight * s[j][k]).sum()).collect();
    let outside = segs.iter().enumerate().map(|(k, g)| g.weight / inclusive[k].exp()).sum();
    let surplus = segs.iter().enumerate().map(|(k, g)| g.weight * inclusive[k] / g.price_sens).sum();
    Market { markup, price, share, outside, surplus }
}

/// The zeta iteration of section 3 counted by the test: every closed markup starts
/// at 1 / sum_k w_k alpha_k, each iteration evaluates shares at the current
/// prices and updates every closed markup at once, m <- (S + Gamma m) / Lambda,
/// until max_j |m_new - m_old| / (1 + |m_old|) < tol. Returns the iterations and
/// the last change over tol (to keep clear of a knife edge).
fn zeta_iterations(sc: &Scenario, products: &[Product], tol: f64) -> (u32, f64) {
    let segs = sc.segments();
    let start = 1.0 / segs.iter().map(|s| s.weight * s.price_sens).sum::<f64>();
    let mut markup: Vec<f64> = products.iter().map(|p| if p.open { 0.0 } else { start }).collect();
    let mut iterations = 0;
    loop {
        let price: Vec<f64> = products.iter().zip(&markup).map(|(p, m)| p.cost + m).collect();
        let (s, _) = logit(sc, products, &price);
        let mut change = 0.0f64;
        let mut next = markup.clone();
        for j in (0..products.len()).filter(|&j| !products[j].open) {
            let (mut big_s, mut lambda, mut gamma) = (0.0, 0.0, 0.0);
            for (k, seg) in segs.iter().enumerate() {
                big_s += seg.weight * s[j][k];
                lambda += seg.weight * seg.price_sens * s[j][k];
                gamma += seg.weight * seg.price_sens * s[j][k] * s[j][k];
            }
            next[j] = (big_s + gamma * markup[j]) / lambda;
            change = change.max((next[j] - markup[j]).abs() / (1.0 + markup[j].abs()));
        }
        markup = next;
        iterations += 1;
        if change < tol {
            return (iterations, change / tol);
        }
        assert!(iterations < 100_000, "the test's zeta iteration does not converge");
    }
}

// ---------------------------------------------------------------------------
// Scenarios and checks.

/// Firms and segments of the baseline with everything that moves from month to
/// month switched off (no generations, spillover, community, talent decay, market
/// growth or investors; ample funding; nothing released; no platforms), so that a
/// test switches on only the rule it checks. Data does not bind unless a test sets
/// `data_tokens`.
fn quiet(n_firms: usize, f32: bool) -> Scenario {
    let mut sc = baseline();
    let m = &mut sc.model;
    m.generation_months = 0;
    m.catchup_rate = 0.0;
    m.community_gain = 0.0;
    m.talent_decay = 0.0;
    m.market_growth = 0.0;
    m.investor_runway = 0.0;
    // f32 resolves a relative markup change of about 2e-7 (docs/model.md section 3).
    m.tol = if f32 { 1e-6 } else { 1e-14 };
    // Within llvmpipe's loop cap (months x (max_iter + 2) <= 65535) for 30 months.
    m.max_iter = 1000;
    sc.n_firms = n_firms;
    for f in &mut sc.firms[..n_firms] {
        f.release_month = NEVER;
        f.funding = 1e15;
        f.spend_growth = 0.0;
        f.data_growth = 0.0;
        f.platform_revenue = 0.0;
        f.data_tokens = 1e17;
    }
    sc
}

/// Floors of the output table (src/model/outputs.rs) for the f32 kernel.
const SHARE: f64 = 1e-6;
const PRICE: f64 = 1e-6;
const QUALITY: f64 = 1e-5;
const HHI: f64 = 1e-2;
/// Money outputs: this times the firm's money scale.
const MONEY: f64 = 2e-5;
/// Consumer surplus: this times sum_t d_t M_t sum_k w_k / alpha_k.
const SURPLUS: f64 = 1e-6;

/// |got - want| <= rel |want| + floor: the f64 reference to 1e-9 relative (floor
/// 1e-5 of the table's), the f32 kernel to the output table's 1e-4 relative plus
/// its floor.
fn check(b: &TestBackend, what: &str, got: f64, want: f64, floor: f64) {
    let allowed = b.rel() * want.abs() + if b.f32 { floor } else { 1e-5 * floor };
    assert!((got - want).abs() <= allowed, "{}: {what}: got {got}, the test's own value {want} (allowed {allowed:e})", b.name);
}

/// The reference's outcome and its month-by-month trace.
fn trace(sc: &Scenario) -> (Outcome, Vec<MonthRecord>) {
    let mut months = Vec::new();
    let o = solve_traced(sc, &mut |r: &MonthRecord| months.push(*r));
    assert_eq!(months.len(), sc.model.months as usize);
    (o, months)
}

/// d_t = discount^t and M_t = market0 (1 + market_growth)^t, by the test's own
/// repeated multiplication.
fn discount_and_market(sc: &Scenario) -> Vec<(f64, f64)> {
    let (mut d, mut m) = (1.0, sc.model.market0);
    (0..sc.model.months)
        .map(|_| {
            let now = (d, m);
            d *= sc.model.discount;
            m *= 1.0 + sc.model.market_growth;
            now
        })
        .collect()
}

/// sum_t d_t M_t sum_k w_k / alpha_k: the scale of the consumer surplus's f32 floor.
fn surplus_scale(sc: &Scenario) -> f64 {
    let per: f64 = sc.segments().iter().map(|s| s.weight / s.price_sens).sum();
    discount_and_market(sc).iter().map(|(d, m)| d * m * per).sum()
}

// ---------------------------------------------------------------------------
// 1. Repeated data (section 1).

/// Two firms whose compute-optimal models want several times their unique data:
/// the repeated tokens count as D' = U + U R* (1 - e^(-r/R*)). Each firm's
/// capability and serving cost come from the test's own minimisation of the
/// loss with that D', on the reference's training and on every backend's outputs
/// (month 0: firm 0's released product is priced at its serving cost).
#[test]
fn repeated_data_counts_as_the_spec_discounts_it() {
    for repeat_scale in [15.39, 4.0] {
        let mut base = quiet(2, false);
        base.model.months = 1;
        base.scaling.repeat_scale = repeat_scale;
        base.firms[0].train_spend = 1e9;
        base.firms[0].data_tokens = 4e12;
        base.firms[0].release_month = 0;
        base.firms[1].train_spend = 3e9;
        base.firms[1].data_tokens = 1.5e12;
        let mut mine = Vec::new();
        for i in 0..2 {
            let f = base.firms[i];
            let m = my_train(&base, f.train_spend, f.data_tokens, true);
            // The rule binds and moves the answer far beyond any backend's tolerance.
            assert!(m.d / f.data_tokens > 3.0, "firm {i}: D/U = {} does not bind", m.d / f.data_tokens);
            let unrepeated = my_train(&base, f.train_spend, f.data_tokens, false);
            assert!((m.q - unrepeated.q).abs() > 0.005, "firm {i}: the repetition rule hardly matters here ({} vs {})", m.q, unrepeated.q);
            assert!(
                (m.c0 / unrepeated.c0 - 1.0).abs() > 0.05,
                "firm {i}: the repetition rule hardly moves N ({} vs {})",
                m.c0,
                unrepeated.c0
            );
            // The reference's training, to f64's rounding.
            let t = train(&TrainInputs::first_generation(&base.model, &base.scaling, &f));
            assert!((t.ln_params - m.x).abs() <= 1e-12 * m.x, "firm {i} R* {repeat_scale}: ln N {} vs {}", t.ln_params, m.x);
            assert!((t.q0 - m.q).abs() <= 1e-12, "firm {i} R* {repeat_scale}: q0 {} vs {}", t.q0, m.q);
            assert!((t.reducible_loss / m.reducible - 1.0).abs() <= 1e-12, "firm {i}: R {} vs {}", t.reducible_loss, m.reducible);
            assert!((t.c0 / m.c0 - 1.0).abs() <= 1e-12, "firm {i} R* {repeat_scale}: c0 {} vs {}", t.c0, m.c0);
            mine.push(m);
        }
        for mut b in backends() {
            let mut sc = base;
            sc.model.tol = if b.f32 { 1e-6 } else { 1e-14 };
            let o = b.solve(&vec![sc])[0];
            let what = |s: &str| format!("R* {repeat_scale}: {s}");
            check(&b, &what("quality.0"), o.firm(Out::Quality, 0), mine[0].q, QUALITY);
            check(&b, &what("price.0 (serving cost of released weights at K = 0)"), o.firm(Out::Price, 0), mine[0].c0, PRICE);
            check(&b, &what("quality.1"), o.firm(Out::Quality, 1), mine[1].q, QUALITY);
        }
    }
}

// ---------------------------------------------------------------------------
// 2. The community stock (sections 2 and 4).

/// One month of the test's community recursion.
#[derive(Clone, Copy, Debug)]
struct CommunityMonth {
    stock: f64,
    market: f64,
    share: f64,
}

/// The released product of a single firm over `months` months: K_0 = 0,
/// Q_t = q + community_quality ln(1 + K_t), c_t = c0 / (1 + community_cost K_t),
/// p_t = c_t, and K_(t+1) = (1 - community_decay) K_t + community_gain S_t^elasticity.
fn community_path(sc: &Scenario, q: f64, c0: f64) -> Vec<(CommunityMonth, Market)> {
    let m = &sc.model;
    let mut stock = 0.0f64;
    let mut path = Vec::new();
    for t in 0..m.months {
        let product = Product {
            quality: q + m.community_quality * (1.0 + stock).ln(),
            cost: c0 / (1.0 + m.community_cost * stock),
            brand: sc.firms[0].brand,
            open: true,
        };
        let mk = market(sc, &[product]);
        let share = mk.share[0];
        path.push((CommunityMonth { stock, market: m.market0 * (1.0 + m.market_growth).powi(t as i32), share }, mk));
        stock = (1.0 - m.community_decay) * stock + m.community_gain * share.powf(m.community_elasticity);
    }
    path
}

#[test]
fn the_community_stock_follows_its_recursion() {
    for (gain, decay, elasticity) in [(0.4, 0.03, 0.7), (1.5, 0.2, 1.6)] {
        let mut base = quiet(1, false);
        base.model.community_gain = gain;
        base.model.community_decay = decay;
        base.model.community_elasticity = elasticity;
        base.model.market_growth = 0.01;
        base.firms[0].release_month = 0;
        let f = base.firms[0];
        let mine = my_train(&base, f.train_spend, f.data_tokens, true);
        let mut long = base;
        long.model.months = 30;
        let path = community_path(&long, mine.q, mine.c0);
        // The stock moves quality and cost well beyond the f32 tolerances, and the
        // elasticity matters: the same path with elasticity 1 ends elsewhere.
        let last = path.last().unwrap().0;
        assert!(last.stock > 1.0 && (0.1..0.9).contains(&last.share), "stock {} share {}", last.stock, last.share);
        let mut unit = long;
        unit.model.community_elasticity = 1.0;
        let other = community_path(&unit, mine.q, mine.c0).last().unwrap().0.stock;
        assert!((other / last.stock - 1.0).abs() > 0.05, "the elasticity hardly matters here");

        // The reference's trace, month by month.
        let (_, months) = trace(&long);
        for (r, (cm, mk)) in months.iter().zip(&path) {
            let t = r.month;
            let q = mine.q + long.model.community_quality * cm.stock.ln_1p();
            let c = mine.c0 / (1.0 + long.model.community_cost * cm.stock);
            assert!((r.quality[0] - q).abs() <= 1e-12, "month {t}: Q {} vs {q} (K = {})", r.quality[0], cm.stock);
            assert!((r.cost[0] / c - 1.0).abs() <= 1e-12, "month {t}: c {} vs {c} (K = {})", r.cost[0], cm.stock);
            assert!((r.price[0] / c - 1.0).abs() <= 1e-12, "month {t}: released weights are priced at cost");
            assert!((r.share[0] / mk.share[0] - 1.0).abs() <= 1e-12, "month {t}: S {} vs {}", r.share[0], mk.share[0]);
            // The stock the reference used, read back from its serving cost.
            let k = (mine.c0 / r.cost[0] - 1.0) / long.model.community_cost;
            assert!((k - cm.stock).abs() <= 1e-10 * (1.0 + cm.stock), "month {t}: K {k} vs {}", cm.stock);
        }

        // Every backend, after k months.
        for mut b in backends() {
            let ks = [1u32, 2, 9, 30];
            let scs: Vec<Scenario> = ks
                .iter()
                .map(|&k| {
                    let mut sc = long;
                    sc.model.months = k;
                    sc
                })
                .collect();
            let outs = b.solve(&scs);
            for (sc, o) in scs.iter().zip(&outs) {
                let path = community_path(sc, mine.q, mine.c0);
                let (cm, mk) = path.last().unwrap();
                let what = |s: &str| format!("gain {gain} decay {decay} elasticity {elasticity}, month {}: {s}", sc.model.months - 1);
                let q = mine.q + sc.model.community_quality * cm.stock.ln_1p();
                check(&b, &what("quality"), o.firm(Out::Quality, 0), q, QUALITY);
                check(&b, &what("price"), o.firm(Out::Price, 0), mine.c0 / (1.0 + sc.model.community_cost * cm.stock), PRICE);
                check(&b, &what("share"), o.firm(Out::Share, 0), mk.share[0], SHARE);
                check(&b, &what("open share"), o.scenario(Out::OpenShare), mk.share[0], SHARE);
                check(&b, &what("outside share"), o.scenario(Out::OutsideShare), mk.outside, SHARE);
                let cs: f64 = path.iter().zip(discount_and_market(sc)).map(|((cm, mk), (d, _))| d * cm.market * mk.surplus).sum();
                check(&b, &what("consumer surplus"), o.scenario(Out::ConsumerSurplusNpv), cs, SURPLUS * surplus_scale(sc));
            }
        }
    }
}

// ---------------------------------------------------------------------------
// 3. Spend and data growth across generations (section 2).

/// spend_i and U of the generation a firm trains at month t: train_spend (1 + g)^(t/12)
/// and data_tokens (1 + g_data)^(t/12), by the test's own power.
fn grown(sc: &Scenario, i: usize, t: u32) -> (f64, f64) {
    let f = &sc.firms[i];
    let years = t as f64 / 12.0;
    (f.train_spend * (1.0 + f.spend_growth).powf(years), f.data_tokens * (1.0 + f.data_growth).powf(years))
}

/// Every 6 months both firms train anew with grown spend and data. Firm 0 (released
/// at month 0, data binding) grows: its capability is the latest generation's.
/// Firm 1 (closed) shrinks its spend: its capability stays its first generation's
/// (q <- max(q, q_new)) while its serving cost and its spend follow the new
/// generation. Checked: the trace's spend and generations every month; on every
/// backend the last month's qualities, firm 0's price (its serving cost), firm 1's
/// equilibrium price and both firms' npv summed month by month by the test.
#[test]
fn spend_and_data_grow_across_generations() {
    let mut base = quiet(2, false);
    base.model.generation_months = 6;
    base.model.months = 19; // generations at months 6, 12 and 18
    base.model.discount = 0.97;
    let f = &mut base.firms[0];
    f.release_month = 0;
    f.train_spend = 1e9;
    f.spend_growth = 1.0;
    f.data_tokens = 3e12;
    f.data_growth = 0.5;
    let f = &mut base.firms[1];
    f.train_spend = 2e9;
    f.spend_growth = -0.6;
    f.data_tokens = 5e12;
    f.data_growth = 0.2;

    let g = base.model.generation_months;
    // Per firm, per generation month: (spend, the test's model).
    let gens: Vec<Vec<(f64, Mine)>> = (0..2)
        .map(|i| {
            (0..base.model.months)
                .step_by(g as usize)
                .map(|t| {
                    let (spend, u) = grown(&base, i, t);
                    (spend, my_train(&base, spend, u, true))
                })
                .collect()
        })
        .collect();
    // The growth matters: firm 0's last generation beats its first and would be
    // another model without data growth; firm 1's last is worse than its first.
    let (s0, u0) = grown(&base, 0, 18);
    assert!(gens[0][3].1.q > gens[0][0].1.q + 0.05);
    assert!(gens[0][3].1.d > u0, "firm 0's data binds at month 18");
    assert!((my_train(&base, s0, base.firms[0].data_tokens, true).q - gens[0][3].1.q).abs() > 0.01, "data growth hardly matters");
    assert!(gens[1][3].1.q < gens[1][0].1.q - 0.05 && gens[1][3].1.c0 < 0.8 * gens[1][0].1.c0);

    // What each firm has in month t: its spend, capability (the best generation so far) and serving cost.
    let state = |i: usize, t: u32| {
        let n = (t / g) as usize;
        let q = gens[i][..=n].iter().map(|x| x.1.q).fold(f64::NEG_INFINITY, f64::max);
        (gens[i][n].0, q, gens[i][n].1.c0, n as u32 + 1)
    };

    // The trace: each month's spend and generations, and the inputs the reference trains on.
    let (_, months) = trace(&base);
    for r in &months {
        for i in 0..2 {
            let (spend, q, c0, n) = state(i, r.month);
            assert!((r.spend[i] / spend - 1.0).abs() <= 1e-12, "month {} firm {i}: spend {} vs {spend}", r.month, r.spend[i]);
            assert_eq!(r.generations[i], n, "month {} firm {i}", r.month);
            assert!((r.quality[i] - q).abs() <= 1e-12, "month {} firm {i}: quality {} vs {q}", r.month, r.quality[i]);
            assert!((r.cost[i] / c0 - 1.0).abs() <= 1e-12, "month {} firm {i}: cost {} vs {c0}", r.month, r.cost[i]);
        }
    }

    // Month by month: firm 1's equilibrium against the released firm 0, and both npvs.
    let (mut npv, mut scale) = ([0.0; 2], [0.0; 2]);
    let mut last = None;
    for (t, (d, m)) in (0..base.model.months).zip(discount_and_market(&base)) {
        let (sp0, q0, c0, _) = state(0, t);
        let (sp1, q1, c1, _) = state(1, t);
        let products = [
            Product { quality: q0, cost: c0, brand: base.firms[0].brand, open: true },
            Product { quality: q1, cost: c1, brand: base.firms[1].brand, open: false },
        ];
        let mk = market(&base, &products);
        let direct = m * mk.share[1] * mk.markup[1];
        npv[0] += d * -sp0 / 12.0;
        npv[1] += d * (direct - sp1 / 12.0);
        scale[0] += sp0 / 12.0;
        scale[1] += direct + sp1 / 12.0;
        last = Some(mk);
    }
    let mk = last.unwrap();
    let (_, q0, c0, n0) = state(0, 18);
    let (_, q1, _, n1) = state(1, 18);
    for mut b in backends() {
        let mut sc = base;
        sc.model.tol = if b.f32 { 1e-6 } else { 1e-14 };
        let o = b.solve(&vec![sc])[0];
        check(&b, "quality.0 (latest generation)", o.firm(Out::Quality, 0), q0, QUALITY);
        check(&b, "price.0 (latest serving cost)", o.firm(Out::Price, 0), c0, PRICE);
        check(&b, "quality.1 (first generation kept)", o.firm(Out::Quality, 1), q1, QUALITY);
        check(&b, "price.1", o.firm(Out::Price, 1), mk.price[1], PRICE);
        check(&b, "share.1", o.firm(Out::Share, 1), mk.share[1], SHARE);
        for i in 0..2 {
            check(&b, &format!("npv.{i}"), o.firm(Out::Npv, i), npv[i], MONEY * scale[i]);
        }
        assert_eq!(o.firm(Out::Generations, 0), n0 as f64, "{}", b.name);
        assert_eq!(o.firm(Out::Generations, 1), n1 as f64, "{}", b.name);
    }
}

// ---------------------------------------------------------------------------
// 4. Market growth (section 4).

/// A static market (a closed firm, a released one with a platform) over 15 months
/// whose size grows or shrinks: the closed firm's npv, the released firm's
/// complement and the consumer surplus, summed by the test with
/// M_t = market0 (1 + market_growth)^t.
#[test]
fn the_market_grows_at_its_monthly_rate() {
    for growth in [0.05, -0.04] {
        let mut base = quiet(2, false);
        base.model.months = 15;
        base.model.discount = 0.98;
        base.model.market0 = 1e8;
        base.model.market_growth = growth;
        base.model.ad_uplift = 0.03;
        base.firms[0].train_spend = 1e9;
        base.firms[1].release_month = 0;
        base.firms[1].train_spend = 5e8;
        base.firms[1].platform_revenue = 5e10;
        let trained: Vec<Mine> = (0..2).map(|i| my_train(&base, base.firms[i].train_spend, base.firms[i].data_tokens, true)).collect();
        let products: Vec<Product> =
            (0..2).map(|i| Product { quality: trained[i].q, cost: trained[i].c0, brand: base.firms[i].brand, open: i == 1 }).collect();
        let mk = market(&base, &products);
        let (mut npv, mut complement, mut cs, mut scale) = ([0.0; 2], 0.0, 0.0, [0.0; 2]);
        let (mut cs_flat, mut npv_flat) = (0.0, 0.0); // the same without growth, for contrast
        let mut size = base.model.market0;
        for t in 0..base.model.months {
            let d = base.model.discount.powi(t as i32);
            let direct = size * mk.share[0] * mk.markup[0];
            let comp = base.firms[1].platform_revenue / 12.0 * base.model.ad_uplift * (1.0 - mk.outside);
            npv[0] += d * (direct - base.firms[0].train_spend / 12.0);
            npv[1] += d * (comp - base.firms[1].train_spend / 12.0);
            complement += d * comp;
            cs += d * size * mk.surplus;
            scale[0] += direct + base.firms[0].train_spend / 12.0;
            scale[1] += comp + base.firms[1].train_spend / 12.0;
            cs_flat += d * base.model.market0 * mk.surplus;
            npv_flat += d * (base.model.market0 * mk.share[0] * mk.markup[0] - base.firms[0].train_spend / 12.0);
            size *= 1.0 + growth;
        }
        assert!((cs / cs_flat - 1.0).abs() > 0.1 && (npv[0] - npv_flat).abs() > 0.01 * scale[0], "growth hardly matters here");
        for mut b in backends() {
            let mut sc = base;
            sc.model.tol = if b.f32 { 1e-6 } else { 1e-14 };
            let o = b.solve(&vec![sc])[0];
            let what = |s: &str| format!("growth {growth}: {s}");
            check(&b, &what("npv.0"), o.firm(Out::Npv, 0), npv[0], MONEY * scale[0]);
            check(&b, &what("npv.1"), o.firm(Out::Npv, 1), npv[1], MONEY * scale[1]);
            check(&b, &what("complement_npv.1"), o.firm(Out::ComplementNpv, 1), complement, MONEY * scale[1]);
            check(&b, &what("consumer_surplus_npv"), o.scenario(Out::ConsumerSurplusNpv), cs, SURPLUS * surplus_scale(&sc));
        }
    }
}

// ---------------------------------------------------------------------------
// 5. Multi-segment consumer surplus (section 4).

/// Three segments of different weights, price sensitivities and tastes; two
/// closed firms and one that releases at month 2, with the closed brands decaying
/// from then on, so every month is its own market. The consumer surplus npv is the
/// test's sum over months of d_t M_t sum_k w_k ln(1 + sum_j e^(u_jk)) / alpha_k.
#[test]
fn consumer_surplus_sums_the_segments_inclusive_values() {
    let mut base = quiet(3, false);
    base.model.months = 7;
    base.model.discount = 0.95;
    base.model.market_growth = 0.02;
    base.model.talent_decay = 0.04;
    base.n_segments = 3;
    base.segments[0] = Segment { weight: 0.5, intercept: -3.0, price_sens: 0.2, quality_taste: 2.0, open_taste: -0.4 };
    base.segments[1] = Segment { weight: 0.3, intercept: -2.0, price_sens: 1.0, quality_taste: 1.5, open_taste: 0.6 };
    base.segments[2] = Segment { weight: 0.2, intercept: -6.0, price_sens: 3.0, quality_taste: 3.5, open_taste: 0.0 };
    base.firms[1].release_month = 2;
    let trained: Vec<Mine> = (0..3).map(|i| my_train(&base, base.firms[i].train_spend, base.firms[i].data_tokens, true)).collect();
    let first_release = 2;
    let (mut cs, mut last) = (0.0, None);
    let (mut pooled, mut unweighted) = (0.0, 0.0); // two wrong aggregations, for contrast
    for (t, (d, m)) in (0..base.model.months).zip(discount_and_market(&base)) {
        let products: Vec<Product> = (0..3)
            .map(|i| {
                let open = base.firms[i].release_month >= 0 && t as i32 >= base.firms[i].release_month;
                let mut brand = base.firms[i].brand;
                if !open && t as i32 >= first_release {
                    brand *= (-base.model.talent_decay * (t as i32 - first_release) as f64).exp();
                }
                Product { quality: trained[i].q, cost: trained[i].c0, brand, open }
            })
            .collect();
        let mk = market(&base, &products);
        cs += d * m * mk.surplus;
        let price: Vec<f64> = mk.price.clone();
        let (_, inclusive) = logit(&base, &products, &price);
        let wa: f64 = base.segments().iter().map(|s| s.weight * s.price_sens).sum();
        pooled += d * m * base.segments().iter().zip(&inclusive).map(|(s, iv)| s.weight * iv).sum::<f64>() / wa;
        unweighted += d * m * base.segments().iter().zip(&inclusive).map(|(s, iv)| iv / s.price_sens).sum::<f64>() / 3.0;
        last = Some(mk);
    }
    assert!((pooled / cs - 1.0).abs() > 0.05 && (unweighted / cs - 1.0).abs() > 0.05, "the segments hardly differ here");
    let mk = last.unwrap();
    for mut b in backends() {
        let mut sc = base;
        sc.model.tol = if b.f32 { 1e-6 } else { 1e-14 };
        let o = b.solve(&vec![sc])[0];
        check(&b, "consumer_surplus_npv", o.scenario(Out::ConsumerSurplusNpv), cs, SURPLUS * surplus_scale(&sc));
        for i in 0..3 {
            check(&b, &format!("share.{i}"), o.firm(Out::Share, i), mk.share[i], SHARE);
            check(&b, &format!("price.{i}"), o.firm(Out::Price, i), mk.price[i], PRICE);
        }
        check(&b, "outside_share", o.scenario(Out::OutsideShare), mk.outside, SHARE);
    }
}

// ---------------------------------------------------------------------------
// 6. hhi when nothing is bought (section 5).

/// Three closed firms with no funding and no investors all exit in month 0 (the
/// test checks their month-0 flows are negative), so months 1 and 2 offer
/// nothing: hhi is 0, not 0/0, the outside share 1, and those months add
/// ln(1) = 0 to the consumer surplus. With the first firm's weights released at
/// month 0 they stay on offer after it exits: one product, hhi 1e4.
#[test]
fn hhi_is_zero_when_nothing_is_bought() {
    let mut base = quiet(3, false);
    base.model.months = 3;
    for f in &mut base.firms[..3] {
        f.funding = 0.0;
    }
    let trained: Vec<Mine> = (0..3).map(|i| my_train(&base, base.firms[i].train_spend, base.firms[i].data_tokens, true)).collect();
    let products: Vec<Product> =
        (0..3).map(|i| Product { quality: trained[i].q, cost: trained[i].c0, brand: base.firms[i].brand, open: false }).collect();
    let mk = market(&base, &products);
    for i in 0..3 {
        let flow = base.model.market0 * mk.share[i] * mk.markup[i] - base.firms[i].train_spend / 12.0;
        assert!(flow < -0.1 * base.firms[i].train_spend / 12.0, "firm {i} must lose money in month 0 (flow {flow})");
    }
    let cs = base.model.market0 * mk.surplus; // months 1 and 2: ln(1 + 0) = 0
    let mut released = base;
    released.firms[0].release_month = 0;

    let (_, months) = trace(&base);
    for r in &months[1..] {
        assert_eq!(r.offered, 0, "month {}: nothing is on offer", r.month);
    }
    for mut b in backends() {
        let mut sc = base;
        sc.model.tol = if b.f32 { 1e-6 } else { 1e-14 };
        let mut rel = released;
        rel.model.tol = sc.model.tol;
        let o = b.solve(&vec![sc, rel]);
        assert_eq!(o[0].scenario(Out::Hhi), 0.0, "{}: hhi with nothing bought", b.name);
        assert_eq!(o[0].scenario(Out::OutsideShare), 1.0, "{}", b.name);
        assert_eq!(o[0].scenario(Out::OpenShare), 0.0, "{}", b.name);
        for i in 0..3 {
            assert_eq!(o[0].firm(Out::ExitMonth, i), 0.0, "{}: firm {i}", b.name);
            assert!(!o[0].is_offered(i) && o[0].firm(Out::Share, i) == 0.0, "{}: firm {i} offers a product", b.name);
        }
        check(&b, "consumer surplus of month 0 alone", o[0].scenario(Out::ConsumerSurplusNpv), cs, SURPLUS * surplus_scale(&sc));
        // The released weights outlive their maker: the only product, so hhi = 1e4.
        assert_eq!(o[1].firm(Out::ExitMonth, 0), 0.0, "{}", b.name);
        assert!(o[1].is_offered(0) && o[1].firm(Out::Share, 0) > 0.01, "{}: released weights on offer", b.name);
        check(&b, "hhi of a single product", o[1].scenario(Out::Hhi), 1e4, HHI);
    }
}

/// Products on offer that nobody buys: every utility is below -745, where e^u
/// underflows to 0 in f64, so every S_j is 0 (the f32 kernel judges "nothing
/// bought" as the f64 reference does, `hhi_of` in shaders/moat.wgsl): hhi is 0,
/// not 0/0, and the outside share 1.
#[test]
fn hhi_is_zero_when_offered_products_sell_nothing() {
    let mut base = quiet(2, false);
    base.model.months = 2;
    base.n_segments = 1;
    base.segments[0] = Segment { weight: 1.0, intercept: -900.0, price_sens: 0.5, quality_taste: 2.0, open_taste: 0.0 };
    let top = (0..2)
        .map(|i| {
            let t = my_train(&base, base.firms[i].train_spend, base.firms[i].data_tokens, true);
            base.segments[0].intercept + base.segments[0].quality_taste * t.q + base.firms[i].brand - base.segments[0].price_sens * t.c0
        })
        .fold(f64::NEG_INFINITY, f64::max);
    assert!(top < -760.0 && top.exp() == 0.0, "the best utility at zero markup, {top}, must underflow");
    for mut b in backends() {
        let mut sc = base;
        sc.model.tol = if b.f32 { 1e-6 } else { 1e-14 };
        let o = b.solve(&vec![sc])[0];
        for i in 0..2 {
            assert!(o.is_offered(i), "{}: firm {i} offers its product", b.name);
            assert_eq!(o.firm(Out::Share, i), 0.0, "{}: firm {i}", b.name);
        }
        assert_eq!(o.scenario(Out::Hhi), 0.0, "{}: hhi with nothing bought", b.name);
        assert_eq!(o.scenario(Out::OutsideShare), 1.0, "{}", b.name);
    }
}

// ---------------------------------------------------------------------------
// 7. The warm start (section 3).

/// Two closed firms in two segments, nothing else moving: every month is the
/// same market. Month 0 starts its markups at 1 / sum_k w_k alpha_k and takes the
/// number of zeta iterations the test counts itself; every later month starts
/// from last month's markups, already the fixed point, and takes 1.
fn warm_market(f32: bool) -> Scenario {
    let mut sc = quiet(2, f32);
    sc.n_segments = 2;
    sc.segments[0] = Segment { weight: 0.6, intercept: -3.0, price_sens: 0.4, quality_taste: 2.0, open_taste: 0.0 };
    sc.segments[1] = Segment { weight: 0.4, intercept: -4.0, price_sens: 1.2, quality_taste: 2.5, open_taste: 0.0 };
    sc
}

fn warm_products(sc: &Scenario) -> Vec<Product> {
    (0..2)
        .map(|i| {
            let t = my_train(sc, sc.firms[i].train_spend, sc.firms[i].data_tokens, true);
            Product { quality: t.q, cost: t.c0, brand: sc.firms[i].brand, open: false }
        })
        .collect()
}

#[test]
fn a_month_identical_to_the_last_converges_in_one_iteration() {
    let mut sc = warm_market(false);
    sc.model.tol = 1e-10;
    sc.model.months = 5;
    let products = warm_products(&sc);
    let (n0, edge) = zeta_iterations(&sc, &products, sc.model.tol);
    assert!(n0 >= 5 && !(0.9..=1.1).contains(&edge), "month 0 takes {n0} iterations, last change {edge} x tol");
    let (o, months) = trace(&sc);
    assert_eq!(months[0].iterations, n0, "month 0 (cold start at 1 / sum w alpha)");
    for r in &months[1..] {
        assert_eq!(r.iterations, 1, "month {}: warm-started at the fixed point", r.month);
        assert!(r.converged);
    }
    assert_eq!(o.scenario(Out::MaxIterations), n0 as f64);
    // And the fixed point is the equilibrium the test finds by best responses.
    let mk = market(&sc, &products);
    for i in 0..2 {
        assert!((o.firm(Out::Price, i) / mk.price[i] - 1.0).abs() < 1e-8, "price {i}: {} vs {}", o.firm(Out::Price, i), mk.price[i]);
    }
}

/// The warm start in the outputs of every backend: with max_iter = k, month 0
/// stops after k iterations unconverged and each later month continues the same
/// iteration from where the last one stopped, so the months up to the one holding
/// iteration n0 (the test's count from the cold start) are the only
/// nonconverged ones: floor((n0 - 1) / k) of them; every month after converges
/// at once, and max_iterations is k (1 for k = 1). Starting every month cold would
/// leave all T months nonconverged.
#[test]
fn warm_starts_carry_the_iteration_across_months() {
    for mut b in backends() {
        let mut base = warm_market(b.f32);
        base.model.tol = 1e-5;
        let products = warm_products(&base);
        let (n0, edge) = zeta_iterations(&base, &products, base.model.tol);
        assert!(n0 >= 6 && !(0.9..=1.1).contains(&edge), "the cold start takes {n0} iterations, last change {edge} x tol");
        base.model.months = 2 * n0 + 5;
        let ks = [1u32, 2, 3];
        let scs: Vec<Scenario> = ks
            .iter()
            .map(|&k| {
                let mut sc = base;
                sc.model.max_iter = k;
                sc
            })
            .collect();
        let outs = b.solve(&scs);
        for (&k, o) in ks.iter().zip(&outs) {
            let want = ((n0 - 1) / k) as f64;
            let got = o.scenario(Out::NonconvergedMonths);
            // f32 may need an iteration or two more or less than f64 to meet tol (the
            // output table's iteration slack: 3 + a quarter of the count), in months.
            let slack = if b.f32 { (3.0 + 0.25 * n0 as f64) / k as f64 } else { 0.0 };
            assert!((got - want).abs() <= slack, "{}: max_iter {k}: {got} nonconverged months, the test's {want} (n0 = {n0})", b.name);
            assert!(got < base.model.months as f64 - 3.0, "{}: max_iter {k}: every month restarted", b.name);
            assert_eq!(o.scenario(Out::MaxIterations), k as f64, "{}: max_iter {k}", b.name);
        }
    }
}

// ---------------------------------------------------------------------------
// 8. A month without closed products (section 3).

/// Every firm released at month 0: no month has a closed product, so every month
/// takes 0 iterations and converges. On the trace, a month after the only closed
/// firm has exited also takes 0.
#[test]
fn a_month_without_closed_products_takes_no_iterations() {
    let mut base = quiet(3, false);
    base.model.months = 4;
    for f in &mut base.firms[..3] {
        f.release_month = 0;
    }
    for mut b in backends() {
        let o = b.solve(&vec![base])[0];
        assert_eq!(o.scenario(Out::MaxIterations), 0.0, "{}", b.name);
        assert_eq!(o.scenario(Out::NonconvergedMonths), 0.0, "{}", b.name);
    }
    let (_, months) = trace(&base);
    for r in &months {
        assert_eq!((r.iterations, r.converged), (0, true), "month {}", r.month);
    }
    // Firm 1 closed, without funding: it exits in month 0 and firm 0's released
    // weights are all that is left.
    let mut sc = quiet(2, false);
    sc.model.months = 4;
    sc.firms[0].release_month = 0;
    sc.firms[1].funding = 0.0;
    let (o, months) = trace(&sc);
    assert_eq!(o.firm(Out::ExitMonth, 1), 0.0);
    assert!(months[0].iterations > 1);
    for r in &months[1..] {
        assert_eq!((r.iterations, r.converged), (0, true), "month {}", r.month);
    }
}

// ---------------------------------------------------------------------------
// 9. An exit in the last month (section 5).

/// A closed firm losing money whose cash first turns negative in month T-1 (its
/// funding is T - 1/2 months of its loss). Without investors it exits then: the
/// outputs report that month's share, price and quality, exit_month T-1, the npv
/// of months 0..T-1, and the generation it trained at the start of month T-1.
/// With investors that fund it, month T-1's top-up is in `raised`.
#[test]
fn an_exit_in_the_last_month_reports_that_month() {
    let months = 7u32;
    let mut base = quiet(2, false);
    base.model.months = months;
    base.model.discount = 0.97;
    base.model.generation_months = months - 1; // a new (identical) generation at month T-1
    base.firms[0].release_month = 0;
    base.firms[1].train_spend = 4e9;
    let trained: Vec<Mine> = (0..2).map(|i| my_train(&base, base.firms[i].train_spend, base.firms[i].data_tokens, true)).collect();
    let products: Vec<Product> =
        (0..2).map(|i| Product { quality: trained[i].q, cost: trained[i].c0, brand: base.firms[i].brand, open: i == 0 }).collect();
    let mk = market(&base, &products);
    let direct = base.model.market0 * mk.share[1] * mk.markup[1];
    let loss = base.firms[1].train_spend / 12.0 - direct;
    assert!(loss > 0.2 * direct, "firm 1 must lose money");
    base.firms[1].funding = loss * (months as f64 - 0.5);
    let (mut npv, mut scale) = (0.0, 0.0);
    for t in 0..months {
        npv -= base.model.discount.powi(t as i32) * loss;
        scale += direct + base.firms[1].train_spend / 12.0;
    }
    let cash_last = base.firms[1].funding - months as f64 * loss; // -loss / 2
    let mut funded = base;
    funded.model.investor_runway = 6.0;
    funded.model.investor_hurdle = -100.0; // any lead will do
    let raised = funded.model.investor_runway * base.firms[1].train_spend / 12.0 - cash_last;
    for mut b in backends() {
        let tol = if b.f32 { 1e-6 } else { 1e-14 };
        let (mut a, mut c) = (base, funded);
        a.model.tol = tol;
        c.model.tol = tol;
        let o = b.solve(&vec![a, c]);
        for (o, what) in [(&o[0], "exits"), (&o[1], "refinanced")] {
            let w = |s: &str| format!("{what}: {s}");
            check(&b, &w("share.1"), o.firm(Out::Share, 1), mk.share[1], SHARE);
            check(&b, &w("price.1"), o.firm(Out::Price, 1), mk.price[1], PRICE);
            check(&b, &w("quality.1"), o.firm(Out::Quality, 1), trained[1].q, QUALITY);
            check(&b, &w("npv.1"), o.firm(Out::Npv, 1), npv, MONEY * scale);
            check(&b, &w("outside_share"), o.scenario(Out::OutsideShare), mk.outside, SHARE);
            assert_eq!(o.firm(Out::Generations, 1), 2.0, "{}: {what}", b.name);
        }
        assert_eq!(o[0].firm(Out::ExitMonth, 1), (months - 1) as f64, "{}", b.name);
        assert_eq!(o[0].firm(Out::Raised, 1), 0.0, "{}", b.name);
        assert_eq!(o[1].firm(Out::ExitMonth, 1), -1.0, "{}", b.name);
        check(&b, "raised in month T-1", o[1].firm(Out::Raised, 1), raised, MONEY * scale);
    }
}

// ---------------------------------------------------------------------------
// 10. The table of section 1.

/// `printed` (as "2.160" or "7.1e26") within half a unit of its last printed digit.
fn assert_printed(b: &str, what: &str, x: f64, printed: &str) {
    let (mantissa, exponent) = match printed.split_once('e') {
        Some((m, e)) => (m, e.parse::<i32>().unwrap_or_else(|_| panic!("{what}: {printed}"))),
        None => (printed, 0),
    };
    let quoted: f64 = mantissa.parse().unwrap_or_else(|_| panic!("{what}: {printed}"));
    let decimals = mantissa.split_once('.').map_or(0, |(_, f)| f.len()) as i32;
    let scaled = x / 10f64.powi(exponent);
    let half = 0.5 * 10f64.powi(-decimals) * (1.0 + 1e-12);
    assert!((scaled - quoted).abs() <= half, "{b}: {what}: {x} does not print as {printed}");
}

/// The rows of docs/model.md section 1's table: firm, C, N, D, D/U, loss, q0, c0.
fn section_1_table() -> Vec<Vec<String>> {
    let doc = include_str!("../docs/model.md");
    let mut lines = doc.lines().skip_while(|l| !l.starts_with("| firm | C (FLOP) | N | D | D/U | loss | q0 | c0"));
    assert!(lines.next().is_some(), "docs/model.md has no section 1 table");
    lines
        .skip(1)
        .take_while(|l| l.starts_with('|'))
        .map(|l| l.trim_matches('|').split('|').map(|c| c.trim().to_string()).collect::<Vec<String>>())
        .collect()
}

#[test]
fn the_section_1_table_is_what_training_gives() {
    let sc = baseline();
    let rows = section_1_table();
    assert_eq!(rows.len(), DEFAULT_FIRM_NAMES.len(), "one row per default firm");
    let mut mine = Vec::new();
    for row in &rows {
        assert_eq!(row.len(), 8, "{row:?}");
        let i = DEFAULT_FIRM_NAMES.iter().position(|n| *n == row[0]).unwrap_or_else(|| panic!("no default firm {}", row[0]));
        let f = &sc.firms[i];
        // The reference's training, to the table's printed digits.
        let t = train(&TrainInputs::first_generation(&sc.model, &sc.scaling, f));
        let c = f.train_spend / sc.model.train_usd_per_flop;
        let d = (c / 6.0) / t.ln_params.exp();
        let name = &row[0];
        let printed = |what: &str, x: f64, col: usize| assert_printed("reference", &format!("{name} {what}"), x, &row[col]);
        printed("C", c, 1);
        printed("N", t.ln_params.exp(), 2);
        printed("D", d, 3);
        printed("D/U", d / f.data_tokens, 4);
        printed("loss", sc.scaling.e + t.reducible_loss, 5);
        printed("q0", t.q0, 6);
        printed("c0", t.c0, 7);
        // The test's own minimisation gives the same model, and so the same figures.
        let m = my_train(&sc, f.train_spend, f.data_tokens, true);
        assert!((m.x - t.ln_params).abs() <= 1e-12 * m.x, "{name}: ln N {} vs the test's {}", t.ln_params, m.x);
        assert!((m.q - t.q0).abs() <= 1e-12, "{name}: q0 {} vs the test's {}", t.q0, m.q);
        let mine_printed = |what: &str, x: f64, col: usize| assert_printed("the test's own", &format!("{name} {what}"), x, &row[col]);
        mine_printed("C", m.c, 1);
        mine_printed("N", m.x.exp(), 2);
        mine_printed("D", m.d, 3);
        mine_printed("D/U", m.d / f.data_tokens, 4);
        mine_printed("loss", sc.scaling.e + m.reducible, 5);
        mine_printed("q0", m.q, 6);
        mine_printed("c0", m.c0, 7);
        mine.push((i, row.clone(), m));
    }
    // Every backend: with every firm released at month 0 and one month, each
    // product's quality is its q0 and its price its c0.
    let mut sc = baseline();
    sc.model.months = 1;
    for f in &mut sc.firms[..sc.n_firms] {
        f.release_month = 0;
    }
    for mut b in backends() {
        let o = b.solve(&vec![sc])[0];
        for (i, row, m) in &mine {
            assert_printed(&b.name, &format!("{} q0 (quality)", row[0]), o.firm(Out::Quality, *i), &row[6]);
            assert_printed(&b.name, &format!("{} c0 (price)", row[0]), o.firm(Out::Price, *i), &row[7]);
            check(&b, &format!("{} quality", row[0]), o.firm(Out::Quality, *i), m.q, QUALITY);
            check(&b, &format!("{} price", row[0]), o.firm(Out::Price, *i), m.c0, PRICE);
        }
    }
}
