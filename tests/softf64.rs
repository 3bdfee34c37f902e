//! shaders/f64.wgsl, the integer-only software binary64 on the GPU (lavapipe will
//! do), against the host's hardware IEEE-754 f64: every operation on random bit
//! patterns of the kinds that matter (wide and full-range exponents, subnormals,
//! signed zeros, exact rounding ties, values near powers of two, cancellations,
//! integers for floor, products and quotients that become subnormal) gives the
//! same bits as Rust's native operation, which is the independent reference.
//! Without an adapter it says so loudly and passes, unless MOATSWEEP_REQUIRE_GPU=1.
//!
//! `MOATSWEEP_SOFTF64_CASES` sets the number of cases per operation (default 2^20).

mod common;

use common::{Rng, have_gpu};
use moatsweep::detmath;

const LIBRARY: &str = include_str!("../shaders/f64.wgsl");

const HARNESS: &str = r#"
@group(0) @binding(0) var<storage, read> cases: array<vec4<u32>>;
@group(0) @binding(1) var<storage, read_write> results: array<vec2<u32>>;
@group(0) @binding(2) var<uniform> job: vec4<u32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
    let i = gid.x + gid.y * nw.x * 64u;
    if i >= job.y {
        return;
    }
    let c = cases[i];
    let a = c.xy;
    let b = c.zw;
    var r = vec2<u32>(0u, 0u);
    switch job.x {
        case 0u: { r = f64_add(a, b); }
        case 1u: { r = f64_sub(a, b); }
        case 2u: { r = f64_mul(a, b); }
        case 3u: { r = f64_div(a, b); }
        case 4u: { r = f64_from_u32(a.x); }
        case 5u: { r = f64_from_u64(a.x, a.y); }
        case 6u: { r = f64_from_i32(bitcast<i32>(a.x)); }
        case 7u: { r = vec2<u32>(f64_to_f32_bits(a), 0u); }
        case 8u: { r = f64_floor(a); }
        case 9u: { r = vec2<u32>(select(0u, 1u, f64_lt(a, b)), 0u); }
        case 10u: { r = vec2<u32>(select(0u, 1u, f64_le(a, b)), 0u); }
        case 11u: { r = f64_min(a, b); }
        case 12u: { r = f64_neg(a); }
        case 13u: { r = f64_exp(a); }
        case 14u: { r = f64_ln(a); }
        case 15u: { r = f64_ln1p(a); }
        default: {}
    }
    results[i] = r;
}
"#;

/// The GPU side: one pipeline running the harness over the library.
struct Gpu {
    device: wgpu::Device,
    queue: wgpu::Queue,
    pipeline: wgpu::ComputePipeline,
}

impl Gpu {
    fn new() -> Gpu {
        let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
        desc.backends = wgpu::Backends::PRIMARY;
        let instance = wgpu::Instance::new(desc.with_env());
        let adapter = pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions::default())).expect("an adapter");
        eprintln!("softf64 on {}", adapter.get_info().name);
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("softf64"),
            required_limits: adapter.limits(),
            ..Default::default()
        }))
        .expect("a device");
        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("softf64"),
            source: wgpu::ShaderSource::Wgsl(format!("{LIBRARY}\n{HARNESS}").into()),
        });
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some("softf64"),
            layout: None,
            module: &module,
            entry_point: Some("main"),
            compilation_options: Default::default(),
            cache: None,
        });
        if let Some(e) = pollster::block_on(scope.pop()) {
            panic!("shaders/f64.wgsl does not compile: {e}");
        }
        Gpu { device, queue, pipeline }
    }

    /// Runs operation `op` on every case (a, b) and returns each result's 64 bits.
    fn run(&self, op: u32, cases: &[(u64, u64)]) -> Vec<u64> {
        use wgpu::util::DeviceExt;
        let words: Vec<u32> = cases.iter().flat_map(|&(a, b)| [a as u32, (a >> 32) as u32, b as u32, (b >> 32) as u32]).collect();
        let input = self.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("cases"),
            contents: bytemuck::cast_slice(&words),
            usage: wgpu::BufferUsages::STORAGE,
        });
        let out_bytes = 8 * cases.len() as u64;
        let output = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("results"),
            size: out_bytes,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        let readback = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size: out_bytes,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let job = self.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("job"),
            contents: bytemuck::cast_slice(&[op, cases.len() as u32, 0, 0]),
            usage: wgpu::BufferUsages::UNIFORM,
        });
        let bind = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("softf64"),
            layout: &self.pipeline.get_bind_group_layout(0),
            entries: &[
                wgpu::BindGroupEntry { binding: 0, resource: input.as_entire_binding() },
                wgpu::BindGroupEntry { binding: 1, resource: output.as_entire_binding() },
                wgpu::BindGroupEntry { binding: 2, resource: job.as_entire_binding() },
            ],
        });
        let groups = (cases.len() as u32).div_ceil(64);
        let (gx, gy) = (groups.min(32768), groups.div_ceil(32768));
        let mut enc = self.device.create_command_encoder(&Default::default());
        {
            let mut pass = enc.begin_compute_pass(&Default::default());
            pass.set_pipeline(&self.pipeline);
            pass.set_bind_group(0, &bind, &[]);
            pass.dispatch_workgroups(gx, gy, 1);
        }
        enc.copy_buffer_to_buffer(&output, 0, &readback, 0, out_bytes);
        self.queue.submit([enc.finish()]);
        readback.slice(..).map_async(wgpu::MapMode::Read, |r| r.expect("mapped"));
        self.device.poll(wgpu::PollType::wait_indefinitely()).expect("poll");
        let data = readback.slice(..).get_mapped_range().expect("mapped range");
        let words: &[u32] = bytemuck::cast_slice(&data[..]);
        words.chunks_exact(2).map(|w| w[0] as u64 | (w[1] as u64) << 32).collect()
    }
}

fn cases_per_op() -> usize {
    std::env::var("MOATSWEEP_SOFTF64_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(1 << 20)
}

fn bits(x: f64) -> u64 {
    x.to_bits()
}

/// Random f64 bit patterns of the kinds that matter; never infinite or NaN.
struct Gen(Rng);

impl Gen {
    fn u(&mut self) -> u64 {
        self.0.next_u64()
    }
    fn below(&mut self, n: u64) -> u64 {
        self.u() % n
    }
    fn sign(&mut self) -> u64 {
        (self.u() & 1) << 63
    }
    /// A value with biased exponent in lo..=hi and a random mantissa of a random kind.
    fn with_exp(&mut self, lo: u64, hi: u64) -> u64 {
        let e = lo + self.below(hi - lo + 1);
        let m = match self.below(6) {
            0 => 0,                                                  // a power of two
            1 => (1 << 52) - 1 - self.below(4),                      // just below the next one
            2 => self.below(8),                                      // just above it
            3 => self.u() & 0xffff_ffff_e000_0000 & ((1 << 52) - 1), // few bits (exact products, ties)
            _ => self.u() & ((1 << 52) - 1),
        };
        self.sign() | e << 52 | m
    }
    /// One operand, of one of the kinds.
    fn any(&mut self) -> u64 {
        match self.below(10) {
            0 => self.u() & !(0x7ff << 52) | self.below(2047) << 52, // full range
            1 => self.sign() | self.below(1 << 52),                  // subnormal
            2 => self.sign(),                                        // a zero
            3 => self.with_exp(1, 60),                               // near the subnormal edge
            4 => self.with_exp(1986, 2046),                          // near overflow
            _ => self.with_exp(1023 - 100, 1023 + 100),              // 1e-30 .. 1e30
        }
    }
    /// An integer of up to `bits` bits with odd low bit, as f64.
    fn odd_int(&mut self, bits: u32) -> f64 {
        ((self.u() >> (64 - bits)) | 1 | 1 << (bits - 1)) as f64
    }
    fn pow2(&mut self, lo: i32, hi: i32) -> f64 {
        let k = lo + self.below((hi - lo + 1) as u64) as i32;
        f64::from_bits(((k + 1023) as u64) << 52)
    }
    fn signed(&mut self, x: f64) -> f64 {
        if self.u() & 1 == 1 { -x } else { x }
    }
    /// A pair for an arithmetic operation `op` (add/sub, mul, div).
    fn pair(&mut self, op: &str) -> (u64, u64) {
        let a = self.any();
        match self.below(4) {
            // independent operands
            0 | 1 => (a, self.any()),
            // operands made for the operation's hard cases
            _ => match op {
                "add" | "sub" => {
                    let x = f64::from_bits(self.with_exp(1, 2000));
                    let ulp = f64::from_bits(bits(x.abs()) + 1) - x.abs();
                    let y = match self.below(5) {
                        // exact ties: half an ulp, 3/2 ulp, and a quarter (below half) of ulp
                        0 => ulp * [0.5, 1.5, 0.25, 0.75][self.below(4) as usize],
                        // nearby magnitudes: cancellation
                        1 => f64::from_bits(bits(x.abs()) ^ self.below(1 << 20)),
                        2 => f64::from_bits((bits(x.abs()) + self.below(3) + (self.below(3) << 52)).wrapping_sub(1 + (1 << 52))),
                        // a random shift apart
                        _ => x.abs() * self.pow2(-70, 70),
                    };
                    let y = self.signed(y);
                    if y.is_finite() { (bits(x), bits(y)) } else { (a, self.any()) }
                }
                "mul" => {
                    // 27-bit odd integers: 53- or 54-bit products, half of them exact ties;
                    // scaled anywhere, the subnormal range included
                    let (x, y) = (self.odd_int(27), self.odd_int(27));
                    let (x, y) = match self.below(3) {
                        0 => (x * self.pow2(-600, -500), y * self.pow2(-560, -480)),
                        1 => (x * self.pow2(-1100, -1000), y * self.pow2(-30, 30)),
                        _ => (x * self.pow2(-200, 200), y * self.pow2(-200, 200)),
                    };
                    (bits(self.signed(x)), bits(self.signed(y)))
                }
                _ => {
                    // quotients near 1, exact quotients and quotients in the subnormal range
                    let y = f64::from_bits(self.with_exp(900, 1100));
                    let x = match self.below(3) {
                        0 => y * (1.0 + (self.below(64) as f64 - 32.0) * f64::EPSILON),
                        1 => y * self.odd_int(20),
                        _ => y * f64::from_bits(self.with_exp(1, 80)),
                    };
                    if x.is_finite() { (bits(self.signed(x)), bits(y)) } else { (a, self.any()) }
                }
            },
        }
    }
    /// A value for floor: integers, half-integers, values next to integers and anything.
    fn for_floor(&mut self) -> u64 {
        let shift = self.below(64);
        let i = (self.u() >> shift) as f64;
        let i = self.signed(i);
        match self.below(5) {
            0 => bits(i),
            1 => bits(i + self.signed(0.5)),
            2 => bits(i).wrapping_add(self.below(3)).wrapping_sub(1),
            3 => self.with_exp(1023 - 4, 1023 + 60),
            _ => self.any(),
        }
    }
    /// exp's arguments: log-uniform axes' (ln 1e-6 .. ln 1e12), the whole domain, near 0, anything.
    fn for_exp(&mut self) -> u64 {
        let u = self.0.unit();
        match self.below(4) {
            0 | 1 => bits(1e-6f64.ln() + (1e12f64.ln() - 1e-6f64.ln()) * u),
            2 => bits(-708.0 + 1417.0 * u),
            _ => self.any(),
        }
    }
    /// ln's arguments: 1e-30 .. 1e30 log-uniformly, near 1, subnormals, anything.
    fn for_ln(&mut self) -> u64 {
        let u = self.0.unit();
        match self.below(5) {
            0 | 1 => bits((1e-30f64.ln() + (1e30f64.ln() - 1e-30f64.ln()) * u).exp()),
            2 => bits(0.5 + 1.5 * u),
            3 => self.below(1 << 52),
            _ => self.any(),
        }
    }
    /// ln_1p's arguments: (-0.9, 100], near 0, near -1, anything.
    fn for_ln1p(&mut self) -> u64 {
        let u = self.0.unit();
        match self.below(5) {
            0 | 1 => bits(-0.9 + 100.9 * u),
            2 => self.with_exp(1023 - 60, 1023 - 1),
            3 => bits(-1.0 + u * 0.1),
            _ => self.any(),
        }
    }
    /// A value for the conversion to f32: f32's whole range, its ties and its edges.
    fn for_f32(&mut self) -> u64 {
        let e = match self.below(4) {
            0 => 1023 - 160 + self.below(40), // f32 subnormals and below
            1 => 1023 + 120 + self.below(10), // near f32::MAX
            2 => self.below(2047),
            _ => 1023 - 126 + self.below(254),
        };
        let m = match self.below(4) {
            0 => (self.u() & ((1 << 52) - 1)) & !((1 << 29) - 1) | 1 << 28, // an exact tie at f32 precision
            1 => (self.u() & ((1 << 52) - 1)) | ((1 << 29) - 1),            // just below
            _ => self.u() & ((1 << 52) - 1),
        };
        self.sign() | e << 52 | m
    }
}

fn finite(x: u64) -> bool {
    f64::from_bits(x).is_finite()
}

struct Op {
    name: &'static str,
    code: u32,
    make: fn(&mut Gen) -> (u64, u64),
    want: fn(u64, u64) -> u64,
}

fn f(x: u64) -> f64 {
    f64::from_bits(x)
}

const OPS: &[Op] = &[
    Op { name: "add", code: 0, make: |g| g.pair("add"), want: |a, b| bits(f(a) + f(b)) },
    Op { name: "sub", code: 1, make: |g| g.pair("sub"), want: |a, b| bits(f(a) - f(b)) },
    Op { name: "mul", code: 2, make: |g| g.pair("mul"), want: |a, b| bits(f(a) * f(b)) },
    Op { name: "div", code: 3, make: |g| g.pair("div"), want: |a, b| bits(f(a) / f(b)) },
    Op { name: "from_u32", code: 4, make: |g| (g.u() >> g.below(32), 0), want: |a, _| bits(a as u32 as f64) },
    Op {
        name: "from_u64",
        code: 5,
        make: |g| {
            // random widths; ties: 54..64-bit integers whose bits below the 53rd are exactly half
            let x = g.u() >> g.below(64);
            let lz = x.leading_zeros();
            if g.below(2) == 0 && lz < 11 {
                let drop = 11 - lz;
                (x & !((1 << drop) - 1) | 1 << (drop - 1), 0)
            } else {
                (x, 0)
            }
        },
        want: |a, _| bits(a as f64),
    },
    Op { name: "from_i32", code: 6, make: |g| ((g.u() >> g.below(32)) as u32 as u64, 0), want: |a, _| bits(a as u32 as i32 as f64) },
    Op { name: "to_f32_bits", code: 7, make: |g| (g.for_f32(), 0), want: |a, _| (f(a) as f32).to_bits() as u64 },
    Op { name: "floor", code: 8, make: |g| (g.for_floor(), 0), want: |a, _| bits(f(a).floor()) },
    Op { name: "lt", code: 9, make: cmp_pair, want: |a, b| (f(a) < f(b)) as u64 },
    Op { name: "le", code: 10, make: cmp_pair, want: |a, b| (f(a) <= f(b)) as u64 },
    Op { name: "min", code: 11, make: cmp_pair, want: |a, b| bits(f(a).min(f(b))) },
    Op { name: "neg", code: 12, make: |g| (g.any(), 0), want: |a, _| bits(-f(a)) },
];

/// moatsweep's exp, ln and ln_1p (src/detmath.rs) against the shader's, whose
/// operations are the same: the soft f64 must reproduce them bit for bit.
const TRANSCENDENTAL: &[Op] = &[
    Op { name: "exp", code: 13, make: |g| (g.for_exp(), 0), want: |a, _| bits(detmath::exp(f(a))) },
    Op { name: "ln", code: 14, make: |g| (g.for_ln(), 0), want: |a, _| bits(detmath::ln(f(a))) },
    Op { name: "ln1p", code: 15, make: |g| (g.for_ln1p(), 0), want: |a, _| bits(detmath::ln_1p(f(a))) },
];

/// Pairs for comparisons: equal values, neighbours, opposite signs, anything.
fn cmp_pair(g: &mut Gen) -> (u64, u64) {
    let a = g.any();
    match g.below(4) {
        0 => (a, a),
        1 => (a, a ^ 1 << 63),
        2 => (a, a.wrapping_add(g.below(3)).wrapping_sub(1)),
        _ => (a, g.any()),
    }
}

#[test]
fn soft_f64_matches_the_hosts_ieee_arithmetic_bit_for_bit() {
    if !have_gpu() {
        return;
    }
    check(OPS, cases_per_op());
}

/// Loops: f64_exp none, f64_ln 128 iterations (two divisions), f64_ln1p 192 (three),
/// far below llvmpipe's 65,535 per invocation.
#[test]
fn soft_exp_ln_ln1p_equal_detmath_bit_for_bit() {
    if !have_gpu() {
        return;
    }
    check(TRANSCENDENTAL, cases_per_op() / 8);
}

fn check(ops: &[Op], n: usize) {
    let gpu = Gpu::new();
    let mut failures = Vec::new();
    for op in ops {
        let k = op.code;
        let mut g = Gen(Rng(0x5eed_f64 + k as u64));
        let mut cases = Vec::with_capacity(n);
        while cases.len() < n {
            let (a, b) = (op.make)(&mut g);
            // no infinite or NaN operands; no pair of zeros of opposite signs for min
            // (Rust leaves min(-0, +0) to the platform)
            if !finite(a) || !finite(b) || (op.name == "min" && f(a) == 0.0 && f(b) == 0.0 && a != b) {
                continue;
            }
            cases.push((a, b));
        }
        let started = std::time::Instant::now();
        let got = gpu.run(op.code, &cases);
        let seconds = started.elapsed().as_secs_f64();
        let mut wrong = 0usize;
        for (&(a, b), &r) in cases.iter().zip(&got) {
            let want = (op.want)(a, b);
            // a NaN (0/0) may be any NaN
            let same = want == r || (op.code <= 3 && f(want).is_nan() && f(r).is_nan());
            if !same {
                if wrong < 5 {
                    failures.push(format!(
                        "{}({:#018x} = {:e}, {:#018x} = {:e}): GPU {:#018x}, host {:#018x}",
                        op.name,
                        a,
                        f(a),
                        b,
                        f(b),
                        r,
                        want
                    ));
                }
                wrong += 1;
            }
        }
        eprintln!("softf64 {:>12}: {} cases, {} differ ({seconds:.1} s on the device)", op.name, cases.len(), wrong);
        if wrong > 0 {
            failures.push(format!("{}: {wrong} of {} differ", op.name, cases.len()));
        }
    }
    assert!(failures.is_empty(), "soft f64 differs from the host:\n{}", failures.join("\n"));
}
