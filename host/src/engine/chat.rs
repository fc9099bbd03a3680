//! Chat on a session: a conversation rendered with the engine's template, only its new tokens
//! fed, the reply streamed until the template's end-of-turn token.

use std::collections::BTreeMap;
use std::ops::ControlFlow;

use super::Engine;
use super::session::{GenerateOptions, GenerationStats, Session};
use crate::chat::{ChatTemplate, ChatTemplateError, Message, RenderOptions, end_of_turn_tokens};
use crate::error::EngineError;
use crate::tokenizer::StreamDecoder;

/// An engine's chat template, as loaded from the model or chosen by the caller.
pub(super) enum ChatSetup {
    /// The model carries no template and none was chosen.
    Missing,
    /// A template (boxed: an environment is large) and the tokens its replies end at.
    Ready {
        template: Box<ChatTemplate>,
        end_of_turn: Vec<u32>,
    },
    /// The model's template does not parse; the error says why.
    Broken(ChatTemplateError),
}

impl ChatSetup {
    pub(super) fn new(
        template: Result<Option<ChatTemplate>, ChatTemplateError>,
        tokenizer: &crate::tokenizer::Tokenizer,
    ) -> ChatSetup {
        match template {
            Ok(None) => ChatSetup::Missing,
            Ok(Some(template)) => ChatSetup::Ready {
                end_of_turn: end_of_turn_tokens(&template, tokenizer),
                template: Box::new(template),
            },
            Err(e) => ChatSetup::Broken(e),
        }
    }
}

impl Engine {
    /// The template chats render with: the model's (`tokenizer.chat_template`) unless
    /// [`set_chat_template`](Self::set_chat_template) chose another; `None` when the model
    /// has none or its own does not parse.
    pub fn chat_template(&self) -> Option<&ChatTemplate> {
        match &self.chat {
            ChatSetup::Ready { template, .. } => Some(template),
            _ => None,
        }
    }

    /// Chats render with `template` from now on (a built-in one for a model without a
    /// template, or a corrected one).
    pub fn set_chat_template(&mut self, template: ChatTemplate) {
        self.chat = ChatSetup::new(Ok(Some(template)), &self.tokenizer);
    }

    /// The tokens that end a chat reply: the tokenizer's end-of-generation tokens and the
    /// marker the template writes after a reply (see
    /// [`crate::chat::end_of_turn_tokens`]). Empty without a template.
    pub fn end_of_turn_tokens(&self) -> &[u32] {
        match &self.chat {
            ChatSetup::Ready { end_of_turn, .. } => end_of_turn,
            _ => &[],
        }
    }

    /// The template chats render with, or why chat cannot run: the error a chat would
    /// fail with (no template in the model and none chosen, or the model's own does not
    /// parse), for a caller that checks before its first turn.
    pub fn ready_chat_template(&self) -> Result<&ChatTemplate, EngineError> {
        self.chat_ready().map(|(template, _)| template)
    }

    /// The template and its end-of-turn tokens, or why chat cannot run.
    fn chat_ready(&self) -> Result<(&ChatTemplate, &[u32]), EngineError> {
        match &self.chat {
            ChatSetup::Ready {
                template,
                end_of_turn,
            } => Ok((template, end_of_turn)),
            ChatSetup::Missing => Err(EngineError::NoChatTemplate {
                model: self.name.clone(),
            }),
            ChatSetup::Broken(e) => Err(EngineError::ChatTemplate(e.clone())),
        }
    }
}

/// How to render a conversation and generate the reply.
#[derive(Clone, Debug, Default)]
pub struct ChatOptions {
    /// Length and sampling of the reply.
    pub generate: GenerateOptions,
    /// Variables the template reads besides the conversation: `enable_thinking` (Qwen3),
    /// `date_string` (Llama 3.x), `tools`, ...
    pub template_variables: BTreeMap<String, serde_json::Value>,
}

/// An assistant's reply.
#[derive(Clone, Debug)]
pub struct ChatReply {
    /// The reply's text, without the token that ended it.
    pub text: String,
    /// Tokens of the rendered conversation that were already in the KV cache (the earlier
    /// turns) and were not fed again; `stats.prompt_tokens` were fed.
    pub reused_tokens: usize,
    /// What generating the reply did and how fast.
    pub stats: GenerationStats,
}

impl Session<'_> {
    /// The conversation as the engine's template renders it to prompt a reply (with the
    /// assistant's opening), tokenized with special tokens recognised and BOS first where
    /// the model adds one, once even when the template writes it too.
    pub fn encode_chat(
        &self,
        messages: &[Message],
        template_variables: &BTreeMap<String, serde_json::Value>,
    ) -> Result<Vec<u32>, EngineError> {
        let (template, _) = self.engine().chat_ready()?;
        if messages.is_empty() {
            return Err(EngineError::Option(
                "a conversation needs at least one message".into(),
            ));
        }
        let tokenizer = self.engine().tokenizer();
        let text_of = |id: Option<u32>| {
            id.and_then(|id| tokenizer.token_text(id))
                .map(str::to_owned)
        };
        let options = RenderOptions {
            add_generation_prompt: true,
            bos_token: text_of(tokenizer.bos()),
            eos_token: text_of(tokenizer.eos()),
            extra: template_variables.clone(),
        };
        let text = template.render(messages, &options)?;
        let n_ctx = self.engine().n_ctx();
        let max_token_bytes = tokenizer.max_token_bytes();
        if text.len() > n_ctx.saturating_mul(max_token_bytes) {
            return Err(EngineError::PromptTooManyBytes {
                bytes: text.len(),
                n_ctx,
                max_token_bytes,
            });
        }
        let mut ids = tokenizer.encode(&text, false, true);
        if let Some(bos) = tokenizer.bos().filter(|_| tokenizer.add_bos()) {
            if ids.first() != Some(&bos) {
                ids.insert(0, bos);
            }
        }
        if ids.is_empty() {
            return Err(EngineError::EmptyPrompt);
        }
        Ok(ids)
    }

    /// Replies to the conversation `messages` (the whole conversation so far, the user's new
    /// message last), streaming the reply's text to `on_text` as [`Session::generate`] does,
    /// until the template's end-of-turn token.
    ///
    /// The KV cache keeps earlier turns: the tokens at the start of the rendered conversation
    /// that the cache already holds (the previous turn's prompt and, where it tokenizes the
    /// same, its reply) are not fed again, so a turn costs only its new tokens. Whatever the
    /// cache holds past that common start is dropped.
    pub fn chat(
        &mut self,
        messages: &[Message],
        options: &ChatOptions,
        mut on_text: impl FnMut(&str) -> ControlFlow<()>,
    ) -> Result<ChatReply, EngineError> {
        let ids = self.encode_chat(messages, &options.template_variables)?;
        let engine = self.engine();
        let (_, end_of_turn) = engine.chat_ready()?;
        let common = self
            .tokens()
            .iter()
            .zip(&ids)
            .take_while(|(a, b)| a == b)
            .count();
        // At least one token is fed, for the logits of the reply's first token.
        let reused_tokens = common.min(ids.len() - 1);
        self.rewind(reused_tokens);
        let mut decoder = StreamDecoder::after(engine.tokenizer(), &ids);
        let mut text = String::new();
        let stats = self.generate_until(
            &ids[reused_tokens..],
            &options.generate,
            |id| end_of_turn.binary_search(&id).is_ok(),
            |id| {
                let piece = decoder.push(id);
                text.push_str(&piece);
                on_text(&piece)
            },
        )?;
        let rest = decoder.finish();
        if !rest.is_empty() {
            text.push_str(&rest);
            let _ = on_text(&rest);
        }
        Ok(ChatReply {
            text,
            reused_tokens,
            stats,
        })
    }
}
