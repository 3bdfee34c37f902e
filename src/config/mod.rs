//! Config files (TOML, version 1) in two stages: the text is parsed into a tree
//! that keeps positions ([`tree`]), then checked key by key into a [`Plan`].
//! Every problem becomes one [`ConfigError`] naming the file, line, column and key.

pub mod error;
mod reduce;
mod tree;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

pub use error::ConfigError;
use error::{Locator, suggest};
use tree::{Entry, Node, Span, Spanned};

use crate::design::{SALTELLI_MAX_AXES, SOBOL_DIMENSIONS, SOBOL_MAX_SAMPLES};
use crate::model::params::{self, DEFAULT_FIRM_NAMES, DEFAULT_SEGMENT_NAMES, Group, Kind, ParamSpec};
use crate::model::scaling::MIN_LN_C6;
use crate::model::{MAX_FIRMS, MAX_SEGMENTS, NEVER, Scenario};
use crate::output::OutputFormat;
use crate::reduce::ReducePlan;
use crate::sweep::{Axis, AxisValues, Design, MAX_ROWS, Param, Plan};

/// The only config version this moatsweep reads.
pub const VERSION: i64 = 1;
/// Segment weights must sum to 1 within this.
pub const WEIGHT_SUM_TOL: f64 = 1e-9;
/// The market in the last month may not exceed this (Mtok), so that f32 stays finite.
pub const MAX_MARKET: f64 = 1e30;
/// No generation's yearly training spend may exceed this ($), so that spends, flows
/// and cash stay finite in f32 (about 3.4e38) over any horizon.
pub const MAX_SPEND: f64 = 1e30;

const ROOT_KEYS: &[&str] = &["version", "sweep", "model", "scaling", "segment", "firm", "axes", "output", "reduce"];
const SWEEP_KEYS: &[&str] = &["name", "design", "samples", "seed", "second_order", "trajectories", "levels", "list"];
const DESIGNS: &[&str] = &["grid", "random", "lhs", "sobol", "saltelli", "morris", "list"];
/// The designs that take each key of `[sweep]` besides name and design.
const DESIGN_KEYS: &[(&str, &[&str])] = &[
    ("samples", &["random", "lhs", "sobol", "saltelli"]),
    ("seed", &["random", "lhs", "sobol", "saltelli", "morris"]),
    ("second_order", &["saltelli"]),
    ("trajectories", &["morris"]),
    ("levels", &["morris"]),
    ("list", &["list"]),
];
const OUTPUT_KEYS: &[&str] = &["path", "format"];
const GRID_AXIS_KEYS: &[&str] = &["values", "range", "logspace", "steps"];
const SAMPLED_AXIS_KEYS: &[&str] = &["values", "uniform", "loguniform", "integers"];
const AXIS_KEYS: &[&str] = &["values", "range", "logspace", "steps", "uniform", "loguniform", "integers"];

/// A config read from disk and checked.
pub struct Loaded {
    pub plan: Plan,
    /// `[reduce]`: statistics per group computed during the run (`crate::reduce`).
    pub reduce: Option<ReducePlan>,
    /// `[output] path`: where the rows go.
    pub output: PathBuf,
    /// `[output] format`: CSV or Parquet.
    pub format: OutputFormat,
    /// SHA-256 of the file's bytes, hex.
    pub sha256: String,
}

/// A config checked: the sweep, and what the config says of its run.
pub struct Parsed {
    pub plan: Plan,
    pub reduce: Option<ReducePlan>,
    pub output: PathBuf,
    pub format: OutputFormat,
}

/// Reads and checks a config file.
pub fn load(path: &Path) -> Result<Loaded, ConfigError> {
    let file = path.display().to_string();
    let bytes = read_limited(path, MAX_CONFIG_BYTES, "config").map_err(|message| ConfigError {
        file: file.clone(),
        pos: None,
        key: None,
        message,
    })?;
    let text = String::from_utf8(bytes.clone()).map_err(|e| ConfigError {
        file: file.clone(),
        pos: None,
        key: None,
        message: format!("the config is not UTF-8 text: {e}"),
    })?;
    let default_name = path.file_stem().map(|s| s.to_string_lossy().into_owned());
    let dir = path.parent().unwrap_or(Path::new(""));
    let Parsed { plan, reduce, output, format } = parse_config(&file, &text, default_name.as_deref(), dir)?;
    // The hash identifies the sweep: the TOML's bytes and, for a list design, the list's.
    let mut hash = Sha256::new();
    hash.update(&bytes);
    if let Design::List { sha256, .. } = &plan.design {
        hash.update(sha256.as_bytes());
    }
    Ok(Loaded { plan, reduce, output, format, sha256: hex(&hash.finalize()) })
}

/// The largest config file read (1 MiB): the shipped ones are a few KiB, and a
/// larger one is refused before it is parsed.
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// The largest `[sweep] list` CSV read (1 GiB).
pub const MAX_LIST_BYTES: u64 = 1 << 30;

/// Reads `path`, the `what` of a message, whole: it must be a regular file (not a
/// directory, a device such as /dev/zero or a FIFO, which would never end or
/// block) of at most `limit` bytes, checked before anything is allocated; the
/// read itself stops at `limit + 1` bytes, should the file grow meanwhile.
pub fn read_limited(path: &Path, limit: u64, what: &str) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read the {what}: {e}"))?;
    if !meta.is_file() {
        return Err(format!("cannot read the {what}: it is {}, not a regular file", file_kind(&meta)));
    }
    if meta.len() > limit {
        return Err(format!("the {what} is {} bytes, more than the limit of {limit} bytes ({})", meta.len(), mib(limit)));
    }
    let file = std::fs::File::open(path).map_err(|e| format!("cannot read the {what}: {e}"))?;
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(limit + 1).read_to_end(&mut bytes).map_err(|e| format!("cannot read the {what}: {e}"))?;
    if bytes.len() as u64 > limit {
        return Err(format!("the {what} grew past the limit of {limit} bytes ({}) while it was read", mib(limit)));
    }
    Ok(bytes)
}

fn mib(bytes: u64) -> String {
    match bytes >> 20 {
        n if n >= 1024 && n % 1024 == 0 => format!("{} GiB", n / 1024),
        n => format!("{n} MiB"),
    }
}

/// What a path that is not a regular file is, for messages.
pub fn file_kind(meta: &std::fs::Metadata) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        let t = meta.file_type();
        if t.is_char_device() {
            return "a character device";
        }
        if t.is_block_device() {
            return "a block device";
        }
        if t.is_fifo() {
            return "a FIFO";
        }
        if t.is_socket() {
            return "a socket";
        }
    }
    if meta.is_dir() { "a directory" } else { "not a file" }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Checks config `text` (named `file` in messages). The sweep's name defaults to
/// `default_name`; a list design's CSV is looked up relative to `dir`.
pub fn parse(file: &str, text: &str, default_name: Option<&str>, dir: &Path) -> Result<Plan, ConfigError> {
    parse_config(file, text, default_name, dir).map(|p| p.plan)
}

/// [`parse`], with the config's `[reduce]` section and `[output]`.
pub fn parse_config(file: &str, text: &str, default_name: Option<&str>, dir: &Path) -> Result<Parsed, ConfigError> {
    let loc = Locator { file, text };
    if text.starts_with('\u{feff}') {
        return Err(loc.error(
            Some(0..0),
            "",
            "the config starts with a UTF-8 byte order mark (BOM); save it as UTF-8 without one (TOML readers differ on a BOM, and the config's SHA-256 names the sweep)",
        ));
    }
    let doc = toml_edit::Document::parse(text).map_err(|e| {
        let message = e.message().trim().to_string();
        loc.error(e.span(), "", format!("TOML syntax error: {message}"))
    })?;
    let root = tree::from_table(doc.as_table());
    Checker { loc, spans: HashMap::new() }.plan(&root, default_name, dir)
}

/// `[sweep]` as written: name, design, and the design's keys with their entries.
#[derive(Default)]
struct SweepSection<'t> {
    name: String,
    design: &'static str,
    design_value: Span,
    design_key: Span,
    samples: Option<(u64, &'t Entry)>,
    seed: Option<(u64, &'t Entry)>,
    second_order: Option<(bool, &'t Entry)>,
    trajectories: Option<(u64, &'t Entry)>,
    levels: Option<(u64, &'t Entry)>,
    list: Option<(String, &'t Entry)>,
}

/// Where each parameter was set, for messages about combinations of values.
type SpanMap = HashMap<(Group, &'static str, usize), Span>;

struct Checker<'a> {
    loc: Locator<'a>,
    spans: SpanMap,
}

fn entries(v: &Spanned) -> &[Entry] {
    match &v.node {
        Node::Table(e) => e,
        _ => &[],
    }
}

fn get<'t>(v: &'t Spanned, key: &str) -> Option<&'t Entry> {
    entries(v).iter().find(|e| e.key == key)
}

/// Names of firms, segments and sweeps: they appear in paths, CSV headers and file names.
fn valid_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

impl Checker<'_> {
    fn err(&self, span: &Span, key: &str, message: impl Into<String>) -> ConfigError {
        self.loc.error(span.clone(), key, message)
    }

    fn expect_table<'t>(&self, v: &'t Spanned, key: &str) -> Result<&'t [Entry], ConfigError> {
        match &v.node {
            Node::Table(e) => Ok(e),
            other => Err(self.err(&v.span, key, format!("expected a table, found {}", other.type_name()))),
        }
    }

    fn expect_str<'t>(&self, v: &'t Spanned, key: &str) -> Result<&'t str, ConfigError> {
        match &v.node {
            Node::Str(s) => Ok(s),
            other => Err(self.err(&v.span, key, format!("expected a string, found {}", other.type_name()))),
        }
    }

    fn unknown_key(&self, e: &Entry, prefix: &str, known: &[&str]) -> ConfigError {
        let key = if prefix.is_empty() { e.key.clone() } else { format!("{prefix}.{}", e.key) };
        self.err(&e.key_span, &key, format!("unknown key{}; expected one of: {}", suggest(&e.key, known.iter().copied()), known.join(", ")))
    }

    /// A finite number (TOML integer or float).
    fn number(&self, v: &Spanned, key: &str) -> Result<f64, ConfigError> {
        let x = match &v.node {
            Node::Int(i) => *i as f64,
            Node::Float(f) => *f,
            other => return Err(self.err(&v.span, key, format!("expected a number, found {}", other.type_name()))),
        };
        if !x.is_finite() {
            return Err(self.err(&v.span, key, format!("must be a finite number, found {x}")));
        }
        Ok(x)
    }

    /// A value of parameter `spec`: right type, integer where needed, inside its range.
    fn param_value(&self, spec: &ParamSpec, v: &Spanned, key: &str) -> Result<f64, ConfigError> {
        if spec.kind == Kind::Month {
            if let Node::Str(s) = &v.node {
                return if s == "never" {
                    Ok(NEVER as f64)
                } else {
                    Err(self.err(&v.span, key, format!("expected an integer month >= 0 or \"never\", found {}", error::quoted(s))))
                };
            }
            if !matches!(v.node, Node::Int(_) | Node::Float(_)) {
                return Err(self.err(&v.span, key, format!("expected an integer month >= 0 or \"never\", found {}", v.node.type_name())));
            }
        }
        let x = self.number(v, key)?;
        self.check_value(spec, x, &v.span, key)
    }

    fn check_value(&self, spec: &ParamSpec, x: f64, span: &Span, key: &str) -> Result<f64, ConfigError> {
        if spec.kind != Kind::Real && x.fract() != 0.0 {
            let what = if spec.kind == Kind::Month { "an integer month >= 0 or \"never\"" } else { "an integer" };
            return Err(self.err(span, key, format!("expected {what}, found {x}")));
        }
        if !spec.bound.contains(x) {
            let what = if spec.kind == Kind::Month { "month" } else { "value" };
            return Err(self.err(span, key, format!("{what} {x} is outside the allowed range {}", spec.bound)));
        }
        Ok(x)
    }

    /// Checks the whole config, one section after the other.
    fn plan(mut self, root: &Spanned, default_name: Option<&str>, dir: &Path) -> Result<Parsed, ConfigError> {
        for e in entries(root) {
            if !ROOT_KEYS.contains(&e.key.as_str()) {
                return Err(self.unknown_key(e, "", ROOT_KEYS));
            }
        }
        self.version(root)?;
        let sweep = self.sweep_section(root, default_name)?;
        let mut base = params::baseline();
        self.model_and_scaling(root, &mut base)?;
        let segment_names = self.entities(root, Group::Segment, &mut base)?;
        let firm_names = self.entities(root, Group::Firm, &mut base)?;
        let (design, axes) = match &sweep.list {
            Some((file, e)) if sweep.design == "list" => {
                if let Some(section) = get(root, "axes") {
                    return Err(self.err(
                        &section.key_span,
                        "axes",
                        "a list design takes its axes from the list CSV's header; remove [axes]",
                    ));
                }
                let (axes, sha256) = self.read_list(file, e, dir, &firm_names, &segment_names)?;
                (Design::List { file: file.clone(), sha256 }, axes)
            }
            _ => {
                let axes = self.axes(root, sweep.design != "grid", &firm_names, &segment_names)?;
                (self.design(root, &sweep, &axes)?, axes)
            }
        };
        let (output, format) = self.output_path(root, &sweep.name)?;
        let plan = Plan::new(sweep.name, design, base, firm_names, segment_names, axes);
        self.cross_checks(&plan)?;
        let reduce = self.reduce_section(root, &plan)?;
        Ok(Parsed { plan, reduce, output, format })
    }

    /// `version = 1`.
    fn version(&self, root: &Spanned) -> Result<(), ConfigError> {
        match get(root, "version") {
            None => Err(self.err(&Some(0..0), "version", "missing: put `version = 1` at the top of the config")),
            Some(e) => match e.value.node {
                Node::Int(VERSION) => Ok(()),
                Node::Int(v) => Err(self.err(
                    &e.value.span,
                    "version",
                    format!("unsupported config version {v}; this moatsweep reads version {VERSION}"),
                )),
                ref other => {
                    Err(self.err(&e.value.span, "version", format!("expected the integer {VERSION}, found {}", other.type_name())))
                }
            },
        }
    }

    /// `[sweep]`: the name, the design and the keys of that design (checked by [`Self::check_design_keys`]).
    fn sweep_section<'t>(&self, root: &'t Spanned, default_name: Option<&str>) -> Result<SweepSection<'t>, ConfigError> {
        let mut name = default_name.map(str::to_string);
        let mut section = SweepSection { name: String::new(), design: "grid", design_value: None, design_key: None, ..Default::default() };
        if let Some(sweep) = get(root, "sweep") {
            for e in self.expect_table(&sweep.value, "sweep")? {
                let key = format!("sweep.{}", e.key);
                match e.key.as_str() {
                    "name" => {
                        let n = self.expect_str(&e.value, "sweep.name")?;
                        if !valid_name(n) {
                            return Err(self.err(
                                &e.value.span,
                                "sweep.name",
                                format!("{} is not a valid name: use 1 to 64 letters, digits, '_' or '-'", error::quoted(n)),
                            ));
                        }
                        name = Some(n.to_string());
                    }
                    "design" => {
                        let d = self.expect_str(&e.value, "sweep.design")?;
                        let Some(known) = DESIGNS.iter().find(|k| **k == d) else {
                            return Err(self.err(
                                &e.value.span,
                                "sweep.design",
                                format!(
                                    "unknown design {}{}; expected one of: {}",
                                    error::quoted(d),
                                    suggest(d, DESIGNS.iter().copied()),
                                    DESIGNS.join(", ")
                                ),
                            ));
                        };
                        (section.design, section.design_value, section.design_key) = (known, e.value.span.clone(), e.key_span.clone());
                    }
                    "samples" => section.samples = Some((self.count(&e.value, &key, 1, MAX_ROWS)?, e)),
                    "seed" => section.seed = Some((self.count(&e.value, &key, 0, i64::MAX as u64)?, e)),
                    "list" => section.list = Some((self.expect_str(&e.value, &key)?.to_string(), e)),
                    "second_order" => match e.value.node {
                        Node::Bool(b) => section.second_order = Some((b, e)),
                        ref other => {
                            return Err(self.err(&e.value.span, &key, format!("expected true or false, found {}", other.type_name())));
                        }
                    },
                    "trajectories" => section.trajectories = Some((self.count(&e.value, &key, 1, MAX_ROWS)?, e)),
                    "levels" => section.levels = Some((self.count(&e.value, &key, 2, 1 << 20)?, e)),
                    _ => return Err(self.unknown_key(e, "sweep", SWEEP_KEYS)),
                }
            }
        }
        section.name = match name.filter(|n| valid_name(n)) {
            Some(n) => n,
            None => return Err(self.err(&None, "sweep.name", "missing: give the sweep a name of letters, digits, '_' or '-'")),
        };
        self.check_design_keys(&section)?;
        Ok(section)
    }

    /// The keys of `[sweep]` go with its design, the design has those it needs, and their values fit it.
    fn check_design_keys(&self, section: &SweepSection) -> Result<(), ConfigError> {
        let d = section.design;
        let given = [
            ("samples", section.samples.map(|s| s.1)),
            ("seed", section.seed.map(|s| s.1)),
            ("second_order", section.second_order.map(|s| s.1)),
            ("trajectories", section.trajectories.map(|s| s.1)),
            ("levels", section.levels.map(|s| s.1)),
            ("list", section.list.as_ref().map(|l| l.1)),
        ];
        for (key, entry) in given {
            let designs = DESIGN_KEYS.iter().find(|k| k.0 == key).expect("every design key is tabled").1;
            if let Some(e) = entry.filter(|_| !designs.contains(&d)) {
                let designs = designs.join(", ");
                return Err(self.err(
                    &e.key_span,
                    &format!("sweep.{key}"),
                    format!("{key} does not go with design \"{d}\" ({key} goes with {designs})"),
                ));
            }
        }
        let needs = match d {
            "random" | "lhs" | "sobol" | "saltelli" if section.samples.is_none() => Some(("samples", "samples = N")),
            "morris" if section.trajectories.is_none() => Some(("trajectories", "trajectories = R")),
            "list" if section.list.is_none() => Some(("list", "list = \"file.csv\" (relative to the config's folder)")),
            _ => None,
        };
        if let Some((key, form)) = needs {
            return Err(self.err(&section.design_value, &format!("sweep.{key}"), format!("missing: design \"{d}\" needs {form}")));
        }
        if let (Some((n, e)), "sobol" | "saltelli") = (section.samples, d) {
            if n > SOBOL_MAX_SAMPLES {
                return Err(self.err(
                    &e.value.span,
                    "sweep.samples",
                    format!("a {d} design has at most 2^32 = {SOBOL_MAX_SAMPLES} samples, found {n}"),
                ));
            }
            if d == "saltelli" && !n.is_power_of_two() {
                let (below, above) = (1u64 << n.ilog2(), 1u64 << (n.ilog2() + 1));
                return Err(self.err(
                    &e.value.span,
                    "sweep.samples",
                    format!(
                        "a saltelli design needs a power of 2 base points (Sobol points stay balanced), found {n}; use {below} or {above}"
                    ),
                ));
            }
        }
        if let Some((p, e)) = section.levels
            && p % 2 != 0
        {
            return Err(self.err(&e.value.span, "sweep.levels", format!("a morris design needs an even number of levels, found {p}")));
        }
        Ok(())
    }

    /// `[model]` and `[scaling]` into `base`.
    fn model_and_scaling(&mut self, root: &Spanned, base: &mut Scenario) -> Result<(), ConfigError> {
        for group in [Group::Model, Group::Scaling] {
            let Some(section) = get(root, group.prefix()) else { continue };
            for e in self.expect_table(&section.value, group.prefix())? {
                let key = format!("{}.{}", group.prefix(), e.key);
                let Some(spec) = params::spec(group, &e.key) else {
                    let known: Vec<&str> = params::names(group).collect();
                    return Err(self.unknown_key(e, group.prefix(), &known));
                };
                let v = self.param_value(spec, &e.value, &key)?;
                (spec.set)(base, 0, v);
                self.spans.insert((group, spec.name, 0), e.value.span.clone());
            }
        }
        Ok(())
    }

    /// `[axes]`, in file order; `sampling` for every design but grid.
    fn axes(&mut self, root: &Spanned, sampling: bool, firms: &[String], segments: &[String]) -> Result<Vec<Axis>, ConfigError> {
        let mut axes: Vec<Axis> = Vec::new();
        let Some(section) = get(root, "axes") else { return Ok(axes) };
        self.expect_table(&section.value, "axes")?;
        let mut flat = Vec::new();
        flatten_axes(&section.value, "", &mut flat);
        for (path, key_span, spec) in flat {
            let param = self.resolve(&path, &key_span, firms, segments)?;
            if axes.iter().any(|a| same_param(&a.param, &param)) {
                return Err(self.err(&key_span, &path, "this parameter already has an axis"));
            }
            let values = self.axis_values(&path, param.spec, spec, sampling)?;
            self.spans.insert((param.spec.group, param.spec.name, param.index), key_span.clone());
            axes.push(Axis { path, param, values });
        }
        Ok(axes)
    }

    /// The design of every kind but list, with its limits on axes and rows.
    fn design(&self, root: &Spanned, sweep: &SweepSection, axes: &[Axis]) -> Result<Design, ConfigError> {
        let k = axes.len();
        let axes_span = get(root, "axes").map(|e| e.key_span.clone()).unwrap_or(None);
        let too_many = |rows: u128, count: String| {
            self.err(&axes_span, "axes", format!("the sweep has {count} = {rows} scenarios, more than the limit of 2^40 = {MAX_ROWS}"))
        };
        let at_most_axes = |max: usize, why: &str| {
            self.err(&sweep.design_key, "sweep.design", format!("a {} design has at most {max} axes{why}, found {k}", sweep.design))
        };
        let samples = sweep.samples.map_or(0, |s| s.0);
        let seed = sweep.seed.map_or(0, |s| s.0);
        let design = match sweep.design {
            "grid" => {
                let rows = axes.iter().try_fold(1u128, |acc, a| acc.checked_mul(a.values.len() as u128)).unwrap_or(u128::MAX);
                if rows > MAX_ROWS as u128 {
                    return Err(too_many(rows, axes.iter().map(|a| a.values.len().to_string()).collect::<Vec<_>>().join(" x ")));
                }
                Design::Grid
            }
            "sobol" if k > SOBOL_DIMENSIONS => return Err(at_most_axes(SOBOL_DIMENSIONS, "")),
            "saltelli" if k > SALTELLI_MAX_AXES => {
                return Err(at_most_axes(SALTELLI_MAX_AXES, &format!(" (A and B take 2k of the {SOBOL_DIMENSIONS} Sobol dimensions)")));
            }
            "saltelli" | "morris" if k == 0 => {
                return Err(self.err(&sweep.design_value, "axes", format!("a {} design needs at least one axis", sweep.design)));
            }
            "random" => Design::Random { samples, seed },
            "lhs" => Design::Lhs { samples, seed },
            "sobol" => Design::Sobol { samples, seed },
            "saltelli" => Design::Saltelli { samples, seed, second_order: sweep.second_order.is_some_and(|s| s.0) },
            "morris" => {
                Design::Morris { trajectories: sweep.trajectories.map_or(0, |t| t.0), levels: sweep.levels.map_or(4, |l| l.0), seed }
            }
            other => unreachable!("design {other} is handled by the caller"),
        };
        let (blocks, what) = match design {
            Design::Saltelli { samples, .. } => (samples, "base points"),
            Design::Morris { trajectories, .. } => (trajectories, "trajectories"),
            _ => return Ok(design),
        };
        let block = design.block_rows(k) as u128;
        if blocks as u128 * block > MAX_ROWS as u128 {
            return Err(too_many(blocks as u128 * block, format!("{blocks} {what} x {block} rows")));
        }
        Ok(design)
    }

    /// `[output] path` and `format`: by default `results/<name>.csv` (`.parquet` for Parquet).
    fn output_path(&self, root: &Spanned, name: &str) -> Result<(PathBuf, OutputFormat), ConfigError> {
        let mut output = None;
        let mut format = OutputFormat::Csv;
        if let Some(section) = get(root, "output") {
            for e in self.expect_table(&section.value, "output")? {
                match e.key.as_str() {
                    "path" => {
                        let p = self.expect_str(&e.value, "output.path")?;
                        if p.is_empty() || p.ends_with('/') {
                            return Err(self.err(&e.value.span, "output.path", "expected a file path such as \"results/sweep.csv\""));
                        }
                        output = Some(PathBuf::from(p));
                    }
                    "format" => {
                        format = match self.expect_str(&e.value, "output.format")? {
                            "csv" => OutputFormat::Csv,
                            "parquet" => OutputFormat::Parquet,
                            other => {
                                return Err(self.err(
                                    &e.value.span,
                                    "output.format",
                                    format!(
                                        "unknown format {}{}; expected csv or parquet",
                                        error::quoted(other),
                                        suggest(other, ["csv", "parquet"])
                                    ),
                                ));
                            }
                        }
                    }
                    _ => return Err(self.unknown_key(e, "output", OUTPUT_KEYS)),
                }
            }
        }
        let output = output.unwrap_or_else(|| PathBuf::from("results").join(format!("{name}.{}", format.name())));
        Ok((output, format))
    }

    /// Reads `[[segment]]` or `[[firm]]` into `base`; returns the names in config order.
    fn entities(&mut self, root: &Spanned, group: Group, base: &mut Scenario) -> Result<Vec<String>, ConfigError> {
        let (max, defaults): (usize, Vec<&str>) = match group {
            Group::Segment => (MAX_SEGMENTS, DEFAULT_SEGMENT_NAMES.to_vec()),
            _ => (MAX_FIRMS, DEFAULT_FIRM_NAMES.to_vec()),
        };
        let prefix = group.prefix();
        let Some(section) = get(root, prefix) else {
            return Ok(defaults.iter().map(|s| s.to_string()).collect());
        };
        let Node::Array(items) = &section.value.node else {
            return Err(self.err(
                &section.key_span,
                prefix,
                format!("expected an array of tables written [[{prefix}]], found {}", section.value.node.type_name()),
            ));
        };
        if items.len() > max {
            return Err(self.err(&items[max].span, prefix, format!("{} {prefix}s given, at most {max} are allowed", items.len())));
        }
        if items.is_empty() {
            return Err(self.err(&section.key_span, prefix, format!("at least one {prefix} is needed")));
        }
        let specs: Vec<&ParamSpec> = params::PARAMS.iter().filter(|p| p.group == group).collect();
        let mut known: Vec<&str> = vec!["name"];
        known.extend(specs.iter().map(|p| p.name));
        let mut names: Vec<String> = Vec::new();
        for (idx, item) in items.iter().enumerate() {
            let fields = self.expect_table(item, prefix)?;
            let Some(name_entry) = fields.iter().find(|e| e.key == "name") else {
                return Err(self.err(&item.span, prefix, format!("every [[{prefix}]] needs a name")));
            };
            let name = self.expect_str(&name_entry.value, &format!("{prefix}.name"))?;
            if !valid_name(name) {
                return Err(self.err(
                    &name_entry.value.span,
                    &format!("{prefix}.name"),
                    format!("{} is not a valid name: use 1 to 64 letters, digits, '_' or '-'", error::quoted(name)),
                ));
            }
            if names.iter().any(|n| n == name) {
                return Err(self.err(&name_entry.value.span, &format!("{prefix}.name"), format!("duplicate {prefix} name \"{name}\"")));
            }
            let default = match group {
                Group::Segment => DEFAULT_SEGMENT_NAMES.iter().position(|d| *d == name),
                _ => DEFAULT_FIRM_NAMES.iter().position(|d| *d == name),
            };
            let mut given: Vec<(&ParamSpec, f64)> = Vec::new();
            for e in fields.iter().filter(|e| e.key != "name") {
                let key = format!("{prefix}.{name}.{}", e.key);
                let Some(spec) = specs.iter().find(|p| p.name == e.key) else {
                    return Err(self.unknown_key(e, &format!("{prefix}.{name}"), &known));
                };
                given.push((spec, self.param_value(spec, &e.value, &key)?));
                self.spans.insert((group, spec.name, idx), e.value.span.clone());
            }
            // A firm or segment of a default name starts from its defaults; a new one gives every field.
            match (group, default) {
                (Group::Segment, Some(d)) => base.segments[idx] = params::default_segment(d),
                (Group::Firm, Some(d)) => base.firms[idx] = params::default_firm(d),
                _ => {
                    let optional = |p: &ParamSpec| group == Group::Firm && params::NEW_FIRM_DEFAULTS.iter().any(|(n, _)| *n == p.name);
                    if let Some(missing) = specs.iter().find(|p| !optional(p) && !given.iter().any(|g| g.0.name == p.name)) {
                        return Err(self.err(
                            &item.span,
                            &format!("{prefix}.{name}.{}", missing.name),
                            format!(
                                "missing: \"{name}\" is not a default {prefix} ({}), so it must give every field: {}",
                                defaults.join(", "),
                                specs.iter().filter(|p| !optional(p)).map(|p| p.name).collect::<Vec<_>>().join(", ")
                            ),
                        ));
                    }
                }
            }
            if group == Group::Firm && default.is_none() {
                for (n, v) in params::NEW_FIRM_DEFAULTS {
                    let spec = params::spec(Group::Firm, n).expect("a firm parameter");
                    (spec.set)(base, idx, *v);
                }
            }
            for (spec, v) in given {
                (spec.set)(base, idx, v);
            }
            names.push(name.to_string());
        }
        match group {
            Group::Segment => base.n_segments = names.len(),
            _ => base.n_firms = names.len(),
        }
        Ok(names)
    }

    /// Resolves a parameter path: model.<name>, scaling.<name>, firm.<firm>.<name>, segment.<segment>.<name>.
    fn resolve(&self, path: &str, span: &Span, firms: &[String], segments: &[String]) -> Result<Param, ConfigError> {
        const FORMS: &str = "paths are model.<name>, scaling.<name>, firm.<firm>.<name> or segment.<segment>.<name>";
        let parts: Vec<&str> = path.split('.').collect();
        let group_of = |g: &str| match g {
            "model" => Some(Group::Model),
            "scaling" => Some(Group::Scaling),
            "firm" => Some(Group::Firm),
            "segment" => Some(Group::Segment),
            _ => None,
        };
        let Some(group) = group_of(parts[0]) else {
            return Err(self.err(
                span,
                path,
                format!("unknown parameter path{}; {FORMS}", suggest(parts[0], ["model", "scaling", "firm", "segment"])),
            ));
        };
        let (index, name) = match (group, parts.len()) {
            (Group::Model | Group::Scaling, 2) => (0, parts[1]),
            (Group::Firm | Group::Segment, 3) => {
                let names = if group == Group::Firm { firms } else { segments };
                let Some(i) = names.iter().position(|n| n == parts[1]) else {
                    return Err(self.err(
                        span,
                        path,
                        format!(
                            "unknown {} {}{}; the config's {}s are: {}",
                            parts[0],
                            error::quoted(parts[1]),
                            suggest(parts[1], names.iter().map(String::as_str)),
                            parts[0],
                            names.join(", ")
                        ),
                    ));
                };
                (i, parts[2])
            }
            _ => return Err(self.err(span, path, format!("malformed parameter path; {FORMS}"))),
        };
        match params::spec(group, name) {
            Some(spec) => Ok(Param { spec, index }),
            None => {
                // As for an unknown key: the nearest name if one is close, and every name.
                let known: Vec<&str> = params::names(group).collect();
                let (near, all) = (suggest(name, known.iter().copied()), known.join(", "));
                Err(self.err(span, path, format!("unknown {} parameter {}{near}; expected one of: {all}", parts[0], error::quoted(name))))
            }
        }
    }

    /// A whole number in lo..=hi.
    fn count(&self, v: &Spanned, key: &str, lo: u64, hi: u64) -> Result<u64, ConfigError> {
        match v.node {
            Node::Int(n) if n >= 0 && (lo..=hi).contains(&(n as u64)) => Ok(n as u64),
            Node::Int(n) => Err(self.err(&v.span, key, format!("must be between {lo} and {hi}, found {n}"))),
            ref other => Err(self.err(&v.span, key, format!("expected an integer, found {}", other.type_name()))),
        }
    }

    /// The two ends [lo, hi] of a range-like axis, each a valid value of `spec`.
    fn ends(&self, spec: &ParamSpec, kind: &Entry, key: &str) -> Result<[f64; 2], ConfigError> {
        let ends = match &kind.value.node {
            Node::Array(items) if items.len() == 2 => [self.param_value(spec, &items[0], key)?, self.param_value(spec, &items[1], key)?],
            _ => return Err(self.err(&kind.value.span, key, "expected two numbers [lo, hi]")),
        };
        if spec.kind == Kind::Month && ends.contains(&(NEVER as f64)) {
            return Err(self.err(&kind.value.span, key, "\"never\" cannot end a range; list it in values = [...]"));
        }
        Ok(ends)
    }

    /// The values of one axis; `sampling` for every design but grid (and list).
    fn axis_values(&self, path: &str, spec: &'static ParamSpec, v: &Spanned, sampling: bool) -> Result<AxisValues, ConfigError> {
        if spec.is(params::segment::weight()) {
            return Err(self.err(&v.span, path, "segment weights must sum to 1 in every scenario, so a weight cannot be an axis"));
        }
        let (allowed, forms) = if sampling {
            (SAMPLED_AXIS_KEYS, "{ values = [...] }, { uniform = [lo, hi] }, { loguniform = [lo, hi] } or { integers = [lo, hi] }")
        } else {
            (GRID_AXIS_KEYS, "{ values = [...] }, { range = [lo, hi], steps = N } or { logspace = [lo, hi], steps = N }")
        };
        let fields = match &v.node {
            Node::Table(f) => f,
            other => return Err(self.err(&v.span, path, format!("expected an axis such as {forms}, found {}", other.type_name()))),
        };
        for e in fields {
            if AXIS_KEYS.contains(&e.key.as_str()) && !allowed.contains(&e.key.as_str()) {
                let msg = if sampling { "sampling designs (random, lhs, sobol, saltelli, morris) take" } else { "a grid design takes" };
                return Err(self.err(
                    &e.key_span,
                    &format!("{path}.{}", e.key),
                    format!("{} does not go with this design: {msg} {forms}", e.key),
                ));
            }
            if !allowed.contains(&e.key.as_str()) {
                return Err(self.unknown_key(e, path, allowed));
            }
        }
        let kinds: Vec<&Entry> = fields.iter().filter(|e| e.key != "steps").collect();
        let steps = fields.iter().find(|e| e.key == "steps");
        let [kind] = kinds.as_slice() else {
            return Err(self.err(
                &v.span,
                path,
                format!(
                    "an axis needs exactly one of {}",
                    allowed.iter().filter(|k| **k != "steps").copied().collect::<Vec<_>>().join(", ")
                ),
            ));
        };
        let key = format!("{path}.{}", kind.key);
        if kind.key == "values" {
            if let Some(s) = steps {
                return Err(self.err(&s.key_span, &format!("{path}.steps"), "steps goes with range or logspace, not with values"));
            }
            let Node::Array(items) = &kind.value.node else {
                return Err(self.err(
                    &kind.value.span,
                    &key,
                    format!("expected an array of values, found {}", kind.value.node.type_name()),
                ));
            };
            if items.is_empty() {
                return Err(self.err(&kind.value.span, &key, "an axis needs at least one value"));
            }
            let values = items.iter().map(|x| self.param_value(spec, x, &key)).collect::<Result<Vec<_>, _>>()?;
            return Ok(AxisValues::List(values));
        }
        let [lo, hi] = self.ends(spec, kind, &key)?;
        if sampling {
            if lo > hi {
                return Err(self.err(&kind.value.span, &key, format!("expected lo <= hi, found [{lo}, {hi}]")));
            }
            return match (kind.key.as_str(), spec.kind) {
                ("integers", Kind::Real) => {
                    Err(self.err(&kind.key_span, &key, "integers is for integer parameters; use uniform or loguniform"))
                }
                ("integers", _) => Ok(AxisValues::Integers { lo, hi }),
                (k, Kind::Integer | Kind::Month) => {
                    Err(self.err(&kind.key_span, &key, format!("{k} is for real-valued parameters; use integers = [lo, hi]")))
                }
                ("uniform", _) => Ok(AxisValues::Uniform { lo, hi }),
                _ if lo <= 0.0 => Err(self.err(&kind.value.span, &key, "loguniform needs both ends > 0")),
                _ => Ok(AxisValues::LogUniform { lo, hi }),
            };
        }
        let Some(steps) = steps else {
            return Err(self.err(&kind.key_span, &format!("{path}.steps"), format!("missing: {} needs steps = N (at least 2)", kind.key)));
        };
        let n = self.count(&steps.value, &format!("{path}.steps"), 2, MAX_ROWS)?;
        let values = if kind.key == "range" {
            AxisValues::Range { lo, hi, steps: n }
        } else {
            if spec.kind != Kind::Real {
                return Err(self.err(
                    &kind.key_span,
                    &key,
                    "logspace is for real-valued parameters; list integers in values = [...] or use range",
                ));
            }
            if lo <= 0.0 || hi <= 0.0 {
                return Err(self.err(&kind.value.span, &key, "logspace needs both ends > 0"));
            }
            AxisValues::Logspace { lo, hi, steps: n }
        };
        if spec.kind == Kind::Real {
            return Ok(values);
        }
        // Integer parameters: every value of the range must be a whole number.
        let mut ints = Vec::with_capacity(n as usize);
        for i in 0..n {
            let x = values.value(i);
            if (x - x.round()).abs() > 1e-9 * x.abs().max(1.0) {
                return Err(self.err(&kind.value.span, &key, format!("this range gives the non-integer value {x} for an integer parameter; choose steps so that (hi - lo) / (steps - 1) is whole")));
            }
            ints.push(x.round());
        }
        Ok(AxisValues::List(ints))
    }

    /// Reads a list design's CSV: a header of parameter paths, one scenario a row.
    fn read_list(
        &self,
        file: &str,
        e: &Entry,
        dir: &Path,
        firms: &[String],
        segments: &[String],
    ) -> Result<(Vec<Axis>, String), ConfigError> {
        let path = dir.join(file);
        let shown = path.display().to_string();
        let bytes =
            read_limited(&path, MAX_LIST_BYTES, &format!("list {shown}")).map_err(|err| self.err(&e.value.span, "sweep.list", err))?;
        let text =
            String::from_utf8(bytes).map_err(|_| self.err(&e.value.span, "sweep.list", format!("the list {shown} is not UTF-8 text")))?;
        let sha256 = hex(&Sha256::digest(text.as_bytes()));
        let csv = Checker { loc: Locator { file: &shown, text: &text }, spans: HashMap::new() };
        let mut reader = ::csv::ReaderBuilder::new().from_reader(text.as_bytes());
        let header = reader.headers().map_err(|err| csv.err(&Some(0..0), "", format!("cannot read the header: {err}")))?.clone();
        let header_at = field_starts(&text, 0);
        let header_span = |i: usize| header_at.get(i).map(|&at| at..at);
        let mut axes: Vec<Axis> = Vec::new();
        for (i, name) in header.iter().map(str::trim).enumerate() {
            let param = csv.resolve(name, &header_span(i), firms, segments)?;
            if param.spec.is(params::segment::weight()) {
                return Err(csv.err(
                    &header_span(i),
                    name,
                    "segment weights must sum to 1 in every scenario, so a weight cannot be a list column",
                ));
            }
            if axes.iter().any(|a| same_param(&a.param, &param)) {
                return Err(csv.err(&header_span(i), name, "this parameter has two columns"));
            }
            axes.push(Axis { path: name.to_string(), param, values: AxisValues::List(Vec::new()) });
        }
        if axes.is_empty() {
            return Err(csv.err(&Some(0..0), "", "the header names no parameter paths"));
        }
        for record in reader.records() {
            let record = record.map_err(|err| {
                let at = err.position().map(|p| p.byte() as usize..p.byte() as usize);
                csv.err(&at, "", format!("malformed row: {err}"))
            })?;
            let at = field_starts(&text, record.position().map_or(0, |p| p.byte() as usize));
            for (i, cell) in record.iter().map(str::trim).enumerate() {
                let span = at.get(i).map(|&a| a..a);
                let node = match cell.parse::<f64>() {
                    Ok(x) => Node::Float(x),
                    Err(_) => Node::Str(cell.to_string()),
                };
                let x = csv.param_value(axes[i].param.spec, &Spanned { node, span: span.clone(), inline: false }, &axes[i].path)?;
                let AxisValues::List(column) = &mut axes[i].values else { unreachable!("list columns are lists") };
                column.push(x);
            }
        }
        if axes[0].values.is_empty() {
            return Err(csv.err(&Some(0..0), "", "the list has a header but no rows"));
        }
        Ok((axes, sha256))
    }

    fn span_of(&self, spec: &ParamSpec, index: usize) -> Span {
        self.spans.get(&(spec.group, spec.name, index)).cloned().flatten()
    }

    /// Checks that involve several parameters, over the extremes of every axis.
    fn cross_checks(&self, plan: &Plan) -> Result<(), ConfigError> {
        let extent = |spec: &'static ParamSpec, index: usize| -> (f64, f64) {
            let axis = plan.axes.iter().find(|a| same_param(&a.param, &Param { spec, index }));
            match axis {
                Some(a) => a.values.extent(),
                None => {
                    let v = (spec.get)(&plan.base, index);
                    (v, v)
                }
            }
        };
        // Segment weights sum to 1.
        let sum: f64 = plan.base.segments().iter().map(|s| s.weight).sum();
        if (sum - 1.0).abs() > WEIGHT_SUM_TOL {
            let weights: Vec<String> =
                plan.segment_names.iter().zip(plan.base.segments()).map(|(n, s)| format!("{n} {}", s.weight)).collect();
            return Err(self.err(
                &self.span_of(params::segment::weight(), 0),
                "segment.weight",
                format!("segment weights must sum to 1 (within 1e-9), but {} sum to {sum}", weights.join(" + ")),
            ));
        }
        // Compute large enough for the scaling law: C/6 >= 1e12 FLOP.
        let (_, max_price) = extent(params::model::train_usd_per_flop(), 0);
        for (i, firm) in plan.firm_names.iter().enumerate() {
            let (min_spend, _) = extent(params::firm::train_spend(), i);
            let ln_c6 = (min_spend / max_price / 6.0).ln();
            if ln_c6 < MIN_LN_C6 {
                let need = 6e12 * max_price;
                return Err(self.err(
                    &self.span_of(params::firm::train_spend(), i),
                    &format!("firm.{firm}.train_spend"),
                    format!("training compute C/6 = train_spend / train_usd_per_flop / 6 = {:e} FLOP is below the scaling law's minimum of 1e12 FLOP (docs/model.md section 1); train_spend must be at least {need:e} at train_usd_per_flop = {max_price:e}", ln_c6.exp()),
                ));
            }
        }
        // loss_ref above the irreducible loss E.
        let (_, max_e) = extent(params::scaling::e(), 0);
        let (min_ref, _) = extent(params::scaling::loss_ref(), 0);
        if min_ref <= max_e {
            return Err(self.err(
                &self.span_of(params::scaling::loss_ref(), 0),
                "scaling.loss_ref",
                format!("loss_ref ({min_ref}) must exceed the irreducible loss E ({max_e}) (docs/model.md section 1)"),
            ));
        }
        // The market stays within f32 range over the horizon.
        let (_, m0) = extent(params::model::market0(), 0);
        let (_, g) = extent(params::model::market_growth(), 0);
        let (_, months) = extent(params::model::months(), 0);
        let ln_last = m0.ln() + ((months - 1.0) * g.ln_1p()).max(0.0);
        if ln_last > MAX_MARKET.ln() {
            return Err(self.err(
                &self.span_of(params::model::market_growth(), 0),
                "model.market_growth",
                format!("market0 (1 + market_growth)^(months - 1) reaches {} Mtok, above the limit of {MAX_MARKET:e}: lower market_growth, market0 or months", if ln_last < 709.0 { format!("{:e}", ln_last.exp()) } else { "more than 1e308".into() }),
            ));
        }
        // Later generations (docs/model.md section 2) stay in the scaling law's range
        // and in f32's: spend_t = train_spend (1 + spend_growth)^(t/12) at every
        // generation month t that can occur.
        let (min_g, max_g) = extent(params::model::generation_months(), 0);
        let (_, max_months) = extent(params::model::months(), 0);
        // The latest month at which a generation can be trained, over every G allowed.
        let latest =
            (min_g.max(1.0) as u64..=max_g as u64).filter(|_| max_g >= 1.0).map(|g| (max_months as u64 - 1) / g * g).max().unwrap_or(0);
        if latest > 0 {
            let years = latest as f64 / 12.0;
            for (i, firm) in plan.firm_names.iter().enumerate() {
                let (min_spend, max_spend) = extent(params::firm::train_spend(), i);
                let (min_growth, max_growth) = extent(params::firm::spend_growth(), i);
                // Blame what the config set: the growth, else the spend, else the horizon.
                let span = self
                    .span_of(params::firm::spend_growth(), i)
                    .or_else(|| self.span_of(params::firm::train_spend(), i))
                    .or_else(|| self.span_of(params::model::months(), 0))
                    .or_else(|| self.span_of(params::model::generation_months(), 0));
                let key = format!("firm.{firm}.spend_growth");
                if min_growth < 0.0 {
                    let spend = min_spend * (years * min_growth.ln_1p()).exp();
                    let c6 = spend / max_price / 6.0;
                    if c6.ln() < MIN_LN_C6 {
                        return Err(self.err(
                            &span,
                            &key,
                            format!(
                                "the generation trained at month {latest} would spend {spend:e} $/year (train_spend {min_spend:e} shrinking by spend_growth {min_growth} a year), so C/6 = {c6:e} FLOP, below the scaling law's minimum of 1e12 FLOP (docs/model.md section 1)"
                            ),
                        ));
                    }
                }
                let spend = max_spend * (years * max_growth.ln_1p()).exp();
                if max_growth > 0.0 && !(spend <= MAX_SPEND) {
                    return Err(self.err(
                        &span,
                        &key,
                        format!(
                            "the generation trained at month {latest} would spend {spend:e} $/year (train_spend {max_spend:e} growing by spend_growth {max_growth} a year), above the limit of {MAX_SPEND:e} that keeps money within f32's range on the GPU"
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Byte offsets of the fields of the CSV line starting at `start` (after leading
/// blanks; commas inside double quotes do not split).
fn field_starts(text: &str, start: usize) -> Vec<usize> {
    let line = text[start..].split('\n').next().unwrap_or("");
    let skip = |at: usize| at + line[at..].len() - line[at..].trim_start_matches([' ', '\t']).len();
    let mut starts = vec![start + skip(0)];
    let mut quoted = false;
    for (i, c) in line.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => starts.push(start + skip(i + 1)),
            _ => {}
        }
    }
    starts
}

fn same_param(a: &Param, b: &Param) -> bool {
    a.spec.is(b.spec) && a.index == b.index
}

/// Checks that involve several parameters (weights, compute, loss_ref, market size)
/// on a plan built outside a config file, e.g. a scenario with `--set` overrides.
pub fn check_plan(plan: &Plan, file: &str) -> Result<(), ConfigError> {
    Checker { loc: Locator { file, text: "" }, spans: HashMap::new() }.cross_checks(plan)
}

/// Flattens `[axes]`: quoted keys ("firm.open.funding"), dotted keys
/// (firm.open.funding) and sub-tables (`[axes.firm.open]`) alike. A table is an
/// axis when it is inline or holds an axis key; any other table nests paths.
fn flatten_axes<'t>(v: &'t Spanned, prefix: &str, out: &mut Vec<(String, Span, &'t Spanned)>) {
    for e in entries(v) {
        let path = if prefix.is_empty() { e.key.clone() } else { format!("{prefix}.{}", e.key) };
        let nests = matches!(&e.value.node, Node::Table(f) if !e.value.inline && !f.iter().any(|x| AXIS_KEYS.contains(&x.key.as_str())));
        if !nests {
            out.push((path, e.key_span.clone(), &e.value));
        } else {
            flatten_axes(&e.value, &path, out);
        }
    }
}

/// Applies `--set PATH=VALUE` overrides (the `scenario` command) to a scenario of `plan`.
pub fn apply_set(plan: &Plan, sc: &mut Scenario, assignment: &str) -> Result<(), ConfigError> {
    let text = format!("{assignment}\n");
    let loc = Locator { file: "--set", text: &text };
    let Some((path, value)) = assignment.split_once('=') else {
        return Err(loc.error(None, assignment, "expected PATH=VALUE, e.g. firm.open.release_month=12"));
    };
    let (path, value) = (path.trim(), value.trim());
    let checker = Checker { loc, spans: HashMap::new() };
    let param = checker.resolve(path, &None, &plan.firm_names, &plan.segment_names)?;
    if param.spec.is(params::segment::weight()) {
        return Err(checker.err(&None, path, "segment weights must sum to 1, so one weight cannot be set alone"));
    }
    let node = match value {
        "never" => Node::Str("never".into()),
        v => match v.parse::<f64>() {
            Ok(x) => Node::Float(x),
            Err(_) => Node::Str(v.into()),
        },
    };
    let x = checker.param_value(param.spec, &Spanned { node, span: None, inline: false }, path)?;
    param.set(sc, x);
    Ok(())
}
