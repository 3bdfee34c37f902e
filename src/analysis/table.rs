//! A sweep CSV read whole into columns, for `sensitivity` and `discover`: the
//! manifest says which columns are axes (its config's `axes`) and which are
//! outputs (the rest of its `columns`), and the file is parsed once, in
//! parallel blocks of lines, keeping only the columns asked for. A Parquet sweep
//! is read column by column, row group by row group, into the same values (see
//! [`super`]), its manifest the one beside it or else the footer's.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::Deserialize;

use crate::InputError;
use crate::config::error::suggest;
use crate::output::manifest_path;
use crate::output::parquet::{Data, ParquetFile, is_parquet};

/// Bytes read per parallel batch.
const BATCH_BYTES: usize = 32 << 20;

/// The fields of `<csv>.manifest.json` that the analyses read.
#[derive(Deserialize, Debug)]
pub struct Manifest {
    pub columns: Vec<String>,
    pub scenarios: u64,
    pub rows: [u64; 2],
    pub rows_written: u64,
    pub config: ManifestConfig,
}

#[derive(Deserialize, Debug)]
pub struct ManifestConfig {
    pub sweep: serde_json::Value,
    #[serde(default)]
    pub axes: Vec<serde_json::Value>,
}

impl Manifest {
    /// The sweep's design (`grid`, `lhs`, `saltelli`, ...).
    pub fn design(&self) -> &str {
        self.config.sweep["design"].as_str().unwrap_or("grid")
    }

    /// A whole number under `[sweep]`, e.g. `samples`.
    pub fn sweep_u64(&self, key: &str) -> Option<u64> {
        self.config.sweep[key].as_u64()
    }

    /// The axis paths, in config order.
    pub fn axes(&self) -> Vec<String> {
        self.config.axes.iter().filter_map(|a| a["path"].as_str().map(str::to_string)).collect()
    }
}

/// A sweep CSV's header, with its manifest when there is one.
pub struct SweepTable {
    pub path: PathBuf,
    pub header: Vec<String>,
    pub manifest: Option<Manifest>,
    /// The Parquet file, when the sweep is one (else it is a CSV).
    parquet: Option<ParquetFile>,
}

impl SweepTable {
    /// Reads the header of `path` and the manifest beside it (if any, and if it describes this header).
    pub fn open(path: &Path) -> Result<SweepTable, InputError> {
        let parquet = if is_parquet(path) { Some(super::open_parquet(path)?) } else { None };
        let header: Vec<String> = match &parquet {
            Some(f) => f.names(),
            None => {
                let file = File::open(path).map_err(|e| InputError(format!("cannot read {}: {e}", path.display())))?;
                csv::Reader::from_reader(file)
                    .headers()
                    .map_err(|e| InputError(format!("{}: {e}", path.display())))?
                    .iter()
                    .map(str::to_string)
                    .collect()
            }
        };
        if header.first().map(String::as_str) != Some("scenario") {
            return Err(InputError(format!("{} is not a moatsweep CSV: its first column should be \"scenario\"", path.display())));
        }
        let mpath = manifest_path(path);
        let manifest = match std::fs::read(&mpath) {
            Err(_) => match parquet.as_ref().and_then(super::footer_manifest) {
                None => None,
                Some(m) => {
                    let m: Manifest = serde_json::from_value(m).map_err(|e| {
                        InputError(format!("{}: its footer's moatsweep.manifest is not a moatsweep manifest: {e}", path.display()))
                    })?;
                    if m.columns != header {
                        return Err(InputError(format!("{}: its footer's manifest lists other columns than the file has", path.display())));
                    }
                    Some(m)
                }
            },
            Ok(bytes) => {
                let m: Manifest = serde_json::from_slice(&bytes)
                    .map_err(|e| InputError(format!("{}: not a moatsweep manifest: {e}", mpath.display())))?;
                if m.columns != header {
                    return Err(InputError(format!(
                        "{}: its columns differ from the header of {}; the manifest belongs to another CSV",
                        mpath.display(),
                        path.display()
                    )));
                }
                Some(m)
            }
        };
        Ok(SweepTable { path: path.to_path_buf(), header, manifest, parquet })
    }

    /// The manifest, or an error saying that `command` needs it.
    pub fn require_manifest(&self, command: &str, why: &str) -> Result<&Manifest, InputError> {
        self.manifest.as_ref().ok_or_else(|| {
            InputError(format!(
                "{}: no manifest beside it ({}); {command} needs it {why}",
                self.path.display(),
                manifest_path(&self.path).display()
            ))
        })
    }

    /// The axis columns (from the manifest), each checked to be a column of the header.
    pub fn axes(&self) -> Result<Vec<String>, InputError> {
        let Some(m) = &self.manifest else { return Ok(Vec::new()) };
        let axes = m.axes();
        for a in &axes {
            if !self.header.contains(a) {
                return Err(InputError(format!("{}: the manifest's axis {a} is not a column of the CSV", self.path.display())));
            }
        }
        Ok(axes)
    }

    /// The output columns: every column but `scenario` and the axes.
    pub fn outputs(&self) -> Result<Vec<String>, InputError> {
        let axes = self.axes()?;
        Ok(self.header[1..].iter().filter(|c| !axes.contains(c)).cloned().collect())
    }

    /// The index of column `name` among `candidates`, or an error that names the
    /// closest candidate and what `flag` accepts.
    pub fn find(&self, flag: &str, name: &str, candidates: &[String], what: &str) -> Result<usize, InputError> {
        if let Some(i) = self.header.iter().position(|c| c == name).filter(|&i| candidates.contains(&self.header[i])) {
            return Ok(i);
        }
        let problem = if self.header.iter().any(|c| c == name) {
            format!("\"{name}\" is not {what} of {}", self.path.display())
        } else {
            format!("{} has no column \"{name}\"{}", self.path.display(), suggest(name, candidates.iter().map(String::as_str)))
        };
        Err(InputError(format!("{flag}: {problem}; {what} are: {}", candidates.join(", "))))
    }

    /// Reads the columns `cols` (header indices, repeats allowed) of every row, in one pass.
    pub fn read(&self, cols: &[usize]) -> anyhow::Result<Columns> {
        let mut unique: Vec<usize> = Vec::new();
        for &c in cols {
            if !unique.contains(&c) {
                unique.push(c);
            }
        }
        let mut read = match &self.parquet {
            Some(f) => read_parquet(f, &unique)?,
            None => read_columns(&self.path, self.header.len(), &unique)?,
        };
        if unique.len() == cols.len() {
            return Ok(read);
        }
        let at = |c: usize| unique.iter().position(|&u| u == c).expect("listed");
        let data = cols.iter().map(|&c| read.data[at(c)].clone()).collect();
        let integer = cols.iter().map(|&c| read.integer[at(c)]).collect();
        read.data = data;
        read.integer = integer;
        Ok(read)
    }
}

/// Columns of a sweep CSV, one vector per column asked for (NaN for an empty cell).
pub struct Columns {
    /// The `scenario` column.
    pub scenario: Vec<u64>,
    pub data: Vec<Vec<f64>>,
    /// Per column: every cell is an integer literal (`-1`, `12`), as pandas would read it.
    pub integer: Vec<bool>,
}

impl Columns {
    pub fn rows(&self) -> usize {
        self.scenario.len()
    }
}

/// What one batch of lines gives.
struct Part {
    scenario: Vec<u64>,
    data: Vec<Vec<f64>>,
    integer: Vec<bool>,
}

fn read_columns(path: &Path, width: usize, cols: &[usize]) -> anyhow::Result<Columns> {
    let shown = path.display().to_string();
    let mut file = File::open(path).map_err(|e| InputError(format!("cannot read {shown}: {e}")))?;
    let mut out = Columns { scenario: Vec::new(), data: vec![Vec::new(); cols.len()], integer: vec![true; cols.len()] };
    // slot[c]: where column c goes, if it was asked for.
    let mut slot = vec![usize::MAX; width];
    for (k, &c) in cols.iter().enumerate() {
        slot[c] = k;
    }
    let mut carry: Vec<u8> = Vec::new();
    let mut line = 1u64; // the header
    let mut header_done = false;
    let mut buf = vec![0u8; BATCH_BYTES];
    loop {
        let n = file.read(&mut buf).map_err(|e| InputError(format!("cannot read {shown}: {e}")))?;
        let eof = n == 0;
        carry.extend_from_slice(&buf[..n]);
        let mut text: &[u8] = &carry;
        if !header_done {
            let Some(end) = text.iter().position(|&b| b == b'\n') else {
                if eof {
                    break;
                }
                continue;
            };
            text = &text[end + 1..];
            header_done = true;
        }
        // Whole lines only, unless the file ends without a newline.
        let cut = if eof { text.len() } else { text.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1) };
        let batch = &text[..cut];
        if !batch.is_empty() {
            let first_line = line + 1;
            let pieces = split_lines(batch, rayon::current_num_threads() * 4);
            let mut starts = Vec::with_capacity(pieces.len());
            let mut at = first_line;
            for p in &pieces {
                starts.push(at);
                at += p.iter().filter(|&&b| b == b'\n').count() as u64 + u64::from(!p.ends_with(b"\n") && !p.is_empty());
            }
            line = at - 1;
            let parts: Vec<Part> = pieces
                .par_iter()
                .zip(starts.par_iter())
                .map(|(piece, &start)| parse_piece(piece, start, width, &slot, cols.len(), &shown))
                .collect::<Result<_, InputError>>()?;
            for part in parts {
                out.scenario.extend_from_slice(&part.scenario);
                for (k, column) in part.data.into_iter().enumerate() {
                    out.data[k].extend_from_slice(&column);
                    out.integer[k] &= part.integer[k];
                }
            }
        }
        let consumed = carry.len() - text.len() + cut;
        carry.drain(..consumed);
        if eof {
            break;
        }
    }
    Ok(out)
}

/// Columns `cols` of a Parquet sweep, with the values and integer flags the CSV of
/// the same run gives: integer columns are integers unless a cell is null, real
/// ones never are (the CSV writes every real with a `.` or an exponent).
fn read_parquet(f: &ParquetFile, cols: &[usize]) -> Result<Columns, InputError> {
    let mut out =
        Columns { scenario: Vec::with_capacity(f.rows() as usize), data: vec![Vec::new(); cols.len()], integer: vec![true; cols.len()] };
    let mut want = vec![0];
    want.extend_from_slice(cols);
    let groups: Vec<usize> = (0..f.row_groups()).collect();
    let read: Vec<Vec<crate::output::parquet::ColumnData>> =
        groups.par_iter().map(|&g| f.read_group(g, &want).map_err(|e| InputError(format!("{e:#}")))).collect::<Result<_, _>>()?;
    for group in read {
        let (scenario, rest) = group.split_first().expect("the scenario column was asked for");
        match &scenario.data {
            Data::I64(v) => out.scenario.extend(v.iter().map(|&s| s as u64)),
            _ => return Err(InputError(format!("{}: its scenario column is not of 64-bit integers", f.path().display()))),
        }
        for (k, c) in rest.iter().enumerate() {
            let values = super::csv_values(c);
            out.integer[k] &= values.is_empty() || (f.is_integer(cols[k]) && c.def.as_ref().is_none_or(|d| d.iter().all(|&l| l == 1)));
            out.data[k].extend_from_slice(&values);
        }
    }
    Ok(out)
}

/// Splits `text` into about `n` pieces at line ends.
fn split_lines(text: &[u8], n: usize) -> Vec<&[u8]> {
    let mut pieces = Vec::with_capacity(n);
    let target = text.len().div_ceil(n.max(1)).max(1);
    let mut rest = text;
    while !rest.is_empty() {
        let end = if rest.len() <= target {
            rest.len()
        } else {
            rest[target..].iter().position(|&b| b == b'\n').map_or(rest.len(), |p| target + p + 1)
        };
        pieces.push(&rest[..end]);
        rest = &rest[end..];
    }
    pieces
}

/// Whether `cell` is an integer literal, as pandas reads a column of them as int64.
fn is_integer_literal(cell: &[u8]) -> bool {
    let digits = cell.strip_prefix(b"-").unwrap_or(cell);
    !digits.is_empty() && digits.iter().all(u8::is_ascii_digit)
}

fn parse_piece(piece: &[u8], first_line: u64, width: usize, slot: &[usize], n: usize, shown: &str) -> Result<Part, InputError> {
    let lines = piece.iter().filter(|&&b| b == b'\n').count() + 1;
    let mut part = Part { scenario: Vec::with_capacity(lines), data: vec![Vec::with_capacity(lines); n], integer: vec![true; n] };
    for (i, raw) in piece.split(|&b| b == b'\n').enumerate() {
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        if raw.is_empty() {
            continue;
        }
        let line = first_line + i as u64;
        let mut fields = 0;
        for (c, cell) in raw.split(|&b| b == b',').enumerate() {
            fields += 1;
            if c >= width {
                continue;
            }
            if c == 0 {
                let s = std::str::from_utf8(cell).ok().and_then(|s| s.parse::<u64>().ok());
                part.scenario.push(s.ok_or_else(|| {
                    InputError(format!("{shown}:{line}: scenario: \"{}\" is not a row number", String::from_utf8_lossy(cell)))
                })?);
                continue;
            }
            let k = slot[c];
            if k == usize::MAX {
                continue;
            }
            let v = if cell.is_empty() {
                part.integer[k] = false;
                f64::NAN
            } else {
                part.integer[k] &= is_integer_literal(cell);
                match std::str::from_utf8(cell).ok().and_then(|s| s.parse::<f64>().ok()) {
                    Some(v) => v,
                    None => {
                        return Err(InputError(format!(
                            "{shown}:{line}: column {}: \"{}\" is not a number",
                            c + 1,
                            String::from_utf8_lossy(cell)
                        )));
                    }
                }
            };
            part.data[k].push(v);
        }
        if fields != width {
            return Err(InputError(format!("{shown}:{line}: {fields} fields, the header has {width} (a cut or damaged line)")));
        }
    }
    Ok(part)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_read_whatever_the_batch_cuts() {
        let tmp = tempfile::NamedTempFile::new().unwrap();
        let mut text = String::from("scenario,a,b,c\n");
        for i in 0..5000 {
            let b = if i % 7 == 0 { String::new() } else { format!("{}.5", i) };
            text += &format!("{i},{},{b},{}\n", i as i64 - 3, i * 2);
        }
        std::fs::write(tmp.path(), &text).unwrap();
        let cols = read_columns(tmp.path(), 4, &[3, 1, 2]).unwrap();
        assert_eq!(cols.rows(), 5000);
        assert!(cols.scenario.iter().enumerate().all(|(i, &s)| s == i as u64));
        assert_eq!(cols.data[0][4999], 9998.0);
        assert_eq!(cols.data[1][10], 7.0);
        assert!(cols.data[2][7].is_nan() && cols.data[2][8] == 8.5);
        assert_eq!(cols.integer, [true, true, false]);
        // A cut last line is named.
        std::fs::write(tmp.path(), format!("{text}5000,1")).unwrap();
        let err = read_columns(tmp.path(), 4, &[1]).err().unwrap().to_string();
        assert!(err.ends_with(":5002: 2 fields, the header has 4 (a cut or damaged line)"), "{err}");
    }
}
