//! docs/model.md section 1: capability from compute and data.
//!
//! Everything is worked in logs (ln(C/6), x = ln N, ln D) so that the f32 twin in
//! `shaders/moat.wgsl` never overflows; the optimal parameter count is found by a
//! bisection on the *sign* of dL/dx, which keeps full precision where L is flat.

use super::{Firm, Model, Scaling};

/// Exactly this many halvings of the bracket (docs/model.md section 1).
pub const BISECTION_STEPS: u32 = 60;

/// ln(1e6): the smallest parameter count considered, and the fewest tokens.
pub const LN_1E6: f64 = 13.815510557964274;

/// Smallest ln(C/6) the model accepts: C/6 >= 1e12 FLOP (docs/model.md section 1).
pub const MIN_LN_C6: f64 = 2.0 * LN_1E6;

/// A firm's trained model: what section 1 hands to the rest of the model.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Trained {
    /// x = ln N, the compute-optimal parameter count.
    pub ln_params: f64,
    /// Reducible loss R = A e^(-alpha x) + B D'^-beta.
    pub reducible_loss: f64,
    /// Base capability q0 = ln(loss_ref - E) - ln R.
    pub q0: f64,
    /// Serving cost c0 = 2 N 1e6 infer_usd_per_flop ($/Mtok).
    pub c0: f64,
}

/// ln D' and ln g for ln D tokens of which U = e^ln_u are unique (Muennighoff et al.).
#[inline]
fn effective_tokens(s: &Scaling, ln_d: f64, ln_u: f64) -> (f64, f64) {
    if ln_d <= ln_u {
        (ln_d, 0.0)
    } else {
        let r = (ln_d - ln_u).exp_m1(); // r = D/U - 1
        let r_over = r / s.repeat_scale;
        // D' = U (1 + R* (1 - e^(-r/R*)))
        let ln_dp = ln_u + (-s.repeat_scale * (-r_over).exp_m1()).ln_1p();
        (ln_dp, -r_over)
    }
}

/// Everything one training run depends on (docs/model.md section 1), and nothing
/// else: [`train`] is a pure function of it, and [`TrainCache`] is keyed on it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TrainInputs {
    /// Yearly training spend of this generation ($).
    pub spend: f64,
    /// Unique data U available to this generation (tokens).
    pub data_tokens: f64,
    pub train_usd_per_flop: f64,
    pub infer_usd_per_flop: f64,
    pub scaling: Scaling,
}

impl TrainInputs {
    /// A firm's first generation: its `train_spend` and `data_tokens`.
    pub fn first_generation(model: &Model, scaling: &Scaling, firm: &Firm) -> TrainInputs {
        TrainInputs {
            spend: firm.train_spend,
            data_tokens: firm.data_tokens,
            train_usd_per_flop: model.train_usd_per_flop,
            infer_usd_per_flop: model.infer_usd_per_flop,
            scaling: *scaling,
        }
    }

    /// The generation a firm trains at month `t` (docs/model.md section 2): spend
    /// and data grown at its yearly rates, (1 + g)^(t/12), evaluated as
    /// exp((t/12) ln(1 + g)) as the kernel does.
    pub fn generation(model: &Model, scaling: &Scaling, firm: &Firm, t: u32) -> TrainInputs {
        let years = t as f64 / 12.0;
        TrainInputs {
            spend: firm.train_spend * (years * firm.spend_growth.ln_1p()).exp(),
            data_tokens: firm.data_tokens * (years * firm.data_growth.ln_1p()).exp(),
            ..TrainInputs::first_generation(model, scaling, firm)
        }
    }

    /// ln(C/6) = ln(spend / train_usd_per_flop / 6).
    #[inline]
    pub fn ln_c6(&self) -> f64 {
        (self.spend / self.train_usd_per_flop / 6.0).ln()
    }
}

/// Trains one model: the compute-optimal N under the data constraint, and what follows.
pub fn train(inputs: &TrainInputs) -> Trained {
    let s = &inputs.scaling;
    let ln_c6 = inputs.ln_c6();
    let ln_u = inputs.data_tokens.ln();
    // Right-hand side constants of the slope comparison.
    let ln_beta_b = (s.beta * s.b).ln();
    let ln_alpha_a = (s.alpha * s.a).ln();

    let (mut lo, mut hi) = (LN_1E6, ln_c6 - LN_1E6);
    for _ in 0..BISECTION_STEPS {
        let m = 0.5 * (lo + hi);
        let ln_d = ln_c6 - m;
        let (ln_dp, ln_g) = effective_tokens(s, ln_d, ln_u);
        // dL/dx > 0  <=>  ln(beta B) + ln g + ln D - (beta+1) ln D' > ln(alpha A) - alpha m
        if ln_beta_b + ln_g + ln_d - (s.beta + 1.0) * ln_dp > ln_alpha_a - s.alpha * m {
            hi = m;
        } else {
            lo = m;
        }
    }
    let x = 0.5 * (lo + hi);

    let (ln_dp, _) = effective_tokens(s, ln_c6 - x, ln_u);
    let reducible_loss = s.a * (-s.alpha * x).exp() + s.b * (-s.beta * ln_dp).exp();
    Trained {
        ln_params: x,
        reducible_loss,
        q0: (s.loss_ref - s.e).ln() - reducible_loss.ln(),
        c0: 2.0 * x.exp() * 1e6 * inputs.infer_usd_per_flop,
    }
}

/// Remembers each (firm, generation) slot's last training inputs and result. Rows
/// of a sweep that share a firm's [`TrainInputs`] for a generation share its
/// trained model, so the 60-step bisection is skipped; the result is bit for bit
/// what [`train`] gives, since the key is the whole of what `train` reads.
#[derive(Default)]
pub struct TrainCache {
    /// last[generation][firm]
    last: Vec<[Option<(TrainInputs, Trained)>; super::MAX_FIRMS]>,
}

impl TrainCache {
    /// `train(inputs)`, remembered in the slot of (`firm`, `generation`).
    pub fn train(&mut self, firm: usize, generation: usize, inputs: &TrainInputs) -> Trained {
        if self.last.len() <= generation {
            self.last.resize(generation + 1, [None; super::MAX_FIRMS]);
        }
        let slot = &mut self.last[generation][firm];
        match slot {
            Some((k, t)) if k == inputs => *t,
            _ => {
                let t = train(inputs);
                *slot = Some((*inputs, t));
                t
            }
        }
    }
}
