//! `tern bench`: llama-bench's JSON records and table, and one-line errors for bad options.

mod common;

use common::{repo, stderr, tern};
use serde_json::Value;

/// Runs `bench --json` with `args` and returns its records.
fn records(args: &[&str]) -> Vec<Value> {
    let mut all = vec!["bench", "--json"];
    all.extend_from_slice(args);
    let out = tern(&all);
    assert!(out.status.success(), "{all:?}: {}", stderr(&out));
    let json: Value = serde_json::from_slice(&out.stdout).expect("stdout is JSON");
    json.as_array().expect("a JSON array").clone()
}

fn check_record(r: &Value, test: &str, n_prompt: u64, n_gen: u64, reps: usize, threads: u64) {
    assert_eq!(r["test"], test, "{r}");
    assert_eq!(r["n_prompt"], n_prompt, "{r}");
    assert_eq!(r["n_gen"], n_gen, "{r}");
    assert_eq!(r["n_threads"], threads, "{r}");
    assert!(r["backend"].as_str().unwrap().starts_with("cpu"), "{r}");
    for key in ["model_size", "model_n_params", "avg_ns", "peak_rss_bytes"] {
        assert!(r[key].as_u64().unwrap_or(0) > 0, "{key}: {r}");
    }
    for key in ["avg_ts", "load_ms"] {
        assert!(r[key].as_f64().unwrap_or(0.0) > 0.0, "{key}: {r}");
    }
    assert!(r["stddev_ts"].as_f64().unwrap() >= 0.0, "{r}");
    assert!(r["stddev_ns"].as_u64().is_some(), "{r}");
    assert!(!r["model_filename"].as_str().unwrap().is_empty());
    assert!(!r["model_type"].as_str().unwrap().is_empty());
    let samples = r["samples_ts"].as_array().unwrap();
    assert_eq!(samples.len(), reps, "{r}");
    let mean = samples.iter().map(|s| s.as_f64().unwrap()).sum::<f64>() / reps as f64;
    let avg = r["avg_ts"].as_f64().unwrap();
    assert!((mean - avg).abs() <= 1e-9 * avg, "{mean} vs {avg}");
}

#[test]
fn json_has_one_llama_bench_record_per_test() {
    let rs = records(&["-p", "8", "-n", "4", "-r", "2", "-t", "1"]);
    assert_eq!(rs.len(), 2, "{rs:?}");
    check_record(&rs[0], "pp8", 8, 0, 2, 1);
    check_record(&rs[1], "tg4", 0, 4, 2, 1);
    assert_eq!(rs[0]["model_type"], "llama 260K Q8_0");
}

#[test]
fn json_on_a_fixture_with_lists_and_two_threads() {
    let model = repo("testdata/fixtures/qwen2/qwen2-q4_0.gguf");
    let rs = records(&[
        "-m",
        model.to_str().unwrap(),
        "-p",
        "8,0,16",
        "-n",
        "4",
        "-r",
        "2",
        "-t",
        "2",
    ]);
    let tests: Vec<&str> = rs.iter().map(|r| r["test"].as_str().unwrap()).collect();
    assert_eq!(tests, ["pp8", "pp16", "tg4"]);
    check_record(&rs[1], "pp16", 16, 0, 2, 2);
    assert!(rs[0]["model_type"].as_str().unwrap().starts_with("qwen2 "));
    assert!(
        rs[0]["model_filename"]
            .as_str()
            .unwrap()
            .ends_with("qwen2-q4_0.gguf")
    );
}

#[test]
fn the_table_reads_like_llama_bench() {
    let out = tern(&["bench", "-p", "8", "-n", "0", "-r", "1", "-t", "1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let lines: Vec<&str> = text.lines().collect();
    let cells = |line: &str| -> Vec<String> {
        line.split('|')
            .map(|c| c.trim().to_string())
            .filter(|c| !c.is_empty())
            .collect()
    };
    assert_eq!(
        cells(lines[0]),
        [
            "model", "size", "params", "backend", "threads", "test", "t/s"
        ],
        "{text}"
    );
    assert!(lines[1].starts_with("| ---"), "{text}");
    let row = cells(lines[2]);
    assert_eq!(row[0], "llama 260K Q8_0");
    assert!(row[1].ends_with(" MiB"), "{text}");
    assert!(row[2].ends_with(" M"), "{text}");
    assert_eq!(row[4], "1");
    assert_eq!(row[5], "pp8");
    assert!(row[6].contains(" ± "), "{text}");
    assert_eq!(
        lines.iter().filter(|l| l.starts_with('|')).count(),
        3,
        "{text}"
    );
    assert!(text.contains("load time: "), "{text}");
    for part in [
        "memory after loading:",
        "memory at the end:",
        "KV cache",
        "peak RSS ",
    ] {
        assert!(text.contains(part), "{part}: {text}");
    }
}

/// Asserts failure with one `error:` line that contains `needle`, and no results printed.
fn assert_fails_with(args: &[&str], needle: &str) {
    let out = common::assert_fails_with(args, needle);
    assert!(out.stdout.is_empty(), "{args:?} printed results");
}

#[test]
fn bad_options_are_one_line_errors() {
    assert_fails_with(&["bench", "-p", ""], "empty list");
    assert_fails_with(&["bench", "-p", "8,x"], "`x`");
    assert_fails_with(&["bench", "-n", "four"], "`four`");
    assert_fails_with(&["bench", "-r", "0"], "repetition");
    assert_fails_with(&["bench", "-t", "1000"], "at most 512 threads");
    assert_fails_with(&["bench", "-p", "0", "-n", "0"], "nothing to time");
    assert_fails_with(&["bench", "-p", "100000"], "context of 100000 tokens");
    assert_fails_with(
        &["bench", "-m", "/no/such/model.gguf"],
        "/no/such/model.gguf",
    );
    assert_fails_with(&["run", "-t", "513", "-p", "x"], "at most 512 threads");
}

#[test]
fn run_takes_a_thread_count() {
    let out = tern(&[
        "run",
        "-p",
        "Once upon a time",
        "-n",
        "4",
        "--temp",
        "0",
        "-t",
        "2",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("2 threads"), "{}", stderr(&out));
}
