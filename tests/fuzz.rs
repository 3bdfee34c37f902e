//! Fuzz tests of the two parsers that take text from the user: the config
//! (`moatsweep::config::parse_config` on arbitrary and on mutated TOML) and the
//! `--where` expression of `discover`. Each must return, never panic (proptest
//! counts a panic as a failure and shrinks it), and every error must be one
//! line: no newline, carriage return, NUL or other control character, no
//! bidirectional control, and a quoted value cut (a message stays short).
//!
//! Bounded for CI: `PROPTEST_CASES` cases per test (default 2,000; each test
//! prints how many inputs it tried). The inputs that once crashed the binary
//! are regression tests in `tests/hostile.rs`.

use std::cell::Cell;
use std::path::Path;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

use moatsweep::analysis::discover::{MAX_WHERE_CHARS, check_where};
use moatsweep::config::parse_config;

/// Cases per test: `PROPTEST_CASES`, else 2,000.
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(2000)
}

fn runner() -> TestRunner {
    // A fixed seed per run is not needed: a failure prints its (shrunk) input.
    TestRunner::new(Config { cases: cases(), failure_persistence: None, ..Config::default() })
}

/// The bidirectional controls a message must never hold raw.
fn is_bidi(c: char) -> bool {
    matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// A one-line message: no control character, no bidirectional control, and not
/// longer than `max` characters.
fn one_line(message: &str, max: usize) -> Result<(), TestCaseError> {
    if let Some(c) = message.chars().find(|&c| c.is_control() || is_bidi(c)) {
        return Err(TestCaseError::fail(format!("raw {:?} in the message {message:?}", c)));
    }
    let n = message.chars().count();
    if n > max {
        return Err(TestCaseError::fail(format!("a message of {n} characters (at most {max}): {message:.300}")));
    }
    Ok(())
}

/// The shipped configs, the seeds of the mutations.
fn shipped() -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs");
    let mut texts: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    texts.sort();
    assert!(texts.len() >= 5, "the shipped configs are the fuzz's seeds");
    texts
}

/// Characters a mutation inserts: TOML's punctuation, digits, letters, and the
/// hostile ones (newline, CR, tab, NUL, DEL, RLO, an isolate, a BOM, non-ASCII).
fn hostile_char() -> impl Strategy<Value = char> {
    prop_oneof![
        4 => prop::sample::select(vec![
            '[', ']', '{', '}', '=', '"', '\'', ',', '.', '#', '-', '+', 'e', '_', ' ', '\n', '0', '1', '9', 'n', 'a', 'x',
        ]),
        1 => prop::sample::select(vec!['\r', '\t', '\0', '\u{7f}', '\u{202e}', '\u{2066}', '\u{feff}', 'é', '\u{85}']),
        1 => any::<char>(),
    ]
}

/// One edit of a text, at a position given as a fraction of its length.
#[derive(Clone, Debug)]
enum Edit {
    Insert(f64, String),
    Delete(f64, usize),
    /// A line repeated (tables and keys given twice).
    Duplicate(f64),
    /// A number replaced by an extreme one.
    Number(f64, &'static str),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        3 => (0.0..1.0f64, prop::collection::vec(hostile_char(), 1..12)).prop_map(|(at, s)| Edit::Insert(at, s.into_iter().collect())),
        2 => (0.0..1.0f64, 1usize..40).prop_map(|(at, n)| Edit::Delete(at, n)),
        1 => (0.0..1.0f64).prop_map(Edit::Duplicate),
        2 => (0.0..1.0f64, prop::sample::select(vec![
            "5e-324", "1e308", "-1e308", "0", "-0", "nan", "inf", "-inf", "1e-300", "9223372036854775807",
            "-9223372036854775808", "18446744073709551616", "4294967296", "1e19", "2.5", "-1", "\"never\"", "[]", "{}",
        ]))
        .prop_map(|(at, x)| Edit::Number(at, x)),
    ]
}

/// The char boundary of `text` nearest below `at` x its length.
fn boundary(text: &str, at: f64) -> usize {
    let mut i = ((text.len() as f64) * at) as usize;
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn apply(text: &mut String, e: &Edit) {
    match e {
        Edit::Insert(at, s) => {
            let i = boundary(text, *at);
            text.insert_str(i, s);
        }
        Edit::Delete(at, n) => {
            let i = boundary(text, *at);
            let end = text[i..].char_indices().nth(*n).map_or(text.len(), |(j, _)| i + j);
            text.replace_range(i..end, "");
        }
        Edit::Duplicate(at) => {
            let i = boundary(text, *at);
            let start = text[..i].rfind('\n').map_or(0, |p| p + 1);
            let end = text[i..].find('\n').map_or(text.len(), |p| i + p + 1);
            let line = text[start..end].to_string();
            text.insert_str(end, &line);
        }
        Edit::Number(at, x) => {
            // The first number at or after the position.
            let i = boundary(text, *at);
            let Some(s) = text[i..].find(|c: char| c.is_ascii_digit()).map(|p| i + p) else { return };
            let end = text[s..].find(|c: char| !(c.is_ascii_alphanumeric() || "._+-".contains(c))).map_or(text.len(), |p| s + p);
            text.replace_range(s..end, x);
        }
    }
}

/// Parses `text` as a config: an error must be one line, a quoted value cut.
fn parse_is_clean(text: &str) -> Result<bool, TestCaseError> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs");
    match parse_config("fuzz.toml", text, Some("fuzz"), &dir) {
        Ok(_) => Ok(true),
        Err(e) => {
            let message = e.to_string();
            // The longest legitimate messages list every parameter of a group.
            one_line(&message, 4000)?;
            prop_assert!(message.starts_with("fuzz.toml"), "the message names the file: {message}");
            Ok(false)
        }
    }
}

#[test]
fn mutated_shipped_configs_never_panic_and_errors_are_one_line() {
    let seeds = shipped();
    let strategy = (0..seeds.len(), prop::collection::vec(edit(), 1..6));
    let (tried, accepted) = (Cell::new(0u64), Cell::new(0u64));
    runner()
        .run(&strategy, |(k, edits)| {
            let mut text = seeds[k].clone();
            for e in &edits {
                apply(&mut text, e);
            }
            tried.set(tried.get() + 1);
            if parse_is_clean(&text)? {
                accepted.set(accepted.get() + 1);
            }
            Ok(())
        })
        .unwrap();
    println!("config parser, mutated shipped configs: {} inputs tried, {} accepted", tried.get(), accepted.get());
    assert_eq!(tried.get(), u64::from(cases()));
}

#[test]
fn arbitrary_toml_never_panics_and_errors_are_one_line() {
    // Short documents of keys, tables and values from the parameter paths and
    // hostile characters: deep arrays and inline tables, dotted keys, odd values.
    let key = prop_oneof![
        prop::sample::select(vec![
            "version",
            "sweep",
            "name",
            "design",
            "samples",
            "seed",
            "model",
            "months",
            "firm",
            "segment",
            "axes",
            "reduce",
            "output",
            "format",
            "values",
            "logspace",
            "steps",
            "range",
            "list",
            "brand",
            "release_month",
            "train_spend",
            "price_sens",
            "by",
            "outputs",
            "stats",
            "best",
        ])
        .prop_map(String::from),
        prop::collection::vec(hostile_char(), 1..8)
            .prop_map(|v| format!("\"{}\"", v.into_iter().collect::<String>().replace(['"', '\\'], ""))),
    ];
    let value = prop_oneof![
        any::<f64>().prop_map(|x| format!("{x:?}")),
        any::<i64>().prop_map(|x| x.to_string()),
        prop::sample::select(vec![
            "true",
            "\"never\"",
            "\"grid\"",
            "[0, 3, \"never\"]",
            "{ values = [1] }",
            "1979-05-27",
            "[[[[[[[[1]]]]]]]]"
        ])
        .prop_map(String::from),
        (1usize..200).prop_map(|n| format!("{}1{}", "[".repeat(n), "]".repeat(n))),
        (1usize..200).prop_map(|n| format!("{}1{}", "{a=".repeat(n), "}".repeat(n))),
        prop::collection::vec(hostile_char(), 0..20).prop_map(|v| v.into_iter().collect::<String>()),
    ];
    let line = prop_oneof![
        (key.clone(), value).prop_map(|(k, v)| format!("{k} = {v}")),
        key.clone().prop_map(|k| format!("[{k}]")),
        key.clone().prop_map(|k| format!("[[{k}]]")),
        (key.clone(), key).prop_map(|(a, b)| format!("[{a}.{b}]")),
    ];
    let strategy = prop::collection::vec(line, 0..25);
    let tried = Cell::new(0u64);
    runner()
        .run(&strategy, |lines| {
            tried.set(tried.get() + 1);
            parse_is_clean(&lines.join("\n"))?;
            Ok(())
        })
        .unwrap();
    println!("config parser, arbitrary TOML: {} inputs tried", tried.get());
    assert_eq!(tried.get(), u64::from(cases()));
}

#[test]
fn where_expressions_never_panic_and_errors_are_one_line() {
    let columns: Vec<String> =
        ["firm.open.release_month", "firm.challenger.funding", "npv.open", "exit_month.challenger"].map(String::from).to_vec();
    let token = prop_oneof![
        prop::sample::select(vec![
            "(",
            ")",
            "not ",
            " and ",
            " or ",
            "<",
            "<=",
            ">",
            ">=",
            "==",
            "!=",
            "!",
            "=",
            "npv.open",
            "exit_month.challenger",
            "firm.open.release_month",
            "npv.opn",
            "0",
            "-1e9",
            "1e400",
            "nan",
            "inf",
            ".5",
            "-",
            "+",
            "1e",
            "0x10",
            " ",
        ])
        .prop_map(String::from),
        hostile_char().prop_map(String::from),
    ];
    let nesting = (1usize..300, 0usize..3).prop_map(|(n, kind)| match kind {
        0 => "(".repeat(n),
        1 => "not ".repeat(n),
        _ => format!("{}npv.open > 0{}", "(".repeat(n), ")".repeat(n)),
    });
    let strategy = prop::collection::vec(prop_oneof![8 => token, 1 => nesting], 0..40).prop_map(|v| v.concat());
    let (tried, accepted) = (Cell::new(0u64), Cell::new(0u64));
    runner()
        .run(&strategy, |text| {
            tried.set(tried.get() + 1);
            match check_where(&text, &columns) {
                Ok(()) => accepted.set(accepted.get() + 1),
                // discover quotes the expression itself, cut; the parser's message quotes only pieces of it.
                Err(e) => one_line(&e, MAX_WHERE_CHARS)?,
            }
            Ok(())
        })
        .unwrap();
    println!("--where parser: {} inputs tried, {} accepted", tried.get(), accepted.get());
    assert_eq!(tried.get(), u64::from(cases()));
}
