//! The observations file of `moatsweep calibrate` (docs/model.md section 9): one
//! row per firm, `firm,share,price` (share of the whole market, the outside option
//! included) or `firm,revenue_share,price` (shares of AI revenue, converted with an
//! assumed outside share). Lines that start with `#` are comments; blank lines are
//! skipped. Every problem is one message naming the file, the line and the firm.

use sha2::{Digest, Sha256};

use crate::InputError;

/// Larger observation files are refused before they are read (one row per firm).
pub const MAX_BYTES: u64 = 1 << 20;

/// How the file states shares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShareKind {
    /// `share`: S_i, of the whole market.
    Market,
    /// `revenue_share`: r_i, of the AI market's revenue (scaled freely).
    Revenue,
}

/// One firm's row.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// 1-based line in the file.
    pub line: usize,
    pub firm: String,
    /// As written: S_i or r_i.
    pub share: f64,
    pub price: f64,
}

/// An observations file, checked and put in the config's firm order.
#[derive(Clone, Debug)]
pub struct Observed {
    pub file: String,
    pub sha256: String,
    pub kind: ShareKind,
    /// One row per firm of the config, in the config's order.
    pub rows: Vec<Row>,
}

impl Observed {
    /// Reads `path` and matches its rows to `firms` (the config's firm names).
    pub fn read(path: &std::path::Path, firms: &[String]) -> Result<Observed, InputError> {
        let file = path.display().to_string();
        let fail = |m: String| InputError(format!("{file}: {m}"));
        // A regular file of at most MAX_BYTES, checked before anything is read.
        let bytes = crate::config::read_limited(path, MAX_BYTES, "observations").map_err(fail)?;
        let text = std::str::from_utf8(&bytes).map_err(|e| fail(format!("not UTF-8 text: {e}")))?;
        let mut obs = Observed::parse(&file, text, firms)?;
        obs.sha256 = crate::output::hex(&Sha256::digest(&bytes));
        Ok(obs)
    }

    /// Parses observations `text` (named `file` in messages).
    pub fn parse(file: &str, text: &str, firms: &[String]) -> Result<Observed, InputError> {
        let at = |line: usize, m: String| InputError(format!("{file}:{line}: {m}"));
        let mut lines = text.lines().enumerate().map(|(n, l)| (n + 1, l.trim())).filter(|(_, l)| !l.is_empty() && !l.starts_with('#'));
        let Some((header_line, header)) = lines.next() else {
            return Err(InputError(format!(
                "{file}: no header: write `firm,share,price` (or `firm,revenue_share,price`) and one row per firm"
            )));
        };
        let names: Vec<&str> = header.split(',').map(str::trim).collect();
        let kind = match names.as_slice() {
            ["firm", "share", "price"] => ShareKind::Market,
            ["firm", "revenue_share", "price"] => ShareKind::Revenue,
            _ => {
                return Err(at(
                    header_line,
                    format!("the header is `{}`: write `firm,share,price` or `firm,revenue_share,price`", escape(header)),
                ));
            }
        };
        let share_name = names[1];
        let mut rows: Vec<Row> = Vec::new();
        for (line, l) in lines {
            let fields: Vec<&str> = l.split(',').map(str::trim).collect();
            if fields.len() != 3 {
                return Err(at(line, format!("{} fields where the header has 3 (firm, {share_name}, price)", fields.len())));
            }
            let firm = fields[0];
            let Some(_) = firms.iter().position(|f| f == firm) else {
                return Err(at(line, format!("firm \"{}\" is not a firm of the config (its firms: {})", escape(firm), firms.join(", "))));
            };
            if let Some(prev) = rows.iter().find(|r| r.firm == firm) {
                return Err(at(line, format!("firm \"{}\" has a second row (the first is on line {})", escape(firm), prev.line)));
            }
            let number = |k: usize, what: &str| -> Result<f64, InputError> {
                let v: f64 = fields[k]
                    .parse()
                    .map_err(|_| at(line, format!("firm \"{}\": {what} \"{}\" is not a number", escape(firm), escape(fields[k]))))?;
                if !(v.is_finite() && v > 0.0) {
                    return Err(at(line, format!("firm \"{}\": {what} {v} must be a finite number > 0", escape(firm))));
                }
                Ok(v)
            };
            let share = number(1, share_name)?;
            let price = number(2, "price")?;
            rows.push(Row { line, firm: firm.to_string(), share, price });
        }
        let mut ordered = Vec::with_capacity(firms.len());
        for f in firms {
            match rows.iter().find(|r| &r.firm == f) {
                Some(r) => ordered.push(r.clone()),
                None => {
                    return Err(InputError(format!(
                        "{file}: firm \"{f}\" of the config has no row (every firm offers a product at month 0)"
                    )));
                }
            }
        }
        if kind == ShareKind::Market {
            let total: f64 = ordered.iter().map(|r| r.share).sum();
            if !(total < 1.0) {
                return Err(InputError(format!(
                    "{file}: the shares sum to {total}: shares are of the whole market, the outside option (no AI) included, so they must sum to less than 1 (for shares of AI revenue write the column `revenue_share` and give --outside-share)"
                )));
            }
        }
        Ok(Observed { file: file.to_string(), sha256: String::new(), kind, rows: ordered })
    }

    /// S_i of the whole market: as written for `share`; for `revenue_share`,
    /// S_i = (1 - s_out) (r_i / p_i) / sum_j (r_j / p_j) (docs/model.md section 9).
    pub fn market_shares(&self, outside_share: Option<f64>) -> Result<Vec<f64>, InputError> {
        match (self.kind, outside_share) {
            (ShareKind::Market, None) => Ok(self.rows.iter().map(|r| r.share).collect()),
            (ShareKind::Market, Some(_)) => Err(InputError(format!(
                "--outside-share: {} gives shares of the whole market (column `share`); --outside-share converts shares of AI revenue (column `revenue_share`)",
                self.file
            ))),
            (ShareKind::Revenue, None) => Err(InputError(format!(
                "{}: shares of AI revenue (column `revenue_share`) need --outside-share X, the share of the market that buys no AI",
                self.file
            ))),
            (ShareKind::Revenue, Some(s_out)) => {
                if !(s_out > 0.0 && s_out < 1.0) {
                    return Err(InputError(format!("--outside-share: {s_out} must lie in (0, 1)")));
                }
                let usage: Vec<f64> = self.rows.iter().map(|r| r.share / r.price).collect();
                let total: f64 = usage.iter().sum();
                Ok(usage.iter().map(|u| (1.0 - s_out) * u / total).collect())
            }
        }
    }

    /// The line of firm `i`'s row.
    pub fn line(&self, i: usize) -> usize {
        self.rows[i].line
    }
}

/// A value quoted in a message: escaped and cut as every message does (`config::error::shown`).
fn escape(s: &str) -> String {
    crate::config::error::shown(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn firms() -> Vec<String> {
        ["a", "b"].iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn rows_come_back_in_the_configs_order_and_revenue_shares_convert() {
        let o = Observed::parse("obs.csv", "# comment\nfirm,revenue_share,price\nb, 0.75, 3\n\na,0.25,1\n", &firms()).unwrap();
        assert_eq!((o.rows[0].firm.as_str(), o.rows[0].line), ("a", 5));
        // usage r/p: a 0.25, b 0.25 -> equal split of 1 - 0.4
        let s = o.market_shares(Some(0.4)).unwrap();
        assert!((s[0] - 0.3).abs() < 1e-15 && (s[1] - 0.3).abs() < 1e-15);
    }

    #[test]
    fn each_bad_row_is_named_by_line_and_firm() {
        let cases = [
            ("firm,share,price\na,0.2,1\n", "obs.csv: firm \"b\" of the config has no row"),
            ("firm,share,price\na,0.2,1\nb,0.2,1\nc,0.1,1\n", "obs.csv:4: firm \"c\" is not a firm"),
            ("firm,share,price\na,0,1\nb,0.2,1\n", "obs.csv:2: firm \"a\": share 0 must be"),
            ("firm,share,price\na,0.2,-1\nb,0.2,1\n", "obs.csv:2: firm \"a\": price -1 must be"),
            ("firm,share,price\na,0.6,1\nb,0.4,1\n", "obs.csv: the shares sum to 1"),
            ("firm,share,price\na,x,1\nb,0.4,1\n", "obs.csv:2: firm \"a\": share \"x\" is not a number"),
            ("firm,share,price\na,0.1,1\na,0.4,1\n", "obs.csv:3: firm \"a\" has a second row"),
            ("firm,usage,price\n", "obs.csv:1: the header is `firm,usage,price`"),
        ];
        for (text, want) in cases {
            let e = Observed::parse("obs.csv", text, &firms()).unwrap_err().0;
            assert!(e.starts_with(want), "{text:?}: {e}");
        }
    }
}
