//! The reduction's state (per group: moments and sketches of every reduced output,
//! the strategy map), the host reducer that adds solved rows to it, and its
//! canonical bytes: the same state gives the same bytes, which checkpoints carry
//! for `--resume` and shards leave for `merge`.

use std::collections::HashMap;

use rayon::prelude::*;

use super::best::{BestState, choose};
use super::game::{self, GameState};
use super::sketch::Sketch;
use super::stats::{ExactSum, MeanAcc, Moments};
use super::{ReducePlan, Stat};
use crate::backend::device::{DeviceChunk, NO_ROW, PARTIAL_WORDS, SKETCH_COUNT_BITS, SKETCH_HEADER, SegKind};
use crate::backend::{ChunkSink, Outcomes};
use crate::model::Outcome;
use crate::sweep::Plan;

/// One group's state.
#[derive(Clone, Debug, PartialEq)]
pub struct GroupState {
    /// Per reduced output.
    pub moments: Vec<Moments>,
    /// Per reduced output, when a quantile is asked for (else empty).
    pub sketches: Vec<Sketch>,
    pub best: Option<BestState>,
    pub game: Option<GameState>,
}

impl GroupState {
    pub fn new(rp: &ReducePlan) -> GroupState {
        let j = rp.outputs.len();
        GroupState {
            moments: vec![Moments::default(); j],
            sketches: if rp.quantiles() { vec![Sketch::default(); j] } else { Vec::new() },
            best: rp.best.as_ref().map(|b| BestState::new(b.values.len(), j)),
            game: rp.game.as_ref().map(|g| GameState::new(g.profiles(), j)),
        }
    }

    pub fn merge(&mut self, o: &GroupState) {
        for (a, b) in self.moments.iter_mut().zip(&o.moments) {
            a.merge(b);
        }
        for (a, b) in self.sketches.iter_mut().zip(&o.sketches) {
            a.merge(b);
        }
        if let (Some(a), Some(b)) = (self.best.as_mut(), o.best.as_ref()) {
            a.merge(b);
        }
        if let (Some(a), Some(b)) = (self.game.as_mut(), o.game.as_ref()) {
            a.merge(b);
        }
    }

    /// The value of statistic `s` of output `j` (None: an empty cell).
    pub fn stat(&self, j: usize, s: Stat) -> Option<f64> {
        let m = &self.moments[j];
        match s {
            Stat::Mean => m.mean(),
            Stat::Std => m.std(),
            Stat::Min => (m.n > 0).then_some(m.min),
            Stat::Max => (m.n > 0).then_some(m.max),
            Stat::Count => Some(m.n as f64),
            Stat::Quantile(p) => self.sketches[j].quantile(p as f64 / 100.0, m.min, m.max),
        }
    }
}

/// Every group's state, indexed by group.
#[derive(Clone, Debug, PartialEq)]
pub struct ReduceState {
    pub groups: Vec<GroupState>,
}

impl ReduceState {
    pub fn new(rp: &ReducePlan) -> ReduceState {
        ReduceState { groups: (0..rp.groups).map(|_| GroupState::new(rp)).collect() }
    }

    pub fn merge(&mut self, o: &ReduceState) {
        for (a, b) in self.groups.iter_mut().zip(&o.groups) {
            a.merge(b);
        }
    }

    /// The canonical bytes of the state.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Vec::new();
        w.extend_from_slice(MAGIC);
        put_u64(&mut w, self.groups.len() as u64);
        for g in &self.groups {
            put_u64(&mut w, g.moments.len() as u64);
            for m in &g.moments {
                put_u64(&mut w, m.n);
                put_u64(&mut w, m.min.to_bits());
                put_u64(&mut w, m.max.to_bits());
                put_u64(&mut w, m.pos_inf);
                put_u64(&mut w, m.neg_inf);
                put_sum(&mut w, &m.s1);
                put_sum(&mut w, &m.s2);
            }
            put_u64(&mut w, g.sketches.len() as u64);
            for s in &g.sketches {
                put_u64(&mut w, s.zeros);
                for (lo, counts) in s.parts() {
                    put_u64(&mut w, lo as i64 as u64);
                    put_u64(&mut w, counts.len() as u64);
                    for c in counts {
                        put_u64(&mut w, c);
                    }
                }
            }
            match &g.best {
                None => put_u64(&mut w, 0),
                Some(b) => {
                    put_u64(&mut w, 1);
                    put_u64(&mut w, b.worlds);
                    put_u64(&mut w, b.choices.len() as u64);
                    for &c in &b.choices {
                        put_u64(&mut w, c);
                    }
                    for m in b.at_best.iter().chain(&b.at_ref) {
                        put_mean(&mut w, m);
                    }
                }
            }
            // Only a game's state has this part (so other states' bytes are as before).
            if let Some(gs) = &g.game {
                put_u64(&mut w, gs.worlds);
                for &c in &gs.counts {
                    put_u64(&mut w, c);
                }
                put_u64(&mut w, gs.nash.len() as u64);
                for &c in gs.nash.iter().chain(&gs.leader) {
                    put_u64(&mut w, c);
                }
                put_u64(&mut w, gs.leader_none);
                for m in gs.at_leader.iter().chain(&gs.at_ref) {
                    put_mean(&mut w, m);
                }
            }
        }
        w
    }

    /// Reads bytes written by [`Self::to_bytes`] for the reduction `rp`.
    pub fn from_bytes(bytes: &[u8], rp: &ReducePlan) -> Result<ReduceState, String> {
        let mut r = Reader { b: bytes, at: 0 };
        if r.take(MAGIC.len())? != MAGIC {
            return Err("not a moatsweep reduction state".into());
        }
        let n = r.u64()?;
        if n != rp.groups {
            return Err(format!("it holds {n} groups, the reduction has {}", rp.groups));
        }
        let j = rp.outputs.len() as u64;
        let mut groups = Vec::with_capacity(n as usize);
        for _ in 0..n {
            if r.u64()? != j {
                return Err("its outputs differ from the reduction's".into());
            }
            let mut moments = Vec::with_capacity(j as usize);
            for _ in 0..j {
                let n = r.u64()?;
                let min = f64::from_bits(r.u64()?);
                let max = f64::from_bits(r.u64()?);
                let pos_inf = r.u64()?;
                let neg_inf = r.u64()?;
                let s1 = r.sum()?;
                let s2 = r.sum()?;
                moments.push(Moments { n, s1, s2, min, max, pos_inf, neg_inf });
            }
            let k = r.u64()?;
            if k != if rp.quantiles() { j } else { 0 } {
                return Err("its sketches differ from the reduction's".into());
            }
            let mut sketches = Vec::with_capacity(k as usize);
            for _ in 0..k {
                let zeros = r.u64()?;
                let mut store = || -> Result<(i32, Vec<u64>), String> {
                    let lo = r.u64()? as i64 as i32;
                    let len = r.u64()? as usize;
                    if len > super::sketch::MAX_BUCKETS {
                        return Err("a sketch store is too long".into());
                    }
                    Ok((lo, (0..len).map(|_| r.u64()).collect::<Result<_, _>>()?))
                };
                let pos = store()?;
                let neg = store()?;
                sketches.push(Sketch::from_parts(zeros, pos, neg));
            }
            let best = match r.u64()? {
                0 if rp.best.is_none() => None,
                1 if rp.best.is_some() => {
                    let worlds = r.u64()?;
                    let c = r.u64()?;
                    if c != rp.best.as_ref().map_or(0, |b| b.values.len() as u64) {
                        return Err("its strategy map differs from the reduction's".into());
                    }
                    let choices = (0..c).map(|_| r.u64()).collect::<Result<_, _>>()?;
                    let at_best = (0..j).map(|_| r.mean()).collect::<Result<_, _>>()?;
                    let at_ref = (0..j).map(|_| r.mean()).collect::<Result<_, _>>()?;
                    Some(BestState { worlds, choices, at_best, at_ref })
                }
                _ => return Err("its strategy map differs from the reduction's".into()),
            };
            let game = match &rp.game {
                None => None,
                Some(gm) => {
                    let worlds = r.u64()?;
                    let counts = [r.u64()?, r.u64()?, r.u64()?];
                    let profiles = r.u64()?;
                    if profiles != gm.profiles() as u64 {
                        return Err("its game differs from the reduction's".into());
                    }
                    let nash = (0..profiles).map(|_| r.u64()).collect::<Result<_, _>>()?;
                    let leader = (0..profiles).map(|_| r.u64()).collect::<Result<_, _>>()?;
                    let leader_none = r.u64()?;
                    let at_leader = (0..j).map(|_| r.mean()).collect::<Result<_, _>>()?;
                    let at_ref = (0..j).map(|_| r.mean()).collect::<Result<_, _>>()?;
                    Some(GameState { worlds, counts, nash, leader_none, leader, at_leader, at_ref })
                }
            };
            groups.push(GroupState { moments, sketches, best, game });
        }
        if r.at != bytes.len() {
            return Err("it has bytes after its end".into());
        }
        Ok(ReduceState { groups })
    }
}

const MAGIC: &[u8] = b"moatsweep reduce state 1\n";

fn put_u64(w: &mut Vec<u8>, v: u64) {
    w.extend_from_slice(&v.to_le_bytes());
}

fn put_sum(w: &mut Vec<u8>, s: &ExactSum) {
    let (lo, limbs) = s.parts();
    put_u64(w, lo as i64 as u64);
    put_u64(w, limbs.len() as u64);
    for l in limbs {
        put_u64(w, l as u64);
    }
}

fn put_mean(w: &mut Vec<u8>, m: &MeanAcc) {
    put_u64(w, m.n);
    put_u64(w, m.pos_inf);
    put_u64(w, m.neg_inf);
    put_sum(w, &m.s1);
}

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        let s = self.b.get(self.at..self.at + n).ok_or("it ends early")?;
        self.at += n;
        Ok(s)
    }
    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().expect("8 bytes")))
    }
    fn sum(&mut self) -> Result<ExactSum, String> {
        let lo = self.u64()? as i64 as i32;
        let len = self.u64()? as usize;
        if len > 1 << 12 {
            return Err("an exact sum is too long".into());
        }
        let limbs = (0..len).map(|_| self.u64().map(|v| v as i64)).collect::<Result<_, _>>()?;
        Ok(ExactSum::from_parts(lo, limbs))
    }
    fn mean(&mut self) -> Result<MeanAcc, String> {
        let n = self.u64()?;
        let pos_inf = self.u64()?;
        let neg_inf = self.u64()?;
        Ok(MeanAcc { n, s1: self.sum()?, pos_inf, neg_inf })
    }
}

/// The host reducer: adds solved rows (pushed in position order) to the state.
/// With `best`, the rows of a world that a chunk cuts are held until the next
/// chunk completes it; [`Reducer::durable`] is the position up to which the
/// state holds every row.
pub struct Reducer<'p> {
    pub plan: &'p Plan,
    pub rp: &'p ReducePlan,
    pub state: ReduceState,
    /// Rows of an incomplete world, from position `durable`.
    pending: Vec<Outcome<f64>>,
    durable: u64,
}

impl<'p> Reducer<'p> {
    /// A reducer whose state holds the rows before position `from`.
    pub fn new(plan: &'p Plan, rp: &'p ReducePlan, state: ReduceState, from: u64) -> Reducer<'p> {
        Reducer { plan, rp, state, pending: Vec::new(), durable: from }
    }

    /// Positions before this one are in the state.
    pub fn durable(&self) -> u64 {
        self.durable
    }

    /// The next position expected.
    pub fn next(&self) -> u64 {
        self.durable + self.pending.len() as u64
    }

    /// Adds rows `first..` (in position order) to the state.
    pub fn add_rows(&mut self, first: u64, rows: Vec<Outcome<f64>>) -> anyhow::Result<()> {
        anyhow::ensure!(first == self.next(), "chunk out of order: expected position {}, got {first}", self.next());
        let mut rows = rows;
        if !self.pending.is_empty() {
            let mut all = std::mem::take(&mut self.pending);
            all.append(&mut rows);
            rows = all;
        }
        let start = self.durable;
        let unit = self.rp.world_rows();
        let whole = rows.len() / unit * unit;
        self.pending = rows.split_off(whole);
        let (plan, rp) = (self.plan, self.rp);
        // Pieces of whole worlds, reduced in parallel into sparse partial states and
        // added up: exact sums and counts, so neither the pieces nor the order matter.
        let piece = (unit * (1024 / unit).max(1)).max(unit);
        let partial: HashMap<u32, GroupState> = rows
            .par_chunks(piece)
            .enumerate()
            .fold(HashMap::new, |mut acc: HashMap<u32, GroupState>, (k, chunk)| {
                let first = start + (k * piece) as u64;
                for (w, world) in chunk.chunks(unit).enumerate() {
                    let p = first + (w * unit) as u64;
                    let g = rp.group(plan, p);
                    let st = acc.entry(g).or_insert_with(|| GroupState::new(rp));
                    add_world(rp, st, world);
                }
                acc
            })
            .reduce(HashMap::new, |mut a, b| {
                for (g, s) in b {
                    match a.get_mut(&g) {
                        Some(t) => t.merge(&s),
                        None => {
                            a.insert(g, s);
                        }
                    }
                }
                a
            });
        for (g, s) in partial {
            self.state.groups[g as usize].merge(&s);
        }
        self.durable = start + whole as u64;
        Ok(())
    }
}

impl Reducer<'_> {
    /// Adds the bucket counts of a chunk's quantile sketches (see [`DeviceChunk::qvals`]).
    fn add_device_sketches(&mut self, c: &DeviceChunk) -> anyhow::Result<()> {
        if c.qvals.is_empty() {
            return Ok(());
        }
        let table = crate::reduce::sketch::device_buckets()?;
        let j = self.rp.outputs.len().max(1);
        let mut at: Option<(usize, usize)> = None;
        for &w in &c.qvals {
            if w & SKETCH_HEADER != 0 {
                let pair = (w & !SKETCH_HEADER) as usize;
                let seg = c.segments.get(pair / j).filter(|s| s.kind == SegKind::Stats && pair % j < self.rp.outputs.len());
                let seg = seg.ok_or_else(|| anyhow::anyhow!("the device returned quantile counts of a segment it does not have"))?;
                at = Some((seg.group as usize, pair % j));
            } else {
                let (g, o) = at.ok_or_else(|| anyhow::anyhow!("the device returned quantile counts without their segment"))?;
                let sketch = self.state.groups[g]
                    .sketches
                    .get_mut(o)
                    .ok_or_else(|| anyhow::anyhow!("quantile counts for a reduction without quantiles"))?;
                sketch.add_device(table, w >> SKETCH_COUNT_BITS, (w & ((1 << SKETCH_COUNT_BITS) - 1)) as u64)?;
            }
        }
        Ok(())
    }

    /// Adds a chunk reduced on the GPU: each segment's partials exactly (f32 mean and
    /// m2 of its rows, see [`Moments::add_block`]), the worlds' choices, and the
    /// bucket counts of the quantile sketches.
    pub fn add_device(&mut self, c: &DeviceChunk) -> anyhow::Result<()> {
        anyhow::ensure!(
            c.first == self.next() && self.pending.is_empty(),
            "chunk out of order: expected position {}, got {}",
            self.next(),
            c.first
        );
        let j = self.rp.outputs.len();
        for (k, seg) in c.segments.iter().enumerate() {
            let st = &mut self.state.groups[seg.group as usize];
            for o in 0..j {
                let w = &c.partials[(k * j + o) * PARTIAL_WORDS..][..PARTIAL_WORDS];
                let f = |i: usize| f32::from_bits(w[i]);
                match (seg.kind, st.game.as_mut()) {
                    (SegKind::Stats, _) => st.moments[o].add_block(w[0], f(1), f(2), f(3), f(4)),
                    (SegKind::Best, Some(gs)) => gs.at_leader[o].add_block(w[0], f(1)),
                    (SegKind::Reference, Some(gs)) => gs.at_ref[o].add_block(w[0], f(1)),
                    (SegKind::Best, None) => st.best.as_mut().expect("best").at_best[o].add_block(w[0], f(1)),
                    (SegKind::Reference, None) => st.best.as_mut().expect("best").at_ref[o].add_block(w[0], f(1)),
                }
            }
        }
        self.add_device_sketches(c)?;
        match &self.rp.game {
            Some(gm) => {
                let (profiles, words) = (gm.profiles(), gm.profiles().div_ceil(32));
                anyhow::ensure!(c.nash.len() == c.choices.len() * words, "the device's equilibria do not fit its worlds");
                for (k, (&g, &leader)) in c.world_groups.iter().zip(&c.choices).enumerate() {
                    let bits = &c.nash[k * words..][..words];
                    let nash = (0..profiles).filter(|&q| bits[q / 32] >> (q % 32) & 1 == 1);
                    anyhow::ensure!(leader == NO_ROW || (leader as usize) < profiles, "the device's leader outcome is out of range");
                    let gs = self.state.groups[g as usize].game.as_mut().expect("game");
                    gs.add_world(nash, (leader != NO_ROW).then_some(leader as usize));
                }
            }
            None => {
                for (&g, &choice) in c.world_groups.iter().zip(&c.choices) {
                    let b = self.state.groups[g as usize].best.as_mut().expect("best");
                    b.worlds += 1;
                    b.choices[choice as usize] += 1;
                }
            }
        }
        self.durable = c.first + c.rows;
        Ok(())
    }
}

/// Adds the rows of one world (one row without `best`) to a group's state.
#[inline]
fn add_world(rp: &ReducePlan, st: &mut GroupState, world: &[Outcome<f64>]) {
    for o in world {
        for (j, out) in rp.outputs.iter().enumerate() {
            let x = out.value(o);
            st.moments[j].add(x);
            if let Some(s) = st.sketches.get_mut(j) {
                s.add(x);
            }
        }
    }
    if let (Some(b), Some(bs)) = (&rp.best, st.best.as_mut()) {
        let c = choose(world.iter().map(|o| b.objective.value(o)), b.maximize);
        bs.worlds += 1;
        bs.choices[c] += 1;
        for (j, out) in rp.outputs.iter().enumerate() {
            bs.at_best[j].add(out.value(&world[c]));
            bs.at_ref[j].add(out.value(&world[b.reference]));
        }
    }
    if let (Some(gm), Some(gs)) = (&rp.game, st.game.as_mut()) {
        let sol = game::solve(&gm.sizes(), |q, i| gm.players[i].payoff.value(&world[q]));
        gs.add_world(sol.nash.iter().copied(), sol.leader);
        let reference = &world[gm.reference_profile()];
        for (j, out) in rp.outputs.iter().enumerate() {
            gs.at_leader[j].add(sol.leader.map_or(f64::NAN, |q| out.value(&world[q])));
            gs.at_ref[j].add(out.value(reference));
        }
    }
}

impl ChunkSink for Reducer<'_> {
    fn push(&mut self, first: u64, outcomes: Outcomes) -> anyhow::Result<()> {
        let rows = match outcomes {
            Outcomes::F64(v) => v,
            Outcomes::F32(v) => v.iter().map(|o| o.map(f64::from)).collect(),
        };
        self.add_rows(first, rows)
    }
}

/// Standard base64 (RFC 4648, with padding), for a state inside a JSON checkpoint.
pub fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for c in bytes.chunks(3) {
        let v = (c[0] as u32) << 16 | (*c.get(1).unwrap_or(&0) as u32) << 8 | *c.get(2).unwrap_or(&0) as u32;
        for k in 0..4 {
            if k <= c.len() {
                s.push(A[(v >> (18 - 6 * k)) as usize & 63] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}

/// Decodes [`base64`].
pub fn unbase64(s: &str) -> Result<Vec<u8>, String> {
    let val = |c: u8| -> Result<u32, String> {
        Ok(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return Err(format!("'{}' is not base64", c as char)),
        } as u32)
    };
    let b = s.as_bytes();
    if !b.len().is_multiple_of(4) {
        return Err("base64 of a length that is not a multiple of 4".into());
    }
    let mut out = Vec::with_capacity(b.len() / 4 * 3);
    for q in b.chunks(4) {
        let pad = q.iter().rev().take_while(|&&c| c == b'=').count();
        let mut v = 0u32;
        for &c in &q[..4 - pad] {
            v = v << 6 | val(c)?;
        }
        v <<= 6 * pad as u32;
        let bytes = [(v >> 16) as u8, (v >> 8) as u8, v as u8];
        out.extend_from_slice(&bytes[..3 - pad]);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips() {
        for n in 0..10 {
            let bytes: Vec<u8> = (0..n).map(|k| (k * 37 + 200) as u8).collect();
            assert_eq!(unbase64(&base64(&bytes)).unwrap(), bytes);
        }
        assert_eq!(base64(b"Man"), "TWFu");
        assert_eq!(base64(b"Ma"), "TWE=");
    }
}
