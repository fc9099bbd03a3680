//! llama.cpp's flags on Tern's command line. llama.cpp's tools take short flags of several
//! letters (`-ngl`, `-ctk`, `-fa`), which clap cannot declare and would misread as a
//! one-letter flag with a value (`-ngl 99` as `-n gl`). Before clap sees the arguments, each
//! such flag (and the long flags of the same meaning, which Tern lacks) becomes Tern's flag
//! where one means the same, is dropped with a note where it would change nothing, or is
//! refused with one line on what Tern does instead. `docs/llama-cpp-flags.md` has the table
//! of llama.cpp's flags and Tern's.

use std::ffi::OsString;

/// The command line for clap, and what was dropped from it.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Translated {
    /// The arguments clap parses.
    pub args: Vec<OsString>,
    /// One line for each llama.cpp flag dropped as meaning nothing in Tern.
    pub notes: Vec<String>,
}

/// One llama.cpp flag that Tern's parser would not take.
struct LlamaFlag {
    /// Its spellings, short first.
    names: &'static [&'static str],
    /// What it means in llama.cpp, in a few words.
    what: &'static str,
    takes: Takes,
    meaning: Meaning,
}

/// What follows the flag on llama.cpp's command line.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Takes {
    Nothing,
    Value,
    /// A value only where the next word is a switch's state (`-fa on`; `-fa 0,1` for
    /// llama-bench); older llama.cpp took the bare flag.
    Switch,
}

/// What Tern makes of a llama.cpp flag.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Meaning {
    /// No Tern flag means the same; the text says what Tern does instead.
    Refused(&'static str),
    /// Nothing to switch in Tern; the text says why.
    Dropped(&'static str),
    /// Tern's flag of the same meaning and values, named here.
    Renamed(&'static str),
    /// llama-bench's output format: `json` is `tern bench --json`, `md` its default table.
    BenchOutput,
    /// Conversation mode: `tern run -cnv` is `tern chat`.
    Conversation,
    /// The system prompt: `tern chat --system-prompt`.
    SystemPrompt,
}

/// One device, whole: the answer to every flag that splits a model across devices.
const ONE_DEVICE: &str = "Tern runs the whole model on one device: --backend vulkan|opencl \
                          --device N (numbered as `tern devices` lists them)";

const FLAGS: &[LlamaFlag] = &[
    LlamaFlag {
        names: &["-ngl", "--gpu-layers", "--n-gpu-layers"],
        what: "GPU layers",
        takes: Takes::Value,
        meaning: Meaning::Refused(
            "Tern runs the whole model on one backend; use --backend vulkan|opencl|auto \
             (see `tern devices`)",
        ),
    },
    // The long spellings are Tern's own flags.
    LlamaFlag {
        names: &["-ctk"],
        what: "KV cache type of keys",
        takes: Takes::Value,
        meaning: Meaning::Renamed("--cache-type-k"),
    },
    LlamaFlag {
        names: &["-ctv"],
        what: "KV cache type of values",
        takes: Takes::Value,
        meaning: Meaning::Renamed("--cache-type-v"),
    },
    LlamaFlag {
        names: &["-fa", "--flash-attn"],
        what: "flash attention",
        takes: Takes::Switch,
        meaning: Meaning::Dropped(
            "Tern has no such switch: each backend has one attention path (the cpu backend \
             streams an online softmax, as flash attention does; the reference and GPU \
             backends compute llama.cpp's attention without it)",
        ),
    },
    LlamaFlag {
        names: &["-cnv", "--conversation"],
        what: "conversation mode",
        takes: Takes::Nothing,
        meaning: Meaning::Conversation,
    },
    LlamaFlag {
        names: &["-no-cnv", "--no-conversation"],
        what: "plain completion",
        takes: Takes::Nothing,
        meaning: Meaning::Dropped("`tern run` always continues the prompt as given"),
    },
    LlamaFlag {
        // Not `--system-prompt`: `tern chat` has it.
        names: &["-sys"],
        what: "system prompt",
        takes: Takes::Value,
        meaning: Meaning::SystemPrompt,
    },
    LlamaFlag {
        names: &["--chat-template-file"],
        what: "chat template file",
        takes: Takes::Value,
        meaning: Meaning::Renamed("--chat-template"),
    },
    LlamaFlag {
        names: &["--jinja"],
        what: "Jinja chat templates",
        takes: Takes::Nothing,
        meaning: Meaning::Dropped(
            "Tern's chat templates are always Jinja, rendered as transformers renders them",
        ),
    },
    LlamaFlag {
        names: &["-i", "--interactive", "-if", "--interactive-first"],
        what: "interactive mode",
        takes: Takes::Nothing,
        meaning: Meaning::Refused(
            "`tern chat` (or `tern run -cnv`) is Tern's interactive mode: a conversation in \
             the model's chat template",
        ),
    },
    LlamaFlag {
        names: &["-ub", "--ubatch-size"],
        what: "physical batch size",
        takes: Takes::Value,
        meaning: Meaning::Refused(
            "Tern feeds at most -b prompt tokens per step and has no second batch size; \
             use -b",
        ),
    },
    LlamaFlag {
        names: &["-tb", "--threads-batch"],
        what: "prompt threads",
        takes: Takes::Value,
        meaning: Meaning::Refused("-t sets the threads of prompt and generation alike"),
    },
    LlamaFlag {
        names: &["-np", "--parallel"],
        what: "parallel sequences",
        takes: Takes::Value,
        meaning: Meaning::Refused("a Tern session decodes one sequence"),
    },
    LlamaFlag {
        names: &["-mg", "--main-gpu"],
        what: "main GPU",
        takes: Takes::Value,
        meaning: Meaning::Refused(ONE_DEVICE),
    },
    LlamaFlag {
        names: &["-sm", "--split-mode"],
        what: "split mode",
        takes: Takes::Value,
        meaning: Meaning::Refused(ONE_DEVICE),
    },
    LlamaFlag {
        names: &["-ts", "--tensor-split"],
        what: "tensor split",
        takes: Takes::Value,
        meaning: Meaning::Refused(ONE_DEVICE),
    },
    LlamaFlag {
        // Not `--device`: Tern's takes a device's number.
        names: &["-dev"],
        what: "device list",
        takes: Takes::Value,
        meaning: Meaning::Refused(ONE_DEVICE),
    },
    LlamaFlag {
        names: &["-nkvo", "--no-kv-offload"],
        what: "KV cache kept in host memory",
        takes: Takes::Nothing,
        meaning: Meaning::Refused(
            "the KV cache lives where the backend computes; on the CPU backends \
             --kv-dram-tokens N keeps only the newest positions in DRAM",
        ),
    },
    LlamaFlag {
        names: &["-hf", "-hfr", "--hf-repo"],
        what: "download from Hugging Face",
        takes: Takes::Value,
        meaning: Meaning::Refused("Tern reads a local GGUF file (-m FILE); download it first"),
    },
    LlamaFlag {
        names: &["-bf", "--binary-file"],
        what: "binary prompt file",
        takes: Takes::Value,
        meaning: Meaning::Refused("Tern's prompts are UTF-8 text (-f FILE)"),
    },
    LlamaFlag {
        names: &["-co", "--color"],
        what: "colored output",
        takes: Takes::Nothing,
        meaning: Meaning::Dropped("Tern prints plain text"),
    },
    LlamaFlag {
        names: &["--log-disable"],
        what: "quiet logs",
        takes: Takes::Nothing,
        meaning: Meaning::Dropped("Tern keeps no log: stderr holds errors, notes and timings"),
    },
    LlamaFlag {
        names: &["-mmp"],
        what: "llama-bench memory mapping",
        takes: Takes::Value,
        meaning: Meaning::Dropped(
            "Tern always maps the model file; the cpu backend copies the weights it repacks \
             into memory",
        ),
    },
    LlamaFlag {
        names: &["-pg"],
        what: "llama-bench prompt and generation test",
        takes: Takes::Value,
        meaning: Meaning::Refused(
            "`tern bench` times prompts (-p N) and generation (-n N) as separate tests",
        ),
    },
    LlamaFlag {
        names: &["-o", "--output"],
        what: "llama-bench output format",
        takes: Takes::Value,
        meaning: Meaning::BenchOutput,
    },
];

/// `args` (the program's name first) with llama.cpp's flags made Tern's; `command` is
/// Tern's parser, whose options that take a value have that value passed over unread (the
/// prompt `-p -ngl` stays a prompt). An error is the one line to print.
pub(super) fn translate(
    args: Vec<OsString>,
    command: &clap::Command,
) -> Result<Translated, String> {
    let mut words = args.into_iter();
    let mut out: Vec<OsString> = words.by_ref().take(1).collect();
    let mut notes = Vec::new();
    // Up to the subcommand, nothing is llama.cpp's.
    let mut sub = None;
    let mut sub_at = 0;
    for word in words.by_ref() {
        let name = word
            .to_str()
            .filter(|w| !w.starts_with('-'))
            .map(str::to_owned);
        out.push(word);
        if let Some(name) = name {
            sub = command.find_subcommand(&name);
            sub_at = out.len() - 1;
            break;
        }
    }
    let Some(sub) = sub else {
        out.extend(words);
        return Ok(Translated { args: out, notes });
    };
    let takes_value = options_with_values(sub);
    let mut conversation = None;
    let mut system_prompt = None;
    while let Some(word) = words.next() {
        let Some(text) = word.to_str() else {
            out.push(word);
            continue;
        };
        if text == "--" {
            out.push(word);
            break;
        }
        if takes_value.iter().any(|o| o == text) {
            out.push(word);
            out.extend(words.next());
            continue;
        }
        let (name, attached) = match text.split_once('=') {
            Some((name, value)) if name.starts_with("--") => (name, Some(value.to_owned())),
            _ => (text, None),
        };
        let Some(flag) = FLAGS.iter().find(|f| f.names.contains(&name)) else {
            out.push(word);
            continue;
        };
        let value = match (flag.takes, attached) {
            (Takes::Nothing, _) => None,
            (_, Some(value)) => Some(value),
            (Takes::Value, None) => Some(
                words
                    .next()
                    .and_then(|v| v.into_string().ok())
                    .ok_or_else(|| format!("{name} (llama.cpp's {}) needs a value", flag.what))?,
            ),
            (Takes::Switch, None) => {
                let next = words.as_slice().first().and_then(|w| w.to_str());
                match next.is_some_and(is_switch_state) {
                    true => words.next().and_then(|v| v.into_string().ok()),
                    false => None,
                }
            }
        };
        let given = match &value {
            Some(value) => format!("{name} {value}"),
            None => name.to_string(),
        };
        match flag.meaning {
            Meaning::Refused(hint) => {
                return Err(format!(
                    "{given} (llama.cpp's {}) has no Tern equivalent: {hint}",
                    flag.what
                ));
            }
            Meaning::Dropped(why) => {
                notes.push(format!(
                    "{given} (llama.cpp's {}) is ignored: {why}",
                    flag.what
                ));
            }
            Meaning::Renamed(tern) => {
                out.push(tern.into());
                out.extend(value.map(OsString::from));
            }
            Meaning::Conversation => conversation = Some(given),
            Meaning::SystemPrompt => {
                system_prompt.get_or_insert(given);
                out.push("--system-prompt".into());
                out.extend(value.map(OsString::from));
            }
            Meaning::BenchOutput => match value.as_deref() {
                Some("json") => out.push("--json".into()),
                Some("md") => {}
                _ => {
                    return Err(format!(
                        "{given} (llama.cpp's {}) has no Tern equivalent: `tern bench` prints \
                         a table (llama-bench's md) or, with --json, llama-bench's json records",
                        flag.what
                    ));
                }
            },
        }
    }
    out.extend(words);
    match (sub.get_name(), conversation) {
        ("chat", _) => {}
        ("run", Some(_)) => out[sub_at] = "chat".into(),
        (name, Some(given)) => {
            return Err(format!(
                "{given} (llama.cpp's conversation mode) is for `tern run`, which it makes \
                 `tern chat`; `tern {name}` has no conversation"
            ));
        }
        (_, None) => {
            if let Some(given) = system_prompt {
                return Err(format!(
                    "{given} (llama.cpp's system prompt) needs a conversation: \
                     `tern chat -sys TEXT` (or `tern run -cnv -sys TEXT`)"
                ));
            }
        }
    }
    Ok(Translated { args: out, notes })
}

/// A state of a llama.cpp switch (`on`, `off`, `auto`, `0`, `1`), or llama-bench's list of
/// them (`0,1`).
fn is_switch_state(word: &str) -> bool {
    word.split(',')
        .all(|s| matches!(s, "on" | "off" | "auto" | "0" | "1" | "true" | "false"))
}

/// Every spelling of `command`'s options that take a value (`-p`, `--prompt`, aliases).
fn options_with_values(command: &clap::Command) -> Vec<String> {
    let mut names = Vec::new();
    for arg in command.get_arguments() {
        if arg.is_positional() || !arg.get_action().takes_values() {
            continue;
        }
        let shorts = arg.get_short_and_visible_aliases().unwrap_or_default();
        names.extend(shorts.into_iter().map(|c| format!("-{c}")));
        let longs = arg.get_long_and_visible_aliases().unwrap_or_default();
        names.extend(longs.into_iter().map(|l| format!("--{l}")));
    }
    names
}

#[cfg(test)]
mod tests {
    use std::ffi::OsString;

    use clap::CommandFactory;

    use super::{FLAGS, Translated, translate};

    fn words(line: &str) -> Vec<OsString> {
        line.split(' ').map(OsString::from).collect()
    }

    fn run(line: &str) -> Result<Translated, String> {
        let mut command = super::super::Cli::command();
        command.build();
        translate(words(line), &command)
    }

    fn args(line: &str) -> Vec<OsString> {
        let translated = run(line).unwrap();
        assert!(translated.notes.is_empty(), "{:?}", translated.notes);
        translated.args
    }

    #[test]
    fn tern_flags_and_their_values_pass_unchanged() {
        for line in [
            "tern run -p x -n 5 -c 64 -b 8 -t 2 -e --kv-type f32",
            "tern run -p -ngl -f -fa",
            "tern run --prompt -ctk",
            "tern bench -p 8 -n 4 -r 2",
            "tern run -- -ngl",
            "tern --help",
            "tern",
        ] {
            assert_eq!(args(line), words(line), "{line}");
        }
    }

    #[test]
    fn no_llama_flag_is_one_of_terns() {
        let mut command = super::super::Cli::command();
        command.build();
        for sub in command.get_subcommands() {
            for arg in sub.get_arguments() {
                let shorts = arg.get_short_and_visible_aliases().unwrap_or_default();
                let longs = arg.get_long_and_visible_aliases().unwrap_or_default();
                let names = shorts
                    .iter()
                    .map(|c| format!("-{c}"))
                    .chain(longs.iter().map(|l| format!("--{l}")));
                for name in names {
                    let llama = FLAGS.iter().any(|f| f.names.contains(&name.as_str()));
                    assert!(!llama, "{name} of {}", sub.get_name());
                }
            }
        }
        assert!(FLAGS.iter().all(|f| !f.names.is_empty()));
    }

    #[test]
    fn flags_without_equivalent_are_refused_with_a_hint() {
        let err = run("tern run -m x.gguf -ngl 99 -p hi").unwrap_err();
        assert!(
            err.starts_with("-ngl 99 (llama.cpp's GPU layers) has no Tern"),
            "{err}"
        );
        assert!(err.contains("--backend vulkan|opencl"), "{err}");
        let err = run("tern run --n-gpu-layers=99").unwrap_err();
        assert!(
            err.starts_with("--n-gpu-layers 99 (llama.cpp's GPU layers)"),
            "{err}"
        );
        let err = run("tern run -i").unwrap_err();
        assert!(err.contains("`tern chat`"), "{err}");
        assert!(run("tern bench -ub 512").unwrap_err().contains("use -b"));
        assert!(
            run("tern bench -ngl")
                .unwrap_err()
                .contains("needs a value")
        );
    }

    #[test]
    fn every_spelling_of_every_flag_gets_its_answer() {
        use super::{Meaning, Takes};
        for flag in FLAGS {
            for name in flag.names {
                let line = match flag.takes {
                    Takes::Value => format!("tern bench {name} 1 -p 8"),
                    Takes::Nothing | Takes::Switch => format!("tern bench {name} -p 8"),
                };
                let result = run(&line);
                match flag.meaning {
                    Meaning::Refused(_) => {
                        let err = result.unwrap_err();
                        assert!(err.starts_with(&format!("{name} ")), "{line}: {err}");
                        assert!(err.contains("has no Tern equivalent"), "{line}: {err}");
                    }
                    Meaning::Dropped(_) => {
                        let translated = result.unwrap();
                        assert_eq!(translated.args, words("tern bench -p 8"), "{line}");
                        assert_eq!(translated.notes.len(), 1, "{line}");
                        assert!(translated.notes[0].contains("is ignored"), "{line}");
                    }
                    // A conversation is checked below.
                    Meaning::Conversation | Meaning::SystemPrompt => {
                        let err = result.unwrap_err();
                        assert!(err.starts_with(name), "{line}: {err}");
                        assert!(err.contains("conversation"), "{line}: {err}");
                    }
                    Meaning::Renamed(tern) => {
                        let translated = result.unwrap();
                        let want = format!("tern bench {tern} 1 -p 8");
                        assert_eq!(translated.args, words(&want), "{line}");
                        assert!(translated.notes.is_empty(), "{line}");
                    }
                    // Its values are checked below.
                    Meaning::BenchOutput => {
                        assert!(result.is_err(), "{line}");
                    }
                }
            }
        }
    }

    #[test]
    fn flash_attention_is_dropped_with_a_note() {
        for (line, rest, given) in [
            ("tern run -fa -p x", "tern run -p x", "-fa ("),
            ("tern run -fa on -p x", "tern run -p x", "-fa on ("),
            ("tern bench -fa 0,1 -p 8", "tern bench -p 8", "-fa 0,1 ("),
            (
                "tern run --flash-attn=auto",
                "tern run",
                "--flash-attn auto (",
            ),
        ] {
            let translated = run(line).unwrap();
            assert_eq!(translated.args, words(rest), "{line}");
            assert_eq!(translated.notes.len(), 1, "{line}");
            assert!(
                translated.notes[0].starts_with(given),
                "{:?}",
                translated.notes
            );
            assert!(translated.notes[0].contains("online softmax"));
        }
    }

    #[test]
    fn kv_cache_types_pass_through_as_terns_own_flags() {
        assert_eq!(
            args("tern run -ctk q8_0 -p x -ctv fp8"),
            words("tern run --cache-type-k q8_0 -p x --cache-type-v fp8")
        );
        assert_eq!(
            args("tern run -ctk f32"),
            words("tern run --cache-type-k f32")
        );
        // The long spellings are Tern's: passed over, with their values, as given.
        assert_eq!(
            args("tern bench --cache-type-v=f16 --cache-type-k q8_0 -ctv q8_0"),
            words("tern bench --cache-type-v=f16 --cache-type-k q8_0 --cache-type-v q8_0")
        );
        let err = run("tern run -ctk").unwrap_err();
        assert!(err.contains("needs a value"), "{err}");
    }

    #[test]
    fn conversation_mode_is_tern_chat() {
        assert_eq!(
            args("tern run -cnv -m x.gguf -sys hi -n 8"),
            words("tern chat -m x.gguf --system-prompt hi -n 8")
        );
        assert_eq!(args("tern run --conversation"), words("tern chat"));
        assert_eq!(
            args("tern chat -cnv -sys hi"),
            words("tern chat --system-prompt hi")
        );
        // A system prompt is taken as written, even one that looks like a flag.
        assert_eq!(
            args("tern chat -sys -ngl"),
            words("tern chat --system-prompt -ngl")
        );
        let err = run("tern run -sys hello -p x").unwrap_err();
        assert!(
            err.starts_with("-sys hello (llama.cpp's system prompt) needs a conversation"),
            "{err}"
        );
        assert_eq!(
            args("tern run -cnv --chat-template-file t.jinja"),
            words("tern chat --chat-template t.jinja")
        );
        let err = run("tern bench -cnv").unwrap_err();
        assert!(err.contains("`tern bench` has no conversation"), "{err}");
    }

    #[test]
    fn bench_output_formats_map_to_json_or_the_table() {
        assert_eq!(
            args("tern bench -o json -p 8"),
            words("tern bench --json -p 8")
        );
        assert_eq!(args("tern bench -o md"), words("tern bench"));
        assert!(run("tern bench -o csv").unwrap_err().contains("--json"));
    }
}
