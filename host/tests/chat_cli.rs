//! `tern chat` and `tern run -cnv`: piped, each line a user turn (the bundled model with a
//! built-in template); on a pseudo-terminal, a real instruct model (SmolLM2-135M-Instruct,
//! where it can be fetched) answering two turns where the second feeds only its own
//! tokens, Ctrl-C stopping a reply and returning to the prompt, Ctrl-D ending the chat.

mod common;

use std::process::Output;

use common::{assert_fails_with, stderr, tern_with_stdin};

/// Runs `tern` with `args` and `input` piped to its standard input.
fn tern_piped(args: &[&str], input: &str) -> Output {
    tern_with_stdin(args, input.as_bytes())
}

/// One turn's timing line: `prompt: P tokens (R reused), ... | reply: N tokens, ... | stop: S`.
#[derive(Debug, PartialEq, Eq)]
struct TurnLine {
    prompt: usize,
    reused: usize,
    reply: usize,
    stop: String,
}

impl TurnLine {
    /// The first timing line in `text`, and the byte after it.
    fn find(text: &str) -> Option<(TurnLine, usize)> {
        let start = text.find("prompt: ")?;
        let end = start + text[start..].find(['\r', '\n'])?;
        let line = &text[start..end];
        let number_after = |label: &str| -> usize {
            let at = line.find(label).unwrap() + label.len();
            let digits: String = line[at..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            digits.parse().unwrap()
        };
        let turn = TurnLine {
            prompt: number_after("prompt: "),
            reused: number_after(" tokens ("),
            reply: number_after("reply: "),
            stop: line[line.find("stop: ").unwrap() + 6..].to_string(),
        };
        Some((turn, end))
    }

    fn all(text: &str) -> Vec<TurnLine> {
        let mut turns = Vec::new();
        let mut rest = text;
        while let Some((turn, end)) = TurnLine::find(rest) {
            turns.push(turn);
            rest = &rest[end..];
        }
        turns
    }
}

const BUNDLED_CHAT: [&str; 9] = [
    "chat",
    "--chat-template",
    "chatml",
    "--temp",
    "0",
    "-n",
    "8",
    "-c",
    "256",
];

#[test]
fn piped_lines_are_turns_that_reuse_the_cache_until_reset() {
    let out = tern_piped(
        &BUNDLED_CHAT,
        "Hello there\n\nOnce upon a time\n/reset\nHello there\n",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let turns = TurnLine::all(&stderr(&out));
    assert_eq!(turns.len(), 3, "{}", stderr(&out));
    assert_eq!(turns[0].reused, 0);
    // The second turn reuses the whole first turn: its prompt and its reply (cut by -n,
    // so every reply token was fed).
    assert_eq!(turns[0].stop, "MaxTokens");
    assert_eq!(
        turns[1].reused,
        turns[0].prompt + turns[0].reply,
        "{turns:?}"
    );
    // After /reset the same first turn starts from an empty cache and says the same.
    assert_eq!(turns[2], turns[0]);
    assert!(stderr(&out).contains("(a new conversation)"));
    let replies: Vec<&str> = std::str::from_utf8(&out.stdout).unwrap().lines().collect();
    assert_eq!(replies.len(), 3, "{replies:?}");
    assert_eq!(replies[0], replies[2]);
}

#[test]
fn run_cnv_is_chat_and_sys_is_the_system_prompt() {
    let input = "Hello there\nOnce upon a time\n";
    let chat = tern_piped(
        &[&BUNDLED_CHAT[..], &["--system-prompt", "Be brief."]].concat(),
        input,
    );
    assert!(chat.status.success(), "{}", stderr(&chat));
    let mut args = BUNDLED_CHAT.to_vec();
    args.splice(0..1, ["run", "-cnv", "-sys", "Be brief."]);
    let run = tern_piped(&args, input);
    assert!(run.status.success(), "{}", stderr(&run));
    assert_eq!(run.stdout, chat.stdout);
    assert_eq!(TurnLine::all(&stderr(&run)), TurnLine::all(&stderr(&chat)));
    // The system message is part of the first prompt.
    let plain = tern_piped(&BUNDLED_CHAT, input);
    let (with, without) = (
        TurnLine::all(&stderr(&chat)),
        TurnLine::all(&stderr(&plain)),
    );
    assert!(with[0].prompt > without[0].prompt, "{with:?} {without:?}");
}

#[test]
fn a_model_without_a_template_or_a_bad_template_is_one_line() {
    assert_fails_with(&["chat", "-n", "4"], "with --chat-template NAME|FILE");
    assert_fails_with(
        &["chat", "--chat-template", "no-such-template.jinja"],
        "no-such-template.jinja",
    );
    assert_fails_with(&["bench", "-cnv"], "`tern bench` has no conversation");
    assert_fails_with(&["run", "-sys", "Be brief."], "needs a conversation");
}

#[test]
fn a_turn_longer_than_the_context_is_refused_and_the_chat_goes_on() {
    let long = "Once upon a time ".repeat(40);
    let out = tern_piped(
        &[
            "chat",
            "--chat-template",
            "chatml",
            "--temp",
            "0",
            "-n",
            "4",
            "-c",
            "64",
        ],
        &format!("{long}\nHello\n"),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("error: the prompt has"),
        "{}",
        stderr(&out)
    );
    let turns = TurnLine::all(&stderr(&out));
    assert_eq!(turns.len(), 1, "{}", stderr(&out));
    // The refused turn left nothing behind: the next one starts the conversation.
    assert_eq!(turns[0].reused, 0);
}

#[cfg(target_os = "linux")]
mod terminal {
    use std::ops::ControlFlow;
    use std::process::Command;
    use std::time::Duration;

    use tern::chat::Message;
    use tern::engine::{BackendKind, ChatOptions, Engine, EngineOptions, GenerateOptions};
    use tern_core::sample::SamplerParams;

    use super::TurnLine;
    use crate::common::pty::Terminal;
    use crate::common::smollm2::smollm2;

    const TURN: Duration = Duration::from_secs(120);

    #[test]
    fn two_turns_then_ctrl_c_mid_reply_then_ctrl_d() {
        let Some(model) = smollm2() else { return };
        let questions = ["What is 2+2?", "And 3+3?"];
        // What the library says the two turns feed and reply, greedy, as the CLI runs them.
        let engine = Engine::load(
            &model,
            EngineOptions {
                n_ctx: Some(1024),
                threads: 2,
                backend: BackendKind::Cpu,
                ..EngineOptions::default()
            },
        )
        .unwrap();
        let mut session = engine.session().unwrap();
        let options = ChatOptions {
            generate: GenerateOptions {
                max_tokens: 64,
                sampler: SamplerParams::greedy(),
            },
            ..ChatOptions::default()
        };
        let mut messages = Vec::new();
        let mut expected = Vec::new();
        for question in questions {
            messages.push(Message::user(question));
            let reply = session
                .chat(&messages, &options, |_| ControlFlow::Continue(()))
                .unwrap();
            expected.push(reply.clone());
            messages.push(Message::assistant(reply.text));
        }

        let mut command = Command::new(crate::common::tern_binary());
        command
            .args(["chat", "-m", model.to_str().unwrap()])
            .args(["--temp", "0", "-n", "64", "-c", "1024", "-t", "2"])
            .env("TERM", "xterm")
            .env(
                "XDG_CACHE_HOME",
                std::env::temp_dir().join("tern-test-cache"),
            );
        let mut terminal = Terminal::spawn(command);
        let mut at = terminal.wait_for(0, "> ", TURN);
        let mut turns = Vec::new();
        for question in questions {
            terminal.type_keys(&format!("{question}\r"));
            let end = terminal.wait_for(at, "stop: ", TURN);
            let line_end = terminal.wait_for(end, "\n", TURN);
            let screen = terminal.screen();
            let (turn, _) = TurnLine::find(&screen[at..]).unwrap();
            turns.push(turn);
            at = terminal.wait_for(line_end, "> ", TURN);
        }
        let screen = terminal.screen();
        for (turn, reply) in turns.iter().zip(&expected) {
            assert_eq!(turn.prompt, reply.stats.prompt_tokens, "{screen}");
            assert_eq!(turn.reused, reply.reused_tokens, "{screen}");
            assert_eq!(turn.reply, reply.stats.generated.len(), "{screen}");
            assert_eq!(turn.stop, "EndOfTurn", "{screen}");
            assert!(screen.contains(reply.text.trim()), "{screen}");
        }
        // The second turn fed only its own tokens: the whole first turn (its prompt and its
        // reply, less the end-of-turn token that was never fed) came from the KV cache, and
        // what was fed is what the template adds for the new question.
        let first = &turns[0];
        assert_eq!(turns[1].reused, first.prompt + first.reply - 1, "{turns:?}");
        let whole = session
            .encode_chat(&messages[..3], &Default::default())
            .unwrap();
        assert_eq!(turns[1].prompt + turns[1].reused, whole.len(), "{turns:?}");

        // Ctrl-C mid-reply: the reply stops, the prompt comes back.
        terminal.type_keys("Write a long story about a dragon.\r");
        let echoed = terminal.wait_for(at, "dragon.", TURN);
        terminal.wait_for_bytes(echoed, 120, TURN);
        terminal.type_keys("\x03");
        let stopped = terminal.wait_for(echoed, "stop: Interrupted", TURN);
        let prompt = terminal.wait_for(stopped, "> ", TURN);
        // Ctrl-D at the empty prompt ends the chat, successfully.
        terminal.type_keys("\x04");
        let status = terminal.wait_exit(TURN);
        assert!(
            status.success(),
            "{status}: {}",
            &terminal.screen()[prompt..]
        );
    }
}
