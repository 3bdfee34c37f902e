// TEMPORARY STUB (lead's local placeholder until the soft-f64 library lands).
fn f64_add(a: vec2<u32>, b: vec2<u32>) -> vec2<u32> { return a; }
fn f64_sub(a: vec2<u32>, b: vec2<u32>) -> vec2<u32> { return a; }
fn f64_mul(a: vec2<u32>, b: vec2<u32>) -> vec2<u32> { return a; }
fn f64_div(a: vec2<u32>, b: vec2<u32>) -> vec2<u32> { return a; }
fn f64_from_u32(x: u32) -> vec2<u32> { return vec2<u32>(x, 0u); }
fn f64_from_u64(lo: u32, hi: u32) -> vec2<u32> { return vec2<u32>(lo, hi); }
fn f64_to_f32_bits(a: vec2<u32>) -> u32 { return a.x; }
fn f64_floor(a: vec2<u32>) -> vec2<u32> { return a; }
fn f64_lt(a: vec2<u32>, b: vec2<u32>) -> bool { return a.y < b.y; }
fn f64_min(a: vec2<u32>, b: vec2<u32>) -> vec2<u32> { return a; }
fn f64_exp(a: vec2<u32>) -> vec2<u32> { return a; }
fn f64_ln(a: vec2<u32>) -> vec2<u32> { return a; }
fn f64_ln1p(a: vec2<u32>) -> vec2<u32> { return a; }
