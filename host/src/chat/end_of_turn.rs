//! The tokens a chat reply ends at.

use super::message::Message;
use super::template::{ChatTemplate, RenderOptions};
use crate::tokenizer::{TokenType, Tokenizer};

/// Text no template changes, standing for an assistant's reply in a probe conversation.
const PROBE_REPLY: &str = "TernProbeReply";

/// The tokens that end an assistant's turn under `template`: the tokenizer's end-of-generation
/// tokens (EOS, EOT and the chat markers llama.cpp knows by their text: `<|im_end|>`,
/// `<|eot_id|>`, `<end_of_turn>`, ...) and the special token the template writes right after
/// an assistant's reply (found by rendering a short conversation), so that a template whose
/// marker is none of those still ends the reply. Sorted, without repeats.
pub fn end_of_turn_tokens(template: &ChatTemplate, tokenizer: &Tokenizer) -> Vec<u32> {
    let mut ids = tokenizer.end_of_generation_ids().to_vec();
    ids.extend(marker_after_reply(template, tokenizer));
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// The special token the template writes after an assistant's reply, skipping whitespace
/// (Llama 2 writes `reply </s>`); `None` when the reply is followed by ordinary text or by
/// nothing, or when the template refuses both probe conversations.
fn marker_after_reply(template: &ChatTemplate, tokenizer: &Tokenizer) -> Option<u32> {
    let options = RenderOptions {
        bos_token: tokenizer
            .bos()
            .and_then(|id| tokenizer.token_text(id))
            .map(str::to_owned),
        eos_token: tokenizer
            .eos()
            .and_then(|id| tokenizer.token_text(id))
            .map(str::to_owned),
        ..RenderOptions::default()
    };
    // Some templates want a system message first, others refuse one.
    let probes = [
        vec![Message::user("Hi"), Message::assistant(PROBE_REPLY)],
        vec![
            Message::system("Be brief."),
            Message::user("Hi"),
            Message::assistant(PROBE_REPLY),
        ],
    ];
    let text = probes
        .iter()
        .find_map(|messages| template.render(messages, &options).ok())?;
    let (_, after) = text.rsplit_once(PROBE_REPLY)?;
    for id in tokenizer.encode(after, false, true) {
        match tokenizer.token_type(id) {
            Some(TokenType::Control | TokenType::UserDefined) => return Some(id),
            _ if tokenizer
                .token_bytes(id)
                .iter()
                .all(u8::is_ascii_whitespace) =>
            {
                continue;
            }
            _ => return None,
        }
    }
    None
}
