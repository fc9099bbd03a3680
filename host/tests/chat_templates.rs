//! Chat templates against transformers: every case of `testdata/chat_templates/cases.json`
//! (real models' templates over varied conversations, rendered by `apply_chat_template`)
//! renders byte for byte the same, or fails where the template raises, with its message; the
//! built-in templates render as the real ones they are named for.

mod common;

use std::collections::BTreeMap;

use common::repo;
use serde_json::Value as Json;
use tern::chat::{BUILTIN_NAMES, ChatTemplate, ChatTemplateError, Message, RenderOptions};

/// The reference file, parsed.
fn reference() -> Json {
    let text = std::fs::read_to_string(repo("testdata/chat_templates/cases.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn text(v: &Json) -> Option<String> {
    v.as_str().map(str::to_owned)
}

fn messages(conversation: &Json) -> Vec<Message> {
    conversation
        .as_array()
        .unwrap()
        .iter()
        .map(|m| Message::new(m["role"].as_str().unwrap(), m["content"].as_str().unwrap()))
        .collect()
}

/// What one case expects: the rendered text, or the message the template raised.
enum Expected {
    Output(String),
    Error(String),
}

struct Case {
    label: String,
    template: String,
    messages: Vec<Message>,
    options: RenderOptions,
    uses_tools: bool,
    expected: Expected,
}

fn cases(reference: &Json) -> Vec<Case> {
    let templates = &reference["templates"];
    let conversations = &reference["conversations"];
    reference["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let template = c["template"].as_str().unwrap().to_string();
            let conversation = c["conversation"].as_str().unwrap();
            let extra: BTreeMap<String, Json> = c["extra"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let spec = &templates[&template];
            let expected = match (text(&c["output"]), text(&c["error"])) {
                (Some(output), None) => Expected::Output(output),
                (None, Some(error)) => Expected::Error(error),
                _ => panic!("a case has an output or an error: {c}"),
            };
            Case {
                label: format!(
                    "{template} / {conversation} / add_generation_prompt={} / extra={}",
                    c["add_generation_prompt"], c["extra"]
                ),
                messages: messages(&conversations[conversation]),
                options: RenderOptions {
                    add_generation_prompt: c["add_generation_prompt"].as_bool().unwrap(),
                    bos_token: text(&spec["bos_token"]),
                    eos_token: text(&spec["eos_token"]),
                    extra: extra.clone(),
                },
                uses_tools: extra.contains_key("tools"),
                template,
                expected,
            }
        })
        .collect()
}

/// Renders `case` with `template`; `None` when it matches, else what differs.
fn check(template: &ChatTemplate, case: &Case) -> Option<String> {
    let got = template.render(&case.messages, &case.options);
    match (&case.expected, got) {
        (Expected::Output(want), Ok(got)) if *want == got => None,
        (
            Expected::Error(want),
            Err(ChatTemplateError::Render {
                template: name,
                message,
            }),
        ) if message.contains(want.as_str()) && name == template.name() => {
            // One line, naming the template.
            let line = ChatTemplateError::Render {
                template: name,
                message,
            }
            .to_string();
            (line.lines().count() != 1).then(|| format!("{}: not one line: {line:?}", case.label))
        }
        (Expected::Output(want), got) => Some(format!(
            "{} [{}]:\n  want {want:?}\n  got  {got:?}",
            case.label,
            template.name()
        )),
        (Expected::Error(want), got) => Some(format!(
            "{} [{}]:\n  want the error {want:?}\n  got  {got:?}",
            case.label,
            template.name()
        )),
    }
}

#[test]
fn real_templates_render_as_transformers_does() {
    let reference = reference();
    let mut templates = BTreeMap::new();
    for (name, spec) in reference["templates"].as_object().unwrap() {
        let path = format!("testdata/chat_templates/{}", spec["file"].as_str().unwrap());
        let source = std::fs::read_to_string(repo(&path)).unwrap();
        templates.insert(name.clone(), ChatTemplate::new(name, source).unwrap());
    }
    let cases = cases(&reference);
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|case| check(&templates[&case.template], case))
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    // The file covers what it should: every template, raised errors and tools included.
    assert_eq!(templates.len(), 11);
    assert!(cases.len() >= 250, "{} cases", cases.len());
    for name in templates.keys() {
        assert!(cases.iter().any(|c| &c.template == name), "{name}");
    }
    assert!(
        cases
            .iter()
            .filter(|c| matches!(c.expected, Expected::Error(_)))
            .count()
            >= 10
    );
    assert!(cases.iter().filter(|c| c.uses_tools).count() >= 6);
}

#[test]
fn builtin_templates_render_as_the_real_ones() {
    let reference = reference();
    let cases = cases(&reference);
    let mut covered = Vec::new();
    let mut failures = Vec::new();
    for (name, spec) in reference["templates"].as_object().unwrap() {
        let Some(builtin) = spec["builtin"].as_str() else {
            continue;
        };
        let template = ChatTemplate::builtin(builtin).unwrap();
        let mut n = 0;
        // Built-in templates leave tool calling out.
        for case in cases
            .iter()
            .filter(|c| &c.template == name && !c.uses_tools)
        {
            failures.extend(check(&template, case));
            n += 1;
        }
        assert!(n >= 20, "{builtin}: {n} cases");
        covered.push(builtin);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    covered.sort_unstable();
    let mut all = BUILTIN_NAMES.to_vec();
    all.sort_unstable();
    assert_eq!(covered, all, "every built-in template is checked");
}
