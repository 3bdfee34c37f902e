//! The calibrated config: the input's TOML with `brand` and `cost_factor` of every
//! firm set (every segment's `price_sens` with a margin, `market0` with usage),
//! edited in place so that its comments, order and every other value stay as they
//! were; a comment block at its top says how it was made.

use toml_edit::{ArrayOfTables, DocumentMut, Item, Table, Value};

use super::Calibration;

/// The first and last lines of the comment block that `calibrate` puts on top; a
/// config calibrated again loses its old block.
const HEADER_FIRST: &str = "# Calibrated by `moatsweep calibrate`";
const HEADER_LAST: &str = "# (end of the calibration header)";

/// A number as TOML writes it, in the shortest form that reads back as the same f64.
pub fn number(v: f64) -> Value {
    let a = v.abs();
    let text = if a == 0.0 || (1e-4..1e15).contains(&a) { format!("{v:?}") } else { format!("{v:e}") };
    text.parse().expect("a finite f64 is a TOML number")
}

/// Sets `table[key] = v`, keeping the comments around an old value.
fn set(table: &mut Table, key: &str, v: f64) {
    let mut new = number(v);
    if let Some(old) = table.get(key).and_then(Item::as_value) {
        *new.decor_mut() = old.decor().clone();
    }
    table.insert(key, Item::Value(new));
}

/// The `[[firm]]` (or `[[segment]]`) table named `name`, appended with only its
/// name when the config lists none of that kind (it then used the defaults).
fn entity<'d>(doc: &'d mut DocumentMut, kind: &str, names: &[String], name: &str) -> &'d mut Table {
    if doc.get(kind).is_none() {
        let mut tables = ArrayOfTables::new();
        for n in names {
            let mut t = Table::new();
            t.insert("name", toml_edit::value(n.as_str()));
            tables.push(t);
        }
        doc.insert(kind, Item::ArrayOfTables(tables));
    }
    let tables = doc[kind].as_array_of_tables_mut().expect("the config checked that this is an array of tables");
    tables
        .iter_mut()
        .find(|t| t.get("name").and_then(Item::as_str) == Some(name))
        .expect("the config checked that every entity has a table with its name")
}

/// Drops a calibration header that an earlier `calibrate` put on top.
fn without_old_header(text: &str) -> &str {
    if text.starts_with(HEADER_FIRST)
        && let Some(end) = text.find(HEADER_LAST)
    {
        let rest = &text[end + HEADER_LAST.len()..];
        return rest.strip_prefix('\n').unwrap_or(rest);
    }
    text
}

/// The calibrated config: `text` (the input config) edited, under `header`, the
/// comment lines that say how it was made (each without its leading `# `).
pub fn calibrated_config(
    text: &str,
    firm_names: &[String],
    segment_names: &[String],
    cal: &Calibration,
    header: &[String],
) -> Result<String, toml_edit::TomlError> {
    let mut doc: DocumentMut = without_old_header(text).parse()?;
    let sc = &cal.scenario;
    for (i, name) in firm_names.iter().enumerate() {
        let t = entity(&mut doc, "firm", firm_names, name);
        set(t, "brand", sc.firms[i].brand);
        set(t, "cost_factor", sc.firms[i].cost_factor);
    }
    if cal.price_scale.is_some() {
        for (k, name) in segment_names.iter().enumerate() {
            let t = entity(&mut doc, "segment", segment_names, name);
            set(t, "price_sens", sc.segments[k].price_sens);
        }
    }
    if let Some(m0) = cal.market0 {
        if doc.get("model").is_none() {
            doc.insert("model", Item::Table(Table::new()));
        }
        let model = doc["model"].as_table_mut().expect("the config checked that [model] is a table");
        set(model, "market0", m0);
    }
    let mut out = String::new();
    out.push_str(HEADER_FIRST);
    out.push('\n');
    for line in header {
        out.push_str(&format!("# {line}\n"));
    }
    out.push_str(HEADER_LAST);
    out.push('\n');
    out.push_str(&doc.to_string());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_back_exactly() {
        for v in [0.0, 1.0, -0.123456789012345, 1e-19, 2.5e8, 123456.789, -7.2e-5, 1.0 / 3.0] {
            let text = number(v).to_string();
            let back: f64 = text.trim().parse().unwrap_or_else(|_| panic!("{text}"));
            assert_eq!(back.to_bits(), v.to_bits(), "{v} -> {text}");
        }
    }
}
