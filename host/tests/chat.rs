//! `Session::chat`: a conversation rendered with the engine's template, later turns feeding
//! only their new tokens (the bundled stories260K with a built-in template, on the reference
//! backend so that a reused cache and a fresh prefill give the same bits), and a real chat
//! model (SmolLM2-135M-Instruct, where it can be fetched) answering two turns and stopping at
//! its `<|im_end|>`.

mod common;

use std::ops::ControlFlow;

use common::smollm2::smollm2;
use tern::chat::{ChatTemplate, Message};
use tern::engine::{BackendKind, ChatOptions, Engine, EngineOptions, GenerateOptions, StopReason};
use tern::error::EngineError;
use tern_core::sample::SamplerParams;

fn greedy(max_tokens: usize) -> ChatOptions {
    ChatOptions {
        generate: GenerateOptions {
            max_tokens,
            sampler: SamplerParams::greedy(),
        },
        ..ChatOptions::default()
    }
}

fn bundled(backend: BackendKind) -> Engine {
    let options = EngineOptions {
        n_ctx: Some(256),
        threads: 2,
        backend,
        ..EngineOptions::default()
    };
    Engine::load_bundled(options).unwrap()
}

/// Tokens at the start of `a` and `b` that are the same.
fn common_prefix(a: &[u32], b: &[u32]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

#[test]
fn a_model_without_a_template_needs_one() {
    let engine = bundled(BackendKind::Cpu);
    assert!(engine.chat_template().is_none());
    assert!(engine.end_of_turn_tokens().is_empty());
    let mut session = engine.session().unwrap();
    let e = session
        .chat(&[Message::user("Hi")], &greedy(4), |_| {
            ControlFlow::Continue(())
        })
        .unwrap_err();
    assert!(matches!(e, EngineError::NoChatTemplate { .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        "`stories260K Q8_0 (bundled)` has no chat template (`tokenizer.chat_template`); \
         choose a built-in one (chatml, llama2, llama3, mistral, gemma, qwen3) or a Jinja file"
            .replace("stories260K Q8_0 (bundled)", tern::bundled::NAME)
    );
    assert_eq!(session.n_past(), 0);
}

#[test]
fn later_turns_feed_only_their_new_tokens() {
    let mut engine = bundled(BackendKind::Reference);
    engine.set_chat_template(ChatTemplate::builtin("chatml").unwrap());
    assert_eq!(engine.chat_template().unwrap().name(), "chatml");
    let options = greedy(24);
    let mut session = engine.session().unwrap();

    let mut conversation = vec![
        Message::system("You tell short stories."),
        Message::user("Once upon a time"),
    ];
    let first_ids = session
        .encode_chat(&conversation, &options.template_variables)
        .unwrap();
    let mut streamed = String::new();
    let first = session
        .chat(&conversation, &options, |text| {
            streamed.push_str(text);
            ControlFlow::Continue(())
        })
        .unwrap();
    assert_eq!(first.reused_tokens, 0);
    assert_eq!(first.stats.prompt_tokens, first_ids.len());
    assert_eq!(streamed, first.text);
    assert!(!first.text.is_empty());
    assert!(session.tokens().starts_with(&first_ids));
    let after_first = session.tokens().to_vec();

    conversation.push(Message::assistant(first.text.clone()));
    conversation.push(Message::user("What happened next?"));
    let second_ids = session
        .encode_chat(&conversation, &options.template_variables)
        .unwrap();
    let second = session
        .chat(&conversation, &options, |_| ControlFlow::Continue(()))
        .unwrap();
    // The whole first prompt (and the reply, as far as it tokenizes the same) stays in the
    // cache; only the rest of the conversation is fed.
    let kept = common_prefix(&after_first, &second_ids);
    assert!(
        kept >= first_ids.len(),
        "kept {kept} of {}",
        first_ids.len()
    );
    assert_eq!(second.reused_tokens, kept);
    assert_eq!(second.stats.prompt_tokens, second_ids.len() - kept);
    assert!(second.stats.prompt_tokens <= second_ids.len() - first_ids.len());
    assert!(session.tokens().starts_with(&second_ids));

    // The reused cache answers as a fresh prefill of the whole conversation does.
    let mut fresh = engine.session().unwrap();
    let again = fresh
        .chat(&conversation, &options, |_| ControlFlow::Continue(()))
        .unwrap();
    assert_eq!(again.reused_tokens, 0);
    assert_eq!(again.stats.prompt_tokens, second_ids.len());
    assert_eq!(again.stats.generated, second.stats.generated);
    assert_eq!(again.text, second.text);

    // An edited history keeps only what it shares with the cache and answers as fresh.
    let edited = vec![
        Message::system("You tell short stories."),
        Message::user("Once upon a time there was a cat"),
    ];
    let edited_ids = session
        .encode_chat(&edited, &options.template_variables)
        .unwrap();
    let shared = common_prefix(session.tokens(), &edited_ids);
    let reply = session
        .chat(&edited, &options, |_| ControlFlow::Continue(()))
        .unwrap();
    assert!(shared < first_ids.len());
    assert_eq!(reply.reused_tokens, shared);
    assert_eq!(reply.stats.prompt_tokens, edited_ids.len() - shared);
    let mut fresh = engine.session().unwrap();
    let again = fresh
        .chat(&edited, &options, |_| ControlFlow::Continue(()))
        .unwrap();
    assert_eq!(again.stats.generated, reply.stats.generated);

    // The same conversation again feeds one token, for the logits of the reply.
    let same = session
        .chat(&edited, &options, |_| ControlFlow::Continue(()))
        .unwrap();
    assert_eq!(same.stats.prompt_tokens, 1);
    assert_eq!(same.stats.generated, reply.stats.generated);
}

#[test]
fn a_refused_conversation_is_one_error_and_feeds_nothing() {
    let mut engine = bundled(BackendKind::Cpu);
    engine.set_chat_template(ChatTemplate::builtin("gemma").unwrap());
    let mut session = engine.session().unwrap();
    let e = session
        .chat(
            &[Message::system("s"), Message::user("u")],
            &greedy(4),
            |_| ControlFlow::Continue(()),
        )
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "chat template `gemma` failed: System role not supported (line 4)"
    );
    let e = session
        .chat(&[], &greedy(4), |_| ControlFlow::Continue(()))
        .unwrap_err();
    assert!(e.to_string().contains("at least one message"), "{e}");
    assert_eq!(session.n_past(), 0);
}

#[test]
fn smollm2_answers_two_turns_and_stops_at_im_end() {
    let Some(model) = smollm2() else { return };
    let options = EngineOptions {
        n_ctx: Some(512),
        threads: 2,
        ..EngineOptions::default()
    };
    let engine = Engine::load(&model, options).unwrap();
    let template = engine.chat_template().expect("SmolLM2 carries a template");
    assert!(template.source().contains("<|im_start|>"));
    let im_end = engine.tokenizer().token_id("<|im_end|>").unwrap();
    assert!(engine.end_of_turn_tokens().contains(&im_end));

    let options = greedy(96);
    let mut session = engine.session().unwrap();
    let mut conversation = vec![Message::user("What is 2 + 2?")];
    let first = session
        .chat(&conversation, &options, |_| ControlFlow::Continue(()))
        .unwrap();
    assert_eq!(first.stats.stop, StopReason::EndOfGeneration, "{first:?}");
    assert_eq!(first.stats.generated.last(), Some(&im_end));
    assert!(first.text.contains('4'), "{:?}", first.text);
    assert!(!first.text.contains("<|im_end|>"));

    conversation.push(Message::assistant(first.text.clone()));
    conversation.push(Message::user("Name a fruit."));
    let second_ids = session
        .encode_chat(&conversation, &options.template_variables)
        .unwrap();
    let second = session
        .chat(&conversation, &options, |_| ControlFlow::Continue(()))
        .unwrap();
    assert_eq!(second.stats.stop, StopReason::EndOfGeneration, "{second:?}");
    assert_eq!(second.stats.generated.last(), Some(&im_end));
    assert!(!second.text.trim().is_empty());
    // Only the reply's end and the new question were fed.
    assert!(
        second.reused_tokens > first.stats.prompt_tokens,
        "{second:?}"
    );
    assert_eq!(
        second.stats.prompt_tokens,
        second_ids.len() - second.reused_tokens
    );
    eprintln!("SmolLM2: {:?} / {:?}", first.text, second.text);
}
