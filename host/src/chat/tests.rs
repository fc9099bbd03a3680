//! The template machinery on hand-made templates: errors, files, Python compatibility, the
//! end-of-turn marker. Real models' templates are checked in `host/tests/chat_templates.rs`.

use std::collections::BTreeMap;

use super::*;
use crate::tokenizer::{Tokenizer, TokenizerSpec};

fn render(
    source: &str,
    messages: &[Message],
    options: &RenderOptions,
) -> Result<String, ChatTemplateError> {
    ChatTemplate::new("t", source)?.render(messages, options)
}

fn one_line(e: &ChatTemplateError) -> String {
    let line = e.to_string();
    assert_eq!(line.lines().count(), 1, "{line:?}");
    line
}

#[test]
fn a_syntax_error_names_the_template_and_the_line() {
    let e =
        ChatTemplate::new("my-template", "{% for m in messages %}\n{{ m.content }\n").unwrap_err();
    assert!(matches!(e, ChatTemplateError::Syntax { .. }), "{e:?}");
    let line = one_line(&e);
    assert!(
        line.starts_with("chat template `my-template` does not parse: "),
        "{line}"
    );
    assert!(line.contains("(line 2)"), "{line}");
}

#[test]
fn raise_exception_fails_with_the_templates_words() {
    let source = "{% if messages[0].role == 'system' %}\
                  {{ raise_exception('No system\nrole, sorry') }}{% endif %}ok";
    let e = render(source, &[Message::system("s")], &RenderOptions::default()).unwrap_err();
    assert!(matches!(e, ChatTemplateError::Render { .. }), "{e:?}");
    assert_eq!(
        one_line(&e),
        "chat template `t` failed: No system role, sorry (line 1)"
    );
    assert_eq!(
        render(source, &[Message::user("u")], &RenderOptions::default()).unwrap(),
        "ok"
    );
    // A failure of the engine itself says what kind it is.
    let e = render("{{ messages.nope.deeper }}", &[], &RenderOptions::default()).unwrap_err();
    assert!(one_line(&e).contains("undefined value"), "{e}");
}

#[test]
fn variables_reach_the_template_as_python_would_see_them() {
    let options = RenderOptions {
        add_generation_prompt: true,
        bos_token: Some("<s>".into()),
        eos_token: None,
        extra: BTreeMap::from([
            ("enable_thinking".to_string(), serde_json::json!(false)),
            ("n".to_string(), serde_json::json!(2.0)),
            (
                "tools".to_string(),
                serde_json::json!([{"b": [1, null], "a": "é<&>"}]),
            ),
        ]),
    };
    let source = "{{ bos_token }}|{{ eos_token is defined }}|{{ add_generation_prompt }}|\
                  {{ enable_thinking }}|{{ n }}|{{ documents }}|{{ tools | tojson }}|\
                  {{ tools | tojson(indent=2) }}|{{ messages[0].content.strip().upper() }}|\
                  {{ messages[0]['role'] }}";
    let got = render(source, &[Message::user("  hi  ")], &options).unwrap();
    assert_eq!(
        got,
        "<s>|False|True|False|2.0|None|[{\"a\": \"é<&>\", \"b\": [1, null]}]|\
         [\n  {\n    \"a\": \"é<&>\",\n    \"b\": [\n      1,\n      null\n    ]\n  }\n]|HI|user"
    );
    let source = "{{ x | tojson(separators=(',', ':'), sort_keys=true, ensure_ascii=true) }}";
    let options = RenderOptions {
        extra: BTreeMap::from([(
            "x".to_string(),
            serde_json::json!({"z": "\u{1F642}\t", "y": 1}),
        )]),
        ..RenderOptions::default()
    };
    assert_eq!(
        render(source, &[], &options).unwrap(),
        r#"{"y":1,"z":"\ud83d\ude42\t"}"#
    );
}

#[test]
fn strftime_now_and_loop_controls_are_there() {
    let got = render(
        "{{ strftime_now('%Y') | length }}\
         {% for i in range(5) %}{% if i == 2 %}{% break %}{% endif %}{{ i }}{% endfor %}",
        &[],
        &RenderOptions::default(),
    )
    .unwrap();
    assert_eq!(got, "401");
}

#[test]
fn a_template_named_like_html_is_not_escaped() {
    let template = ChatTemplate::new("chat.html", "{{ messages[0].content }}").unwrap();
    let got = template.render(&[Message::user("<b>&'")], &RenderOptions::default());
    assert_eq!(got.unwrap(), "<b>&'");
}

#[test]
fn a_runaway_template_runs_out_of_fuel() {
    let source = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}";
    let e = render(source, &[], &RenderOptions::default()).unwrap_err();
    assert!(one_line(&e).contains("fuel"), "{e}");
}

/// A scratch file under the system's temp dir, removed when dropped.
struct Scratch(std::path::PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
        let _ = std::fs::remove_dir(&self.0);
    }
}

fn scratch(name: &str) -> Scratch {
    Scratch(std::env::temp_dir().join(format!("tern-chat-{}-{name}", std::process::id())))
}

#[test]
fn name_or_file_finds_builtins_then_files() {
    for name in BUILTIN_NAMES {
        assert_eq!(ChatTemplate::from_name_or_file(name).unwrap().name(), *name);
    }
    let file = scratch("t.jinja");
    std::fs::write(&file.0, "{{ messages | length }}\n").unwrap();
    let arg = file.0.to_str().unwrap();
    let template = ChatTemplate::from_name_or_file(arg).unwrap();
    assert_eq!(template.name(), arg);
    let two = [Message::user("a"), Message::assistant("b")];
    // jinja2 drops the source's one trailing newline.
    assert_eq!(
        template.render(&two, &RenderOptions::default()).unwrap(),
        "2"
    );

    let e = ChatTemplate::from_name_or_file("chatml3").unwrap_err();
    let line = one_line(&e);
    assert!(
        line.starts_with(
            "`chatml3` is neither a built-in chat template (chatml, llama2, llama3, mistral, \
             gemma, qwen3) nor a readable file: "
        ),
        "{line}"
    );
    std::fs::write(&file.0, [b'{', 0xff, b'}']).unwrap();
    let line = one_line(&ChatTemplate::from_name_or_file(arg).unwrap_err());
    assert!(
        line.contains("is not UTF-8 (invalid byte at offset 1)"),
        "{line}"
    );
    std::fs::write(&file.0, "{% if %}").unwrap();
    let line = one_line(&ChatTemplate::from_name_or_file(arg).unwrap_err());
    assert!(
        line.starts_with(&format!("chat template `{arg}` does not parse")),
        "{line}"
    );

    let dir = scratch("dir");
    std::fs::create_dir(&dir.0).unwrap();
    let line = one_line(&ChatTemplate::from_name_or_file(dir.0.to_str().unwrap()).unwrap_err());
    assert!(line.ends_with("is a directory"), "{line}");
}

/// GPT-2's byte-level spelling of `byte`: printable bytes stand for themselves, the others
/// for U+0100 onwards, in order.
fn byte_level_char(byte: u8) -> char {
    let printable = |b: u8| matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF);
    if printable(byte) {
        return char::from(byte);
    }
    let rank = (0..byte).filter(|&b| !printable(b)).count() as u32;
    char::from_u32(256 + rank).expect("a valid char")
}

/// Byte-level BPE over the 256 byte characters with chat markers: `<|im_end|>` (an
/// end-of-generation text llama.cpp knows), `<|end_of_turn|>` (one it does not) and a
/// user-defined token.
fn tokenizer() -> Tokenizer {
    let mut tokens: Vec<String> = (0..=255u8)
        .map(|b| byte_level_char(b).to_string())
        .collect();
    let mut types = vec![1; tokens.len()];
    for (special, ty) in [
        ("<s>", 3),
        ("</s>", 3),
        ("<|im_start|>", 3),
        ("<|im_end|>", 3),
        ("<|end_of_turn|>", 3),
        ("<tool>", 4),
    ] {
        tokens.push(special.into());
        types.push(ty);
    }
    let spec = TokenizerSpec {
        model: "gpt2".into(),
        pre: Some("qwen2".into()),
        tokens,
        token_types: Some(types),
        merges: Some(Vec::new()),
        bos: Some(256),
        eos: Some(257),
        ..TokenizerSpec::default()
    };
    Tokenizer::from_spec(&spec).unwrap()
}

#[test]
fn a_reply_ends_at_the_marker_the_template_writes_after_it() {
    let t = tokenizer();
    let id = |text| t.token_id(text).unwrap();
    let eog = t.end_of_generation_ids().to_vec();
    assert_eq!(eog, [id("</s>"), id("<|im_end|>")]);
    let with = |extra: u32| {
        let mut ids = eog.clone();
        ids.push(extra);
        ids.sort_unstable();
        ids
    };
    let builtin = |name| end_of_turn_tokens(&ChatTemplate::builtin(name).unwrap(), &t);
    // ChatML's `<|im_end|>` and Llama 2's ` </s>` are already end-of-generation tokens.
    assert_eq!(builtin("chatml"), eog);
    assert_eq!(builtin("llama2"), eog);
    // openchat's marker is not, but the template writes it after every reply.
    let openchat = ChatTemplate::new(
        "openchat",
        "{{ bos_token }}{% for message in messages %}{{ 'GPT4 Correct ' + \
         message['role'].title() + ': ' + message['content'] + '<|end_of_turn|>'}}{% endfor %}\
         {% if add_generation_prompt %}{{ 'GPT4 Correct Assistant:' }}{% endif %}",
    )
    .unwrap();
    assert_eq!(
        end_of_turn_tokens(&openchat, &t),
        with(id("<|end_of_turn|>"))
    );
    // After a system message only, when the template wants one; whitespace is skipped.
    let wants_system = ChatTemplate::new(
        "wants-system",
        "{% if messages[0].role != 'system' %}{{ raise_exception('system first') }}{% endif %}\
         {% for m in messages %}{{ m.content }}\n <tool>{% endfor %}",
    )
    .unwrap();
    assert_eq!(end_of_turn_tokens(&wants_system, &t), with(id("<tool>")));
    // Text after the reply, or nothing, adds no marker.
    let plain = ChatTemplate::new(
        "plain",
        "{% for m in messages %}{{ m.content }}\nEnd<|im_end|>{% endfor %}",
    )
    .unwrap();
    assert_eq!(end_of_turn_tokens(&plain, &t), eog);
    let refuses = ChatTemplate::new("refuses", "{{ raise_exception('never') }}").unwrap();
    assert_eq!(end_of_turn_tokens(&refuses, &t), eog);
}
