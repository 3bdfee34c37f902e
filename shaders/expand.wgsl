// Scenarios made on the device (issue 21): one invocation per position of a
// chunk turns the position into the kernel's parameter vector, as the host's
// `Plan::scenario` and `layout::pack` do, bit for bit. Only the plan is
// uploaded (`src/gpu/expand.rs` writes it): the base scenario's packed vector,
// one record per axis, one record per parameter field an axis changes, tables
// of finite axes' values, the Sobol direction numbers, and the design's keys.
//
// How each part stays exact (f32 could carry none of them):
// - 64-bit integers (positions, counters, seeds, the splitmix64 hash behind
//   every draw, the Feistel permutation of the Latin hypercube and of Morris'
//   steps) are pairs of u32 words (low, high), with 32 x 32 -> 64 products built
//   from 16-bit halves: integer arithmetic is exact by construction.
// - Sobol points are 32-bit integers (direction numbers xor-ed, the Owen
//   scramble's coin flips from the hash): exact for every index below 2^32.
// - Every floating-point step the host takes in f64 (the 53-bit unit draw, a
//   stratum's offset, lo + (hi - lo) u, exp for log axes, the logs the kernel
//   receives, the final rounding to f32) runs in `shaders/f64.wgsl`'s software
//   binary64: integer code that rounds each operation to nearest-even as IEEE
//   754 does, so the same operations in the same order give the host's bits.
//   The host's logs and exp for these are moatsweep's own (`src/detmath.rs`),
//   made of the same basic operations, never the platform's libm.
// - A field whose inputs take finitely many values (grid axes, lists, integer
//   axes, Morris levels) is read from a table of f32 bits the host packed with
//   its own code, so it needs no arithmetic here at all.
//
// The generated constants (record layouts, op and map codes) replace the
// `// @expand-layout` line; f64.wgsl is put in front of this file. They also
// specialise the pass for one plan: its design (`DESIGN`) and which maps and ops
// it uses (`USE_*`), so that a driver compiles only those paths (llvmpipe takes
// tens of seconds to compile every path of the software binary64 inlined).

// @expand-layout

struct Chunk {
    rows: u32,
    pitch: u32,
    // The chunk's first position (low, high word).
    first_lo: u32,
    first_hi: u32,
}

@group(0) @binding(0) var<storage, read> plan: array<u32>;
@group(0) @binding(1) var<storage, read_write> params: array<u32>;
@group(0) @binding(2) var<uniform> chunk: Chunk;

// ---- 64-bit integers as vec2<u32>(low, high) ----
// f64.wgsl's helpers serve here too: sf64_mul32 (32 x 32 -> 64), sf64_add64,
// sf64_sub64, sf64_lt64, sf64_shl64 and sf64_shr64.

// The low 64 bits of a * b (Rust's wrapping_mul).
fn mul64(a: vec2<u32>, b: vec2<u32>) -> vec2<u32> {
    let lo = sf64_mul32(a.x, b.x);
    return vec2<u32>(lo.x, lo.y + a.x * b.y + a.y * b.x);
}

// (a / b, a % b) for b > 0, by binary long division where either needs the high word.
fn divmod64(a: vec2<u32>, b: vec2<u32>) -> array<vec2<u32>, 2> {
    if (a.y == 0u && b.y == 0u) {
        return array<vec2<u32>, 2>(vec2<u32>(a.x / b.x, 0u), vec2<u32>(a.x % b.x, 0u));
    }
    var q = vec2<u32>(0u, 0u);
    var r = vec2<u32>(0u, 0u);
    for (var i = 0u; i < 64u; i++) {
        let bit = 63u - i;
        let word = select(a.x, a.y, bit >= 32u);
        r = vec2<u32>((r.x << 1u) | ((word >> (bit & 31u)) & 1u), (r.y << 1u) | (r.x >> 31u));
        if (!sf64_lt64(r, b)) {
            r = sf64_sub64(r, b);
            if (bit >= 32u) {
                q.y |= 1u << (bit - 32u);
            } else {
                q.x |= 1u << bit;
            }
        }
    }
    return array<vec2<u32>, 2>(q, r);
}

// splitmix64's finaliser (`design::mix64`).
fn mix64(z0: vec2<u32>) -> vec2<u32> {
    var z = z0;
    z = mul64(z ^ sf64_shr64(z, 30u), vec2<u32>(0x1CE4E5B9u, 0xBF58476Du));
    z = mul64(z ^ sf64_shr64(z, 27u), vec2<u32>(0x133111EBu, 0x94D049BBu));
    return z ^ sf64_shr64(z, 31u);
}

fn word64(at: u32) -> vec2<u32> {
    return vec2<u32>(plan[at], plan[at + 1u]);
}

// `design::bits(seed, row, axis, stream)`, with key0 = mix64(seed ^ 0x6A09E667F3BCC908) from the plan.
fn draw_bits(row: vec2<u32>, axis: u32, stream: u32) -> vec2<u32> {
    let k = mix64(word64(H_KEY0) ^ row);
    let tag = vec2<u32>((axis << 8u) | stream, axis >> 24u);
    return mix64(k ^ mul64(tag, vec2<u32>(0x7F4A7C15u, 0x9E3779B9u)));
}

// `design::unit`: the top 53 bits of the draw, times 2^-53.
fn draw_unit(row: vec2<u32>, axis: u32, stream: u32) -> vec2<u32> {
    let b = sf64_shr64(draw_bits(row, axis, stream), 11u);
    return f64_mul(f64_from_u64(b.x, b.y), F64_2M53);
}

// `design::Permutation::apply`: a 4-round Feistel network on 2 x half bits,
// cycle-walked into 0..n. Each walk step lands in 0..n with probability above
// 1/4, so 1024 steps are never reached (and are counted within llvmpipe's cap).
fn feistel(x: vec2<u32>, key: vec2<u32>, half: u32) -> vec2<u32> {
    let mask = select((1u << half) - 1u, 0xffffffffu, half >= 32u);
    var l = sf64_shr64(x, half).x;
    var r = x.x & mask;
    for (var round = 0u; round < 4u; round++) {
        let f = mix64(key ^ mul64(vec2<u32>(round, 0u), vec2<u32>(0xD192ED03u, 0xD1B54A32u)) ^ vec2<u32>(r, 0u)).x & mask;
        let nl = r;
        r = l ^ f;
        l = nl;
    }
    return sf64_shl64(vec2<u32>(l, 0u), half) | vec2<u32>(r, 0u);
}

fn permute(x: vec2<u32>, n: vec2<u32>, key: vec2<u32>, half: u32) -> vec2<u32> {
    var y = feistel(x, key, half);
    for (var walk = 0u; walk < 1024u && !sf64_lt64(y, n); walk++) {
        y = feistel(y, key, half);
    }
    return y;
}

// `design::Permutation::new`'s half width for n elements.
fn half_bits(n: vec2<u32>) -> u32 {
    var h = 1u;
    while (h < 32u && sf64_lt64(sf64_shl64(vec2<u32>(1u, 0u), 2u * h), n)) {
        h++;
    }
    return h;
}

// `design::Sobol::sample(index, dim, seed)`: the Owen-scrambled point in [0, 1).
fn sobol(index: u32, dim: u32) -> vec2<u32> {
    var x = 0u;
    let table = plan[H_SOBOL_AT] + dim * 32u;
    for (var j = 0u; j < 32u; j++) {
        if (((index >> j) & 1u) == 1u) {
            x ^= plan[table + j];
        }
    }
    let key = draw_bits(vec2<u32>(0u, 0u), dim, 3u);
    var out = 0u;
    for (var b = 0u; b < 32u; b++) {
        let prefix = select(x >> (32u - b), 0u, b == 0u);
        let flip = mix64(key ^ vec2<u32>(prefix | (1u << b), 0u)).x & 1u;
        out |= (((x >> (31u - b)) & 1u) ^ flip) << (31u - b);
    }
    return f64_div(f64_add(f64_from_u32(out), draw_unit(vec2<u32>(index, 0u), dim, 4u)), F64_2P32);
}

// f64 -> integer, truncating toward zero, for 0 <= a < 2^32.
fn f64_trunc_u32(a: vec2<u32>) -> u32 {
    let e = i32((a.y >> 20u) & 0x7ffu) - 1023;
    if (e < 0 || (a.y >> 31u) == 1u) {
        return 0u;
    }
    let m = vec2<u32>(a.x, (a.y & 0xfffffu) | 0x100000u);
    return sf64_shr64(m, u32(52 - min(e, 52))).x;
}

// The unit coordinate of `row` on axis `a` for the sampled designs (not morris).
fn unit_of(row: vec2<u32>, a: u32, at: u32) -> vec2<u32> {
    if (DESIGN == DESIGN_RANDOM) {
        return draw_unit(row, a, 0u);
    }
    if (DESIGN == DESIGN_LHS) {
        let n = word64(H_SAMPLES);
        let stratum = permute(row, n, word64(at + A_PERM_KEY), plan[at + A_PERM_HALF]);
        let s = f64_from_u64(stratum.x, stratum.y);
        return f64_div(f64_add(s, draw_unit(row, a, 2u)), f64_from_u64(n.x, n.y));
    }
    if (DESIGN == DESIGN_SOBOL) {
        return sobol(row.x, a);
    }
    if (DESIGN != DESIGN_SALTELLI) {
        return F64_ONE;
    }
    // Saltelli: block row s picks A or B per axis; base point = row / block.
    let k = plan[H_K];
    let qr = divmod64(row, vec2<u32>(plan[H_BLOCK], 0u));
    let s = qr[1].x;
    var from_b = false;
    if (s == 0u) {
        from_b = false;
    } else if (s <= k) {
        from_b = a == s - 1u;
    } else if (plan[H_SECOND] == 1u && s <= 2u * k) {
        from_b = a != s - 1u - k;
    } else {
        from_b = true;
    }
    return sobol(qr[0].x, select(a, k + a, from_b));
}

// `design::Morris::level(row, axis)`.
fn morris_level(row: vec2<u32>, a: u32) -> u32 {
    let k = plan[H_K];
    let half = plan[H_LEVELS] / 2u;
    let qr = divmod64(row, vec2<u32>(k + 1u, 0u));
    let t = qr[0];
    let s = qr[1].x;
    let draw = f64_mul(draw_unit(t, a, 5u), f64_from_u32(half));
    let start = min(f64_trunc_u32(draw), half - 1u);
    let up = (draw_bits(t, a, 6u).x & 1u) == 1u;
    let key = mix64(draw_bits(t, 0u, 7u));
    let step = permute(vec2<u32>(a, 0u), vec2<u32>(k, 0u), key, half_bits(vec2<u32>(k, 0u))).x + 1u;
    let moved = s >= step;
    return start + select(0u, half, moved == up);
}

var<private> index: array<u32, MAX_AXES>;
var<private> value: array<vec2<u32>, MAX_AXES>;

// Axis a's value (f64) and, for a finite axis, its index.
fn make_axis(position: vec2<u32>, row: vec2<u32>, a: u32) {
    let at = plan[H_AXIS_AT] + a * A_WORDS;
    let map = plan[at + A_MAP];
    let len = plan[at + A_LEN];
    var i = 0u;
    if (DESIGN == DESIGN_GRID) {
        i = divmod64(divmod64(position, word64(at + A_STRIDE))[0], vec2<u32>(len, 0u))[1].x;
    } else if (DESIGN == DESIGN_MORRIS) {
        i = morris_level(row, a);
    } else {
        let u = unit_of(row, a, at);
        if (map == MAP_INDEX) {
            // values[floor(u n)], the last for u n >= n - 1 (lists and integer axes).
            i = min(f64_trunc_u32(f64_floor(f64_mul(u, word64(at + A_C1)))), len - 1u);
        } else {
            var v = word64(at + A_HI);
            if (plan[at + A_CLAMP] == 1u && !f64_lt(u, F64_ONE)) {
                v = word64(at + A_HI);
            } else if (map == MAP_LINEAR) {
                v = f64_add(word64(at + A_C0), f64_mul(word64(at + A_C1), u));
            } else if (map == MAP_INTEGERS) {
                // lo + min(floor(u n), hi - lo), for integer axes too long for a table.
                v = f64_add(word64(at + A_C0), f64_min(f64_floor(f64_mul(u, word64(at + A_C1))), word64(at + A_HI)));
            } else if (USE_EXP) {
                v = f64_exp(f64_add(word64(at + A_C0), f64_mul(word64(at + A_C1), u)));
            }
            value[a] = v;
            return;
        }
    }
    index[a] = i;
    value[a] = word64(plan[at + A_VALUES] + 2u * i);
}

// An op's input: an axis's value or a constant.
fn input(at: u32) -> vec2<u32> {
    let axis = plan[at];
    if (axis == NO_AXIS) {
        return word64(at + 1u);
    }
    return value[axis];
}

// The f32 bits of one field, as `layout::Field::value` then `as f32`.
fn field(at: u32) -> u32 {
    let kind = plan[at + O_KIND];
    if (kind == OP_TABLE) {
        let b = plan[at + O_B];
        var i = index[plan[at + O_A]];
        if (b != NO_AXIS) {
            i = i * plan[at + O_LEN_B] + index[b];
        }
        return plan[plan[at + O_TABLE] + i];
    }
    let x = input(at + O_A);
    var y = x;
    if (USE_LN || USE_LN1P) {
        // The argument of the log, then one call (llvmpipe inlines every call site).
        var arg = x;
        if (kind == OP_LN_SERVE) {
            arg = f64_mul(F64_2E6, x);
        } else if (kind == OP_LN_GAP) {
            arg = f64_sub(x, input(at + O_B));
        } else if (kind == OP_LN_C6) {
            arg = f64_div(f64_div(x, input(at + O_B)), F64_SIX);
        }
        if (USE_LN1P && kind == OP_LN1P) {
            y = f64_ln1p(arg);
        } else if (USE_LN && kind != OP_VALUE && kind != OP_LN1P) {
            y = f64_ln(arg);
        }
    }
    return f64_to_f32_bits(y);
}

@compute @workgroup_size(64)
fn expand(@builtin(global_invocation_id) gid: vec3<u32>) {
    let k = gid.y * chunk.pitch + gid.x;
    if (k >= chunk.rows) {
        return;
    }
    var position = sf64_add64(vec2<u32>(chunk.first_lo, chunk.first_hi), vec2<u32>(k, 0u));
    let period = word64(H_PERIOD);
    if (period.x != 0u || period.y != 0u) {
        position = divmod64(position, period)[1];
    }
    // Positions are rows except where a reduction reorders a grid (the strides say so).
    let row = position;
    let stride = plan[H_STRIDE];
    let out = k * stride;
    let base = plan[H_BASE_AT];
    for (var w = 0u; w < stride; w++) {
        params[out + w] = plan[base + w];
    }
    let axes = plan[H_AXES];
    for (var a = 0u; a < axes; a++) {
        make_axis(position, row, a);
    }
    let ops = plan[H_OPS];
    let op_at = plan[H_OP_AT];
    for (var o = 0u; o < ops; o++) {
        let at = op_at + o * O_WORDS;
        params[out + plan[at + O_FIELD]] = field(at);
    }
}
