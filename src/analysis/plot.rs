//! `moatsweep plot`: an output of a sweep over one or two of its axes,
//! aggregated over the others, drawn as PNG or SVG.
//!
//! With `--y` it is a heatmap (one cell per pair of axis values, a colour
//! bar); without, lines (one per value of `--by`, with a legend). Logspace
//! and loguniform axes are drawn on a log scale, a release month's `never`
//! (-1 in the CSV) one step after its largest month, and an axis with many
//! distinct values (a sampling design) in bins. Text needs no system fonts
//! (see [`super::font`]).
//!
//! A reduced CSV (see [`super::reduced`]) has one row per group: any of its
//! columns is drawn over one or two of its group axes, `--z best` as a
//! categorical heatmap of the modal best value with a legend of every value,
//! and `--z delta.<output>` as best minus reference; a game's `--z nash` and
//! `--z leader` as categorical heatmaps of the modal profile. `--cells FILE` writes
//! the cells drawn as CSV, for either kind of file.
//!
//! A firm's exit month (`--z exit_month.<firm>`, -1 when it survived) is
//! aggregated over the rows where the firm exited; a cell where it exited in
//! none of the rows is "survived" (-1), drawn in a colour of its own outside
//! the colour scale and named beside the colour bar.

use std::io::Write;
use std::ops::Range;
use std::path::PathBuf;

use plotters::coord::Shift;
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use super::font::{self, FAMILY, TextBitmap};
use super::reduced::{self, Column, Reduced};
use super::{AxisScale, Stats, SweepFile, fmt_number};
use crate::InputError;

/// Smallest and largest image sides accepted, in pixels.
const MIN_SIDE: u32 = 320;
const MAX_SIDE: u32 = 8192;
/// Significant digits of axis values in labels.
const LABEL_DIGITS: usize = 3;

/// Heatmap of an output over two axes, or lines over one axis.
#[derive(clap::Args, Debug)]
pub struct PlotArgs {
    /// A sweep CSV written by `moatsweep run` (its manifest beside it, if any, names the sweep and its logspace axes), or a reduced CSV (`<out stem>.reduced.csv` of a config with [reduce]).
    pub csv: PathBuf,
    /// Axis column along the horizontal axis.
    #[arg(long, value_name = "AXIS")]
    pub x: String,
    /// Axis column along the vertical axis: draws a heatmap (without it, lines).
    #[arg(long, value_name = "AXIS")]
    pub y: Option<String>,
    /// Output column to show (colour of a heatmap, height of the lines). Of a reduced CSV: any of its columns, `best` (the modal best value, a categorical heatmap) or `delta.<output>` (best minus reference mean); of a game's: `nash` (the modal equilibrium profile) or `leader` (the modal leader-follower outcome), categorical heatmaps crossed where some world has several equilibria, or `delta.<output>` (leader minus reference mean).
    #[arg(long, value_name = "OUTPUT")]
    pub z: String,
    /// Lines only: one line per value of this axis.
    #[arg(long, value_name = "AXIS", conflicts_with = "y")]
    pub by: Option<String>,
    /// How the rows that share a cell (or a point) are combined.
    #[arg(long, value_enum, default_value_t = Agg::Mean)]
    pub agg: Agg,
    /// Image to write, .png or .svg (default: beside the CSV, <csv stem>.<z>-by-<x>[-<y>].png).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Image width in pixels.
    #[arg(long, value_name = "W", default_value_t = 1000)]
    pub width: u32,
    /// Image height in pixels.
    #[arg(long, value_name = "H", default_value_t = 700)]
    pub height: u32,
    /// Also write the plotted cells as CSV: the x value, the y (or --by) value, the value shown.
    #[arg(long, value_name = "FILE")]
    pub cells: Option<PathBuf>,
}

/// How the values of the rows that fall in one cell become one number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Agg {
    Mean,
    Min,
    Max,
    Median,
}

impl Agg {
    fn name(self) -> &'static str {
        match self {
            Agg::Mean => "mean",
            Agg::Min => "min",
            Agg::Max => "max",
            Agg::Median => "median",
        }
    }
}

/// The values of the rows in one cell: running statistics, and every value
/// when the median is asked for.
#[derive(Default)]
struct Cell {
    stats: Stats,
    values: Vec<f64>,
    /// An exit month's cell: some row's firm survived (-1, not added).
    survived: bool,
}

impl Cell {
    fn add(&mut self, v: f64, agg: Agg) {
        self.stats.add(v);
        if agg == Agg::Median {
            self.values.push(v);
        }
    }

    /// The aggregate, or NaN when no row of the cell had a value; -1 (survived)
    /// when every row's firm survived.
    fn value(&mut self, agg: Agg) -> f64 {
        if self.stats.n == 0 {
            return if self.survived { crate::model::NEVER as f64 } else { f64::NAN };
        }
        match agg {
            Agg::Mean => self.stats.sum / self.stats.n as f64,
            Agg::Min => self.stats.min,
            Agg::Max => self.stats.max,
            Agg::Median => {
                let v = &mut self.values;
                v.sort_by(f64::total_cmp);
                let m = v.len() / 2;
                if v.len() % 2 == 1 { v[m] } else { (v[m - 1] + v[m]) / 2.0 }
            }
        }
    }
}

/// One axis of the figure: how its values are grouped, and where each slot is drawn.
struct AxisView {
    scale: AxisScale,
    /// [`AxisScale::position`] of each slot.
    pos: Vec<f64>,
}

impl AxisView {
    fn new(scale: AxisScale) -> AxisView {
        let pos = (0..scale.slots()).map(|i| scale.position(i)).collect();
        AxisView { scale, pos }
    }

    /// Cell edges: halfway between neighbouring positions, half a spacing
    /// beyond the ends (one unit for a single value).
    fn edges(&self) -> Vec<f64> {
        let p = &self.pos;
        let half = |i: usize| {
            if p.len() > 1 { (p[i + 1] - p[i]) / 2.0 } else { 0.5 }
        };
        let mut e = vec![p[0] - half(0)];
        e.extend(p.windows(2).map(|w| (w[0] + w[1]) / 2.0));
        e.push(p[p.len() - 1] + half(p.len().saturating_sub(2)));
        e
    }

    /// The coordinate of this axis, spanning every cell, labelled at every
    /// value or, when there are more than `max_labels`, at every k-th
    /// (and always at `never`).
    fn coord(&self, max_labels: usize) -> Ticked {
        let e = self.edges();
        let step = self.pos.len().div_ceil(max_labels.max(1));
        let last = self.pos.len() - 1;
        let ticks = (0..=last).filter(|&i| i % step == 0 || self.scale.is_never_slot(i)).map(|i| self.pos[i]).collect();
        Ticked { range: (e[0]..e[e.len() - 1]).into(), ticks }
    }

    /// The label of the value drawn nearest to position `p`.
    fn label_at(&self, p: f64) -> String {
        let nearest = (0..self.pos.len()).min_by(|&i, &j| (self.pos[i] - p).abs().total_cmp(&(self.pos[j] - p).abs()));
        nearest.map(|i| self.scale.label(i, LABEL_DIGITS)).unwrap_or_default()
    }

    /// The axis title: its path, then the scale when it is not linear and the
    /// number of bins when it is binned.
    fn title(&self) -> String {
        let s = &self.scale;
        let mut notes = Vec::new();
        if s.log {
            notes.push("log scale".to_string());
        }
        if let Some(n) = s.bins() {
            notes.push(format!("{n} bins"));
        }
        if notes.is_empty() { s.name.clone() } else { format!("{} ({})", s.name, notes.join(", ")) }
    }
}

/// A linear coordinate labelled at given positions (a sweep axis's values)
/// rather than at round numbers chosen by plotters.
struct Ticked {
    range: RangedCoordf64,
    ticks: Vec<f64>,
}

impl Ranged for Ticked {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        self.range.map(value, limit)
    }

    /// The given positions as the bold points (labels); no light grid lines.
    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        if hint.weight().allow_light_points() { Vec::new() } else { self.ticks.clone() }
    }

    fn range(&self) -> Range<f64> {
        self.range.range()
    }
}

/// Sizes that grow with the image, so that a large figure is not all margin.
struct Layout {
    scale: f64,
}

impl Layout {
    fn new(width: u32, height: u32) -> Layout {
        Layout { scale: (width as f64 / 1000.0).min(height as f64 / 700.0).clamp(0.7, 4.0) }
    }

    fn px(&self, base: f64) -> u32 {
        (base * self.scale).round() as u32
    }

    fn font(&self, base: f64) -> TextStyle<'static> {
        (FAMILY, base * self.scale).into_font().into()
    }
}

/// The colour of a heatmap cell where the firm survived in every row (outside viridis).
const SURVIVED: RGBColor = RGBColor(230, 85, 13);

/// The figure to draw: everything read from the CSV.
struct Figure {
    /// z is an exit month: -1 (survived) is not a month of the scale.
    exit_month: bool,
    /// `<sweep>: <z>`.
    title: String,
    /// `<agg> over <the other axes>`, when there are other axes.
    subtitle: Option<String>,
    z_title: String,
    x: AxisView,
    /// The heatmap's vertical axis, or the axis whose values are the lines.
    second: Option<AxisView>,
    heatmap: bool,
    /// `values[i][j]`: the aggregate at x value i and second-axis value j (NaN where no row had a value).
    values: Vec<Vec<f64>>,
    /// A categorical heatmap's categories (values are indices into them), with their title.
    categories: Option<(String, Vec<String>)>,
    /// Cells of a categorical heatmap marked with a cross, and what the mark
    /// means (a game's cells where some world has several equilibria).
    marks: Option<(String, Vec<Vec<bool>>)>,
}

/// `moatsweep plot`: reads the CSV, aggregates, draws, writes the image.
pub fn run(args: &PlotArgs, out: &mut impl Write) -> anyhow::Result<()> {
    for (flag, side) in [("--width", args.width), ("--height", args.height)] {
        if !(MIN_SIDE..=MAX_SIDE).contains(&side) {
            return Err(InputError(format!("{flag} must be between {MIN_SIDE} and {MAX_SIDE} pixels, not {side}")).into());
        }
    }
    let csv = SweepFile::open(&args.csv)?;
    if csv.is_reduced() {
        return run_reduced(args, Reduced::read(csv)?, out);
    }
    csv.check_outputs()?;
    let x_col = csv.axis_column("--x", &args.x)?;
    let z_col = csv.output_column("--z", &args.z)?;
    let second_col = match (&args.y, &args.by) {
        (Some(y), _) => Some(csv.axis_column("--y", y)?),
        (None, Some(by)) => Some(csv.axis_column("--by", by)?),
        (None, None) => None,
    };
    if second_col == Some(x_col) {
        let flag = if args.y.is_some() { "--y" } else { "--by" };
        return Err(InputError(format!("{flag} must name another axis than --x ({})", args.x)).into());
    }
    let path = match &args.out {
        Some(p) => p.clone(),
        None => default_path(args),
    };
    let svg = match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
        Some("svg") => true,
        Some("png") => false,
        _ => {
            return Err(InputError(format!("--out: {} must end in .png or .svg", path.display())).into());
        }
    };

    // One pass to see each axis's values, one to aggregate z into the cells they make.
    let cols: Vec<usize> = [Some(x_col), second_col].into_iter().flatten().collect();
    let mut scales = csv.scales(&cols)?.into_iter().map(AxisView::new);
    let x = scales.next().expect("a scale per column");
    let second = scales.next();
    if x.pos.is_empty() {
        return Err(InputError(format!("{} has no rows to plot", args.csv.display())).into());
    }
    let ny = second.as_ref().map_or(1, |s| s.pos.len());
    let mut cells: Vec<Cell> = (0..x.pos.len() * ny).map(|_| Cell::default()).collect();
    let exit_month = is_exit_month(&args.z);
    let rows = csv.for_each_row(|row| {
        let i = x.scale.slot(row.number(x_col)?);
        let j = match (&second, second_col) {
            (Some(s), Some(c)) => s.scale.slot(row.number(c)?),
            _ => 0,
        };
        match row.value(z_col)? {
            // The firm survived: no exit month to aggregate.
            Some(z) if exit_month && z < 0.0 => cells[i * ny + j].survived = true,
            Some(z) => cells[i * ny + j].add(z, args.agg),
            None => {}
        }
        Ok(())
    })?;
    let values = cells.chunks_mut(ny).map(|column| column.iter_mut().map(|c| c.value(args.agg)).collect()).collect();
    let figure = figure(&csv, args, x, second, values);

    let (w, h) = (args.width, args.height);
    let bytes = if svg {
        let mut text = String::new();
        draw(SVGBackend::with_string(&mut text, (w, h)).into_drawing_area(), &figure)?;
        text.into_bytes()
    } else {
        let mut rgb = vec![0; w as usize * h as usize * 3];
        draw(TextBitmap::new(&mut rgb, (w, h)).into_drawing_area(), &figure)?;
        encode_png(&rgb, w, h)?
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| InputError(format!("cannot create {}: {e}", dir.display())))?;
    }
    std::fs::write(&path, bytes).map_err(|e| InputError(format!("cannot write {}: {e}", path.display())))?;
    if let Some(cells) = &args.cells {
        write_cells(cells, args, &figure)?;
    }
    let kind = if figure.heatmap { "heatmap" } else { "line plot" };
    writeln!(out, "wrote {} ({kind} of {} {} over {rows} rows)", path.display(), args.agg.name(), args.z)?;
    Ok(())
}

/// `<csv stem>.<z>-by-<x>[-<y>].png` beside the CSV (`-per-<by>` for lines by an axis).
fn default_path(args: &PlotArgs) -> PathBuf {
    let stem = args.csv.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let mut name = format!("{stem}.{}-by-{}", args.z, args.x);
    if let Some(y) = &args.y {
        name += &format!("-{y}");
    } else if let Some(by) = &args.by {
        name += &format!("-per-{by}");
    }
    args.csv.with_file_name(name + ".png")
}

/// The figure: its titles, axes and aggregates.
fn figure(csv: &SweepFile, args: &PlotArgs, x: AxisView, second: Option<AxisView>, values: Vec<Vec<f64>>) -> Figure {
    let shown = [Some(&x), second.as_ref()].map(|a| a.map(|a| a.scale.name.as_str()));
    let others: Vec<&str> = csv.axes().iter().map(String::as_str).filter(|a| !shown.contains(&Some(*a))).collect();
    let exit_month = is_exit_month(&args.z);
    Figure {
        exit_month,
        title: format!("{}: {}", csv.sweep_name(), args.z),
        subtitle: (!others.is_empty()).then(|| format!("{} over {}", args.agg.name(), others.join(", "))),
        z_title: if exit_month {
            format!("{} ({} where exited; -1 = survived)", args.z, args.agg.name())
        } else {
            format!("{} ({})", args.z, args.agg.name())
        },
        x,
        second,
        heatmap: args.y.is_some(),
        values,
        categories: None,
        marks: None,
    }
}

/// Draws the figure on any plotters backend.
fn draw<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, figure: &Figure) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    font::register();
    let (w, h) = root.dim_in_pixel();
    let layout = Layout::new(w, h);
    root.fill(&WHITE)?;
    let mut body = root.titled(&figure.title, fitted(&root, &figure.title, &layout, 20.0)?)?;
    if let Some(subtitle) = &figure.subtitle {
        body = body.titled(subtitle, fitted(&root, subtitle, &layout, 15.0)?)?;
    }
    if figure.categories.is_some() {
        draw_categories(&body, figure, &layout)?;
    } else if figure.heatmap {
        draw_heatmap(&body, figure, &layout)?;
    } else {
        draw_lines(&body, figure, &layout)?;
    }
    root.present()?;
    Ok(())
}

/// The font at `base` size, shrunk if need be so that `text` fits the width of `area`.
fn fitted<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, text: &str, layout: &Layout, base: f64) -> anyhow::Result<TextStyle<'static>>
where
    DB::ErrorType: 'static,
{
    let font = layout.font(base);
    let (text_w, _) = area.estimate_text_size(text, &font)?;
    let room = area.dim_in_pixel().0 as f64 * 0.96;
    Ok(if text_w as f64 > room { layout.font(base * room / text_w as f64) } else { font })
}

/// Margins around the plotting area, shared by the chart and the side panel so that they line up.
struct Frame {
    top: u32,
    bottom: u32,
    left: u32,
}

impl Frame {
    fn new(layout: &Layout) -> Frame {
        Frame { top: layout.px(10.0), bottom: layout.px(50.0), left: layout.px(90.0) }
    }
}

/// Lays out the main chart of `area` with labelled axes.
fn chart<'a, DB: DrawingBackend, Y: Ranged<ValueType = f64>>(
    area: &'a DrawingArea<DB, Shift>,
    x: &AxisView,
    y: Y,
    layout: &Layout,
) -> anyhow::Result<ChartContext<'a, DB, Cartesian2d<Ticked, Y>>>
where
    DB::ErrorType: 'static,
{
    let frame = Frame::new(layout);
    let (w, _) = area.dim_in_pixel();
    let max_labels = (w as f64 / layout.px(80.0) as f64) as usize;
    let chart = ChartBuilder::on(area)
        .margin_top(frame.top)
        .margin_right(layout.px(15.0))
        .x_label_area_size(frame.bottom)
        .y_label_area_size(frame.left)
        .build_cartesian_2d(x.coord(max_labels.clamp(2, 12)), y)?;
    Ok(chart)
}

/// A heatmap's chart on `main` (the figure's area without its colour bar or
/// legend), its axes labelled and drawn.
fn heatmap_chart<'a, DB: DrawingBackend>(
    main: &'a DrawingArea<DB, Shift>,
    figure: &Figure,
    layout: &Layout,
) -> anyhow::Result<ChartContext<'a, DB, Cartesian2d<Ticked, Ticked>>>
where
    DB::ErrorType: 'static,
{
    let y = figure.second.as_ref().expect("a heatmap has a y axis");
    let (_, h) = main.dim_in_pixel();
    let max_labels = (h as f64 / layout.px(40.0) as f64) as usize;
    let mut chart = chart(main, &figure.x, y.coord(max_labels.clamp(2, 20)), layout)?;
    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc(figure.x.title())
        .y_desc(y.title())
        .x_label_formatter(&|p| figure.x.label_at(*p))
        .y_label_formatter(&|p| y.label_at(*p))
        .label_style(layout.font(13.0))
        .axis_desc_style(layout.font(15.0))
        .draw()?;
    Ok(chart)
}

fn draw_heatmap<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, figure: &Figure, layout: &Layout) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    let y = figure.second.as_ref().expect("a heatmap has a y axis");
    let (w, _) = area.dim_in_pixel();
    let (main, bar) = area.split_horizontally(w - layout.px(120.0));
    let mut chart = heatmap_chart(&main, figure, layout)?;

    let survived = |v: f64| figure.exit_month && v < 0.0;
    let (lo, hi) = finite_range(figure.values.iter().flatten().copied().filter(|&v| !survived(v)));
    let colour = |v: f64| -> RGBColor {
        if v.is_nan() {
            RGBColor(215, 215, 215)
        } else if survived(v) {
            SURVIVED
        } else {
            ViridisRGB::get_color_normalized(v as f32, lo as f32, hi as f32)
        }
    };
    let (xe, ye) = (figure.x.edges(), y.edges());
    chart.draw_series(figure.values.iter().enumerate().flat_map(|(i, column)| {
        let (xe, ye) = (&xe, &ye);
        column.iter().enumerate().map(move |(j, &v)| Rectangle::new([(xe[i], ye[j]), (xe[i + 1], ye[j + 1])], colour(v).filled()))
    }))?;

    // The colour bar: the same height as the plotting area, labelled on its right.
    let frame = Frame::new(layout);
    let mut scale = ChartBuilder::on(&bar)
        .margin_top(frame.top)
        .margin_bottom(frame.bottom)
        .margin_left(layout.px(10.0))
        .set_label_area_size(LabelAreaPosition::Right, layout.px(80.0))
        .build_cartesian_2d(0.0..1.0, lo..hi)?;
    scale
        .configure_mesh()
        .disable_mesh()
        .disable_x_axis()
        .y_labels(8)
        .y_label_formatter(&|v| fmt_number(*v, 3))
        .label_style(layout.font(13.0))
        .draw()?;
    const STEPS: usize = 256;
    let step = (hi - lo) / STEPS as f64;
    scale.draw_series((0..STEPS).map(|k| {
        let v = lo + step * k as f64;
        Rectangle::new([(0.0, v), (1.0, v + step)], colour(v + step / 2.0).filled())
    }))?;
    // An exit month's -1 is outside the scale: a swatch of its own below the bar.
    if figure.exit_month {
        let (_, bar_h) = bar.dim_in_pixel();
        let side = layout.px(14.0) as i32;
        let (x0, y0) = (layout.px(10.0) as i32, bar_h as i32 - frame.bottom as i32 + layout.px(12.0) as i32);
        bar.draw(&Rectangle::new([(x0, y0), (x0 + side, y0 + side)], SURVIVED.filled()))?;
        bar.draw(&Text::new("-1 = survived", (x0 + side + layout.px(6.0) as i32, y0), layout.font(13.0)))?;
    }
    Ok(())
}

fn draw_lines<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, figure: &Figure, layout: &Layout) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    let (w, _) = area.dim_in_pixel();
    let (main, legend) = match &figure.second {
        Some(_) => {
            let (main, legend) = area.split_horizontally(w - layout.px(190.0));
            (main, Some(legend))
        }
        None => (area.clone(), None),
    };
    let (lo, hi) = finite_range(figure.values.iter().flatten().copied());
    let pad = (hi - lo) * 0.05;
    let mut chart = chart(&main, &figure.x, RangedCoordf64::from(lo - pad..hi + pad), layout)?;
    chart
        .configure_mesh()
        .light_line_style(WHITE)
        .bold_line_style(RGBColor(225, 225, 225))
        .x_desc(figure.x.title())
        .y_desc(&figure.z_title)
        .x_label_formatter(&|p| figure.x.label_at(*p))
        .y_label_formatter(&|v| fmt_number(*v, 3))
        .label_style(layout.font(13.0))
        .axis_desc_style(layout.font(15.0))
        .draw()?;

    let n_lines = figure.values.first().map_or(0, Vec::len);
    let colours: Vec<RGBColor> = (0..n_lines).map(|j| line_colour(j, n_lines)).collect();
    let stroke = layout.px(2.0).max(1);
    for (j, &colour) in colours.iter().enumerate() {
        let points: Vec<(f64, f64)> = figure.x.pos.iter().zip(&figure.values).map(|(&x, column)| (x, column[j])).collect();
        // A missing value breaks the line, and `never` stands apart: it does not continue the months.
        let never = figure.x.scale.is_never_slot(points.len() - 1);
        let (months, never) = points.split_at(points.len() - never as usize);
        for run in months.split(|p| p.1.is_nan()).chain([never]).filter(|r| r.first().is_some_and(|p| !p.1.is_nan())) {
            chart.draw_series(LineSeries::new(run.iter().copied(), colour.stroke_width(stroke)))?;
            chart.draw_series(run.iter().map(|&p| Circle::new(p, layout.px(3.0), colour.filled())))?;
        }
    }

    if let (Some(legend), Some(by)) = (legend, &figure.second) {
        let frame = Frame::new(layout);
        let line_h = layout.px(20.0) as i32;
        let (x0, mut y) = (layout.px(10.0) as i32, frame.top as i32 + line_h);
        legend.draw(&Text::new(by.scale.name.clone(), (x0, y), layout.font(13.0)))?;
        let room = ((legend.dim_in_pixel().1 as i32 - y - frame.bottom as i32) / line_h).max(1) as usize;
        let shown = if n_lines > room { room - 1 } else { n_lines };
        for (j, &colour) in colours.iter().enumerate().take(shown) {
            y += line_h;
            let mid = y + line_h / 3;
            legend.draw(&PathElement::new(vec![(x0, mid), (x0 + layout.px(24.0) as i32, mid)], colour.stroke_width(stroke)))?;
            legend.draw(&Text::new(by.scale.label(j, LABEL_DIGITS), (x0 + layout.px(32.0) as i32, y), layout.font(13.0)))?;
        }
        if shown < n_lines {
            legend.draw(&Text::new(format!("... {} more", n_lines - shown), (x0, y + line_h), layout.font(13.0)))?;
        }
    }
    Ok(())
}

/// `moatsweep plot` of a reduced CSV (src/analysis/reduced.rs): one cell per
/// group. Groups that differ only in group axes not shown share a cell and are
/// combined with `--agg`; for `--z best`, their shares are added and the cell
/// shows the value with the largest sum.
fn run_reduced(args: &PlotArgs, csv: Reduced, out: &mut impl Write) -> anyhow::Result<()> {
    let x_col = csv.axis_column("--x", &args.x)?;
    let z = csv.column("--z", &args.z)?;
    let second_col = match (&args.y, &args.by) {
        (Some(y), _) => Some(csv.axis_column("--y", y)?),
        (None, Some(by)) => Some(csv.axis_column("--by", by)?),
        (None, None) => None,
    };
    if second_col == Some(x_col) {
        let flag = if args.y.is_some() { "--y" } else { "--by" };
        return Err(InputError(format!("{flag} must name another group axis than --x ({})", args.x)).into());
    }
    let best = csv.best().filter(|_| z == Column::Best);
    if let (Some(b), None) = (best, &args.y) {
        let shares: Vec<String> = b.labels.iter().map(|l| format!("best.{l}.share")).collect();
        return Err(InputError(format!(
            "--z best draws a categorical heatmap and needs --y (for lines, use one of: {})",
            shares.join(", ")
        ))
        .into());
    }
    // `--z nash` or `--z leader`: whether the leader's shares are shown.
    let game = match z {
        Column::Nash => Some(false),
        Column::Leader => Some(true),
        _ => None,
    };
    if let (Some(leader), None) = (game, &args.y) {
        let what = if leader { "leader" } else { "nash" };
        return Err(InputError(format!(
            "--z {what} draws a categorical heatmap and needs --y (for lines, use a share column such as {what}.{}.share, or nash.many.share)",
            csv.game().and_then(|g| g.labels.first()).map_or("<profile>", String::as_str)
        ))
        .into());
    }
    let (path, svg) = image_path(args)?;
    if csv.rows().is_empty() {
        return Err(InputError(format!("{} has no groups to plot", args.csv.display())).into());
    }

    let x = AxisView::new(csv.scale(x_col));
    let second = second_col.map(|c| AxisView::new(csv.scale(c)));
    let ny = second.as_ref().map_or(1, |s| s.pos.len());
    let cell_of = |row: &[Option<f64>]| {
        let i = csv.slot(&x.scale, row, x_col);
        let j = match (&second, second_col) {
            (Some(s), Some(c)) => csv.slot(&s.scale, row, c),
            _ => 0,
        };
        i * ny + j
    };
    let mut marks = None;
    let mut game_labels = Vec::new();
    let flat: Vec<f64> = match (best, game, csv.game()) {
        (_, Some(leader), Some(g)) => {
            // Shares added over the groups a cell combines; the modal profile (or none).
            let mut sums = vec![vec![0.0; g.labels.len()]; x.pos.len() * ny];
            let mut several = vec![false; x.pos.len() * ny];
            for row in csv.rows() {
                let cell = cell_of(row);
                for (sum, s) in sums[cell].iter_mut().zip(csv.game_shares(row, leader)) {
                    *sum += s;
                }
                several[cell] |= row[g.many_col].is_some_and(|s| s > 0.0);
            }
            let modal: Vec<Option<usize>> = sums.iter().map(|s| reduced::modal(s).map(|(k, _)| k)).collect();
            // Only the categories drawn, in profile order, in the legend.
            let mut used: Vec<usize> = modal.iter().flatten().copied().collect();
            used.sort_unstable();
            used.dedup();
            game_labels = used.iter().map(|&k| g.labels[k].clone()).collect();
            marks = Some(("several equilibria".to_string(), several.chunks(ny).map(<[bool]>::to_vec).collect::<Vec<Vec<bool>>>()));
            modal.iter().map(|m| m.map_or(f64::NAN, |k| used.binary_search(&k).expect("a used category") as f64)).collect()
        }
        (Some(b), _, _) => {
            let mut sums = vec![vec![0.0; b.labels.len()]; x.pos.len() * ny];
            for row in csv.rows() {
                for (sum, s) in sums[cell_of(row)].iter_mut().zip(csv.shares(row)) {
                    *sum += s;
                }
            }
            sums.iter().map(|s| reduced::modal(s).map_or(f64::NAN, |(k, _)| k as f64)).collect()
        }
        _ => {
            let mut cells: Vec<Cell> = (0..x.pos.len() * ny).map(|_| Cell::default()).collect();
            for row in csv.rows() {
                if let Some(v) = csv.value(row, z) {
                    cells[cell_of(row)].add(v, args.agg);
                }
            }
            cells.iter_mut().map(|c| c.value(args.agg)).collect()
        }
    };
    let values: Vec<Vec<f64>> = flat.chunks(ny).map(<[f64]>::to_vec).collect();

    let shown = [Some(&x), second.as_ref()].map(|a| a.map(|a| a.scale.name.as_str()));
    let others: Vec<&str> = csv.axes().iter().map(String::as_str).filter(|a| !shown.contains(&Some(*a))).collect();
    let (title, subtitle) = match (best, game, csv.game()) {
        (_, Some(leader), Some(g)) => {
            let players = g.players.iter().map(|p| p.split('.').nth(1).unwrap_or(p)).collect::<Vec<_>>().join(" x ");
            let (what, how) = if leader {
                ("leader-follower outcome", format!("{} moves first; per group, the outcome in the most worlds", g.players[0]))
            } else {
                ("pure Nash equilibrium", "per group, the profile that is an equilibrium in the most worlds".to_string())
            };
            let mut subtitle = format!("{how}; crossed: several equilibria in some worlds");
            if !others.is_empty() {
                subtitle += &format!("; shares added over {}", others.join(", "));
            }
            (format!("{}: {what} of {players}", csv.sweep_name()), Some(subtitle))
        }
        (Some(b), _, _) => {
            let objective = b.objective.as_ref().map_or(String::new(), |o| format!(" ({o})"));
            let mut subtitle = "per group, the value that is best in the most worlds".to_string();
            if !others.is_empty() {
                subtitle += &format!(", shares added over {}", others.join(", "));
            }
            (format!("{}: best {}{objective}", csv.sweep_name(), b.axis), Some(subtitle))
        }
        _ => {
            let what = match z {
                Column::Delta(b, r) => format!("{} = {} - {}", args.z, csv.column_name(b), csv.column_name(r)),
                _ => args.z.clone(),
            };
            let subtitle = (!others.is_empty()).then(|| format!("{} over the groups of {}", args.agg.name(), others.join(", ")));
            (format!("{}: {what}", csv.sweep_name()), subtitle)
        }
    };
    let figure = Figure {
        exit_month: false,
        title,
        subtitle,
        z_title: if others.is_empty() { args.z.clone() } else { format!("{} ({})", args.z, args.agg.name()) },
        x,
        second,
        heatmap: args.y.is_some(),
        values,
        categories: match (best, csv.game().filter(|_| game.is_some())) {
            (_, Some(g)) => Some((g.players.iter().map(|p| p.split('.').nth(1).unwrap_or(p)).collect::<Vec<_>>().join("_"), game_labels)),
            (Some(b), None) => Some((b.axis.rsplit('.').next().unwrap_or(&b.axis).to_string(), b.labels.clone())),
            (None, None) => None,
        },
        marks,
    };
    write_image(&path, svg, &figure, args.width, args.height)?;
    if let Some(cells) = &args.cells {
        write_cells(cells, args, &figure)?;
    }
    let kind = match (&figure.categories, figure.heatmap) {
        (Some(_), _) => "categorical heatmap",
        (None, true) => "heatmap",
        (None, false) => "line plot",
    };
    writeln!(out, "wrote {} ({kind} of {} over {} groups)", path.display(), args.z, csv.rows().len())?;
    Ok(())
}

/// The image to write (`--out` or the default) and whether it is SVG.
fn image_path(args: &PlotArgs) -> Result<(PathBuf, bool), InputError> {
    let path = match &args.out {
        Some(p) => p.clone(),
        None => default_path(args),
    };
    match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
        Some("svg") => Ok((path, true)),
        Some("png") => Ok((path, false)),
        _ => Err(InputError(format!("--out: {} must end in .png or .svg", path.display()))),
    }
}

/// Draws `figure` and writes it to `path` as SVG or PNG.
fn write_image(path: &std::path::Path, svg: bool, figure: &Figure, w: u32, h: u32) -> anyhow::Result<()> {
    let bytes = if svg {
        let mut text = String::new();
        draw(SVGBackend::with_string(&mut text, (w, h)).into_drawing_area(), figure)?;
        text.into_bytes()
    } else {
        let mut rgb = vec![0; w as usize * h as usize * 3];
        draw(TextBitmap::new(&mut rgb, (w, h)).into_drawing_area(), figure)?;
        encode_png(&rgb, w, h)?
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| InputError(format!("cannot create {}: {e}", dir.display())))?;
    }
    std::fs::write(path, bytes).map_err(|e| InputError(format!("cannot write {}: {e}", path.display())))?;
    Ok(())
}

/// `--cells`: one row per cell drawn, `<x>,[<y or by>,]<z>`: the axis values
/// (`never` as -1, a bin's centre for a binned axis) and the value shown (a
/// category's label for a categorical heatmap; empty where no row had a value;
/// for an exit month, -1 where the firm survived in every row of the cell).
fn write_cells(path: &std::path::Path, args: &PlotArgs, figure: &Figure) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| InputError(format!("cannot create {}: {e}", dir.display())))?;
    }
    let mut w = csv::Writer::from_path(path).map_err(|e| InputError(format!("--cells: cannot write {}: {e}", path.display())))?;
    let mut header = vec![figure.x.scale.name.clone()];
    header.extend(figure.second.as_ref().map(|s| s.scale.name.clone()));
    header.push(args.z.clone());
    if figure.marks.is_some() {
        header.push("nash.many".into());
    }
    w.write_record(&header)?;
    let number = crate::reduce::output::number;
    for (i, column) in figure.values.iter().enumerate() {
        for (j, &v) in column.iter().enumerate() {
            let mut record = vec![number(figure.x.scale.value(i))];
            record.extend(figure.second.as_ref().map(|s| number(s.scale.value(j))));
            record.push(match (&figure.categories, v.is_nan()) {
                (_, true) => String::new(),
                (Some((_, labels)), false) => labels[v as usize].clone(),
                (None, false) => number(v),
            });
            if let Some((_, marks)) = &figure.marks {
                record.push(if marks[i][j] { "1" } else { "0" }.into());
            }
            w.write_record(&record)?;
        }
    }
    w.flush()?;
    Ok(())
}

/// A categorical heatmap: one colour per category, and a legend of every
/// category (not a colour bar).
fn draw_categories<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, figure: &Figure, layout: &Layout) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    let (title, labels) = figure.categories.as_ref().expect("a categorical figure has categories");
    let y = figure.second.as_ref().expect("a heatmap has a y axis");
    let (w, _) = area.dim_in_pixel();
    let (main, legend) = area.split_horizontally(w - layout.px(150.0));
    let mut chart = heatmap_chart(&main, figure, layout)?;
    let n_months = labels.iter().filter(|l| *l != "never" && *l != "none").count();
    let mut k_month = 0;
    let colours: Vec<RGBColor> = labels
        .iter()
        .map(|l| {
            if l == "never" {
                RGBColor(50, 50, 50)
            } else if l == "none" {
                // A game's cells without an equilibrium (or leader outcome).
                RGBColor(150, 150, 150)
            } else {
                k_month += 1;
                category_colour(k_month - 1, n_months)
            }
        })
        .collect();
    const EMPTY: RGBColor = RGBColor(215, 215, 215);
    let colour = |v: f64| if v.is_nan() { EMPTY } else { colours[v as usize] };
    let (xe, ye) = (figure.x.edges(), y.edges());
    chart.draw_series(figure.values.iter().enumerate().flat_map(|(i, column)| {
        let (xe, ye) = (&xe, &ye);
        column.iter().enumerate().map(move |(j, &v)| Rectangle::new([(xe[i], ye[j]), (xe[i + 1], ye[j + 1])], colour(v).filled()))
    }))?;
    // A cross over each marked cell, inset from its edges.
    let mark_style = WHITE.stroke_width(layout.px(2.0).max(1));
    if let Some((_, marks)) = &figure.marks {
        for (i, column) in marks.iter().enumerate() {
            for (j, _) in column.iter().enumerate().filter(|(_, m)| **m) {
                let inset = |a: f64, b: f64| (a + (b - a) * 0.25, b - (b - a) * 0.25);
                let (x0, x1) = inset(xe[i], xe[i + 1]);
                let (y0, y1) = inset(ye[j], ye[j + 1]);
                chart.draw_series([
                    PathElement::new(vec![(x0, y0), (x1, y1)], mark_style),
                    PathElement::new(vec![(x0, y1), (x1, y0)], mark_style),
                ])?;
            }
        }
    }

    let frame = Frame::new(layout);
    let line_h = layout.px(22.0) as i32;
    let (x0, mut ty) = (layout.px(12.0) as i32, frame.top as i32 + line_h / 2);
    legend.draw(&Text::new(title.clone(), (x0, ty), layout.font(13.0)))?;
    let side = layout.px(14.0) as i32;
    let empty = figure.values.iter().flatten().any(|v| v.is_nan());
    let entries = labels.iter().zip(&colours).map(|(l, &c)| (l.clone(), c)).chain(empty.then(|| ("no worlds".to_string(), EMPTY)));
    for (label, c) in entries {
        ty += line_h;
        legend.draw(&Rectangle::new([(x0, ty), (x0 + side, ty + side)], c.filled()))?;
        legend.draw(&Text::new(label, (x0 + side + layout.px(8.0) as i32, ty), layout.font(13.0)))?;
    }
    if let Some((meaning, _)) = figure.marks.as_ref().filter(|(_, m)| m.iter().flatten().any(|&m| m)) {
        ty += line_h;
        legend.draw(&Rectangle::new([(x0, ty), (x0 + side, ty + side)], RGBColor(120, 120, 120).filled()))?;
        legend.draw(&PathElement::new(vec![(x0 + 2, ty + 2), (x0 + side - 2, ty + side - 2)], mark_style))?;
        legend.draw(&PathElement::new(vec![(x0 + 2, ty + side - 2), (x0 + side - 2, ty + 2)], mark_style))?;
        legend.draw(&Text::new(meaning.clone(), (x0 + side + layout.px(8.0) as i32, ty), layout.font(11.0)))?;
    }
    Ok(())
}

/// Tableau's ten colours, in its order; index [`TABLEAU_GREY`] is its grey.
const TABLEAU: [(u8, u8, u8); 10] = [
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
];
const TABLEAU_GREY: usize = 7;

/// Colour of category `k` of `n` (ordered values of an axis, `never` aside):
/// Tableau's nine colours other than its grey (left to `never`) when they
/// suffice, else evenly spaced hues.
fn category_colour(k: usize, n: usize) -> RGBColor {
    if n < TABLEAU.len() {
        let (r, g, b) = TABLEAU[if k < TABLEAU_GREY { k } else { k + 1 }];
        RGBColor(r, g, b)
    } else {
        let c = HSLColor(k as f64 / n as f64, 0.65, 0.5).to_backend_color();
        RGBColor(c.rgb.0, c.rgb.1, c.rgb.2)
    }
}

/// Colour of line `j` of `n`: the ten Tableau colours when they suffice,
/// else an ordered viridis ramp (values of an axis are ordered, too).
fn line_colour(j: usize, n: usize) -> RGBColor {
    if n <= TABLEAU.len() {
        let (r, g, b) = TABLEAU[j];
        RGBColor(r, g, b)
    } else {
        // Stop short of viridis' pale yellow end, which is hard to see on white.
        ViridisRGB::get_color_normalized(j as f32, 0.0, n as f32 / 0.85)
    }
}

/// The smallest and largest finite value, widened when they are equal so that
/// a scale can be drawn; (0, 1) when there is none.
fn finite_range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values.filter(|v| v.is_finite()).fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if lo > hi {
        (0.0, 1.0)
    } else if lo == hi {
        let pad = if lo == 0.0 { 1.0 } else { lo.abs() * 0.01 };
        (lo - pad, hi + pad)
    } else {
        (lo, hi)
    }
}

/// Whether `z` is a firm's exit month (-1 when the firm survived).
fn is_exit_month(z: &str) -> bool {
    z.starts_with("exit_month.")
}

/// An 8-bit RGB image as PNG bytes.
pub(super) fn encode_png(rgb: &[u8], width: u32, height: u32) -> anyhow::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    let mut encoder = png::Encoder::new(&mut bytes, width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header()?;
    writer.write_image_data(rgb)?;
    writer.finish()?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_even_and_odd_counts() {
        let mut c = Cell::default();
        for v in [3.0, 1.0, 2.0] {
            c.add(v, Agg::Median);
        }
        assert_eq!(c.value(Agg::Median), 2.0);
        c.add(10.0, Agg::Median);
        assert_eq!(c.value(Agg::Median), 2.5);
        assert_eq!(c.value(Agg::Mean), 4.0);
        assert!(Cell::default().value(Agg::Max).is_nan());
    }

    #[test]
    fn flat_ranges_are_widened() {
        assert_eq!(finite_range([2.0, f64::NAN, 2.0].into_iter()), (1.98, 2.02));
        assert_eq!(finite_range([f64::NAN].into_iter()), (0.0, 1.0));
        assert_eq!(finite_range([-1.0, 3.0].into_iter()), (-1.0, 3.0));
    }
}
