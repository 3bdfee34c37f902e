//! `moatsweep discover`: scenario discovery with PRIM (Friedman and Fisher 1999)
//! as EMA Workbench 2.5 implements it (`ema_workbench.analysis.prim.Prim`,
//! objective lenient1), so that on the same rows the peeling and pasting
//! trajectory is EMA's:
//!
//! - Peeling: for every input (real-valued ones first, then integer ones, each
//!   in input order) two candidates, the box's upper end peeled at the
//!   (1 - peel_alpha) quantile of the values in the box and its lower end at
//!   the peel_alpha quantile (EMA's sdtoolkit quantile, [`quantile`]); integer
//!   inputs peel as ordered values (EMA's discrete peel: the quantile cut to an
//!   integer, at least one value removed, the limit set to a value that remains).
//!   The candidate with the largest (objective, unrestricted inputs) wins, the
//!   first one on a tie; it is taken while its mass is at least mass_min, below
//!   the box's, and its objective positive. Objective lenient1: the gain in the
//!   share of cases of interest divided by the number of rows removed (or added).
//! - Pasting: while a real-valued input is restricted, each restricted input's
//!   lower (upper) limit may move out to the (1 - paste_alpha) (paste_alpha)
//!   quantile of the values between the initial and current limit of the rows
//!   otherwise inside the box; a paste is taken when it raises mass and the share.
//! - Quasi-p-values (Bryant and Lempert 2010): for each restricted limit, the
//!   one-sided binomial test of the box's cases of interest against the share
//!   in the box without that limit.

use std::io::Write;
use std::path::PathBuf;

use super::SweepFile;
use super::sensitivity::beside;
use super::{fmt_number, image};
use crate::InputError;
use crate::config::error::{quoted, suggest};

/// Scenario discovery: where in the axes' space `--where` holds.
#[derive(clap::Args, Debug)]
pub struct DiscoverArgs {
    /// A sweep CSV of any design (its manifest names the axes; without one, give --inputs).
    pub csv: PathBuf,
    /// The cases of interest: comparisons of columns with numbers, joined by and, or, not and parentheses,
    /// e.g. "exit_month.challenger >= 0 and npv.open > 0".
    #[arg(long = "where", value_name = "EXPR")]
    pub expr: String,
    /// The inputs PRIM may restrict (comma-separated; default: the sweep's axes).
    #[arg(long, value_name = "A,B,...", value_delimiter = ',')]
    pub inputs: Vec<String>,
    /// The density a box must reach to be chosen (the last such box on the trajectory).
    #[arg(long, default_value_t = 0.8)]
    pub threshold: f64,
    /// Choose this box of the trajectory instead (0 is the whole space).
    #[arg(long = "box", value_name = "N")]
    pub box_index: Option<usize>,
    /// Share of the box peeled at each step.
    #[arg(long, default_value_t = 0.05)]
    pub peel_alpha: f64,
    /// Share pasted back at each step.
    #[arg(long, default_value_t = 0.05)]
    pub paste_alpha: f64,
    /// Smallest mass (share of all rows) of a box.
    #[arg(long, default_value_t = 0.05)]
    pub mass_min: f64,
    /// Check the SHA-256 of a Parquet file's bytes against its manifest before
    /// computing (a full read of the file; a CSV is always checked, as it is
    /// read whole anyway). The header, row count, length and column types are
    /// always checked.
    #[arg(long)]
    pub verify_hash: bool,
    /// The trajectory as CSV (default: beside the input, <stem>.discover.csv).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Draw the coverage-density trade-off (.png or .svg).
    #[arg(long, value_name = "FILE")]
    pub plot: Option<PathBuf>,
}

// ---------------------------------------------------------------- expressions

/// A comparison operator of `--where`.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Op {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

/// A parsed `--where` expression; `Cmp` holds a column's index in the header.
#[derive(Clone, Debug, PartialEq)]
enum Expr {
    Cmp(usize, Op, f64),
    Not(Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
}

#[derive(Clone, Debug, PartialEq)]
enum Token {
    Name(String),
    Number(f64),
    Op(Op),
    Open,
    Close,
    And,
    Or,
    Not,
}

/// Tokens with the character position each starts at.
fn tokenize(text: &str) -> Result<Vec<(Token, usize)>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let start = i;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let token = if c == '(' {
            i += 1;
            Token::Open
        } else if c == ')' {
            i += 1;
            Token::Close
        } else if "<>=!".contains(c) {
            let two = chars.get(i + 1) == Some(&'=');
            i += 1 + two as usize;
            Token::Op(match (c, two) {
                ('<', false) => Op::Lt,
                ('<', true) => Op::Le,
                ('>', false) => Op::Gt,
                ('>', true) => Op::Ge,
                ('=', _) => Op::Eq,
                ('!', true) => Op::Ne,
                _ => return Err(format!("'!' at character {} must be followed by '=' (use not for negation)", start + 1)),
            })
        } else if c.is_ascii_digit()
            || ((c == '-' || c == '+' || c == '.') && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit() || *d == '.'))
        {
            i += 1;
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric()
                    || chars[i] == '.'
                    || ((chars[i] == '-' || chars[i] == '+') && matches!(chars[i - 1], 'e' | 'E')))
            {
                i += 1;
            }
            let s: String = chars[start..i].iter().collect();
            Token::Number(s.parse().map_err(|_| format!("{} at character {} is not a number", quoted(&s), start + 1))?)
        } else if c.is_alphabetic() || c == '_' {
            while i < chars.len() && (chars[i].is_alphanumeric() || "_.-".contains(chars[i])) {
                i += 1;
            }
            let s: String = chars[start..i].iter().collect();
            match s.as_str() {
                "and" => Token::And,
                "or" => Token::Or,
                "not" => Token::Not,
                _ => Token::Name(s),
            }
        } else {
            return Err(format!("unexpected '{}' at character {}", crate::config::error::escape(&c.to_string()), start + 1));
        };
        out.push((token, start));
    }
    Ok(out)
}

/// The longest `--where` expression, in characters.
pub const MAX_WHERE_CHARS: usize = 10_000;
/// The deepest nesting of parentheses and `not` in a `--where` expression (the
/// parser recurses once per level).
pub const MAX_WHERE_DEPTH: usize = 100;

struct Parser<'a> {
    tokens: Vec<(Token, usize)>,
    at: usize,
    /// Parentheses and `not`s open at this point.
    depth: usize,
    columns: &'a [String],
    /// Characters in the expression, for "at the end" messages.
    len: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at).map(|t| &t.0)
    }

    fn position(&self) -> String {
        match self.tokens.get(self.at) {
            Some((_, p)) => format!("at character {}", p + 1),
            None => format!("at the end (character {})", self.len + 1),
        }
    }

    fn or(&mut self) -> Result<Expr, String> {
        let mut e = self.and()?;
        while self.peek() == Some(&Token::Or) {
            self.at += 1;
            e = Expr::Or(Box::new(e), Box::new(self.and()?));
        }
        Ok(e)
    }

    fn and(&mut self) -> Result<Expr, String> {
        let mut e = self.not()?;
        while self.peek() == Some(&Token::And) {
            self.at += 1;
            e = Expr::And(Box::new(e), Box::new(self.not()?));
        }
        Ok(e)
    }

    fn not(&mut self) -> Result<Expr, String> {
        if matches!(self.peek(), Some(Token::Not | Token::Open)) {
            if self.depth == MAX_WHERE_DEPTH {
                return Err(format!(
                    "parentheses and not nested more than {MAX_WHERE_DEPTH} deep {} (the limit is {MAX_WHERE_DEPTH})",
                    self.position()
                ));
            }
            self.depth += 1;
            let e = self.nested();
            self.depth -= 1;
            return e;
        }
        self.comparison()
    }

    /// `not X` or `( X )`, one level deeper.
    fn nested(&mut self) -> Result<Expr, String> {
        if self.peek() == Some(&Token::Not) {
            self.at += 1;
            return Ok(Expr::Not(Box::new(self.not()?)));
        }
        self.at += 1;
        let e = self.or()?;
        if self.peek() != Some(&Token::Close) {
            return Err(format!("expected ')' {}", self.position()));
        }
        self.at += 1;
        Ok(e)
    }

    /// `column op number` or `number op column`.
    fn comparison(&mut self) -> Result<Expr, String> {
        let side = |p: &mut Self| -> Result<(Option<usize>, f64), String> {
            match p.tokens.get(p.at).cloned() {
                Some((Token::Name(name), pos)) => {
                    p.at += 1;
                    match p.columns.iter().position(|c| *c == name) {
                        Some(i) => Ok((Some(i), 0.0)),
                        None => Err(format!(
                            "unknown column {} at character {}{}",
                            quoted(&name),
                            pos + 1,
                            suggest(&name, p.columns.iter().map(String::as_str))
                        )),
                    }
                }
                Some((Token::Number(x), _)) => {
                    p.at += 1;
                    Ok((None, x))
                }
                _ => Err(format!("expected a column or a number {}", p.position())),
            }
        };
        let left = side(self)?;
        let op = match self.peek() {
            Some(Token::Op(op)) => *op,
            _ => return Err(format!("expected a comparison (<, <=, >, >=, ==, !=) {}", self.position())),
        };
        self.at += 1;
        let right = side(self)?;
        match (left, right) {
            ((Some(c), _), (None, x)) => Ok(Expr::Cmp(c, op, x)),
            ((None, x), (Some(c), _)) => {
                let flipped = match op {
                    Op::Lt => Op::Gt,
                    Op::Le => Op::Ge,
                    Op::Gt => Op::Lt,
                    Op::Ge => Op::Le,
                    other => other,
                };
                Ok(Expr::Cmp(c, flipped, x))
            }
            _ => Err(format!("each comparison needs one column and one number (before {})", self.position())),
        }
    }
}

/// Parses `text` against the CSV's `columns`.
fn parse_expr(text: &str, columns: &[String]) -> Result<Expr, String> {
    check_where_length(text)?;
    let tokens = tokenize(text)?;
    let mut p = Parser { tokens, at: 0, depth: 0, columns, len: text.chars().count() };
    let e = p.or()?;
    if p.at < p.tokens.len() {
        return Err(format!("unexpected {} (join comparisons with and, or)", p.position()));
    }
    Ok(e)
}

/// Refuses an expression longer than [`MAX_WHERE_CHARS`] (before the file is read).
fn check_where_length(text: &str) -> Result<(), String> {
    let n = text.chars().count();
    if n > MAX_WHERE_CHARS {
        return Err(format!("the expression is {n} characters long, more than the limit of {MAX_WHERE_CHARS} characters"));
    }
    Ok(())
}

/// Parses a `--where` expression against a file's `columns` (the header after
/// `scenario`), as `discover` does; the error is the message it gives. The
/// entry point of the parser's fuzz tests.
pub fn check_where(text: &str, columns: &[String]) -> Result<(), String> {
    parse_expr(text, columns).map(|_| ())
}

/// The columns an expression reads.
fn expr_columns(e: &Expr, out: &mut Vec<usize>) {
    match e {
        Expr::Cmp(c, ..) => {
            if !out.contains(c) {
                out.push(*c);
            }
        }
        Expr::Not(a) => expr_columns(a, out),
        Expr::And(a, b) | Expr::Or(a, b) => {
            expr_columns(a, out);
            expr_columns(b, out);
        }
    }
}

/// Evaluates `e` on row `i`; `value(c, i)` is column c's value (NaN when empty,
/// and a comparison with NaN is false).
fn eval(e: &Expr, i: usize, value: &impl Fn(usize, usize) -> f64) -> bool {
    match e {
        Expr::Cmp(c, op, x) => {
            let v = value(*c, i);
            match op {
                Op::Lt => v < *x,
                Op::Le => v <= *x,
                Op::Gt => v > *x,
                Op::Ge => v >= *x,
                Op::Eq => v == *x,
                Op::Ne => !v.is_nan() && v != *x,
            }
        }
        Expr::Not(a) => !eval(a, i, value),
        Expr::And(a, b) => eval(a, i, value) && eval(b, i, value),
        Expr::Or(a, b) => eval(a, i, value) || eval(b, i, value),
    }
}

// ---------------------------------------------------------------------- PRIM

/// An input of PRIM: its values in every row, and whether they are integers.
pub struct Input {
    pub name: String,
    pub values: Vec<f64>,
    pub integer: bool,
}

/// PRIM's settings (EMA Workbench's defaults: 0.05, 0.05, 0.05).
#[derive(Clone, Copy, Debug)]
pub struct PrimOptions {
    pub peel_alpha: f64,
    pub paste_alpha: f64,
    pub mass_min: f64,
}

impl Default for PrimOptions {
    fn default() -> Self {
        PrimOptions { peel_alpha: 0.05, paste_alpha: 0.05, mass_min: 0.05 }
    }
}

/// One box of the trajectory.
#[derive(Clone, Debug)]
pub struct PrimBox {
    /// (lower, upper) per input.
    pub limits: Vec<(f64, f64)>,
    /// Rows in the box.
    pub n: usize,
    /// Cases of interest in the box.
    pub k: usize,
}

/// The peeling and pasting trajectory, box 0 being the whole space.
pub struct Trajectory {
    pub boxes: Vec<PrimBox>,
    /// The limits of box 0 (each input's smallest and largest value).
    pub init: Vec<(f64, f64)>,
    /// All rows and all cases of interest.
    pub n: usize,
    pub k: usize,
}

impl Trajectory {
    pub fn coverage(&self, b: usize) -> f64 {
        self.boxes[b].k as f64 / self.k as f64
    }
    pub fn density(&self, b: usize) -> f64 {
        self.boxes[b].k as f64 / self.boxes[b].n as f64
    }
    pub fn mass(&self, b: usize) -> f64 {
        self.boxes[b].n as f64 / self.n as f64
    }
    /// The inputs box `b` restricts (a limit other than box 0's).
    pub fn restricted(&self, b: usize) -> Vec<usize> {
        restricted(&self.boxes[b].limits, &self.init)
    }
}

fn restricted(limits: &[(f64, f64)], init: &[(f64, f64)]) -> Vec<usize> {
    (0..limits.len()).filter(|&j| limits[j] != init[j]).collect()
}

/// EMA Workbench's quantile (after sdtoolkit): with d sorted and i = (len - 1) q,
/// above the median the mean of d[ceil i] and the largest value below it, at or
/// below the median the mean of d[floor i] and the smallest value above it (the
/// value itself where there is none).
pub fn quantile(data: &mut [f64], q: f64) -> f64 {
    let i = (data.len() - 1) as f64 * q;
    if q > 0.5 {
        let hi = i.ceil() as usize;
        let h = *data.select_nth_unstable_by(hi, f64::total_cmp).1;
        let below = data.iter().copied().filter(|&v| v < h).fold(f64::NEG_INFINITY, f64::max);
        (if below == f64::NEG_INFINITY { h } else { below } + h) / 2.0
    } else {
        let lo = i.floor() as usize;
        let l = *data.select_nth_unstable_by(lo, f64::total_cmp).1;
        let above = data.iter().copied().filter(|&v| v > l).fold(f64::INFINITY, f64::min);
        (l + if above == f64::INFINITY { l } else { above }) / 2.0
    }
}

/// EMA's lenient1 objective: the change in the share of cases of interest
/// divided by the number of rows removed or added.
fn lenient1(k_old: usize, n_old: usize, k_new: usize, n_new: usize) -> f64 {
    let mean_old = k_old as f64 / n_old as f64;
    let mean_new = if n_new > 0 { k_new as f64 / n_new as f64 } else { 0.0 };
    if mean_old == mean_new || n_old == n_new {
        return 0.0;
    }
    (mean_new - mean_old) / n_old.abs_diff(n_new) as f64
}

/// A candidate box: its limits, rows and cases of interest, and its score.
struct Candidate {
    limits: Vec<(f64, f64)>,
    n: usize,
    k: usize,
    obj: f64,
    unrestricted: usize,
}

/// Whether `cand` beats `best`: a larger objective, or the same and more
/// unrestricted inputs (the first candidate wins a tie, as EMA's stable sort).
fn better(cand: &Candidate, best: &Option<Candidate>) -> bool {
    best.as_ref().is_none_or(|b| cand.obj > b.obj || (cand.obj == b.obj && cand.unrestricted > b.unrestricted))
}

fn in_box(inputs: &[Input], limits: &[(f64, f64)], dims: &[usize], row: usize) -> bool {
    dims.iter().all(|&j| {
        let v = inputs[j].values[row];
        limits[j].0 <= v && v <= limits[j].1
    })
}

/// Runs PRIM on `inputs` with cases of interest `y`: peeling, then pasting.
pub fn prim(inputs: &[Input], y: &[bool], opts: PrimOptions) -> Trajectory {
    let n = y.len();
    let d = inputs.len();
    let init: Vec<(f64, f64)> =
        inputs.iter().map(|x| x.values.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| (lo.min(v), hi.max(v)))).collect();
    let k_all = y.iter().filter(|&&b| b).count();
    let mut t = Trajectory { boxes: vec![PrimBox { limits: init.clone(), n, k: k_all }], init, n, k: k_all };
    // Real-valued inputs first, then integer ones, as EMA orders its candidates.
    let order: Vec<usize> = (0..d).filter(|&j| !inputs[j].integer).chain((0..d).filter(|&j| inputs[j].integer)).collect();
    let mut idx: Vec<u32> = (0..n as u32).collect();
    let unrestricted = |limits: &[(f64, f64)], init: &[(f64, f64)]| d - restricted(limits, init).len();

    // Peeling.
    loop {
        let current = t.boxes.last().expect("box 0").clone();
        let mut best: Option<Candidate> = None;
        let mut values = Vec::with_capacity(idx.len());
        for &j in &order {
            let x = &inputs[j].values;
            let (lo, hi) = current.limits[j];
            for upper in [true, false] {
                values.clear();
                values.extend(idx.iter().map(|&i| x[i as usize]));
                let q = quantile(&mut values, if upper { 1.0 - opts.peel_alpha } else { opts.peel_alpha });
                let (keep, limit): (Box<dyn Fn(f64) -> bool>, f64) = if !inputs[j].integer {
                    if upper { (Box::new(move |v| v <= q), q) } else { (Box::new(move |v| v >= q), q) }
                } else {
                    let q = q.trunc();
                    let keep: Box<dyn Fn(f64) -> bool> = match (upper, q == if upper { hi } else { lo }) {
                        (true, true) => Box::new(move |v| v < hi && v >= lo),
                        (true, false) => Box::new(move |v| v <= q && v >= lo),
                        (false, true) => Box::new(move |v| v > lo && v <= hi),
                        (false, false) => Box::new(move |v| v >= q && v <= hi),
                    };
                    let kept = idx.iter().map(|&i| x[i as usize]).filter(|&v| keep(v));
                    let all = idx.iter().map(|&i| x[i as usize]);
                    let limit = match (upper, kept.clone().next().is_some()) {
                        (true, true) => kept.fold(f64::NEG_INFINITY, f64::max),
                        (true, false) => all.fold(f64::NEG_INFINITY, f64::max),
                        (false, true) => kept.fold(f64::INFINITY, f64::min),
                        (false, false) => all.fold(f64::INFINITY, f64::min),
                    };
                    (keep, limit)
                };
                let (mut n_new, mut k_new) = (0, 0);
                for &i in &idx {
                    if keep(x[i as usize]) {
                        n_new += 1;
                        k_new += y[i as usize] as usize;
                    }
                }
                let mut limits = current.limits.clone();
                if upper {
                    limits[j].1 = limit
                } else {
                    limits[j].0 = limit
                }
                let cand = Candidate {
                    obj: lenient1(current.k, current.n, k_new, n_new),
                    unrestricted: unrestricted(&limits, &t.init),
                    limits,
                    n: n_new,
                    k: k_new,
                };
                if better(&cand, &best) {
                    best = Some(cand);
                }
            }
        }
        let Some(best) = best else { break };
        let mass_new = best.n as f64 / n as f64;
        let mass_old = current.n as f64 / n as f64;
        if !(mass_new >= opts.mass_min && mass_new < mass_old && best.obj > 0.0) {
            break;
        }
        let dims: Vec<usize> = (0..d).collect();
        idx.retain(|&i| in_box(inputs, &best.limits, &dims, i as usize));
        debug_assert_eq!(idx.len(), best.n);
        t.boxes.push(PrimBox { limits: best.limits, n: best.n, k: best.k });
    }

    // Pasting, over all rows.
    loop {
        let current = t.boxes.last().expect("box 0").clone();
        let res = t.restricted(t.boxes.len() - 1);
        let mut best: Option<Candidate> = None;
        let mut any = false;
        for integer in [false, true] {
            for &j in res.iter().filter(|&&j| inputs[j].integer == integer) {
                let x = &inputs[j].values;
                let (min, max) = t.init[j];
                for lower in [true, false] {
                    // The rows otherwise inside the box, between the initial and the current limit.
                    let mut reach = current.limits.clone();
                    reach[j] = if lower { (min, current.limits[j].0) } else { (current.limits[j].1, max) };
                    let mut data: Vec<f64> = (0..n).filter(|&i| in_box(inputs, &reach, &res, i)).map(|i| x[i]).collect();
                    let value = match (data.is_empty(), lower) {
                        (true, true) => min,
                        (true, false) => max,
                        (false, true) => quantile(&mut data, 1.0 - opts.paste_alpha),
                        (false, false) => quantile(&mut data, opts.paste_alpha),
                    };
                    let mut limits = current.limits.clone();
                    if lower {
                        limits[j].0 = value
                    } else {
                        limits[j].1 = value
                    }
                    let (mut n_new, mut k_new) = (0, 0);
                    for i in (0..n).filter(|&i| in_box(inputs, &limits, &res, i)) {
                        n_new += 1;
                        k_new += y[i] as usize;
                    }
                    let cand = Candidate {
                        obj: lenient1(current.k, current.n, k_new, n_new),
                        unrestricted: unrestricted(&limits, &t.init),
                        limits,
                        n: n_new,
                        k: k_new,
                    };
                    any = true;
                    if better(&cand, &best) {
                        best = Some(cand);
                    }
                }
            }
            // EMA stops here when no real-valued input is restricted.
            if !any {
                break;
            }
        }
        let Some(best) = best else { break };
        let mass_new = best.n as f64 / n as f64;
        let mass_old = current.n as f64 / n as f64;
        let (mean_old, mean_new) = (current.k as f64 / current.n as f64, best.k as f64 / best.n as f64);
        if !(mass_new >= opts.mass_min && mass_new > mass_old && best.obj > 0.0 && mean_new > mean_old) {
            break;
        }
        t.boxes.push(PrimBox { limits: best.limits, n: best.n, k: best.k });
    }
    t
}

/// log of the binomial probability P(X = x), X ~ Binomial(n, p), by Loader's
/// saddle-point method (accurate to about 1e-15 relative for any n).
fn ln_dbinom(x: u64, n: u64, p: f64) -> f64 {
    let q = 1.0 - p;
    if x == 0 {
        return n as f64 * (-p).ln_1p();
    }
    if x == n {
        return n as f64 * p.ln();
    }
    let (xf, nf) = (x as f64, n as f64);
    let lc = stirlerr(n) - stirlerr(x) - stirlerr(n - x) - bd0(xf, nf * p) - bd0(nf - xf, nf * q);
    let lf = (2.0 * std::f64::consts::PI).ln() + xf.ln() + (-xf / nf).ln_1p();
    lc - 0.5 * lf
}

/// ln(n!) - ((n + 1/2) ln n - n + ln sqrt(2 pi)), the error of Stirling's formula.
fn stirlerr(n: u64) -> f64 {
    let nf = n as f64;
    if n <= 15 {
        let ln_fact: f64 = (2..=n).map(|i| (i as f64).ln()).sum();
        return ln_fact - (nf + 0.5) * nf.ln() + nf - 0.5 * (2.0 * std::f64::consts::PI).ln();
    }
    let (s0, s1, s2, s3, s4) = (1.0 / 12.0, 1.0 / 360.0, 1.0 / 1260.0, 1.0 / 1680.0, 1.0 / 1188.0);
    let nn = nf * nf;
    if n > 500 {
        (s0 - s1 / nn) / nf
    } else if n > 80 {
        (s0 - (s1 - s2 / nn) / nn) / nf
    } else if n > 35 {
        (s0 - (s1 - (s2 - s3 / nn) / nn) / nn) / nf
    } else {
        (s0 - (s1 - (s2 - (s3 - s4 / nn) / nn) / nn) / nn) / nf
    }
}

/// x ln(x / np) + np - x, without cancellation when x is near np.
fn bd0(x: f64, np: f64) -> f64 {
    if (x - np).abs() < 0.1 * (x + np) {
        let v = (x - np) / (x + np);
        let mut s = (x - np) * v;
        let mut ej = 2.0 * x * v;
        let v2 = v * v;
        for j in 1..1000 {
            ej *= v2;
            let s1 = s + ej / (2 * j + 1) as f64;
            if s1 == s {
                return s1;
            }
            s = s1;
        }
        s
    } else {
        x * (x / np).ln() + np - x
    }
}

/// P(X >= k) for X ~ Binomial(n, p): scipy's `binomtest(k, n, p, alternative="greater").pvalue`.
pub fn binomial_upper_tail(k: u64, n: u64, p: f64) -> f64 {
    if k == 0 {
        return 1.0;
    }
    if k > n || p <= 0.0 {
        return 0.0;
    }
    if p >= 1.0 {
        return 1.0;
    }
    let mode = ((n + 1) as f64 * p).floor() as u64;
    let ratio = p / (1.0 - p);
    if k > mode {
        // Terms fall from k on.
        let mut term = ln_dbinom(k, n, p).exp();
        let mut sum = 0.0;
        let mut j = k;
        while term > 0.0 && term >= sum * 1e-17 {
            sum += term;
            if j == n {
                break;
            }
            term *= (n - j) as f64 / (j + 1) as f64 * ratio;
            j += 1;
        }
        sum
    } else {
        // One minus the lower tail, whose terms fall from k - 1 down.
        let mut term = ln_dbinom(k - 1, n, p).exp();
        let mut sum = 0.0;
        let mut j = k - 1;
        while term > 0.0 && term >= sum * 1e-17 {
            sum += term;
            if j == 0 {
                break;
            }
            term *= j as f64 / (n - j + 1) as f64 / ratio;
            j -= 1;
        }
        (1.0 - sum).max(0.0)
    }
}

/// The quasi-p-values of box `b`: per restricted input, for its lower and upper
/// limit (None where the limit is box 0's).
pub fn quasi_p(t: &Trajectory, inputs: &[Input], y: &[bool], b: usize) -> Vec<(usize, [Option<f64>; 2])> {
    let res = t.restricted(b);
    let bx = &t.boxes[b];
    res.iter()
        .map(|&j| {
            let side = |s: usize| -> Option<f64> {
                let (lim, init) = if s == 0 { (bx.limits[j].0, t.init[j].0) } else { (bx.limits[j].1, t.init[j].1) };
                if lim == init {
                    return None;
                }
                let mut limits = bx.limits.clone();
                if s == 0 {
                    limits[j].0 = init
                } else {
                    limits[j].1 = init
                }
                let (mut tj, mut hj) = (0u64, 0u64);
                for i in (0..y.len()).filter(|&i| in_box(inputs, &limits, &res, i)) {
                    tj += 1;
                    hj += y[i] as u64;
                }
                Some(binomial_upper_tail(bx.k as u64, bx.n as u64, hj as f64 / tj as f64))
            };
            (j, [side(0), side(1)])
        })
        .collect()
}

// ------------------------------------------------------------------- command

/// `moatsweep discover`: reads the inputs and the expression's columns, runs
/// PRIM, writes the trajectory (and the figure), prints the chosen box.
pub fn run(args: &DiscoverArgs, out: &mut impl Write) -> anyhow::Result<()> {
    for (flag, v) in [("--peel-alpha", args.peel_alpha), ("--paste-alpha", args.paste_alpha), ("--mass-min", args.mass_min)] {
        if !(v > 0.0 && v < 1.0) {
            return Err(InputError(format!("{flag} must be between 0 and 1, not {v}")).into());
        }
    }
    if !(args.threshold > 0.0 && args.threshold <= 1.0) {
        return Err(InputError(format!("--threshold is a density, between 0 (excluded) and 1, not {}", args.threshold)).into());
    }
    let where_error = |e: String| InputError(format!("--where {}: {e}", quoted(&args.expr)));
    check_where_length(&args.expr).map_err(where_error)?;
    let table = SweepFile::open_rows(&args.csv, args.verify_hash)?;
    let columns: Vec<String> = table.header()[1..].to_vec();
    let input_names: Vec<String> = if args.inputs.is_empty() {
        table.manifest_axes("discover", "for the axes (or name the inputs with --inputs)")?
    } else {
        args.inputs.clone()
    };
    if input_names.is_empty() {
        return Err(InputError(format!("{}: the sweep has no axes; name the inputs with --inputs", args.csv.display())).into());
    }
    let input_cols: Vec<usize> =
        input_names.iter().map(|n| table.find("--inputs", n, &columns, "the columns")).collect::<Result<_, _>>()?;
    if let Some(dup) = input_names.iter().enumerate().find_map(|(i, n)| input_names[..i].contains(n).then_some(n)) {
        if args.inputs.is_empty() {
            return Err(InputError(format!(
                "{}: its manifest lists the axis {} twice, so the inputs cannot be taken from it; name them with --inputs",
                args.csv.display(),
                quoted(dup)
            ))
            .into());
        }
        return Err(InputError(format!("--inputs: {} is given twice", quoted(dup))).into());
    }
    let expr = parse_expr(&args.expr, &columns).map_err(where_error)?;
    let mut used = Vec::new();
    expr_columns(&expr, &mut used);
    // Header indices: inputs, then the expression's other columns.
    let mut cols: Vec<usize> = input_cols.clone();
    cols.extend(used.iter().map(|&c| c + 1).filter(|c| !input_cols.contains(c)));
    let data = table.read(&cols)?;
    let n = data.rows();
    if n == 0 {
        return Err(InputError(format!("{} has no rows", args.csv.display())).into());
    }
    let d = input_cols.len();
    let slot = |c: usize| cols.iter().position(|&h| h == c + 1).expect("read");
    let y: Vec<bool> = (0..n).map(|i| eval(&expr, i, &|c, i| data.data[slot(c)][i])).collect();
    let k = y.iter().filter(|&&b| b).count();
    if k == 0 {
        return Err(InputError(format!(
            "--where {} holds in none of the {n} rows of {}: nothing to discover",
            quoted(&args.expr),
            args.csv.display()
        ))
        .into());
    }
    let mut inputs = Vec::with_capacity(d);
    for (j, name) in input_names.iter().enumerate() {
        if let Some(i) = data.data[j].iter().position(|v| !v.is_finite()) {
            return Err(InputError(format!(
                "{}: input {name} has no number in scenario {}; PRIM needs a value in every row",
                args.csv.display(),
                data.scenario[i]
            ))
            .into());
        }
        inputs.push(Input { name: name.clone(), values: data.data[j].clone(), integer: data.integer[j] });
    }
    let opts = PrimOptions { peel_alpha: args.peel_alpha, paste_alpha: args.paste_alpha, mass_min: args.mass_min };
    let t = prim(&inputs, &y, opts);
    let chosen = match args.box_index {
        Some(b) if b >= t.boxes.len() => {
            return Err(InputError(format!("--box {b}: the trajectory has boxes 0 to {}", t.boxes.len() - 1)).into());
        }
        Some(b) => b,
        None => (0..t.boxes.len())
            .rev()
            .find(|&b| t.density(b) >= args.threshold)
            .unwrap_or_else(|| (0..t.boxes.len()).max_by(|&a, &b| t.density(a).total_cmp(&t.density(b)).then(b.cmp(&a))).expect("box 0")),
    };

    // Trajectory CSV and figure, each written whole.
    let path = args.out.clone().unwrap_or_else(|| beside(&args.csv, "discover.csv"));
    let num = |v: f64| ryu::Buffer::new().format(v).to_string();
    let mut text = String::from("box,coverage,density,mass,mean,res_dim\n");
    for b in 0..t.boxes.len() {
        text += &format!(
            "{b},{},{},{},{},{}\n",
            num(t.coverage(b)),
            num(t.density(b)),
            num(t.mass(b)),
            num(t.density(b)),
            t.restricted(b).len()
        );
    }
    let figure = match &args.plot {
        Some(p) => Some(image::render(p, &TradeoffFigure { t: &t, chosen, title: format!("{}: {}", table.path().display(), args.expr) })?),
        None => None,
    };
    image::write(&path, text.as_bytes())?;
    if let (Some(p), Some(bytes)) = (&args.plot, figure) {
        image::write(p, &bytes)?;
    }

    let ints: Vec<&str> = inputs.iter().filter(|x| x.integer).map(|x| x.name.as_str()).collect();
    writeln!(
        out,
        "{}: {n} rows, {k} cases of interest ({}%) where {}",
        args.csv.display(),
        fmt_number(100.0 * k as f64 / n as f64, 3),
        args.expr
    )?;
    writeln!(
        out,
        "inputs: {}{}",
        input_names.join(", "),
        if ints.is_empty() { String::new() } else { format!(" (peeled as integers: {})", ints.join(", ")) }
    )?;
    writeln!(
        out,
        "PRIM (peel_alpha {}, paste_alpha {}, mass_min {}, objective lenient1): {} boxes, trajectory in {}",
        args.peel_alpha,
        args.paste_alpha,
        args.mass_min,
        t.boxes.len(),
        path.display()
    )?;
    writeln!(out, "  {:>4}  {:>8}  {:>8}  {:>8}  {:>7}", "box", "coverage", "density", "mass", "res_dim")?;
    for b in 0..t.boxes.len() {
        let mark = if b == chosen { "  <- chosen" } else { "" };
        writeln!(out, "  {b:>4}  {:>8.4}  {:>8.4}  {:>8.4}  {:>7}{mark}", t.coverage(b), t.density(b), t.mass(b), t.restricted(b).len())?;
    }
    let why = match args.box_index {
        Some(_) => "chosen with --box".to_string(),
        None if t.density(chosen) >= args.threshold => format!("the last box with density >= {}", args.threshold),
        None => format!("no box reaches density {}; this is the densest", args.threshold),
    };
    writeln!(
        out,
        "\nbox {chosen} ({why}): coverage {}, density {}, mass {}, {} rows of which {} cases of interest",
        fmt_number(t.coverage(chosen), 4),
        fmt_number(t.density(chosen), 4),
        fmt_number(t.mass(chosen), 4),
        t.boxes[chosen].n,
        t.boxes[chosen].k
    )?;
    let qp = quasi_p(&t, &inputs, &y, chosen);
    if qp.is_empty() {
        writeln!(out, "  no input is restricted")?;
    } else {
        let w = qp.iter().map(|(j, _)| input_names[*j].len()).max().unwrap_or(5);
        writeln!(out, "  {:w$}  {:>12}  {:>12}  {:>25}  {:>10}  {:>10}", "input", "lower", "upper", "(of)", "qp lower", "qp upper")?;
        for (j, [ql, qu]) in qp {
            let (lo, hi) = t.boxes[chosen].limits[j];
            let (a, b) = t.init[j];
            let p = |q: Option<f64>| q.map_or("-".to_string(), |q| format!("{q:.2e}"));
            writeln!(
                out,
                "  {:w$}  {:>12}  {:>12}  {:>25}  {:>10}  {:>10}",
                input_names[j],
                fmt_number(lo, 6),
                fmt_number(hi, 6),
                format!("({} .. {})", fmt_number(a, 4), fmt_number(b, 4)),
                p(ql),
                p(qu)
            )?;
        }
    }
    if let Some(p) = &args.plot {
        writeln!(out, "wrote {}", p.display())?;
    }
    Ok(())
}

/// Coverage against density of every box, coloured by restricted inputs.
struct TradeoffFigure<'a> {
    t: &'a Trajectory,
    chosen: usize,
    title: String,
}

impl image::Figure for TradeoffFigure<'_> {
    fn height(&self) -> u32 {
        1000
    }

    fn draw<DB: plotters::prelude::DrawingBackend>(
        &self,
        root: plotters::prelude::DrawingArea<DB, plotters::coord::Shift>,
    ) -> anyhow::Result<()>
    where
        DB::ErrorType: 'static,
    {
        use plotters::prelude::*;
        let font = |s: f64| (image::FAMILY, s * 1.4).into_font();
        root.fill(&WHITE)?;
        let (main, legend) = root.split_horizontally(image::WIDTH - 200);
        let max_dims = (0..self.t.boxes.len()).map(|b| self.t.restricted(b).len()).max().unwrap_or(0).max(1);
        let colour = |r: usize| ViridisRGB::get_color_normalized(r as f32, 0.0, max_dims as f32);
        let mut chart = ChartBuilder::on(&main)
            .caption(&self.title, font(16.0))
            .margin(20)
            .x_label_area_size(60)
            .y_label_area_size(80)
            .build_cartesian_2d(0.0..1.05, 0.0..1.05)?;
        chart.configure_mesh().x_desc("coverage").y_desc("density").label_style(font(13.0)).axis_desc_style(font(15.0)).draw()?;
        chart.draw_series(
            (0..self.t.boxes.len())
                .map(|b| Circle::new((self.t.coverage(b), self.t.density(b)), 7, colour(self.t.restricted(b).len()).filled())),
        )?;
        let c = self.chosen;
        chart.draw_series(std::iter::once(Circle::new((self.t.coverage(c), self.t.density(c)), 13, BLACK.stroke_width(2))))?;
        chart.draw_series(std::iter::once(Text::new(
            format!("box {c}"),
            (self.t.coverage(c) + 0.015, self.t.density(c) + 0.02),
            font(13.0),
        )))?;
        let legend = legend.margin(80, 20, 10, 10);
        legend.draw(&Text::new("restricted inputs", (0, 0), font(13.0)))?;
        for r in 0..=max_dims {
            let y = 35 + 30 * r as i32;
            legend.draw(&Circle::new((10, y), 7, colour(r).filled()))?;
            legend.draw(&Text::new(r.to_string(), (30, y - 9), font(13.0)))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantile_follows_sdtoolkit() {
        // i = 9 * 0.95 = 8.55: values 8 and 9 -> 8.5; ties at the top skip down to the next value below.
        let mut d: Vec<f64> = (0..10).map(f64::from).collect();
        assert_eq!(quantile(&mut d, 0.95), 8.5);
        assert_eq!(quantile(&mut d, 0.05), 0.5);
        let mut d = vec![1.0, 2.0, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0];
        assert_eq!(quantile(&mut d, 0.95), 3.5, "(2 + 5) / 2");
        assert_eq!(quantile(&mut d, 0.05), 1.5);
        let mut d = vec![4.0; 7];
        assert_eq!(quantile(&mut d, 0.95), 4.0);
        assert_eq!(quantile(&mut d, 0.05), 4.0);
    }

    #[test]
    fn binomial_tails_match_exact_sums() {
        // Exact sums by the recurrence from P(X = 0) = q^n, for small n.
        for (n, p) in [(10u64, 0.3), (40, 0.05), (25, 0.9), (1, 0.5)] {
            let mut pmf = vec![(1.0f64 - p).powi(n as i32)];
            for j in 0..n {
                let last = pmf[j as usize];
                pmf.push(last * (n - j) as f64 / (j + 1) as f64 * p / (1.0 - p));
            }
            for k in 0..=n + 1 {
                let want: f64 = pmf.iter().skip(k as usize).sum();
                let got = binomial_upper_tail(k, n, p);
                assert!((got - want).abs() <= 1e-13 * want.max(1e-300) + 1e-15, "n {n} p {p} k {k}: {got} vs {want}");
            }
        }
        // Far tails, against scipy 1.17.1's binom.sf(k - 1, n, p) (what binomtest(..., alternative="greater") returns).
        for (k, n, p, scipy) in
            [(60, 100, 0.3, 5.129949815583127e-10), (5200, 10_000, 0.5, 3.2967577993361714e-05), (900, 1000, 0.8, 8.731206511212449e-18)]
        {
            let got = binomial_upper_tail(k, n, p);
            assert!((got / scipy - 1.0).abs() < 1e-10, "P(X >= {k} | {n}, {p}) = {got}, scipy {scipy}");
        }
    }

    #[test]
    fn expressions_parse_and_name_unknown_columns() {
        let cols: Vec<String> = ["exit_month.challenger", "npv.open", "firm.open.release_month"].map(String::from).to_vec();
        let e = parse_expr("exit_month.challenger >= 0 and not (npv.open <= -1e9 or 5 < firm.open.release_month)", &cols).unwrap();
        let rows = [[0.0, 1.0, 3.0], [-1.0, 1.0, 3.0], [2.0, -2e9, 3.0], [2.0, 0.0, 9.0], [2.0, f64::NAN, 1.0]];
        let got: Vec<bool> = (0..rows.len()).map(|i| eval(&e, i, &|c, i| rows[i][c])).collect();
        assert_eq!(got, [true, false, false, false, true]);
        let err = parse_expr("exit_month.chalenger >= 0", &cols).unwrap_err();
        assert_eq!(err, "unknown column \"exit_month.chalenger\" at character 1 (did you mean \"exit_month.challenger\"?)");
        assert!(parse_expr("npv.open >", &cols).unwrap_err().starts_with("expected a column or a number at the end"));
        assert!(parse_expr("npv.open > 0 npv.open", &cols).unwrap_err().starts_with("unexpected at character 14"));
        assert!(parse_expr("npv.open > npv.open", &cols).unwrap_err().starts_with("each comparison needs one column and one number"));
    }
}
