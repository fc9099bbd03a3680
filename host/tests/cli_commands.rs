//! The `tern` commands besides `run`: `tokenize` as llama-tokenize, `devices` with the CPU
//! first, `inspect` with `-m` as well as a path.

mod common;

use std::io::Write;
use std::process::{Command, Output, Stdio};

use common::{assert_fails_with, json, repo, stderr, tern};

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn ok(args: &[&str]) -> String {
    let out = tern(args);
    assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    stdout(&out)
}

/// `[1, 2, 3]` as llama-tokenize's `--ids` prints it.
fn id_list(ids: &[u32]) -> String {
    let ids: Vec<String> = ids.iter().map(u32::to_string).collect();
    format!("[{}]\n", ids.join(", "))
}

#[test]
fn tokenize_gives_llama_cpp_ids_for_the_bundled_model() {
    let reference = json("testdata/stories260K/reference.json");
    for case in reference["tokenizer_vectors"].as_array().unwrap() {
        let text = case["text"].as_str().unwrap();
        let expected = id_list(&common::ids(&case["llama_cpp_q8_0_ids"]));
        assert_eq!(
            ok(&["tokenize", "--no-escape", "-p", text, "--ids"]),
            expected
        );
        // The same from a file given with -m.
        let model = repo("models/stories260K-f32.gguf");
        let model = model.to_str().unwrap();
        let args = ["tokenize", "-m", model, "--no-escape", "-p", text, "--ids"];
        assert_eq!(ok(&args), expected);
    }
}

#[test]
fn tokenize_lists_pieces_as_llama_tokenize_does() {
    let listing = ok(&["tokenize", "-p", "Once upon a time", "--show-count"]);
    assert_eq!(
        listing,
        "     1 -> '<s>'\n   403 -> ' Once'\n   407 -> ' upon'\n   261 -> ' a'\n   378 -> ' \
         time'\nTotal number of tokens: 5\n"
    );
    // A byte token that is part of a character is written as its byte, as llama-tokenize
    // writes it on unix.
    let out = tern(&["tokenize", "-p", "你", "--no-bos"]);
    let expected: &[u8] = b"   410 -> ' '\n   231 -> '\xe4'\n   192 -> '\xbd'\n   163 -> '\xa0'\n";
    assert_eq!(out.stdout, expected, "{}", stdout(&out));
    // Byte-level BPE pieces are the bytes llama.cpp records for each id.
    let reference = json("testdata/gpt2_tokenizer/reference.json");
    let pieces = reference["pieces_hex"].as_array().unwrap();
    let model = repo("testdata/gpt2_tokenizer/qwen2.gguf");
    let text = "Once upon a time, there was a little girl named Lily.";
    let listing = ok(&["tokenize", "-m", model.to_str().unwrap(), "-p", text]);
    let mut spelled = String::new();
    for line in listing.lines() {
        let (id, piece) = line.split_once(" -> ").unwrap();
        let id: usize = id.trim().parse().unwrap();
        let piece = piece
            .strip_prefix('\'')
            .unwrap()
            .strip_suffix('\'')
            .unwrap();
        let hex = pieces[id].as_str().unwrap();
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        assert_eq!(piece.as_bytes(), bytes, "{line}");
        spelled.push_str(piece);
    }
    assert_eq!(spelled, text);
}

#[test]
fn tokenize_options_match_llama_tokenize() {
    // Escapes are replaced unless told not to, as llama-tokenize does.
    assert_eq!(
        ok(&["tokenize", "-p", r"a\nb", "--ids"]),
        "[1, 261, 13, 430]\n"
    );
    let literal = ok(&["tokenize", "-p", r"a\nb", "--ids", "--no-escape"]);
    assert_ne!(literal, "[1, 261, 13, 430]\n");
    assert_eq!(ok(&["tokenize", "-p", "a", "--ids", "--no-bos"]), "[261]\n");
    // Control-token spellings are the token, or text with --no-parse-special.
    assert_eq!(ok(&["tokenize", "-p", "<s>", "--ids", "--no-bos"]), "[1]\n");
    let plain = ok(&[
        "tokenize",
        "-p",
        "<s>",
        "--ids",
        "--no-bos",
        "--no-parse-special",
    ]);
    assert_ne!(plain, "[1]\n");
    // The text from standard input, by --stdin or -f -.
    for source in [&["--stdin"][..], &["-f", "-"]] {
        let mut child = Command::new(common::tern_binary())
            .args(["tokenize", "--ids"])
            .args(source)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(b"a\nb").unwrap();
        let out = child.wait_with_output().unwrap();
        assert_eq!(stdout(&out), "[1, 261, 13, 430]\n", "{}", stderr(&out));
    }
    assert_fails_with(&["tokenize"], "--prompt <PROMPT>|--file <FILE>|--stdin");
    assert_fails_with(&["tokenize", "-p", "a", "--stdin"], "cannot be used with");
    assert_fails_with(
        &["tokenize", "-m", "/no/such.gguf", "-p", "a"],
        "cannot open model `/no/such.gguf`",
    );
}

#[test]
fn devices_lists_the_cpu_first() {
    let listing = ok(&["devices"]);
    let first = listing.lines().next().unwrap();
    let cpu = tern::engine::cpu_device();
    assert_eq!(
        first,
        format!(
            "CPU (--backend cpu): {}, {} physical cores",
            cpu.kernels, cpu.physical_cores
        )
        .replace(" 1 physical cores", " 1 physical core")
    );
    assert_eq!(cpu.physical_cores, tern::threads::physical_cores());
    // The kernels the CPU backend runs with, as `run` names them in its timings.
    let run = tern(&["run", "-p", "Once", "-n", "1", "--temp", "0"]);
    let cpu_backend = format!("backend cpu ({})", cpu.kernels);
    assert!(stderr(&run).contains(&cpu_backend), "{}", stderr(&run));
}

#[test]
fn inspect_takes_the_model_as_a_path_or_with_m() {
    let model = repo("models/stories260K-f32.gguf");
    let model = model.to_str().unwrap();
    let by_path = ok(&["inspect", model]);
    assert!(
        by_path.starts_with(&format!("model:         {model}\n")),
        "{by_path}"
    );
    assert_eq!(ok(&["inspect", "-m", model]), by_path);
    assert_eq!(ok(&["inspect", "--model", model]), by_path);
    assert_fails_with(&["inspect", "-m", model, model], "cannot be used with");
}
