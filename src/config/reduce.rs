//! `[reduce]` and `[reduce.best]`: checked against the plan's axes, outputs and
//! design into a [`ReducePlan`].

use super::error::{quoted, suggest};
use super::tree::{Entry, Node, Spanned};
use super::{Checker, get};
use crate::config::ConfigError;
use crate::model::params::ParamSpec;
use crate::reduce::game::{Game, MAX_PLAYERS, MAX_PROFILES, Player};
use crate::reduce::{
    Best, GroupAxis, Grouping, MAX_STATE_BYTES, ReducePlan, ReducedOutput, STAT_NAMES, Stat, available_outputs, value_grouping,
};
use crate::sweep::{AxisValues, Design, Plan};

const REDUCE_KEYS: &[&str] = &["by", "outputs", "stats", "rows", "best", "game"];
const GAME_KEYS: &[&str] = &["players"];
const PLAYER_KEYS: &[&str] = &["axis", "payoff", "reference"];
const BY_KEYS: &[&str] = &["axis", "bins"];
const BEST_KEYS: &[&str] = &["axis", "maximize", "minimize", "reference"];
/// Statistics when `stats` is not given.
pub const DEFAULT_STATS: &[Stat] = &[Stat::Mean, Stat::Std, Stat::Min, Stat::Max, Stat::Count];

impl Checker<'_> {
    /// `[reduce]`, if the config has one.
    pub(super) fn reduce_section(&self, root: &Spanned, plan: &Plan) -> Result<Option<ReducePlan>, ConfigError> {
        let Some(section) = get(root, "reduce") else { return Ok(None) };
        let fields = self.expect_table(&section.value, "reduce")?;
        for e in fields {
            if !REDUCE_KEYS.contains(&e.key.as_str()) {
                return Err(self.unknown_key(e, "reduce", REDUCE_KEYS));
            }
        }
        let field = |k: &str| fields.iter().find(|e| e.key == k);
        let by = match field("by") {
            Some(e) => self.reduce_by(e, plan)?,
            None => Vec::new(),
        };
        let available = available_outputs(&plan.firm_names);
        let outputs = match field("outputs") {
            Some(e) => self.reduce_outputs(e, &available)?,
            None => available.clone(),
        };
        let stats = match field("stats") {
            Some(e) => self.reduce_stats(e)?,
            None => DEFAULT_STATS.to_vec(),
        };
        let rows = match field("rows") {
            None => false,
            Some(e) => match e.value.node {
                Node::Bool(b) => b,
                ref other => {
                    return Err(self.err(&e.value.span, "reduce.rows", format!("expected true or false, found {}", other.type_name())));
                }
            },
        };
        let best = match field("best") {
            Some(e) => Some(self.reduce_best(e, plan, &by, &available)?),
            None => None,
        };
        let game = match field("game") {
            Some(e) => Some(self.reduce_game(e, plan, &by, &available)?),
            None => None,
        };
        if let (Some(_), Some(g)) = (&best, field("game")) {
            return Err(self.err(
                &g.key_span,
                "reduce.game",
                "give [reduce.best] or [reduce.game], not both: best is one player's choice with every other axis fixed, a game's players choose together",
            ));
        }
        if let (true, Some(g)) = (rows, &game) {
            let n = plan.axes.len();
            let k = g.players.len();
            if g.players.iter().enumerate().any(|(i, p)| p.axis != n - k + i) {
                let e = field("rows").expect("rows = true was given");
                let names: Vec<&str> = g.players.iter().map(|p| p.path.as_str()).collect();
                return Err(self.err(
                    &e.key_span,
                    "reduce.rows",
                    format!(
                        "rows = true with [reduce.game] needs the players' axes last in [axes], in player order ({}), so that rows are solved in row order; move them, or drop rows",
                        names.join(", ")
                    ),
                ));
            }
        }
        if let (true, Some(b)) = (rows, &best)
            && b.axis + 1 != plan.axes.len()
        {
            let e = field("rows").expect("rows = true was given");
            return Err(self.err(
                    &e.key_span,
                    "reduce.rows",
                    format!(
                        "rows = true with [reduce.best] needs the choice axis {} last in [axes], so that rows are solved in row order; move it, or drop rows",
                        b.path
                    ),
                ));
        }
        let rp = ReducePlan::new(plan, by, outputs, stats, rows, best, game);
        let bytes = rp.state_bytes();
        if bytes > MAX_STATE_BYTES || rp.groups > u32::MAX as u64 {
            let span = field("by").map_or(section.key_span.clone(), |e| e.key_span.clone());
            let sizes: Vec<String> = rp.by.iter().map(|a| a.slots().to_string()).collect();
            return Err(self.err(
                &span,
                "reduce.by",
                format!(
                    "the reduction has {} = {} groups and may need {} MB of state, more than the limit of {} MB; group by fewer axes, values or bins, or reduce fewer outputs",
                    sizes.join(" x "),
                    rp.groups,
                    bytes.div_ceil(1 << 20),
                    MAX_STATE_BYTES >> 20
                ),
            ));
        }
        Ok(Some(rp))
    }

    fn array<'t>(&self, e: &'t Entry, key: &str, what: &str) -> Result<&'t [Spanned], ConfigError> {
        match &e.value.node {
            Node::Array(items) if items.is_empty() => Err(self.err(&e.value.span, key, format!("give at least one {what}"))),
            Node::Array(items) => Ok(items),
            other => Err(self.err(&e.value.span, key, format!("expected an array of {what}s, found {}", other.type_name()))),
        }
    }

    /// The axis named `name` (at `item`, for messages).
    fn axis_named(&self, name: &str, item: &Spanned, key: &str, plan: &Plan) -> Result<usize, ConfigError> {
        match plan.axes.iter().position(|a| a.path == name) {
            Some(a) => Ok(a),
            None => {
                let axes: Vec<&str> = plan.axes.iter().map(|a| a.path.as_str()).collect();
                let list = if axes.is_empty() { "none".to_string() } else { axes.join(", ") };
                Err(self.err(
                    &item.span,
                    key,
                    format!("{} is not an axis of this sweep{}; its axes are: {list}", quoted(name), suggest(name, axes.iter().copied())),
                ))
            }
        }
    }

    fn reduce_by(&self, e: &Entry, plan: &Plan) -> Result<Vec<GroupAxis>, ConfigError> {
        let items = match &e.value.node {
            Node::Array(items) => items,
            other => {
                return Err(self.err(&e.value.span, "reduce.by", format!("expected an array of axes, found {}", other.type_name())));
            }
        };
        let sampled = !matches!(plan.design, Design::Grid);
        let mut by: Vec<GroupAxis> = Vec::new();
        for item in items {
            let (name, bins) = match &item.node {
                Node::Str(s) => (s.clone(), None),
                Node::Table(fields) => {
                    for f in fields {
                        if !BY_KEYS.contains(&f.key.as_str()) {
                            return Err(self.unknown_key(f, "reduce.by", BY_KEYS));
                        }
                    }
                    let Some(axis) = fields.iter().find(|f| f.key == "axis") else {
                        return Err(self.err(&item.span, "reduce.by.axis", "missing: write { axis = \"<axis path>\", bins = N }"));
                    };
                    let name = self.expect_str(&axis.value, "reduce.by.axis")?.to_string();
                    let bins = match fields.iter().find(|f| f.key == "bins") {
                        Some(b) => Some((self.count(&b.value, "reduce.by.bins", 1, 1 << 20)?, b)),
                        None => None,
                    };
                    (name, bins)
                }
                other => {
                    return Err(self.err(
                        &item.span,
                        "reduce.by",
                        format!("expected an axis path or {{ axis = \"...\", bins = N }}, found {}", other.type_name()),
                    ));
                }
            };
            let a = self.axis_named(&name, item, "reduce.by", plan)?;
            if by.iter().any(|g| g.axis == a) {
                return Err(self.err(&item.span, "reduce.by", format!("{name} is listed twice")));
            }
            let values = &plan.axes[a].values;
            let grouping = match (sampled, bins) {
                (false, Some((_, b))) => {
                    return Err(self.err(
                        &b.key_span,
                        "reduce.by.bins",
                        format!("{name} is a grid axis, grouped by its values: bins go only with sampled designs (random, lhs, sobol, saltelli, morris, list)"),
                    ));
                }
                (false, None) => Grouping::Grid { len: values.len() },
                (true, Some((_, b))) if matches!(values, AxisValues::List(_)) && !matches!(plan.design, Design::List { .. }) => {
                    return Err(self.err(
                        &b.key_span,
                        "reduce.by.bins",
                        format!("{name} takes listed values, grouped one group per value: remove bins"),
                    ));
                }
                (true, Some((n, _))) => {
                    let (lo, hi) = values.extent();
                    let log = matches!(values, AxisValues::LogUniform { .. });
                    let (lo, hi) = if log { (lo.log10(), hi.log10()) } else { (lo, hi) };
                    Grouping::Bins { bins: n, lo, hi, log }
                }
                (true, None) => match (value_grouping(values), &plan.design) {
                    (Some(g), d) if !matches!(d, Design::List { .. }) => g,
                    _ => {
                        return Err(self.err(
                            &item.span,
                            "reduce.by",
                            format!("{name} takes values from a continuous range in this design: group it into bins, e.g. {{ axis = \"{name}\", bins = 10 }}"),
                        ));
                    }
                },
            };
            by.push(GroupAxis { axis: a, path: name, grouping });
        }
        Ok(by)
    }

    fn reduce_outputs(&self, e: &Entry, available: &[ReducedOutput]) -> Result<Vec<ReducedOutput>, ConfigError> {
        let mut out: Vec<ReducedOutput> = Vec::new();
        for item in self.array(e, "reduce.outputs", "output")? {
            let name = self.expect_str(item, "reduce.outputs")?;
            let o = self.output_named(name, item, "reduce.outputs", available)?;
            if out.iter().any(|x| x.name == name) {
                return Err(self.err(&item.span, "reduce.outputs", format!("{name} is listed twice")));
            }
            out.push(o);
        }
        Ok(out)
    }

    fn output_named(&self, name: &str, item: &Spanned, key: &str, available: &[ReducedOutput]) -> Result<ReducedOutput, ConfigError> {
        available.iter().find(|o| o.name == name).cloned().ok_or_else(|| {
            self.err(
                &item.span,
                key,
                format!(
                    "unknown output {}{}; outputs are the sweep's output columns and exited.<firm> (moatsweep validate lists the columns)",
                    quoted(name),
                    suggest(name, available.iter().map(|o| o.name.as_str()))
                ),
            )
        })
    }

    fn reduce_stats(&self, e: &Entry) -> Result<Vec<Stat>, ConfigError> {
        let mut stats: Vec<Stat> = Vec::new();
        for item in self.array(e, "reduce.stats", "statistic")? {
            let name = self.expect_str(item, "reduce.stats")?;
            let Some(s) = Stat::parse(name) else {
                return Err(self.err(
                    &item.span,
                    "reduce.stats",
                    format!(
                        "unknown statistic {}{}; expected {STAT_NAMES}",
                        quoted(name),
                        if name == "median" {
                            " (did you mean \"q50\"?)".to_string()
                        } else {
                            suggest(name, ["mean", "std", "min", "max", "count", "q05", "q50", "q95"])
                        }
                    ),
                ));
            };
            if stats.contains(&s) {
                return Err(self.err(&item.span, "reduce.stats", format!("{name} is listed twice")));
            }
            stats.push(s);
        }
        Ok(stats)
    }

    fn reduce_best(&self, e: &Entry, plan: &Plan, by: &[GroupAxis], available: &[ReducedOutput]) -> Result<Best, ConfigError> {
        let fields = self.expect_table(&e.value, "reduce.best")?;
        for f in fields {
            if !BEST_KEYS.contains(&f.key.as_str()) {
                return Err(self.unknown_key(f, "reduce.best", BEST_KEYS));
            }
        }
        if !matches!(plan.design, Design::Grid) {
            return Err(self.err(
                &e.key_span,
                "reduce.best",
                format!(
                    "best needs a grid design (every value of the choice axis in every world); this sweep's design is {}",
                    plan.design.name()
                ),
            ));
        }
        let field = |k: &str| fields.iter().find(|f| f.key == k);
        let Some(axis) = field("axis") else {
            return Err(self.err(
                &e.key_span,
                "reduce.best.axis",
                "missing: name the choice axis, e.g. axis = \"firm.open.release_month\"",
            ));
        };
        let name = self.expect_str(&axis.value, "reduce.best.axis")?;
        let a = self.axis_named(name, &axis.value, "reduce.best.axis", plan)?;
        if by.iter().any(|g| g.axis == a) {
            return Err(self.err(
                &axis.value.span,
                "reduce.best.axis",
                format!("{name} is also in reduce.by: the choice axis is chosen within each group, so it cannot group rows too"),
            ));
        }
        let (objective, maximize) = match (field("maximize"), field("minimize")) {
            (Some(m), None) => (m, true),
            (None, Some(m)) => (m, false),
            (Some(_), Some(m)) => return Err(self.err(&m.key_span, "reduce.best.minimize", "give maximize or minimize, not both")),
            (None, None) => {
                return Err(self.err(&e.key_span, "reduce.best.maximize", "missing: give the objective, e.g. maximize = \"npv.open\""));
            }
        };
        let key = format!("reduce.best.{}", objective.key);
        let objective_name = self.expect_str(&objective.value, &key)?;
        let objective = self.output_named(objective_name, &objective.value, &key, available)?;
        let values: Vec<f64> = (0..plan.axes[a].values.len()).map(|i| plan.axes[a].values.value(i)).collect();
        let spec = plan.axes[a].param.spec;
        let reference = match field("reference") {
            None => values.len() - 1,
            Some(r) => self.value_index(spec, &r.value, "reduce.best.reference", name, &values)?,
        };
        Ok(Best { axis: a, path: name.to_string(), values, objective, maximize, reference })
    }

    /// The index of the value `item` gives among an axis's `values` (axis `name`),
    /// or an error at `key` listing them.
    fn value_index(&self, spec: &ParamSpec, item: &Spanned, key: &str, name: &str, values: &[f64]) -> Result<usize, ConfigError> {
        let v = self.param_value(spec, item, key)?;
        let label = |x: f64| super::super::reduce::output::value_label(spec.kind, x);
        values.iter().position(|&x| x == v).ok_or_else(|| {
            let shown: Vec<String> = values.iter().map(|&x| label(x)).collect();
            self.err(&item.span, key, format!("{} is not a value of {name}; its values are: {}", label(v), shown.join(", ")))
        })
    }

    fn reduce_game(&self, e: &Entry, plan: &Plan, by: &[GroupAxis], available: &[ReducedOutput]) -> Result<Game, ConfigError> {
        let fields = self.expect_table(&e.value, "reduce.game")?;
        for f in fields {
            if !GAME_KEYS.contains(&f.key.as_str()) {
                return Err(self.unknown_key(f, "reduce.game", GAME_KEYS));
            }
        }
        if !matches!(plan.design, Design::Grid) {
            return Err(self.err(
                &e.key_span,
                "reduce.game",
                format!(
                    "a game needs a grid design (every profile of the players' values in every world); this sweep's design is {}",
                    plan.design.name()
                ),
            ));
        }
        let Some(list) = fields.iter().find(|f| f.key == "players") else {
            return Err(self.err(
                &e.key_span,
                "reduce.game.players",
                "missing: list the players, e.g. players = [{ axis = \"firm.open.release_month\", payoff = \"npv.open\" }, { axis = \"firm.frontier_a.release_month\", payoff = \"npv.frontier_a\" }]",
            ));
        };
        let items = self.array(list, "reduce.game.players", "player")?;
        if !(2..=MAX_PLAYERS).contains(&items.len()) {
            return Err(self.err(
                &list.value.span,
                "reduce.game.players",
                format!("a game has 2 to {MAX_PLAYERS} players; this one lists {}", items.len()),
            ));
        }
        let mut players: Vec<Player> = Vec::new();
        for item in items {
            let Node::Table(pf) = &item.node else {
                return Err(self.err(
                    &item.span,
                    "reduce.game.players",
                    format!("expected {{ axis = \"<axis path>\", payoff = \"<output>\" }}, found {}", item.node.type_name()),
                ));
            };
            for f in pf {
                if !PLAYER_KEYS.contains(&f.key.as_str()) {
                    return Err(self.unknown_key(f, "reduce.game.players", PLAYER_KEYS));
                }
            }
            let get = |k: &str| pf.iter().find(|f| f.key == k);
            let Some(axis) = get("axis") else {
                return Err(self.err(
                    &item.span,
                    "reduce.game.players.axis",
                    "missing: name the player's strategy axis, e.g. axis = \"firm.open.release_month\"",
                ));
            };
            let name = self.expect_str(&axis.value, "reduce.game.players.axis")?;
            let a = self.axis_named(name, &axis.value, "reduce.game.players.axis", plan)?;
            if by.iter().any(|g| g.axis == a) {
                return Err(self.err(
                    &axis.value.span,
                    "reduce.game.players.axis",
                    format!(
                        "{name} is also in reduce.by: a player's strategies are chosen within each world, so its axis cannot group rows too"
                    ),
                ));
            }
            if players.iter().any(|p| p.axis == a) {
                return Err(self.err(&axis.value.span, "reduce.game.players.axis", format!("{name} is the axis of two players")));
            }
            let Some(payoff) = get("payoff") else {
                return Err(self.err(
                    &item.span,
                    "reduce.game.players.payoff",
                    "missing: name the output the player maximizes, e.g. payoff = \"npv.open\"",
                ));
            };
            let payoff_name = self.expect_str(&payoff.value, "reduce.game.players.payoff")?;
            let payoff = self.output_named(payoff_name, &payoff.value, "reduce.game.players.payoff", available)?;
            let values: Vec<f64> = (0..plan.axes[a].values.len()).map(|i| plan.axes[a].values.value(i)).collect();
            let spec = plan.axes[a].param.spec;
            let reference = match get("reference") {
                // Default: never, where the axis has it; else its last value.
                None => values
                    .iter()
                    .position(|&v| spec.kind == crate::model::params::Kind::Month && v == crate::model::NEVER as f64)
                    .unwrap_or(values.len() - 1),
                Some(r) => self.value_index(spec, &r.value, "reduce.game.players.reference", name, &values)?,
            };
            players.push(Player { axis: a, path: name.to_string(), values, payoff, reference });
        }
        let game = Game { players };
        let profiles = game.players.iter().try_fold(1usize, |n, p| n.checked_mul(p.values.len()));
        if profiles.is_none_or(|n| n > MAX_PROFILES) {
            let sizes: Vec<String> = game.players.iter().map(|p| p.values.len().to_string()).collect();
            return Err(self.err(
                &list.value.span,
                "reduce.game.players",
                format!(
                    "the game has {} = {} profiles per world, more than the {MAX_PROFILES} a world's payoff table may hold in memory (one device invocation solves each world): give the players fewer values",
                    sizes.join(" x "),
                    game.players.iter().map(|p| p.values.len() as u128).product::<u128>()
                ),
            ));
        }
        Ok(game)
    }
}
