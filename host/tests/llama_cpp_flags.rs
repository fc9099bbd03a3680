//! llama.cpp's flags on Tern's command line: the same meaning, or one line on what Tern
//! does instead; and a misspelled flag or command gets the one meant.

mod common;

use common::{assert_fails_with, repo, stderr, tern};

#[test]
fn multi_letter_flags_are_answered_not_misread() {
    // Once `-ngl 99` read as `-n gl`.
    let out = assert_fails_with(
        &["run", "-ngl", "99", "-p", "x"],
        "-ngl 99 (llama.cpp's GPU layers) has no Tern equivalent",
    );
    assert!(
        stderr(&out).contains("--backend vulkan|opencl"),
        "{}",
        stderr(&out)
    );
    assert_eq!(out.status.code(), Some(2));
    for (args, needle) in [
        (&["bench", "-ngl", "99"][..], "GPU layers"),
        (&["run", "--n-gpu-layers", "99"], "GPU layers"),
        // `tern chat`, which the bundled model needs a template for.
        (&["run", "-cnv"], "with --chat-template NAME|FILE"),
        (
            &["run", "-sys", "be brief"],
            "-sys be brief (llama.cpp's system prompt) needs a conversation",
        ),
        (&["run", "-i"], "`tern chat`"),
        // The bundled model's heads of 8 are not whole q8_0 blocks of 32.
        (
            &["run", "-ctk", "q8_0"],
            "a q8_0 cache needs heads of a multiple of 32",
        ),
        (
            &["run", "-ctk", "fp8", "-ctv", "fp8"],
            "fp8 holds values only",
        ),
        (
            &["run", "-ctk", "q4_0"],
            "possible values: f32, f16, q8_0, fp8",
        ),
        (&["bench", "-ub", "256"], "use -b"),
        (&["bench", "-o", "csv"], "--json"),
    ] {
        assert_fails_with(args, needle);
    }
}

#[test]
fn flags_of_the_same_meaning_run() {
    // -fa has nothing to switch: a note, and the run goes on.
    let out = tern(&["run", "-fa", "on", "-p", "Once", "-n", "2", "--temp", "0"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    let notes: Vec<&str> = err.lines().filter(|l| l.starts_with("note: ")).collect();
    assert_eq!(notes.len(), 1, "{}", stderr(&out));
    assert!(notes[0].contains("-fa on (llama.cpp's flash attention) is ignored"));
    // -ctk/-ctv are --cache-type-k/-v; -o json is --json.
    let out = tern(&[
        "bench", "-ctk", "f32", "-ctv", "f32", "-o", "json", "-p", "8", "-n", "0", "-r", "1", "-t",
        "1",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let records: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(records[0]["type_k"], "f32");
    assert_eq!(records[0]["type_v"], "f32");
    // The flags Tern shares with llama-cli, spelled as llama-cli takes them.
    let model = repo("models/stories260K-q8_0.gguf");
    let out = tern(&[
        "run",
        "-m",
        model.to_str().unwrap(),
        "-p",
        r"Once\nupon",
        "-e",
        "-n",
        "4",
        "-c",
        "64",
        "-b",
        "8",
        "-t",
        "1",
        "-s",
        "7",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("Once\nupon"));
    assert!(
        stderr(&out).contains("generated: 4 tokens"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("1 threads"), "{}", stderr(&out));
}

#[test]
fn a_value_that_looks_like_a_llama_flag_stays_a_value() {
    let out = tern(&["run", "--prompt=-ngl", "-n", "1", "--temp", "0"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("-ngl"));
}

#[test]
fn misspelled_flags_and_commands_get_the_one_meant() {
    for (args, needle) in [
        (
            &["run", "--n-predcit", "4"][..],
            "unexpected argument '--n-predcit' found; a similar argument exists: '--n-predict'",
        ),
        (
            &["run", "--temperature", "0.5"],
            "a similar argument exists: '--temp'",
        ),
        (
            &["bench", "--repetition", "3"],
            "a similar argument exists: '--repetitions'",
        ),
        (
            &["tokenise", "-p", "x"],
            "a similar subcommand exists: 'tokenize'",
        ),
    ] {
        let out = assert_fails_with(args, needle);
        assert_eq!(out.status.code(), Some(2));
    }
}
