//! Templates for models whose file carries none, by name (`--chat-template chatml`). Each is
//! written here, and renders a conversation of system, user and assistant messages exactly as
//! the real template of the model it is named for (the tests check it against their rendered
//! strings in `testdata/chat_templates/`); tool calls are left out.

/// The built-in templates' names.
pub const BUILTIN_NAMES: &[&str] = &["chatml", "llama2", "llama3", "mistral", "gemma", "qwen3"];

/// [`BUILTIN_NAMES`] as a sentence lists them.
pub(super) const BUILTIN_LIST: &str = "chatml, llama2, llama3, mistral, gemma, qwen3";

/// The Jinja source of the built-in template `name`.
pub(super) fn source(name: &str) -> Option<&'static str> {
    Some(match name {
        // OpenHermes-2.5-Mistral-7B's ChatML: `<|im_start|>role\n...<|im_end|>\n`.
        "chatml" => include_str!("builtin/chatml.jinja"),
        // Llama-2-7b-chat-hf's: `<s>[INST] <<SYS>>\n...\n<</SYS>>\n\n... [/INST] ... </s>`.
        "llama2" => include_str!("builtin/llama2.jinja"),
        // Meta-Llama-3-8B-Instruct's: headers and `<|eot_id|>`.
        "llama3" => include_str!("builtin/llama3.jinja"),
        // Mistral-7B-Instruct-v0.2's: `<s> [INST] ... [/INST] ...</s>`, a system message
        // before the first user message.
        "mistral" => include_str!("builtin/mistral.jinja"),
        // gemma-2-2b-it's: `<start_of_turn>user|model\n...<end_of_turn>\n`, no system role.
        "gemma" => include_str!("builtin/gemma.jinja"),
        // Qwen3's: ChatML with `<think>` blocks, `enable_thinking`.
        "qwen3" => include_str!("builtin/qwen3.jinja"),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_has_a_source_and_the_list_names_them_all() {
        for name in BUILTIN_NAMES {
            assert!(source(name).is_some(), "{name}");
        }
        assert_eq!(BUILTIN_LIST, BUILTIN_NAMES.join(", "));
        assert!(source("chatml2").is_none());
    }
}
