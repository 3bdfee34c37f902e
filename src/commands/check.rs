//! `moatsweep check FILE...`: a finished CSV or Parquet file against its manifest:
//! the header is the manifest's `columns`, the row count its `rows_written`, the
//! SHA-256 of the bytes its `sha256`, and every row decodes (every page of every
//! column of a Parquet file; every line of a CSV has the header's fields, each a
//! number or empty). A manifest vouches for bytes, not for their being readable:
//! a file written wrong would otherwise be certified.

use std::io::Write;
use std::path::Path;

use crate::InputError;
use crate::output::manifest::Manifest;
use crate::output::parquet::{ParquetFile, is_parquet};
use crate::output::{manifest_path, scan};

/// Checks each file in turn, printing a line per file that matches; the first that
/// does not is an error naming it (exit status 2).
pub fn check(paths: &[impl AsRef<Path>], out: &mut impl Write) -> anyhow::Result<()> {
    for path in paths {
        let path = path.as_ref();
        let summary = check_one(path)?;
        writeln!(out, "{}: ok ({summary})", path.display())?;
    }
    Ok(())
}

fn check_one(path: &Path) -> Result<String, InputError> {
    let shown = path.display();
    let mpath = manifest_path(path);
    let manifest = Manifest::read(&mpath).map_err(|e| InputError(format!("{shown}: cannot read its manifest {}: {e}", mpath.display())))?;
    // A regular file (not /dev/zero or a FIFO), whose first line is bounded, before it is read.
    crate::analysis::sweep_file::regular_file(path)?;
    if !is_parquet(path) {
        crate::analysis::sweep_file::first_line(path)?;
    }
    let scan = scan(path).map_err(|e| InputError(format!("{shown}: cannot read it: {}", e.source)))?;
    // Parquet: the header is the schema's column names, the rows its row count.
    let parquet = if is_parquet(path) {
        // The error names the file.
        let f = ParquetFile::open(path).map_err(|e| InputError(format!("{e:#}")))?;
        Some((f.names(), f.rows()))
    } else {
        None
    };
    let header: Vec<String> = match &parquet {
        Some((names, _)) => names.clone(),
        None => ::csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(scan.header.as_bytes())
            .records()
            .next()
            .and_then(Result::ok)
            .map(|r| r.iter().map(str::to_string).collect())
            .unwrap_or_default(),
    };
    if header != manifest.columns {
        let at = header.iter().zip(&manifest.columns).position(|(a, b)| a != b).unwrap_or(header.len().min(manifest.columns.len()));
        let col = |v: &[String]| v.get(at).map_or("nothing".to_string(), |c| format!("\"{c}\""));
        return Err(InputError(format!(
            "{shown}: its header differs from the columns of its manifest: column {} is {} in the file, {} in the manifest",
            at + 1,
            col(&header),
            col(&manifest.columns)
        )));
    }
    let rows = parquet.as_ref().map_or(scan.lines.saturating_sub(1), |p| p.1);
    // A reduced CSV holds one line per group (its rows_written counts the rows reduced).
    let want = manifest.reduce.as_ref().map_or(manifest.rows_written, |r| r.groups);
    if rows != want {
        return Err(InputError(format!("{shown}: holds {rows} rows, its manifest says {want}")));
    }
    let Some(want) = &manifest.sha256 else {
        return Err(InputError(format!(
            "{shown}: its manifest {} records no sha256 (written by an older moatsweep), so its bytes cannot be checked",
            mpath.display()
        )));
    };
    if scan.sha256 != *want {
        return Err(InputError(format!(
            "{shown}: its SHA-256 is {}, its manifest records {want}: the file changed after it was written",
            scan.sha256
        )));
    }
    match &parquet {
        Some(_) => decode_parquet(path)?,
        None => parse_csv(path, header.len())?,
    }
    Ok(format!("{rows} rows, {} bytes, sha256 {}", scan.bytes, scan.sha256))
}

/// Decodes every page of every column of every row group.
fn decode_parquet(path: &Path) -> Result<(), InputError> {
    let f = ParquetFile::open(path).map_err(|e| InputError(format!("{e:#}")))?;
    let all: Vec<usize> = (0..f.names().len()).collect();
    for g in 0..f.row_groups() {
        // The error names the file, the row group and the column.
        f.read_group(g, &all).map_err(|e| InputError(format!("{e:#}: the file cannot be decoded")))?;
    }
    Ok(())
}

/// Parses every line after the header: `fields` cells, each a number or empty.
fn parse_csv(path: &Path, fields: usize) -> Result<(), InputError> {
    let shown = path.display();
    let file = std::fs::File::open(path).map_err(|e| InputError(format!("{shown}: cannot read it: {e}")))?;
    let mut r = ::csv::ReaderBuilder::new().flexible(true).from_reader(std::io::BufReader::with_capacity(1 << 20, file));
    let mut record = ::csv::ByteRecord::new();
    loop {
        let line = r.position().line();
        match r.read_byte_record(&mut record) {
            Ok(false) => return Ok(()),
            Ok(true) => {}
            Err(e) => return Err(InputError(format!("{shown}: line {line}: {e}"))),
        }
        if record.len() != fields {
            return Err(InputError(format!("{shown}: line {line}: {} fields, the header has {fields}", record.len())));
        }
        if let Some((c, cell)) = record.iter().enumerate().find(|(_, c)| !c.is_empty() && !is_number(c)) {
            let cell = String::from_utf8_lossy(cell);
            return Err(InputError(format!("{shown}: line {line}, field {}: \"{cell:.40}\" is not a number", c + 1)));
        }
    }
}

fn is_number(cell: &[u8]) -> bool {
    std::str::from_utf8(cell).is_ok_and(|s| s.parse::<f64>().is_ok())
}
