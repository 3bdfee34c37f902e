// Software binary64 in integer arithmetic only: IEEE-754 round-to-nearest-even
// +, -, *, /, conversions, floor and comparisons, bit for bit what Rust's native
// f64 gives on the host, and moatsweep's deterministic exp, ln and ln_1p
// (src/detmath.rs) performing the same sequence of operations.
//
// A library: no bindings and no entry points. A value is vec2<u32>(low word,
// high word) of its IEEE bits, i.e. `bytemuck::cast::<f64, [u32; 2]>` on a
// little-endian host. Unsigned 64-bit integers use the same layout.
//
// Infinities and NaN are handled simply and consistently (any NaN is returned as
// 0x7ff8000000000000), never as the host's NaN payloads.
//
// Loops (llvmpipe stops an invocation's loops after 65,535 iterations in total):
// only f64_div loops, 64 iterations per call; f64_exp makes no division (0 loop
// iterations), f64_ln makes 2 divisions (128 iterations) and f64_ln1p 3 (192).
// Everything else is straight-line code.

// ---------------------------------------------------------------------------
// Unsigned 64-bit helpers on vec2<u32>(lo, hi).

fn sf64_add64(a: vec2<u32>, b: vec2<u32>) -> vec2<u32> {
    let lo = a.x + b.x;
    return vec2<u32>(lo, a.y + b.y + select(0u, 1u, lo < a.x));
}

fn sf64_sub64(a: vec2<u32>, b: vec2<u32>) -> vec2<u32> {
    return vec2<u32>(a.x - b.x, a.y - b.y - select(0u, 1u, a.x < b.x));
}

fn sf64_lt64(a: vec2<u32>, b: vec2<u32>) -> bool {
    return a.y < b.y || (a.y == b.y && a.x < b.x);
}

fn sf64_eq64(a: vec2<u32>, b: vec2<u32>) -> bool {
    return a.x == b.x && a.y == b.y;
}

fn sf64_zero64(a: vec2<u32>) -> bool {
    return (a.x | a.y) == 0u;
}

// Leading zero bits (64 for zero).
fn sf64_clz64(a: vec2<u32>) -> u32 {
    if a.y != 0u {
        return countLeadingZeros(a.y);
    }
    return 32u + countLeadingZeros(a.x);
}

// a << n; 0 for n >= 64 (WGSL's own shifts are only defined below 32).
fn sf64_shl64(a: vec2<u32>, n: u32) -> vec2<u32> {
    if n == 0u {
        return a;
    }
    if n >= 64u {
        return vec2<u32>(0u, 0u);
    }
    if n >= 32u {
        return vec2<u32>(0u, a.x << (n - 32u));
    }
    return vec2<u32>(a.x << n, (a.y << n) | (a.x >> (32u - n)));
}

// a >> n; 0 for n >= 64.
fn sf64_shr64(a: vec2<u32>, n: u32) -> vec2<u32> {
    if n == 0u {
        return a;
    }
    if n >= 64u {
        return vec2<u32>(0u, 0u);
    }
    if n >= 32u {
        return vec2<u32>(a.y >> (n - 32u), 0u);
    }
    return vec2<u32>((a.x >> n) | (a.y << (32u - n)), a.y >> n);
}

// a >> n with every bit shifted out ORed into bit 0 (the sticky bit).
fn sf64_shr64_jam(a: vec2<u32>, n: u32) -> vec2<u32> {
    let r = sf64_shr64(a, n);
    let lost = !sf64_eq64(sf64_shl64(r, n), a);
    return vec2<u32>(r.x | select(0u, 1u, lost), r.y);
}

// The full 64-bit product of two u32, from 16-bit halves.
fn sf64_mul32(x: u32, y: u32) -> vec2<u32> {
    let xl = x & 0xffffu;
    let xh = x >> 16u;
    let yl = y & 0xffffu;
    let yh = y >> 16u;
    let ll = xl * yl;
    let lh = xl * yh;
    let hl = xh * yl;
    let hh = xh * yh;
    let mid = lh + hl;
    let mid_carry = select(0u, 0x10000u, mid < lh);
    let lo = ll + (mid << 16u);
    let c = select(0u, 1u, lo < ll);
    return vec2<u32>(lo, hh + (mid >> 16u) + mid_carry + c);
}

// The high 64 bits of the 128-bit product a * b, with bit 0 set when any of the
// low 64 bits is (sticky).
fn sf64_mul64_hi_jam(a: vec2<u32>, b: vec2<u32>) -> vec2<u32> {
    let p00 = sf64_mul32(a.x, b.x);
    let p01 = sf64_mul32(a.x, b.y);
    let p10 = sf64_mul32(a.y, b.x);
    let p11 = sf64_mul32(a.y, b.y);
    // word 1 = p00.hi + p01.lo + p10.lo (carries into word 2)
    let s1 = p00.y + p01.x;
    var c1 = select(0u, 1u, s1 < p00.y);
    let w1 = s1 + p10.x;
    c1 = c1 + select(0u, 1u, w1 < s1);
    // words 2, 3 = p11 + p01.hi + p10.hi + c1
    var hi = sf64_add64(p11, vec2<u32>(p01.y, 0u));
    hi = sf64_add64(hi, vec2<u32>(p10.y, 0u));
    hi = sf64_add64(hi, vec2<u32>(c1, 0u));
    let sticky = (p00.x | w1) != 0u;
    return vec2<u32>(hi.x | select(0u, 1u, sticky), hi.y);
}

// ---------------------------------------------------------------------------
// Rounding and packing.

const SF64_SIGN: u32 = 0x80000000u;

fn sf64_nan() -> vec2<u32> {
    return vec2<u32>(0u, 0x7ff80000u);
}

// s >> shift rounded to nearest, ties to even, by the bits shifted out
// (shift in 1..=64; a larger shift gives 0: the value is below half a unit).
fn sf64_round_shift(s: vec2<u32>, shift: u32) -> vec2<u32> {
    if shift > 64u {
        return vec2<u32>(0u, 0u);
    }
    let m = sf64_shr64(s, shift);
    let rest = sf64_sub64(s, sf64_shl64(m, shift));
    let half = sf64_shl64(vec2<u32>(1u, 0u), shift - 1u);
    let up = sf64_lt64(half, rest) || (sf64_eq64(rest, half) && (m.x & 1u) == 1u);
    return select(m, sf64_add64(m, vec2<u32>(1u, 0u)), up);
}

// The f64 nearest to (-1)^sign * s * 2^(e - 63), where s has bit 63 set and its
// low bits carry the sticky information. sign is 0 or SF64_SIGN.
// A rounding carry into the exponent field (and on to infinity) is the addition's.
fn sf64_round_pack(sign: u32, e: i32, s: vec2<u32>) -> vec2<u32> {
    let be = e + 1023;
    if be >= 2047 {
        return vec2<u32>(0u, sign | 0x7ff00000u);
    }
    var shift = 11u;
    var base = vec2<u32>(0u, 0u);
    if be >= 1 {
        base = vec2<u32>(0u, u32(be - 1) << 20u);
    } else {
        shift = u32(12 - be);
    }
    let r = sf64_add64(base, sf64_round_shift(s, shift));
    return vec2<u32>(r.x, r.y | sign);
}

// As sf64_round_pack for any nonzero s (normalised here).
fn sf64_norm_round(sign: u32, e: i32, s: vec2<u32>) -> vec2<u32> {
    let lz = sf64_clz64(s);
    return sf64_round_pack(sign, e - i32(lz), sf64_shl64(s, lz));
}

// A finite nonzero magnitude as s * 2^(e - 63) with bit 63 of s set.
struct Sf64Parts {
    s: vec2<u32>,
    e: i32,
}

fn sf64_unpack(a: vec2<u32>) -> Sf64Parts {
    let be = i32((a.y >> 20u) & 0x7ffu);
    var m = vec2<u32>(a.x, a.y & 0xfffffu);
    var q = -1074;
    if be != 0 {
        m.y = m.y | 0x100000u;
        q = be - 1075;
    }
    let lz = sf64_clz64(m);
    return Sf64Parts(sf64_shl64(m, lz), q + 63 - i32(lz));
}

fn sf64_abs_bits(a: vec2<u32>) -> vec2<u32> {
    return vec2<u32>(a.x, a.y & 0x7fffffffu);
}

fn sf64_is_special(a: vec2<u32>) -> bool {
    return (a.y & 0x7ff00000u) == 0x7ff00000u;
}

fn sf64_is_nan(a: vec2<u32>) -> bool {
    return sf64_is_special(a) && ((a.y & 0xfffffu) | a.x) != 0u;
}

// ---------------------------------------------------------------------------
// The public operations.

fn f64_const(hi: u32, lo: u32) -> vec2<u32> {
    return vec2<u32>(lo, hi);
}

fn f64_neg(a: vec2<u32>) -> vec2<u32> {
    return vec2<u32>(a.x, a.y ^ SF64_SIGN);
}

fn f64_add(a: vec2<u32>, b: vec2<u32>) -> vec2<u32> {
    let a_special = sf64_is_special(a);
    let b_special = sf64_is_special(b);
    if a_special || b_special {
        if sf64_is_nan(a) || sf64_is_nan(b) || (a_special && b_special && a.y != b.y) {
            return sf64_nan();
        }
        return select(b, a, a_special);
    }
    // x: the operand of larger magnitude.
    var x = a;
    var y = b;
    if sf64_lt64(sf64_abs_bits(a), sf64_abs_bits(b)) {
        x = b;
        y = a;
    }
    let sx = x.y & SF64_SIGN;
    let sy = y.y & SF64_SIGN;
    let ax = sf64_abs_bits(x);
    let ay = sf64_abs_bits(y);
    if sf64_zero64(ay) {
        if sf64_zero64(ax) {
            // (-0) + (-0) = -0; every other sum of zeros is +0.
            return vec2<u32>(0u, sx & sy);
        }
        return x;
    }
    let px = sf64_unpack(ax);
    let py = sf64_unpack(ay);
    // Both significands one bit down (room for a carry), 10 guard bits below.
    let hx = sf64_shr64(px.s, 1u);
    let hy = sf64_shr64_jam(sf64_shr64(py.s, 1u), u32(px.e - py.e));
    if sx == sy {
        return sf64_norm_round(sx, px.e + 1, sf64_add64(hx, hy));
    }
    let d = sf64_sub64(hx, hy);
    if sf64_zero64(d) {
        return vec2<u32>(0u, 0u);
    }
    return sf64_norm_round(sx, px.e + 1, d);
}

fn f64_sub(a: vec2<u32>, b: vec2<u32>) -> vec2<u32> {
    return f64_add(a, f64_neg(b));
}

fn f64_mul(a: vec2<u32>, b: vec2<u32>) -> vec2<u32> {
    let sign = (a.y ^ b.y) & SF64_SIGN;
    let aa = sf64_abs_bits(a);
    let ab = sf64_abs_bits(b);
    if sf64_is_special(a) || sf64_is_special(b) {
        if sf64_is_nan(a) || sf64_is_nan(b) || sf64_zero64(aa) || sf64_zero64(ab) {
            return sf64_nan();
        }
        return vec2<u32>(0u, sign | 0x7ff00000u);
    }
    if sf64_zero64(aa) || sf64_zero64(ab) {
        return vec2<u32>(0u, sign);
    }
    let pa = sf64_unpack(aa);
    let pb = sf64_unpack(ab);
    // (sa 2^(ea-63)) (sb 2^(eb-63)) = hi 2^64 2^(ea+eb-126) = hi 2^((ea+eb+1) - 63)
    return sf64_norm_round(sign, pa.e + pb.e + 1, sf64_mul64_hi_jam(pa.s, pb.s));
}

fn f64_div(a: vec2<u32>, b: vec2<u32>) -> vec2<u32> {
    let sign = (a.y ^ b.y) & SF64_SIGN;
    let aa = sf64_abs_bits(a);
    let ab = sf64_abs_bits(b);
    if sf64_is_nan(a) || sf64_is_nan(b) {
        return sf64_nan();
    }
    if sf64_is_special(a) {
        if sf64_is_special(b) {
            return sf64_nan();
        }
        return vec2<u32>(0u, sign | 0x7ff00000u);
    }
    if sf64_is_special(b) {
        return vec2<u32>(0u, sign);
    }
    if sf64_zero64(ab) {
        if sf64_zero64(aa) {
            return sf64_nan();
        }
        return vec2<u32>(0u, sign | 0x7ff00000u);
    }
    if sf64_zero64(aa) {
        return vec2<u32>(0u, sign);
    }
    let pa = sf64_unpack(aa);
    let pb = sf64_unpack(ab);
    // 53-bit significands; the numerator in [mb, 2 mb) so that the quotient's
    // first bit is 1.
    var rem = sf64_shr64(pa.s, 11u);
    let mb = sf64_shr64(pb.s, 11u);
    var e = pa.e - pb.e;
    if sf64_lt64(rem, mb) {
        rem = sf64_shl64(rem, 1u);
        e = e - 1;
    }
    // 64 quotient bits by restoring division: q = floor(ma / mb * 2^63).
    var q = vec2<u32>(0u, 0u);
    for (var i = 0u; i < 64u; i = i + 1u) {
        q = sf64_shl64(q, 1u);
        if !sf64_lt64(rem, mb) {
            rem = sf64_sub64(rem, mb);
            q.x = q.x | 1u;
        }
        rem = sf64_shl64(rem, 1u);
    }
    if !sf64_zero64(rem) {
        q.x = q.x | 1u;
    }
    return sf64_round_pack(sign, e, q);
}

// Exact below 2^53, correctly rounded above.
fn f64_from_u64(lo: u32, hi: u32) -> vec2<u32> {
    let x = vec2<u32>(lo, hi);
    if sf64_zero64(x) {
        return vec2<u32>(0u, 0u);
    }
    let lz = sf64_clz64(x);
    return sf64_round_pack(0u, 63 - i32(lz), sf64_shl64(x, lz));
}

fn f64_from_u32(x: u32) -> vec2<u32> {
    return f64_from_u64(x, 0u);
}

fn f64_from_i32(x: i32) -> vec2<u32> {
    let bits = bitcast<u32>(x);
    if x < 0 {
        return f64_neg(f64_from_u64(0u - bits, 0u));
    }
    return f64_from_u64(bits, 0u);
}

// The bits of Rust's `a as f32`: nearest, ties to even, f32 subnormals rounded
// once, overflow to infinity.
fn f64_to_f32_bits(a: vec2<u32>) -> u32 {
    let sign = a.y & SF64_SIGN;
    let aa = sf64_abs_bits(a);
    if sf64_is_special(a) {
        if sf64_is_nan(a) {
            return sign | 0x7fc00000u;
        }
        return sign | 0x7f800000u;
    }
    if sf64_zero64(aa) {
        return sign;
    }
    let p = sf64_unpack(aa);
    let be = p.e + 127;
    if be >= 255 {
        return sign | 0x7f800000u;
    }
    var shift = 40u;
    var base = 0u;
    if be >= 1 {
        base = u32(be - 1) << 23u;
    } else {
        shift = u32(41 - be);
    }
    return sign | (base + sf64_round_shift(p.s, shift).x);
}

fn f64_floor(a: vec2<u32>) -> vec2<u32> {
    let be = i32((a.y >> 20u) & 0x7ffu);
    let k = be - 1023;
    if be == 0x7ff || k >= 52 {
        return a;
    }
    let neg = (a.y & SF64_SIGN) != 0u;
    if k < 0 {
        if sf64_zero64(sf64_abs_bits(a)) {
            return a;
        }
        return select(vec2<u32>(0u, 0u), vec2<u32>(0u, 0xbff00000u), neg);
    }
    let unit = sf64_shl64(vec2<u32>(1u, 0u), u32(52 - k));
    let mask = sf64_sub64(unit, vec2<u32>(1u, 0u));
    if ((a.x & mask.x) | (a.y & mask.y)) == 0u {
        return a;
    }
    let r = vec2<u32>(a.x & ~mask.x, a.y & ~mask.y);
    if neg {
        // one more unit of magnitude; a carry into the exponent is the right one
        return sf64_add64(r, unit);
    }
    return r;
}

// a < b (false when either is NaN; -0 == +0).
fn f64_lt(a: vec2<u32>, b: vec2<u32>) -> bool {
    if sf64_is_nan(a) || sf64_is_nan(b) {
        return false;
    }
    let aa = sf64_abs_bits(a);
    let ab = sf64_abs_bits(b);
    if sf64_zero64(aa) && sf64_zero64(ab) {
        return false;
    }
    let na = (a.y & SF64_SIGN) != 0u;
    let nb = (b.y & SF64_SIGN) != 0u;
    if na != nb {
        return na;
    }
    if na {
        return sf64_lt64(ab, aa);
    }
    return sf64_lt64(aa, ab);
}

// a <= b (false when either is NaN; -0 == +0).
fn f64_le(a: vec2<u32>, b: vec2<u32>) -> bool {
    if sf64_is_nan(a) || sf64_is_nan(b) {
        return false;
    }
    return !f64_lt(b, a);
}

// As Rust's f64::min for non-NaN operands (a NaN operand gives the other one);
// of two zeros it returns a.
fn f64_min(a: vec2<u32>, b: vec2<u32>) -> vec2<u32> {
    if sf64_is_nan(a) {
        return b;
    }
    if f64_lt(b, a) {
        return b;
    }
    return a;
}

// ---------------------------------------------------------------------------
// exp, ln and ln_1p: src/detmath.rs's operations, in the same order, on the
// soft binary64 above (see there for the method, accuracy and domains).
// Straight-line code apart from f64_div's loop: f64_exp makes no division,
// f64_ln two (128 loop iterations), f64_ln1p three (192).

struct Sf64Pair {
    hi: vec2<u32>,
    lo: vec2<u32>,
}

const SF64_ONE = vec2<u32>(0u, 0x3ff00000u);
const SF64_TWO = vec2<u32>(0u, 0x40000000u);
const SF64_HALF = vec2<u32>(0u, 0x3fe00000u);
const SF64_INV_LN2 = vec2<u32>(0x652b82feu, 0x3ff71547u);
const SF64_SHIFTER = vec2<u32>(0x00000000u, 0x43380000u);
const SF64_LN2_HI = vec2<u32>(0xfee00000u, 0x3fe62e42u);
const SF64_LN2_LO = vec2<u32>(0x35793c76u, 0x3dea39efu);
const SF64_SPLIT = vec2<u32>(0x02000000u, 0x41a00000u);
const SF64_TWO54 = vec2<u32>(0x00000000u, 0x43500000u);
const SF64_EXP_MAX = vec2<u32>(0x00000000u, 0x40862800u);
const SF64_EXP_MIN = vec2<u32>(0x00000000u, 0xc0862000u);
const SF64_POS_INF = vec2<u32>(0u, 0x7ff00000u);
const SF64_NEG_INF = vec2<u32>(0u, 0xfff00000u);
const SF64_NEG_ONE = vec2<u32>(0u, 0xbff00000u);

// 1/n! for n = 3..=14
const SF64_EXP_C = array<vec2<u32>, 12>(
    vec2<u32>(0x55555555u, 0x3fc55555u),
    vec2<u32>(0x55555555u, 0x3fa55555u),
    vec2<u32>(0x11111111u, 0x3f811111u),
    vec2<u32>(0x16c16c17u, 0x3f56c16cu),
    vec2<u32>(0x1a01a01au, 0x3f2a01a0u),
    vec2<u32>(0x1a01a01au, 0x3efa01a0u),
    vec2<u32>(0xa556c734u, 0x3ec71de3u),
    vec2<u32>(0xb7789f5cu, 0x3e927e4fu),
    vec2<u32>(0x67f544e4u, 0x3e5ae645u),
    vec2<u32>(0xeff8d898u, 0x3e21eed8u),
    vec2<u32>(0x13a86d09u, 0x3de61246u),
    vec2<u32>(0xa8c07c9du, 0x3da93974u),
);

// 2/(2n+1) for n = 1..=11
const SF64_LN_C = array<vec2<u32>, 11>(
    vec2<u32>(0x55555555u, 0x3fe55555u),
    vec2<u32>(0x9999999au, 0x3fd99999u),
    vec2<u32>(0x92492492u, 0x3fd24924u),
    vec2<u32>(0x1c71c71cu, 0x3fcc71c7u),
    vec2<u32>(0x745d1746u, 0x3fc745d1u),
    vec2<u32>(0x13b13b14u, 0x3fc3b13bu),
    vec2<u32>(0x11111111u, 0x3fc11111u),
    vec2<u32>(0x1e1e1e1eu, 0x3fbe1e1eu),
    vec2<u32>(0xbca1af28u, 0x3fbaf286u),
    vec2<u32>(0x18618618u, 0x3fb86186u),
    vec2<u32>(0x590b2164u, 0x3fb642c8u),
);

// s + e = a + b exactly.
fn sf64_two_sum(a: vec2<u32>, b: vec2<u32>) -> Sf64Pair {
    let s = f64_add(a, b);
    let bb = f64_sub(s, a);
    let e = f64_add(f64_sub(a, f64_sub(s, bb)), f64_sub(b, bb));
    return Sf64Pair(s, e);
}

// s + e = a + b exactly, where |a| >= |b| (or a = 0).
fn sf64_fast_two_sum(a: vec2<u32>, b: vec2<u32>) -> Sf64Pair {
    let s = f64_add(a, b);
    return Sf64Pair(s, f64_sub(b, f64_sub(s, a)));
}

fn sf64_split(a: vec2<u32>) -> Sf64Pair {
    let c = f64_mul(SF64_SPLIT, a);
    let hi = f64_sub(c, f64_sub(c, a));
    return Sf64Pair(hi, f64_sub(a, hi));
}

// p + e = a * b exactly (Dekker).
fn sf64_two_prod(a: vec2<u32>, b: vec2<u32>) -> Sf64Pair {
    let p = f64_mul(a, b);
    let sa = sf64_split(a);
    let sb = sf64_split(b);
    let e0 = f64_sub(f64_mul(sa.hi, sb.hi), p);
    let e1 = f64_add(e0, f64_mul(sa.hi, sb.lo));
    let e2 = f64_add(e1, f64_mul(sa.lo, sb.hi));
    return Sf64Pair(p, f64_add(e2, f64_mul(sa.lo, sb.lo)));
}

fn f64_exp(x: vec2<u32>) -> vec2<u32> {
    if sf64_is_nan(x) {
        return sf64_nan();
    }
    if f64_lt(SF64_EXP_MAX, x) {
        return SF64_POS_INF;
    }
    if f64_lt(x, SF64_EXP_MIN) {
        return vec2<u32>(0u, 0u);
    }
    let t = f64_add(f64_mul(x, SF64_INV_LN2), SF64_SHIFTER);
    let kd = f64_sub(t, SF64_SHIFTER);
    let k = bitcast<i32>(t.x);
    let r0 = f64_sub(x, f64_mul(kd, SF64_LN2_HI));
    let r = sf64_two_sum(r0, f64_neg(f64_mul(kd, SF64_LN2_LO)));
    let rh = r.hi;
    let rl = r.lo;
    var p = SF64_EXP_C[11];
    p = f64_add(SF64_EXP_C[10], f64_mul(rh, p));
    p = f64_add(SF64_EXP_C[9], f64_mul(rh, p));
    p = f64_add(SF64_EXP_C[8], f64_mul(rh, p));
    p = f64_add(SF64_EXP_C[7], f64_mul(rh, p));
    p = f64_add(SF64_EXP_C[6], f64_mul(rh, p));
    p = f64_add(SF64_EXP_C[5], f64_mul(rh, p));
    p = f64_add(SF64_EXP_C[4], f64_mul(rh, p));
    p = f64_add(SF64_EXP_C[3], f64_mul(rh, p));
    p = f64_add(SF64_EXP_C[2], f64_mul(rh, p));
    p = f64_add(SF64_EXP_C[1], f64_mul(rh, p));
    p = f64_add(SF64_EXP_C[0], f64_mul(rh, p));
    let r2 = sf64_two_prod(rh, rh);
    let tail = f64_mul(f64_mul(rh, r2.hi), p);
    let t1 = sf64_two_sum(rh, f64_mul(r2.hi, SF64_HALF));
    let u = sf64_fast_two_sum(SF64_ONE, t1.hi);
    let small = f64_add(f64_mul(r2.lo, SF64_HALF), f64_add(f64_mul(rh, rl), tail));
    let lo = f64_add(u.lo, f64_add(t1.lo, f64_add(rl, small)));
    let y = f64_add(u.hi, lo);
    return f64_mul(y, vec2<u32>(0u, u32(k + 1023) << 20u));
}

// ln(x) as an unrounded sum hi + lo, for positive finite x.
fn sf64_ln_parts(x: vec2<u32>) -> Sf64Pair {
    var bits = x;
    var k = 0;
    if bits.y < 0x00100000u {
        bits = f64_mul(x, SF64_TWO54);
        k = -54;
    }
    let frac_hi = bits.y & 0x000fffffu;
    k = k + (i32(bits.y >> 20u) - 1023);
    var m_hi = frac_hi | 0x3ff00000u;
    if frac_hi >= 0x6a09eu {
        k = k + 1;
        m_hi = frac_hi | 0x3fe00000u;
    }
    let m = vec2<u32>(bits.x, m_hi);
    let f = f64_sub(m, SF64_ONE);
    let d = f64_add(SF64_TWO, f);
    let s = f64_div(f, d);
    let pp = sf64_two_prod(s, f);
    let residual = f64_sub(f64_sub(f64_sub(f, f64_mul(SF64_TWO, s)), pp.hi), pp.lo);
    let sl = f64_div(residual, d);
    let z = f64_mul(s, s);
    var q = SF64_LN_C[10];
    q = f64_add(SF64_LN_C[9], f64_mul(z, q));
    q = f64_add(SF64_LN_C[8], f64_mul(z, q));
    q = f64_add(SF64_LN_C[7], f64_mul(z, q));
    q = f64_add(SF64_LN_C[6], f64_mul(z, q));
    q = f64_add(SF64_LN_C[5], f64_mul(z, q));
    q = f64_add(SF64_LN_C[4], f64_mul(z, q));
    q = f64_add(SF64_LN_C[3], f64_mul(z, q));
    q = f64_add(SF64_LN_C[2], f64_mul(z, q));
    q = f64_add(SF64_LN_C[1], f64_mul(z, q));
    q = f64_add(SF64_LN_C[0], f64_mul(z, q));
    let t = f64_mul(f64_mul(s, z), q);
    let kd = f64_from_i32(k);
    let he = sf64_two_sum(f64_mul(kd, SF64_LN2_HI), f64_mul(SF64_TWO, s));
    let lo = f64_add(he.lo, f64_add(f64_mul(kd, SF64_LN2_LO), f64_add(f64_mul(SF64_TWO, sl), t)));
    return Sf64Pair(he.hi, lo);
}

fn f64_ln(x: vec2<u32>) -> vec2<u32> {
    if sf64_is_nan(x) || f64_lt(x, vec2<u32>(0u, 0u)) {
        return sf64_nan();
    }
    if sf64_zero64(sf64_abs_bits(x)) {
        return SF64_NEG_INF;
    }
    if sf64_eq64(x, SF64_POS_INF) {
        return x;
    }
    let p = sf64_ln_parts(x);
    return f64_add(p.hi, p.lo);
}

fn f64_ln1p(x: vec2<u32>) -> vec2<u32> {
    if sf64_is_nan(x) || f64_lt(x, SF64_NEG_ONE) {
        return sf64_nan();
    }
    if sf64_eq64(x, SF64_NEG_ONE) {
        return SF64_NEG_INF;
    }
    if sf64_zero64(sf64_abs_bits(x)) || sf64_eq64(x, SF64_POS_INF) {
        return x;
    }
    let us = sf64_two_sum(SF64_ONE, x);
    let p = sf64_ln_parts(us.hi);
    return f64_add(p.hi, f64_add(p.lo, f64_div(us.lo, us.hi)));
}
