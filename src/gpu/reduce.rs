//! Reductions on the device (`[reduce]`): `shaders/reduce.wgsl` runs after the
//! kernel on each chunk and leaves per segment (the rows of one group in one block,
//! or one group's worlds in a block) the count, f32 mean, sum of squared deviations,
//! min and max of every reduced output; with `best`, it first chooses each world's
//! row, or with `game` each world's equilibria and leader-follower outcome. With
//! quantiles it also counts each Stats segment's sketch buckets per output. The
//! host reads back those partials and counts instead of the rows, and adds them
//! exactly to the reduction's state.
//!
//! The host builds each chunk's tables: the rows of every block sorted by group
//! (stably, so in row order within a group) as dispatch positions, the worlds
//! likewise, and one segment per run of equal groups. A segment's content is a
//! function of its block's rows alone, so chunks (whole blocks) of any size and
//! any dispatch order give the same partials.

use rayon::prelude::*;

use super::bind::{storage, uniform};
use super::layout;
use super::source::REDUCE_SOURCE;
use crate::backend::device::Source;
pub use crate::backend::device::{DeviceChunk, PARTIAL_WORDS, ReduceJob, SKETCH_HEADER, SegInfo, SegKind};
use crate::model::Out;

/// A column of the reduce shader: (word, kind, firm, 0).
pub fn column(source: Source) -> [u32; 4] {
    match source {
        Source::Column(c) => {
            let kind = if c.spec.out == Out::Price { 1 } else { 0 };
            [layout::word(c.spec.out, c.firm) as u32, kind, c.firm as u32, 0]
        }
        Source::Exited(i) => [layout::word(Out::ExitMonth, i) as u32, 2, i as u32, 0],
    }
}

/// A chunk's tables for the reduce passes.
pub struct Tables {
    /// [stat items (rows) | world rows (choices per world) | reference rows (one per world)], as dispatch positions;
    /// empty where the table is implicit.
    pub items: Vec<u32>,
    /// Whether `items` is implicit (`shaders/reduce.wgsl`'s `item_at`): the chunk's
    /// rows dispatched in position order and each block's rows already in group
    /// order, so that item i is position i and the worlds follow one another.
    pub implicit: bool,
    /// Where the reference rows start in `items`.
    pub ref_base: u32,
    /// Per segment (source, start, len, 1 for Stats segments, else 0).
    pub segs: Vec<[u32; 4]>,
    pub info: Vec<SegInfo>,
    pub world_groups: Vec<u32>,
    pub worlds: u32,
    pub world_base: u32,
    /// Segments 0..large are longer than [`SMALL`].
    pub large: u32,
    /// With quantiles: the words of the sketch buffer read back (its count word,
    /// then room for runs; see [`sketch_words`]).
    pub sketch_cap: u64,
}

impl Tables {
    /// The tables of positions `first..first + rows` (whole blocks from a block
    /// boundary), with `dispatch[k]` the dispatch position of position `first + k`.
    pub fn build(job: &ReduceJob, first: u64, rows: usize, dispatch: &[u32]) -> Tables {
        let b = job.block_rows as usize;
        // The group is constant on aligned runs of `group_run` positions: one call per run.
        let r = job.group_run.max(1);
        let (run0, run1) = (first / r, (first + rows.max(1) as u64 - 1) / r);
        let groups: Vec<u32> = if run1 - run0 < rows as u64 {
            let of_run: Vec<u32> = (run0..=run1).into_par_iter().map(|q| (job.group)((q * r).max(first))).collect();
            (0..rows).into_par_iter().map(|k| of_run[((first + k as u64) / r - run0) as usize]).collect()
        } else {
            (0..rows).into_par_iter().map(|k| (job.group)(first + k as u64)).collect()
        };
        // Per block: its rows sorted by group (stable: row order within a group).
        let sorted: Vec<Vec<u32>> = (0..rows.div_ceil(b))
            .into_par_iter()
            .map(|blk| {
                let mut ks: Vec<u32> = (blk * b..((blk + 1) * b).min(rows)).map(|k| k as u32).collect();
                ks.sort_by_key(|&k| groups[k as usize]);
                ks
            })
            .collect();
        let mut items: Vec<u32> = Vec::with_capacity(rows * 2);
        let mut segs = Vec::new();
        let mut info = Vec::new();
        let mut push_runs = |keys: &[u32], group_of: &dyn Fn(u32) -> u32, source: u32, start: u32, kind: SegKind| {
            let mut at = 0;
            while at < keys.len() {
                let g = group_of(keys[at]);
                let len = keys[at..].iter().take_while(|&&k| group_of(k) == g).count();
                segs.push([source, start + at as u32, len as u32, (kind == SegKind::Stats) as u32]);
                info.push(SegInfo { group: g, kind, start: start + at as u32, len: len as u32 });
                at += len;
            }
        };
        for ks in &sorted {
            let start = items.len() as u32;
            items.extend(ks.iter().map(|&k| dispatch[k as usize]));
            push_runs(ks, &|k| groups[k as usize], 0, start, SegKind::Stats);
        }
        let (mut world_groups, mut worlds, world_base) = (Vec::new(), 0u32, items.len() as u32);
        let mut ref_base = world_base;
        if let Some(wd) = &job.worlds {
            let n = wd.rows;
            let per_block = b / n;
            let all_worlds = rows / n;
            let order: Vec<Vec<u32>> = (0..all_worlds.div_ceil(per_block))
                .into_par_iter()
                .map(|blk| {
                    let mut ws: Vec<u32> = (blk * per_block..((blk + 1) * per_block).min(all_worlds)).map(|w| w as u32).collect();
                    ws.sort_by_key(|&w| groups[w as usize * n]);
                    ws
                })
                .collect();
            let flat: Vec<u32> = order.iter().flatten().copied().collect();
            worlds = flat.len() as u32;
            for &w in &flat {
                items.extend((0..n).map(|c| dispatch[w as usize * n + c]));
            }
            ref_base = items.len() as u32;
            items.extend(flat.iter().map(|&w| dispatch[w as usize * n + wd.reference]));
            world_groups = flat.iter().map(|&w| groups[w as usize * n]).collect();
            // Segments over the chosen rows (source 1: indices into the worlds buffer) and the reference rows.
            let mut offset = 0u32;
            for ws in &order {
                let gs = |i: u32| world_groups[i as usize];
                let idx: Vec<u32> = (offset..offset + ws.len() as u32).collect();
                push_runs(&idx, &gs, 1, offset, SegKind::Best);
                push_runs(&idx, &gs, 0, ref_base + offset, SegKind::Reference);
                offset += ws.len() as u32;
            }
        }
        // Segments longer than SMALL first (a workgroup each), the short ones after
        // (an invocation each); the host adds partials in any order, exactly.
        let mut order: Vec<usize> = (0..segs.len()).collect();
        order.sort_by_key(|&k| segs[k][2] <= SMALL);
        let large = order.iter().take_while(|&&k| segs[k][2] > SMALL).count() as u32;
        let segs = order.iter().map(|&k| segs[k]).collect();
        let info = order.iter().map(|&k| info[k]).collect();
        // Rows dispatched in position order and each block's already in group order:
        // the shader computes every item, none is uploaded.
        let implicit = dispatch.iter().enumerate().all(|(k, &d)| d as usize == k)
            && (0..rows.div_ceil(b)).into_par_iter().all(|blk| groups[blk * b..((blk + 1) * b).min(rows)].windows(2).all(|w| w[0] <= w[1]));
        if implicit {
            items.clear();
        }
        Tables { items, implicit, ref_base, segs, info, world_groups, worlds, world_base, large, sketch_cap: 0 }
    }

    /// The most words the quantile passes may write for `outputs` outputs: the
    /// count word, and per Stats segment and output at most one entry per item
    /// and, per tile of [`SKETCH_TILE`] items, a header per pass and one for the rest.
    pub fn sketch_words(&self, outputs: usize) -> u64 {
        let runs = (SKETCH_PASSES + 1) as u64;
        let per_output: u64 = self
            .info
            .iter()
            .filter(|i| i.kind == SegKind::Stats)
            .map(|i| i.len as u64 + runs * (i.len as u64).div_ceil(SKETCH_TILE as u64).max(1))
            .sum();
        1 + per_output * outputs as u64
    }
}

/// `shaders/reduce.wgsl`'s Q_TILE: items a workgroup keys at once (so that a
/// count stays below 2^SKETCH_COUNT_BITS).
pub const SKETCH_TILE: u32 = 4096;
// A tile's counts fit an entry's count bits.
const _: () = assert!(SKETCH_TILE < 1 << crate::backend::device::SKETCH_COUNT_BITS);

/// `shaders/reduce.wgsl`'s Q_PASSES: windows of keys a workgroup counts per tile
/// before what is left goes back one entry per value.
pub const SKETCH_PASSES: u32 = 6;
/// `shaders/reduce.wgsl`'s Q_WINDOW: keys counted per pass.
pub const SKETCH_WINDOW: u32 = 1024;

/// The loop iterations of the quantile passes per output for one invocation at
/// worst (llvmpipe ends an invocation's loops past a cap), with segments of at
/// most `block_rows` items. A workgroup's thread (`q_large`), per tile: keying its
/// items, then per pass clearing, counting, sizing and writing its part of the
/// window, then the rest twice. One invocation's short segment (`q_small`): every
/// item against the distinct keys found before it, then their entries.
pub fn sketch_loop_iterations(block_rows: u64) -> u64 {
    let tiles = block_rows.div_ceil(SKETCH_TILE as u64).max(1);
    let per_thread = (SKETCH_TILE / 64) as u64;
    let span = (SKETCH_WINDOW / 64) as u64;
    let large = tiles * (1 + per_thread + SKETCH_PASSES as u64 * (3 * span + per_thread) + 2 * per_thread);
    let small = SMALL as u64;
    let small = small + small * (small - 1) / 2 + small;
    large.max(small)
}

/// The loop iterations of `shaders/reduce.wgsl`'s `game` for one world of a game
/// whose players have `sizes` strategies, at worst (llvmpipe ends an
/// invocation's loops past a cap): clearing the bitmask, every profile's
/// stability (a loop over the players and their deviations), and the leader's
/// scan of each commitment's profiles (the followers' stability).
pub fn game_loop_iterations(sizes: &[usize]) -> u64 {
    let profiles: u64 = sizes.iter().map(|&n| n as u64).product();
    let (k, total) = (sizes.len() as u64, sizes.iter().map(|&n| n as u64).sum::<u64>());
    let n0 = sizes.first().map_or(0, |&n| n as u64);
    profiles.div_ceil(32) + profiles * (1 + k + total) + n0 + profiles * (1 + k + total - n0)
}

/// `shaders/reduce.wgsl`'s SMALL: a segment of at most this many items is reduced
/// by one invocation, a longer one by a workgroup.
pub const SMALL: u32 = 32;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_games_loops_are_counted_as_the_shader_runs_them() {
        // 4 x 4: 1 bitmask word; 16 profiles x (1 + 2 + 8); the leader: 4 commitments,
        // 16 profiles x (1 + 2 + 4) followers' checks.
        assert_eq!(game_loop_iterations(&[4, 4]), 1 + 16 * 11 + 4 + 16 * 7);
        assert!(game_loop_iterations(&[6, 6, 6, 6]) > 65_535);
    }

    #[test]
    fn segments_are_the_groups_of_each_block_in_row_order() {
        // 10 rows, blocks of 4, groups alternating 0 1 0 1 ...; dispatch reversed.
        let group = |p: u64| (p % 2) as u32;
        let job =
            ReduceJob { outputs: Vec::new(), worlds: None, quantiles: false, want_rows: false, block_rows: 4, group: &group, group_run: 1 };
        let dispatch: Vec<u32> = (0..10).rev().collect();
        let t = Tables::build(&job, 0, 10, &dispatch);
        let runs: Vec<(u32, u32, u32)> = t.info.iter().map(|s| (s.group, s.start, s.len)).collect();
        assert_eq!(runs, [(0, 0, 2), (1, 2, 2), (0, 4, 2), (1, 6, 2), (0, 8, 1), (1, 9, 1)]);
        // Stats segments are marked for the quantile passes.
        assert!(t.segs.iter().all(|s| s[3] == 1));
        // Room for the count word, then per output 10 items and 7 runs per segment.
        assert_eq!(t.sketch_words(2), 1 + 2 * (10 + 6 * 7));
        // Block 0's group 0 holds rows 0 and 2 (dispatch positions 9 and 7), in row order.
        assert_eq!(&t.items[..4], &[9, 7, 8, 6]);
    }
}

#[cfg(test)]
mod shader_tests {
    use super::*;

    /// The constants the host and `shaders/reduce.wgsl` share, read from the shader.
    #[test]
    fn the_quantile_constants_match_the_shader() {
        let konst = |name: &str| -> u64 {
            let line = REDUCE_SOURCE.lines().find(|l| l.starts_with(&format!("const {name}: u32 = "))).unwrap_or_else(|| panic!("{name}"));
            let v = line.split('=').nth(1).unwrap().trim().trim_end_matches(';').trim_end_matches('u');
            match v.strip_prefix("0x") {
                Some(hex) => u64::from_str_radix(hex, 16).unwrap(),
                None => v.parse().unwrap(),
            }
        };
        assert_eq!(konst("Q_PASSES"), SKETCH_PASSES as u64);
        assert_eq!(konst("Q_WINDOW"), SKETCH_WINDOW as u64);
        assert_eq!(konst("Q_TILE"), SKETCH_TILE as u64);
        assert_eq!(konst("Q_COUNT_BITS"), crate::backend::device::SKETCH_COUNT_BITS as u64);
        assert_eq!(konst("Q_TABLE"), crate::reduce::sketch::DEVICE_TABLE as u64);
        assert_eq!(konst("Q_NEG"), crate::reduce::sketch::DEVICE_NEGATIVE as u64);
        assert_eq!(konst("Q_HEADER"), crate::backend::device::SKETCH_HEADER as u64);
        assert_eq!(konst("SMALL"), SMALL as u64);
    }
}

/// Bytes of the reduce shader's `Params` (20 words).
pub const PARAMS_BYTES: u64 = 96;

/// The reduce shader's pipelines (compiled once per device).
pub struct Pipelines {
    layout: wgpu::BindGroupLayout,
    /// The sketch's thresholds (`crate::reduce::sketch::DeviceBuckets`).
    thresholds: wgpu::Buffer,
    pub choose: wgpu::ComputePipeline,
    pub game: wgpu::ComputePipeline,
    pub reduce: wgpu::ComputePipeline,
    pub reduce_small: wgpu::ComputePipeline,
    /// The most sketch words per row a chunk has written on this device so far: the
    /// next chunks' read-back room is sized by it.
    pub sketch_per_row: f64,
}

impl Pipelines {
    pub fn new(device: &wgpu::Device) -> anyhow::Result<Pipelines> {
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("reduce bindings"),
            entries: &[
                storage(0, true),
                storage(1, true),
                storage(2, true),
                storage(3, true),
                storage(4, false),
                storage(5, false),
                storage(6, false),
                uniform(7),
                storage(8, true),
            ],
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("reduce"),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("reduce.wgsl"),
            source: wgpu::ShaderSource::Wgsl(REDUCE_SOURCE.into()),
        });
        let pipeline = |entry: &str| {
            device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(entry),
                layout: Some(&pipeline_layout),
                module: &module,
                entry_point: Some(entry),
                compilation_options: Default::default(),
                cache: None,
            })
        };
        let (choose, game, reduce, reduce_small) = (pipeline("choose"), pipeline("game"), pipeline("reduce"), pipeline("reduce_small"));
        if let Some(e) = pollster::block_on(scope.pop()) {
            anyhow::bail!("could not build the reduce pipelines: {e}");
        }
        let table = crate::reduce::sketch::device_buckets()?;
        let thresholds = wgpu::util::DeviceExt::create_buffer_init(
            device,
            &wgpu::util::BufferInitDescriptor {
                label: Some("sketch thresholds"),
                contents: bytemuck::cast_slice(&table.thresholds),
                usage: wgpu::BufferUsages::STORAGE,
            },
        );
        Ok(Pipelines { layout, thresholds, choose, game, reduce, reduce_small, sketch_per_row: 0.0 })
    }
}

/// A slot's buffers for the reduce passes, grown to fit each chunk's tables.
pub struct Buffers {
    pub items: wgpu::Buffer,
    pub segs: wgpu::Buffer,
    pub cols: wgpu::Buffer,
    pub partials: wgpu::Buffer,
    pub worlds: wgpu::Buffer,
    /// The quantile passes' count word and runs.
    pub qvals: wgpu::Buffer,
    pub params: wgpu::Buffer,
    /// partials, then choices, then the first words of qvals.
    pub readback: wgpu::Buffer,
    pub bind_group: wgpu::BindGroup,
}

/// Bytes each reduce buffer needs for one chunk.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Sizes {
    pub items: u64,
    pub segs: u64,
    pub cols: u64,
    pub partials: u64,
    pub worlds: u64,
    pub qvals: u64,
}

impl Sizes {
    /// With `picks` the columns after the reduced outputs (the objective, or each
    /// player's payoff) and `nash_words` per world (a game's equilibria).
    pub fn of(t: &Tables, outputs: usize, picks: usize, nash_words: usize, qvals: bool) -> Sizes {
        let at_least = |b: u64| b.max(16).next_multiple_of(16);
        Sizes {
            items: at_least(4 * t.items.len() as u64),
            segs: at_least(16 * t.segs.len() as u64),
            cols: at_least(16 * (outputs + picks.max(1)) as u64),
            partials: at_least(4 * (t.segs.len() * (outputs * PARTIAL_WORDS + 1)) as u64),
            worlds: at_least(4 * t.worlds as u64 * (2 + nash_words as u64)),
            qvals: at_least(if qvals { 4 * t.sketch_words(outputs) } else { 0 }),
        }
    }

    fn fits(&self, need: &Sizes) -> bool {
        self.items >= need.items
            && self.segs >= need.segs
            && self.cols >= need.cols
            && self.partials >= need.partials
            && self.worlds >= need.worlds
            && self.qvals >= need.qvals
    }

    fn max(&self, o: &Sizes) -> Sizes {
        Sizes {
            items: self.items.max(o.items),
            segs: self.segs.max(o.segs),
            cols: self.cols.max(o.cols),
            partials: self.partials.max(o.partials),
            worlds: self.worlds.max(o.worlds),
            qvals: self.qvals.max(o.qvals),
        }
    }
}

/// Makes `slot` hold buffers of at least `need` (and at least the sizes it had).
pub fn ensure(device: &wgpu::Device, p: &Pipelines, outputs: &wgpu::Buffer, slot: &mut Option<(Sizes, Buffers)>, need: Sizes) {
    if slot.as_ref().is_some_and(|(have, _)| have.fits(&need)) {
        return;
    }
    let size = slot.as_ref().map_or(need, |(have, _)| have.max(&need));
    use wgpu::BufferUsages as U;
    let buffer = |label: &str, size: u64, usage| {
        device.create_buffer(&wgpu::BufferDescriptor { label: Some(label), size, usage, mapped_at_creation: false })
    };
    let items = buffer("reduce items", size.items, U::STORAGE | U::COPY_DST);
    let segs = buffer("reduce segments", size.segs, U::STORAGE | U::COPY_DST);
    let cols = buffer("reduce columns", size.cols, U::STORAGE | U::COPY_DST);
    let partials = buffer("reduce partials", size.partials, U::STORAGE | U::COPY_SRC);
    let worlds = buffer("reduce worlds", size.worlds, U::STORAGE | U::COPY_SRC);
    let qvals = buffer("sketch counts", size.qvals, U::STORAGE | U::COPY_SRC | U::COPY_DST);
    let params = buffer("reduce params", PARAMS_BYTES, U::UNIFORM | U::COPY_DST);
    let readback = buffer("reduce readback", size.partials + size.worlds + size.qvals, U::MAP_READ | U::COPY_DST);
    fn entry(binding: u32, buf: &wgpu::Buffer) -> wgpu::BindGroupEntry<'_> {
        wgpu::BindGroupEntry { binding, resource: buf.as_entire_binding() }
    }
    let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some("reduce bindings"),
        layout: &p.layout,
        entries: &[
            entry(0, outputs),
            entry(1, &items),
            entry(2, &segs),
            entry(3, &cols),
            entry(4, &partials),
            entry(5, &worlds),
            entry(6, &qvals),
            entry(7, &params),
            entry(8, &p.thresholds),
        ],
    });
    *slot = Some((size, Buffers { items, segs, cols, partials, worlds, qvals, params, readback, bind_group }));
}
