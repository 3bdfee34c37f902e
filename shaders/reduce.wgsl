// Reductions on the device (`[reduce]`, src/gpu/reduce.rs): after shaders/moat.wgsl
// has solved a chunk, these passes read its output buffer and leave, per segment
// (the rows of one group in one block of rows, or one group's worlds in a block),
// the count, f32 mean, sum of squared deviations from that mean, min and max of
// every reduced output. The host reads back those partials instead of the rows
// and adds them exactly to the group's state (src/reduce/stats.rs).
//
// With quantiles (`p.qvals`), each Stats segment also counts, per output, how many
// of its values fall in each bucket of the host's DDSketch (src/reduce/sketch.rs),
// and appends (bucket key, count) words to `qvals` (see `q_key`, `q_large`,
// `q_small`); the host adds the counts to its sketches, in any order.
//
// Everything is deterministic for a given segment: each thread walks its items in
// order, the workgroup combines the 64 threads in a fixed tree, and a segment's
// items are the block's rows of its group in row order, whatever the chunk.
//
// The kernel's output layout (src/gpu/layout.rs): O_STRIDE words per scenario, word
// O_OFFERED the offered mask, every output an f32 stored as bits. WGSL assumes
// finite math, so a value's presence is decided on its bits, never with x != x.

const WG: u32 = 64u;
const O_OFFERED: u32 = 0u;

struct Params {
    // Segments to reduce (one workgroup each).
    segments: u32,
    // Worlds to choose in (one invocation each).
    worlds: u32,
    // Reduced outputs (columns of `cols`; the objective is column `outputs`).
    outputs: u32,
    // Rows per world: values of the choice axis, or a game's profiles.
    choices: u32,
    // 1: maximize the objective, 0: minimize.
    maximize: u32,
    // Words per scenario in `kernel_out`.
    o_stride: u32,
    // Workgroups per row of the 2D dispatch grid.
    pitch: u32,
    // 1: also count each Stats segment's sketch buckets into `qvals`.
    qvals: u32,
    // Where the worlds' rows start in `items` (n choices per world).
    world_base: u32,
    // A game's players (its payoffs are columns `outputs`.. of `cols`), 0 without one.
    players: u32,
    // Words of a world's equilibrium bitmask.
    nash_words: u32,
    // Segments 0..large (longer than SMALL items) take a workgroup each (`reduce`),
    // the rest one invocation each (`reduce_small`).
    large: u32,
    // Each player's number of strategies (profiles = their product = `choices`).
    sizes: vec4<u32>,
    // The sketch's table (`q_key`): the entry of bucket 0 for normal f32 (an i32),
    // 1 / ln gamma (f32 bits), the entries in use, 0.
    q: vec4<u32>,
    // 1 where `items` is not uploaded because it is implicit (`item_at`), the
    // reference row's index in a world, where the reference rows start, 0.
    implicit: vec4<u32>,
}

// A world without a picked row (a game without a leader-follower outcome).
const NO_ROW: u32 = 0xffffffffu;

// A segment: (source: 0 = `items`, 1 = the chosen rows in `worlds`; start; len;
// 1 for a Stats segment, whose quantile buckets are counted, else 0).
// A column: (word, kind: 0 value, 1 price (empty when not offered), 2 exited (exit month >= 0); firm; _).
@group(0) @binding(0) var<storage, read> kernel_out: array<u32>;
@group(0) @binding(1) var<storage, read> items: array<u32>;
@group(0) @binding(2) var<storage, read> segs: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read> cols: array<vec4<u32>>;
@group(0) @binding(4) var<storage, read_write> partials: array<u32>;
// worlds[w]: the dispatch position of world w's chosen row; worlds[n + w]: its index;
// for a game, from 2n: each world's equilibria, nash_words words (bit q % 32 of word q / 32).
@group(0) @binding(5) var<storage, read_write> worlds: array<u32>;
// qvals[0]: the words used after it; then runs of a header and its entries.
@group(0) @binding(6) var<storage, read_write> qvals: array<atomic<u32>>;
@group(0) @binding(7) var<uniform> p: Params;
// The sketch's thresholds (src/reduce/sketch.rs, `DeviceBuckets`): entry k is the
// smallest positive f32 (as bits) of the k-th bucket that f32 values reach, rising;
// padded with 0xffffffff to Q_TABLE entries.
@group(0) @binding(8) var<storage, read> q_thr: array<u32>;

// The value of column `c` in the scenario at dispatch position `pos`, and whether
// it is present (an empty cell is not).
struct Value {
    x: f32,
    present: bool,
}

fn value(pos: u32, c: vec4<u32>) -> Value {
    if (pos == NO_ROW) {
        return Value(0.0, false);
    }
    let base = pos * p.o_stride;
    let w = kernel_out[base + c.x];
    let x = bitcast<f32>(w);
    if (c.y == 2u) {
        return Value(select(0.0, 1.0, x >= 0.0), true);
    }
    if (c.y == 1u) {
        let offered = (kernel_out[base + O_OFFERED] >> c.z) & 1u;
        return Value(x, offered == 1u);
    }
    // A NaN pattern (all exponent bits set, a nonzero fraction) is an empty cell.
    let nan = (w & 0x7f800000u) == 0x7f800000u && (w & 0x007fffffu) != 0u;
    return Value(x, !nan);
}

// One invocation per world: the first row whose objective is largest (or smallest).
@compute @workgroup_size(64)
fn choose(@builtin(global_invocation_id) gid: vec3<u32>) {
    let w = gid.y * p.pitch * WG + gid.x;
    if (w >= p.worlds) {
        return;
    }
    let obj = cols[p.outputs];
    let base = p.world_base + w * p.choices;
    var best = 0u;
    var best_v = 0.0;
    var found = false;
    for (var c = 0u; c < p.choices; c++) {
        let v = value(item_at(base + c), obj);
        if (v.present) {
            let better = select((v.x < best_v), (v.x > best_v), p.maximize == 1u);
            if (!found || better) {
                best = c;
                best_v = v.x;
                found = true;
            }
        }
    }
    worlds[w] = item_at(base + best);
    worlds[p.worlds + w] = best;
}

// The release game (src/reduce/game.rs, the same rules in f32): one invocation per
// world, whose profiles are the world's rows in profile order (the first player
// slowest). A payoff that is absent (an empty cell, NaN) is worse than any number.
fn gains(a: Value, b: Value) -> bool {
    return a.present && (!b.present || a.x > b.x);
}

fn payoff(base: u32, q: u32, i: u32) -> Value {
    return value(item_at(base + q), cols[p.outputs + i]);
}

// Whether no player from `first` on gains by changing its own strategy alone in profile q.
fn stable(base: u32, q: u32, first: u32) -> bool {
    var stride = p.choices;
    for (var i = 0u; i < p.players; i++) {
        let n = p.sizes[i];
        stride = stride / n;
        if (i < first) {
            continue;
        }
        let own = payoff(base, q, i);
        let start = q - (q / stride % n) * stride;
        for (var a = 0u; a < n; a++) {
            if (gains(payoff(base, start + a * stride, i), own)) {
                return false;
            }
        }
    }
    return true;
}

@compute @workgroup_size(64)
fn game(@builtin(global_invocation_id) gid: vec3<u32>) {
    let w = gid.y * p.pitch * WG + gid.x;
    if (w >= p.worlds) {
        return;
    }
    let n = p.choices;
    let base = p.world_base + w * n;
    let bits = 2u * p.worlds + w * p.nash_words;
    for (var k = 0u; k < p.nash_words; k++) {
        worlds[bits + k] = 0u;
    }
    for (var q = 0u; q < n; q++) {
        if (stable(base, q, 0u)) {
            worlds[bits + q / 32u] = worlds[bits + q / 32u] | (1u << (q % 32u));
        }
    }
    // The leader commits to c; the others play the first equilibrium of the rest.
    let block = n / p.sizes[0];
    var leader = NO_ROW;
    var lead = Value(0.0, false);
    for (var c = 0u; c < p.sizes[0]; c++) {
        for (var q = c * block; q < (c + 1u) * block; q++) {
            if (stable(base, q, 1u)) {
                let v = payoff(base, q, 0u);
                if (leader == NO_ROW || gains(v, lead)) {
                    leader = q;
                    lead = v;
                }
                break;
            }
        }
    }
    var pos = NO_ROW;
    if (leader != NO_ROW) {
        pos = item_at(base + leader);
    }
    worlds[w] = pos;
    worlds[p.worlds + w] = leader;
}

var<workgroup> t_sum: array<f32, 64>;
var<workgroup> t_cut: atomic<u32>;
var<workgroup> t_n: array<u32, 64>;
var<workgroup> t_min: array<f32, 64>;
var<workgroup> t_max: array<f32, 64>;

// Entry i of `items`. Where the host found the table implicit (the chunk's rows
// in position order, each block's rows already in group order, so its worlds
// too) it uploads none and the entry is computed: stat item i is position i,
// world w's rows are positions w n .. w n + n - 1, its reference row w n + ref.
fn item_at(i: u32) -> u32 {
    if (p.implicit.x == 0u) {
        return items[i];
    }
    if (i < p.world_base) {
        return i;
    }
    if (i < p.implicit.z) {
        return i - p.world_base;
    }
    return (i - p.implicit.z) * p.choices + p.implicit.y;
}

fn item(s: vec4<u32>, k: u32) -> u32 {
    if (s.x == 1u) {
        return worlds[s.y + k];
    }
    return item_at(s.y + k);
}

// Combines the 64 threads' (sum, n, min, max) in a fixed tree.
fn tree(t: u32) {
    for (var step = 32u; step > 0u; step = step / 2u) {
        if (t < step) {
            t_sum[t] = t_sum[t] + t_sum[t + step];
            let n0 = t_n[t];
            let n1 = t_n[t + step];
            if (n1 > 0u) {
                t_min[t] = select(t_min[t + step], min(t_min[t], t_min[t + step]), n0 > 0u);
                t_max[t] = select(t_max[t + step], max(t_max[t], t_max[t + step]), n0 > 0u);
            }
            t_n[t] = n0 + n1;
        }
        workgroupBarrier();
    }
}

// What items first, first + step, ... of segment s hold of column j: their
// sum, count, min and max (each thread of `reduce` takes every WG-th item,
// `reduce_small` takes them all).
// With `keys` (a workgroup's thread, quantiles of a Stats segment), also the
// sketch keys of its items of the segment's first tile, kept for `q_large` in
// `q_keys` (the thread's `keyed`-th item), and the smallest of them.
struct Part {
    sum: f32,
    n: u32,
    mn: f32,
    mx: f32,
    keyed: u32,
    least: u32,
}

fn part(s: vec4<u32>, j: u32, first: u32, step: u32, keys: bool) -> Part {
    let c = cols[j];
    var r = Part(0.0, 0u, 0.0, 0.0, 0u, NONE);
    for (var k = first; k < s.z; k += step) {
        let v = value(item(s, k), c);
        if (keys && k < Q_TILE) {
            let key = q_key(v);
            q_put(r.keyed, first, key);
            r.least = min(r.least, key);
            r.keyed++;
        }
        if (v.present) {
            r.mn = select(v.x, min(r.mn, v.x), r.n > 0u);
            r.mx = select(v.x, max(r.mx, v.x), r.n > 0u);
            r.sum = r.sum + v.x;
            r.n = r.n + 1u;
        }
    }
    return r;
}

// The squared deviations from `mean` of the same items' values of column j.
fn squares(s: vec4<u32>, j: u32, mean: f32, first: u32, step: u32) -> f32 {
    let c = cols[j];
    var m2 = 0.0;
    for (var k = first; k < s.z; k += step) {
        let v = value(item(s, k), c);
        if (v.present) {
            let d = v.x - mean;
            m2 = m2 + d * d;
        }
    }
    return m2;
}

// Rows among the same items of a stat segment whose loops the driver cut short
// (the kernel's O_LOOPS_CUT word): the host fails the run on any, as it does
// when it reads rows back.
fn cut_rows(s: vec4<u32>, first: u32, step: u32) -> u32 {
    var cut = 0u;
    if (s.x == 0u) {
        for (var k = first; k < s.z; k += step) {
            cut = cut + kernel_out[item(s, k) * p.o_stride + 1u];
        }
    }
    return cut;
}

// Segment sid's partial of column j.
fn write_partial(sid: u32, j: u32, n: u32, mean: f32, m2: f32, mn: f32, mx: f32) {
    let at = (sid * p.outputs + j) * 5u;
    partials[at] = n;
    partials[at + 1u] = bitcast<u32>(mean);
    partials[at + 2u] = bitcast<u32>(m2);
    partials[at + 3u] = bitcast<u32>(mn);
    partials[at + 4u] = bitcast<u32>(mx);
}

// A segment of at most this many items is reduced by one invocation
// (`reduce_small`): a workgroup's barriers would cost more than its items.
const SMALL: u32 = 32u;

// One invocation per short segment: per column, two passes over its items in
// order (the mean, then squared deviations from it).
@compute @workgroup_size(64)
fn reduce_small(@builtin(global_invocation_id) gid: vec3<u32>) {
    let sid = p.large + gid.y * p.pitch * WG + gid.x;
    if (sid >= p.segments) {
        return;
    }
    let s = segs[sid];
    partials[p.segments * p.outputs * 5u + sid] = cut_rows(s, 0u, 1u);
    for (var j = 0u; j < p.outputs; j++) {
        let r = part(s, j, 0u, 1u, false);
        let mean = select(0.0, r.sum / f32(max(r.n, 1u)), r.n > 0u);
        write_partial(sid, j, r.n, mean, squares(s, j, mean, 0u, 1u), r.mn, r.mx);
        if (p.qvals == 1u && s.w == 1u) {
            q_small(s, j, sid);
        }
    }
}

// One workgroup per segment longer than SMALL: per column, two passes over its
// items (the mean, then squared deviations from it).
@compute @workgroup_size(64)
fn reduce(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    let sid = wid.y * p.pitch + wid.x;
    // Every invocation of the workgroup takes the same path (barriers below).
    let live = sid < p.large;
    var s = vec4<u32>(0u, 0u, 0u, 0u);
    if (live) {
        s = segs[sid];
    }
    if (t == 0u) {
        atomicStore(&t_cut, 0u);
    }
    workgroupBarrier();
    atomicAdd(&t_cut, cut_rows(s, t, WG));
    workgroupBarrier();
    if (t == 0u && live) {
        partials[p.segments * p.outputs * 5u + sid] = atomicLoad(&t_cut);
    }
    for (var j = 0u; j < p.outputs; j++) {
        let quantiles = p.qvals == 1u && s.w == 1u;
        let r = part(s, j, t, WG, quantiles);
        t_sum[t] = r.sum;
        t_n[t] = r.n;
        t_min[t] = r.mn;
        t_max[t] = r.mx;
        workgroupBarrier();
        tree(t);
        let total = t_n[0];
        let mean = select(0.0, t_sum[0] / f32(max(total, 1u)), total > 0u);
        let lo = t_min[0];
        let hi = t_max[0];
        workgroupBarrier();
        t_sum[t] = squares(s, j, mean, t, WG);
        t_n[t] = 0u;
        workgroupBarrier();
        tree(t);
        if (t == 0u && live) {
            write_partial(sid, j, total, mean, t_sum[0], lo, hi);
        }
        workgroupBarrier();
        if (quantiles) {
            q_large(s, j, sid, t, r.keyed, r.least);
        }
    }
}

// ---- Quantiles: each Stats segment's DDSketch bucket counts, per output ----
//
// A value's key: NONE when it is not counted (an empty cell, NaN), 0 for a zero
// (either sign), 1 + k for a positive value in the k-th bucket of `q_thr`, and
// Q_NEG + k for a negative one by |x|. The bucket is the host's, exactly: the
// host's bucket is a nondecreasing step function of a positive f32's bits, and
// `q_thr` holds the first bits of each step (built and checked by the host, see
// src/reduce/sketch.rs); positive floats order as their bits do, so the bucket of
// bits a is the entry k with q_thr[k] <= a < q_thr[k + 1]. `q_key` guesses k
// from f32's log and accepts the guess only where those two comparisons hold;
// otherwise (a subnormal, infinity, a guess off by more than one) a binary search
// over the table finds it. Either way the answer rests on integer comparisons
// with the host's thresholds alone.
//
// What goes back: per segment, output and tile of Q_TILE items, runs in `qvals`
// of a header word (Q_HEADER | sid * outputs + output) and entries (key <<
// Q_COUNT_BITS | count), each run's room taken with one atomicAdd on qvals[0].
// Runs land in any order and one key may appear in several runs: the host adds
// the counts (its sketch's collapse does not depend on order).

const Q_TABLE: u32 = 16384u;
const Q_NEG: u32 = 16385u;
const NONE: u32 = 0xffffffffu;
const Q_HEADER: u32 = 0x80000000u;
const Q_COUNT_BITS: u32 = 15u;
// Items whose keys a workgroup keeps at once (two 16-bit keys a word).
const Q_TILE: u32 = 4096u;
// Keys counted per pass of `q_large` (a window of consecutive keys: 1024 buckets,
// about 9 decades).
const Q_WINDOW: u32 = 1024u;
// Passes of `q_large` per tile before what is left goes back one entry per value.
const Q_PASSES: u32 = 6u;

fn q_key(v: Value) -> u32 {
    let bits = bitcast<u32>(v.x);
    let a = bits & 0x7fffffffu;
    if (!v.present || a > 0x7f800000u) {
        return NONE;
    }
    if (a == 0u) {
        return 0u;
    }
    var i = 0u;
    var found = false;
    if (a >= 0x00800000u && a < 0x7f800000u) {
        // A normal value: its entry guessed from f32's log, then checked.
        let guess = i32(ceil(log(bitcast<f32>(a)) * bitcast<f32>(p.q.y))) + bitcast<i32>(p.q.x);
        let k = u32(clamp(guess, 1, i32(p.q.z) - 2));
        let t0 = q_thr[k];
        let t1 = q_thr[k + 1u];
        if (a < t0) {
            i = k - 1u;
            found = q_thr[i] <= a;
        } else if (a < t1) {
            i = k;
            found = true;
        } else {
            i = k + 1u;
            found = a < q_thr[k + 2u];
        }
    }
    if (!found) {
        // Unrolled (no loop for llvmpipe's cap to count): the largest i with
        // q_thr[i] <= a (q_thr[0] is 1, the smallest positive pattern).
        i = 0u;
        i = select(i, i + 8192u, q_thr[i + 8192u] <= a);
        i = select(i, i + 4096u, q_thr[i + 4096u] <= a);
        i = select(i, i + 2048u, q_thr[i + 2048u] <= a);
        i = select(i, i + 1024u, q_thr[i + 1024u] <= a);
        i = select(i, i + 512u, q_thr[i + 512u] <= a);
        i = select(i, i + 256u, q_thr[i + 256u] <= a);
        i = select(i, i + 128u, q_thr[i + 128u] <= a);
        i = select(i, i + 64u, q_thr[i + 64u] <= a);
        i = select(i, i + 32u, q_thr[i + 32u] <= a);
        i = select(i, i + 16u, q_thr[i + 16u] <= a);
        i = select(i, i + 8u, q_thr[i + 8u] <= a);
        i = select(i, i + 4u, q_thr[i + 4u] <= a);
        i = select(i, i + 2u, q_thr[i + 2u] <= a);
        i = select(i, i + 1u, q_thr[i + 1u] <= a);
    }
    return select(1u, Q_NEG, bits >= 0x80000000u) + i;
}

// Takes room for a run of n entries after its header; returns the first entry's word.
fn q_reserve(n: u32, header: u32) -> u32 {
    let at = atomicAdd(&qvals[0], n + 1u) + 1u;
    atomicStore(&qvals[at], header);
    return at + 1u;
}

// One invocation's segment (at most SMALL items): the distinct keys and their
// counts in private arrays, then one run.
fn q_small(s: vec4<u32>, j: u32, sid: u32) {
    let c = cols[j];
    var keys: array<u32, 32>;
    var counts: array<u32, 32>;
    var m = 0u;
    for (var k = 0u; k < s.z; k++) {
        let key = q_key(value(item(s, k), c));
        if (key == NONE) {
            continue;
        }
        var u = 0u;
        for (; u < m; u++) {
            if (keys[u] == key) {
                break;
            }
        }
        if (u == m) {
            keys[m] = key;
            counts[m] = 0u;
            m++;
        }
        counts[u] = counts[u] + 1u;
    }
    if (m == 0u) {
        return;
    }
    let at = q_reserve(m, Q_HEADER | (sid * p.outputs + j));
    for (var u = 0u; u < m; u++) {
        atomicStore(&qvals[at + u], (keys[u] << Q_COUNT_BITS) | counts[u]);
    }
}

// The keys of a tile: thread t's m-th item (tile item m * WG + t) in half m % 2 of
// word (m / 2) * WG + t, so that each word is one thread's; 0xffff is NONE.
var<workgroup> q_keys: array<u32, 2048>;
var<workgroup> q_hist: array<atomic<u32>, 1024>;
var<workgroup> q_min: atomic<u32>;
var<workgroup> q_n: atomic<u32>;
var<workgroup> q_lo: u32;
var<workgroup> q_at: u32;

fn q_put(m: u32, t: u32, key: u32) {
    let w = (m / 2u) * WG + t;
    let k16 = min(key, 0xffffu);
    if (m % 2u == 0u) {
        q_keys[w] = k16 | 0xffff0000u;
    } else {
        q_keys[w] = (q_keys[w] & 0xffffu) | (k16 << 16u);
    }
}

fn q_get(m: u32, t: u32) -> u32 {
    let k16 = (q_keys[(m / 2u) * WG + t] >> (16u * (m % 2u))) & 0xffffu;
    return select(k16, NONE, k16 == 0xffffu);
}

// A workgroup's segment, a tile of Q_TILE items at a time: each thread keys its
// items once (those of the first tile in `part`, as it reads their values), then passes over the keys count those of a window [lo, lo +
// Q_WINDOW) in workgroup memory (integer atomics: the counts do not depend on the
// threads' order), the next window starting at the smallest key left. After
// Q_PASSES passes what is left goes back one entry per value.
fn q_large(s: vec4<u32>, j: u32, sid: u32, t: u32, keyed: u32, least: u32) {
    let c = cols[j];
    let header = Q_HEADER | (sid * p.outputs + j);
    // Each thread's share of the window: Q_WINDOW / WG consecutive keys.
    let span = Q_WINDOW / WG;
    for (var tile = 0u; tile < s.z; tile += Q_TILE) {
        let end = min(s.z, tile + Q_TILE);
        if (t == 0u) {
            atomicStore(&q_min, NONE);
        }
        workgroupBarrier();
        // The first tile's keys are `part`'s.
        var first = least;
        var mine = keyed;
        if (tile > 0u) {
            first = NONE;
            mine = 0u;
            for (; tile + mine * WG + t < end; mine++) {
                let key = q_key(value(item(s, tile + mine * WG + t), c));
                q_put(mine, t, key);
                first = min(first, key);
            }
        }
        atomicMin(&q_min, first);
        workgroupBarrier();
        if (t == 0u) {
            q_lo = atomicLoad(&q_min);
        }
        var lo = workgroupUniformLoad(&q_lo);
        for (var round = 0u; round < Q_PASSES && lo != NONE; round++) {
            for (var i = t * span; i < (t + 1u) * span; i++) {
                atomicStore(&q_hist[i], 0u);
            }
            if (t == 0u) {
                atomicStore(&q_min, NONE);
                atomicStore(&q_n, 0u);
            }
            workgroupBarrier();
            var next = NONE;
            for (var m = 0u; m < mine; m++) {
                let key = q_get(m, t);
                if (key != NONE && key >= lo) {
                    if (key - lo < Q_WINDOW) {
                        atomicAdd(&q_hist[key - lo], 1u);
                    } else {
                        next = min(next, key);
                    }
                }
            }
            atomicMin(&q_min, next);
            workgroupBarrier();
            var n = 0u;
            for (var i = t * span; i < (t + 1u) * span; i++) {
                n += select(0u, 1u, atomicLoad(&q_hist[i]) > 0u);
            }
            let before = atomicAdd(&q_n, n);
            workgroupBarrier();
            if (t == 0u) {
                q_at = q_reserve(atomicLoad(&q_n), header);
                q_lo = atomicLoad(&q_min);
            }
            var at = workgroupUniformLoad(&q_at) + before;
            for (var i = t * span; i < (t + 1u) * span; i++) {
                let count = atomicLoad(&q_hist[i]);
                if (count > 0u) {
                    atomicStore(&qvals[at], ((lo + i) << Q_COUNT_BITS) | count);
                    at++;
                }
            }
            lo = workgroupUniformLoad(&q_lo);
        }
        if (lo != NONE) {
            // Keys >= lo are left: one entry (count 1) per value.
            if (t == 0u) {
                atomicStore(&q_n, 0u);
            }
            workgroupBarrier();
            var n = 0u;
            for (var m = 0u; m < mine; m++) {
                let key = q_get(m, t);
                n += select(0u, 1u, key != NONE && key >= lo);
            }
            let before = atomicAdd(&q_n, n);
            workgroupBarrier();
            if (t == 0u) {
                q_at = q_reserve(atomicLoad(&q_n), header);
            }
            var at = workgroupUniformLoad(&q_at) + before;
            for (var m = 0u; m < mine; m++) {
                let key = q_get(m, t);
                if (key != NONE && key >= lo) {
                    atomicStore(&qvals[at], (key << Q_COUNT_BITS) | 1u);
                    at++;
                }
            }
        }
        // The next tile's keys overwrite these only after every thread is done.
        workgroupBarrier();
    }
}
