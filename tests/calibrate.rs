//! `moatsweep calibrate` (docs/model.md section 9) through the binary.
//!
//! The markets here are made by the tests: known brands, cost factors (and a
//! price-sensitivity scale, a market size) are put into a scenario, its month 0 is
//! solved forward on the reference to tol 1e-15, and the shares and prices it gives
//! become the observations. The inversion must then recover the known values: the
//! forward solve (a fixed point in prices) and the inversion (a contraction in
//! brands, first-order conditions for costs, a bisection for the scale) are
//! different computations, so agreement is evidence, not a tautology. pyblp checks
//! the same calibrations in CI (scripts/pyblp_check.py).

mod support;

use std::path::{Path, PathBuf};

use moatsweep::model::scaling::{TrainInputs, train};
use moatsweep::model::{MonthRecord, Scenario};
use support::{moatsweep, sha256_hex};

/// Month 0 of `sc` solved forward to tol 1e-15: (shares, prices).
fn month0(sc: &Scenario) -> (Vec<f64>, Vec<f64>) {
    let mut s = *sc;
    s.model.months = 1;
    s.model.tol = 1e-15;
    s.model.max_iter = 100_000;
    let mut rec = None;
    moatsweep::model::solve_traced(&s, &mut |r: &MonthRecord| rec = Some(*r));
    let r = rec.unwrap();
    assert!(r.converged);
    (r.share[..sc.n_firms].to_vec(), r.price[..sc.n_firms].to_vec())
}

/// The plain serving cost of firm i's first generation.
fn plain_cost(sc: &Scenario, i: usize) -> f64 {
    train(&TrainInputs::first_generation(&sc.model, &sc.scaling, &sc.firms[i])).c0
}

const FIRMS: [&str; 5] = ["open", "frontier_a", "frontier_b", "challenger", "lab"];

/// The five-firm market of these tests: the default firms plus "lab", a firm of a
/// new name that gives no cost_factor; "open" released at month 0.
fn config_text(extra_model: &str) -> String {
    format!(
        "version = 1\n[sweep]\nname = \"cal\"\n[model]\nmonths = 24\n{extra_model}\n\
         [[firm]]\nname = \"open\"\nrelease_month = 0 # open since month 0\n\
         [[firm]]\nname = \"frontier_a\"\n[[firm]]\nname = \"frontier_b\"\n[[firm]]\nname = \"challenger\"\n\
         [[firm]]\nname = \"lab\"\ntrain_spend = 3e8\ndata_tokens = 15e12\nrelease_month = \"never\"\nbrand = 0.0\n\
         platform_revenue = 0\nfunding = 2e9\nspend_growth = 0.5\ndata_growth = 0.2\n"
    )
}

/// The scenario of [`config_text`] with known brands and cost factors.
fn truth(text: &str) -> Scenario {
    let mut sc = moatsweep::config::parse("cal.toml", text, None, Path::new(".")).unwrap().base;
    for (i, (b, k)) in [(-0.8, 0.4), (1.3, 0.7), (1.9, 1.6), (0.2, 2.2), (0.6, 0.9)].into_iter().enumerate() {
        sc.firms[i].brand = b;
        sc.firms[i].cost_factor = k;
    }
    sc
}

fn write_observations(dir: &Path, header: &str, rows: &[(&str, f64, f64)]) -> PathBuf {
    let mut text = format!("# made by tests/calibrate.rs\n{header}\n");
    for (f, s, p) in rows {
        text.push_str(&format!("{f},{s:?},{p:?}\n"));
    }
    let path = dir.join("observed.csv");
    std::fs::write(&path, text).unwrap();
    path
}

/// Runs calibrate; returns (success, stdout, stderr).
fn calibrate(dir: &Path, config: &str, args: &[&str]) -> (bool, String, String) {
    let cfg = dir.join("cal.toml");
    std::fs::write(&cfg, config).unwrap();
    let out = moatsweep().arg("calibrate").arg(&cfg).args(args).output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn close(what: &str, got: f64, want: f64, rel: f64) {
    assert!((got - want).abs() <= rel * want.abs().max(1e-3), "{what}: got {got}, want {want}");
}

#[test]
fn calibration_recovers_the_brands_and_cost_factors_that_made_the_market() {
    let dir = tempfile::tempdir().unwrap();
    let text = config_text("");
    let sc = truth(&text);
    let (share, price) = month0(&sc);
    let rows: Vec<(&str, f64, f64)> = (0..5).map(|i| (FIRMS[i], share[i], price[i])).collect();
    let obs = write_observations(dir.path(), "firm,share,price", &rows);
    let out = dir.path().join("calibrated.toml");
    let (ok, stdout, stderr) = calibrate(dir.path(), &text, &["--observed", obs.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert!(ok, "{stderr}");
    let written = std::fs::read_to_string(&out).unwrap();
    let cal = moatsweep::config::parse("calibrated.toml", &written, None, Path::new(".")).unwrap().base;
    for i in 0..5 {
        close(&format!("brand of {}", FIRMS[i]), cal.firms[i].brand, sc.firms[i].brand, 1e-9);
        close(&format!("cost factor of {}", FIRMS[i]), cal.firms[i].cost_factor, sc.firms[i].cost_factor, 1e-9);
    }
    // Nothing else changed: the calibrated scenario is the input with those two set.
    let mut input = moatsweep::config::parse("cal.toml", &text, None, Path::new(".")).unwrap().base;
    for i in 0..5 {
        (input.firms[i].brand, input.firms[i].cost_factor) = (cal.firms[i].brand, cal.firms[i].cost_factor);
    }
    assert_eq!(input, cal);
    // Comments are kept, and the header names the observations by their SHA-256.
    assert!(written.contains("release_month = 0 # open since month 0"));
    assert!(written.contains(&sha256_hex(&std::fs::read(&obs).unwrap())));
    assert!(written.lines().next().unwrap().starts_with("# Calibrated by `moatsweep calibrate`"));
    // The table: one line per firm, the open firm sells at cost (markup 0).
    let open_line = stdout.lines().find(|l| l.starts_with("open ")).unwrap();
    assert!(open_line.split_whitespace().nth(1) == Some("yes") && open_line.split_whitespace().nth(9) == Some("0.0000"), "{open_line}");
    // Calibrating the calibrated config again gives the same values and one header.
    let again = dir.path().join("again.toml");
    std::fs::write(dir.path().join("cal.toml"), &written).unwrap();
    let status = moatsweep()
        .arg("calibrate")
        .arg(dir.path().join("cal.toml"))
        .args(["--observed", obs.to_str().unwrap(), "--out", again.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(status.status.success());
    let twice = std::fs::read_to_string(&again).unwrap();
    assert_eq!(twice.matches("# Calibrated by").count(), 1);
    let cal2 = moatsweep::config::parse("again.toml", &twice, None, Path::new(".")).unwrap().base;
    for i in 0..5 {
        close("brand again", cal2.firms[i].brand, sc.firms[i].brand, 1e-9);
    }
}

/// With a margin the price-sensitivity scale is identified too: a market made with
/// every price_sens x 2.7 is calibrated from the unscaled segments and the Lerner
/// index computed here from its known costs; usage gives market0 back; revenue
/// shares at the true outside share give the same calibration.
#[test]
fn margin_usage_and_revenue_shares_recover_the_scale_the_market_size_and_the_same_brands() {
    let dir = tempfile::tempdir().unwrap();
    let text = config_text("market0 = 3e8");
    let mut sc = truth(&text);
    for seg in &mut sc.segments[..3] {
        seg.price_sens *= 2.7;
    }
    sc.model.market0 = 7.5e8;
    let (share, price) = month0(&sc);
    let (mut num, mut den) = (0.0, 0.0);
    for i in 1..5 {
        let cost = sc.firms[i].cost_factor * plain_cost(&sc, i);
        num += share[i] * (price[i] - cost) / price[i];
        den += share[i];
    }
    let lerner = num / den;
    let usage = 7.5e8 * share.iter().sum::<f64>();
    let rows: Vec<(&str, f64, f64)> = (0..5).map(|i| (FIRMS[i], share[i], price[i])).collect();
    let obs = write_observations(dir.path(), "firm,share,price", &rows);
    let out = dir.path().join("calibrated.toml");
    let (l, v) = (format!("{lerner:?}"), format!("{usage:?}"));
    let (ok, _, stderr) =
        calibrate(dir.path(), &text, &["--observed", obs.to_str().unwrap(), "--out", out.to_str().unwrap(), "--margin", &l, "--usage", &v]);
    assert!(ok, "{stderr}");
    let cal = moatsweep::config::parse("c.toml", &std::fs::read_to_string(&out).unwrap(), None, Path::new(".")).unwrap().base;
    for k in 0..3 {
        close("price_sens", cal.segments[k].price_sens, sc.segments[k].price_sens, 1e-8);
    }
    close("market0", cal.model.market0, 7.5e8, 1e-12);
    for i in 0..5 {
        close("brand", cal.firms[i].brand, sc.firms[i].brand, 1e-8);
        close("cost factor", cal.firms[i].cost_factor, sc.firms[i].cost_factor, 1e-8);
    }

    // Revenue shares r_i = S_i p_i (any scale) with the true outside share.
    let outside = 1.0 - share.iter().sum::<f64>();
    let rows: Vec<(&str, f64, f64)> = (0..5).map(|i| (FIRMS[i], 3.0 * share[i] * price[i], price[i])).collect();
    let obs = write_observations(dir.path(), "firm,revenue_share,price", &rows);
    let out2 = dir.path().join("revenue.toml");
    let (ok, _, stderr) = calibrate(
        dir.path(),
        &text,
        &["--observed", obs.to_str().unwrap(), "--out", out2.to_str().unwrap(), "--margin", &l, "--outside-share", &format!("{outside:?}")],
    );
    assert!(ok, "{stderr}");
    let cal2 = moatsweep::config::parse("r.toml", &std::fs::read_to_string(&out2).unwrap(), None, Path::new(".")).unwrap().base;
    for i in 0..5 {
        close("brand from revenue shares", cal2.firms[i].brand, sc.firms[i].brand, 1e-8);
    }
}

/// Every bad observation ends with exit 2, a message naming the file (and the line
/// and firm where there is one), and no output file.
#[test]
fn bad_observations_are_refused_by_file_line_and_firm() {
    let dir = tempfile::tempdir().unwrap();
    let text = config_text("");
    let sc = truth(&text);
    let (share, price) = month0(&sc);
    let good: Vec<String> = (0..5).map(|i| format!("{},{:?},{:?}", FIRMS[i], share[i], price[i])).collect();
    let with = |i: usize, line: &str| {
        let mut v = good.clone();
        v[i] = line.to_string();
        format!("firm,share,price\n{}\n", v.join("\n"))
    };
    let cases: Vec<(String, Vec<&str>, Vec<&str>)> = vec![
        (format!("firm,share,price\n{}\n", good[..4].join("\n")), vec![], vec!["observed.csv: firm \"lab\" of the config has no row"]),
        (
            format!("firm,share,price\n{}\nghost,0.01,1\n", good.join("\n")),
            vec![],
            vec!["observed.csv:7: firm \"ghost\" is not a firm of the config"],
        ),
        (with(1, "frontier_a,0,4"), vec![], vec!["observed.csv:3: firm \"frontier_a\": share 0 must be a finite number > 0"]),
        (with(2, "frontier_b,0.1,-2"), vec![], vec!["observed.csv:4: firm \"frontier_b\": price -2 must be"]),
        (with(3, "challenger,lots,2"), vec![], vec!["observed.csv:5: firm \"challenger\": share \"lots\" is not a number"]),
        (with(0, "open,0.9,0.3"), vec![], vec!["observed.csv: the shares sum to"]),
        // Real 2025 list prices with the default segments: the markups they imply exceed the prices.
        (
            "firm,share,price\nopen,0.12,0.4\nfrontier_a,0.12,4.4\nfrontier_b,0.14,6\nchallenger,0.05,3.4\nlab,0.02,1\n".into(),
            vec![],
            vec![
                "observed.csv:3: firm \"frontier_a\": the implied marginal cost is -",
                "at the price 4.4 $/Mtok the segments imply a markup of",
                "less price-sensitive",
            ],
        ),
        (with(0, &good[0]), vec!["--margin", "1e-9"], vec!["no price-sensitivity scale in [1e-3, 1e3] gives the margin"]),
        (with(0, &good[0]), vec!["--outside-share", "0.4"], vec!["--outside-share: ", "gives shares of the whole market"]),
        (with(0, &good[0]), vec!["--margin", "1.5"], vec!["--margin: 1.5 is not a Lerner index in (0, 1)"]),
        ("firm,revenue_share,price\n".to_string() + &good.join("\n"), vec![], vec!["need --outside-share X"]),
    ];
    for (obs_text, extra, wants) in cases {
        let obs = dir.path().join("observed.csv");
        std::fs::write(&obs, &obs_text).unwrap();
        let out = dir.path().join("never.toml");
        let mut args = vec!["--observed", obs.to_str().unwrap(), "--out", out.to_str().unwrap()];
        args.extend(extra);
        let cfg = dir.path().join("cal.toml");
        std::fs::write(&cfg, &text).unwrap();
        let o = moatsweep().arg("calibrate").arg(&cfg).args(&args).output().unwrap();
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{obs_text}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
        for w in wants {
            assert!(stderr.contains(w), "{obs_text}: wanted {w:?} in {stderr}");
        }
        assert!(!out.exists() && !dir.path().join("never.toml.partial").exists(), "an output was written for {obs_text}");
    }
    // An axis over a calibrated parameter would override it in every row.
    let axis = format!("{text}[axes]\n\"firm.lab.brand\" = {{ values = [0, 1] }}\n");
    let obs = write_observations(dir.path(), "firm,share,price", &(0..5).map(|i| (FIRMS[i], share[i], price[i])).collect::<Vec<_>>());
    let (ok, _, stderr) =
        calibrate(dir.path(), &axis, &["--observed", obs.to_str().unwrap(), "--out", dir.path().join("x.toml").to_str().unwrap()]);
    assert!(!ok && stderr.contains("axis \"firm.lab.brand\": calibration sets this parameter"), "{stderr}");
}

/// `--sweep`: each row is the calibration of that row's scenario (checked against a
/// single calibration of the same scenario), every outside share is a block of
/// rows, the bytes do not depend on the threads, and a row that cannot be
/// calibrated carries its error instead of numbers.
#[test]
fn a_sweep_calibrates_every_row_as_a_single_calibration_would() {
    let dir = tempfile::tempdir().unwrap();
    let text = config_text("");
    let sc = truth(&text);
    let (share, price) = month0(&sc);
    let rows: Vec<(&str, f64, f64)> = (0..5).map(|i| (FIRMS[i], share[i] * price[i], price[i])).collect();
    let obs = write_observations(dir.path(), "firm,revenue_share,price", &rows);
    // price_sens of the enterprise segment: 0.01 is so insensitive that costs turn negative.
    let sweep = format!(
        "{text}[axes]\n\"segment.enterprise.price_sens\" = {{ values = [0.01, 0.15, 0.4] }}\n\"segment.consumers.quality_taste\" = {{ values = [1.8, 2.2] }}\n"
    );
    let csv = |threads: &str| {
        let out = dir.path().join(format!("fits-{threads}.csv"));
        let cfg = dir.path().join("sweep.toml");
        std::fs::write(&cfg, &sweep).unwrap();
        let o = moatsweep()
            .args(["--threads", threads, "calibrate"])
            .arg(&cfg)
            .args(["--observed", obs.to_str().unwrap(), "--sweep", "--outside-share", "0.3,0.6", "--out", out.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        (std::fs::read_to_string(&out).unwrap(), String::from_utf8_lossy(&o.stdout).into_owned())
    };
    let (one, _) = csv("1");
    let (two, stdout) = csv("2");
    assert_eq!(one, two, "the sweep's bytes depend on the threads");
    let mut r = csv::Reader::from_reader(one.as_bytes());
    let header: Vec<String> = r.headers().unwrap().iter().map(String::from).collect();
    let col = |n: &str| header.iter().position(|h| h == n).unwrap_or_else(|| panic!("no column {n}"));
    let recs: Vec<csv::StringRecord> = r.records().map(Result::unwrap).collect();
    assert_eq!(recs.len(), 12, "6 rows x 2 outside shares");
    let failed = recs.iter().filter(|r| !r[col("error")].is_empty()).count();
    assert!((2..12).contains(&failed), "{failed} rows failed");
    assert!(stdout.contains(&format!("{failed} rows could not be calibrated")), "{stdout}");
    for rec in &recs {
        let (ps, qt, outside) =
            (&rec[col("segment.enterprise.price_sens")], &rec[col("segment.consumers.quality_taste")], &rec[col("outside_share")]);
        if !rec[col("error")].is_empty() {
            assert!(rec[col("error")].contains("implied marginal cost"), "{}", &rec[col("error")]);
            assert!(rec[col("brand.lab")].is_empty());
            continue;
        }
        // The same scenario, calibrated alone.
        let single = text.replace("[[firm]]\nname = \"open\"", &format!("[[segment]]\nname = \"enterprise\"\nprice_sens = {ps}\n[[segment]]\nname = \"developers\"\n[[segment]]\nname = \"consumers\"\nquality_taste = {qt}\n[[firm]]\nname = \"open\""));
        let out = dir.path().join("single.toml");
        let (ok, _, stderr) = calibrate(
            dir.path(),
            &single,
            &["--observed", obs.to_str().unwrap(), "--outside-share", outside, "--out", out.to_str().unwrap()],
        );
        assert!(ok, "{stderr}");
        let cal = moatsweep::config::parse("s.toml", &std::fs::read_to_string(&out).unwrap(), None, Path::new(".")).unwrap().base;
        for (i, f) in FIRMS.iter().enumerate() {
            assert_eq!(rec[col(&format!("brand.{f}"))].parse::<f64>().unwrap(), cal.firms[i].brand, "row {:?}", rec);
            assert_eq!(rec[col(&format!("cost_factor.{f}"))].parse::<f64>().unwrap(), cal.firms[i].cost_factor);
        }
    }
}

/// The shipped calibrated config is what its header's command gives from the shipped
/// observations (so editing the data without calibrating again fails here), and its
/// month 0 reproduces those observations.
#[test]
fn the_shipped_market_is_the_calibration_of_the_shipped_observations() {
    let root = support::root();
    let shipped = std::fs::read_to_string(root.join("configs/llm-market-2025.toml")).unwrap();
    let data = std::fs::read(root.join("data/llm-market-2025.csv")).unwrap();
    assert!(
        shipped.contains(&format!("observations: data/llm-market-2025.csv (sha256 {})", sha256_hex(&data))),
        "the header names other data"
    );
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("again.toml");
    let o = moatsweep()
        .args(["calibrate", "configs/llm-market-2025.uncalibrated.toml", "--observed", "data/llm-market-2025.csv"])
        .args(["--usage", "1.04e9", "--margin", "0.55", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let parse = |text: &str| moatsweep::config::parse("c.toml", text, None, root).unwrap();
    let (a, b) = (parse(&shipped), parse(&std::fs::read_to_string(&out).unwrap()));
    assert_eq!(a.base, b.base, "configs/llm-market-2025.toml is stale: calibrate it again (README)");
    assert_eq!(a.rows, b.rows);
    // Month 0 of the shipped baseline, solved forward, is the observed market.
    let (share, price) = month0(&a.base);
    let obs: Vec<(f64, f64)> = String::from_utf8(data)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with("firm,"))
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[1].parse().unwrap(), f[2].parse().unwrap())
        })
        .collect();
    assert_eq!(obs.len(), 5);
    for (i, (s, p)) in obs.into_iter().enumerate() {
        assert!((share[i] / s - 1.0).abs() < 1e-9 && (price[i] / p - 1.0).abs() < 1e-9, "firm {i}: {} {} vs {s} {p}", share[i], price[i]);
    }
}
