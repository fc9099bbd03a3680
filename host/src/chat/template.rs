//! A chat template: Jinja source compiled once, rendered for each conversation.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use minijinja::{Environment, Value};
use tern_core::gguf::Gguf;

use super::builtin;
use super::environment::environment;
use super::error::{ChatTemplateError, describe};
use super::message::Message;

/// The GGUF key that holds a model's chat template.
const GGUF_KEY: &str = "tokenizer.chat_template";

/// The largest template file read (real templates are a few KiB; the longest known, 20 KiB).
const MAX_FILE_BYTES: u64 = 1 << 20;

/// A parsed chat template.
#[derive(Clone, Debug)]
pub struct ChatTemplate {
    name: String,
    source: String,
    env: Environment<'static>,
}

/// What a template sees besides the messages.
#[derive(Clone, Debug, Default)]
pub struct RenderOptions {
    /// End with the text that opens the assistant's turn (`add_generation_prompt`): true to
    /// prompt a reply, false to render a finished conversation.
    pub add_generation_prompt: bool,
    /// The text of the model's BOS token (`bos_token`); `None` leaves it undefined.
    pub bos_token: Option<String>,
    /// The text of the model's EOS token (`eos_token`); `None` leaves it undefined.
    pub eos_token: Option<String>,
    /// More variables, as extra keyword arguments to `apply_chat_template` give them:
    /// `enable_thinking` (Qwen3), `date_string` (Llama 3.x), `tools`, ... They override
    /// the variables above of the same name.
    pub extra: BTreeMap<String, serde_json::Value>,
}

impl ChatTemplate {
    /// Parses `source`; `name` labels the template in errors.
    pub fn new(
        name: impl Into<String>,
        source: impl Into<String>,
    ) -> Result<ChatTemplate, ChatTemplateError> {
        let (name, source) = (name.into(), source.into());
        let env = environment(&name, &source).map_err(|e| ChatTemplateError::Syntax {
            template: name.clone(),
            message: describe(&e),
        })?;
        Ok(ChatTemplate { name, source, env })
    }

    /// The built-in template of that name (see [`BUILTIN_NAMES`](super::BUILTIN_NAMES)).
    pub fn builtin(name: &str) -> Option<ChatTemplate> {
        let source = builtin::source(name)?;
        Some(ChatTemplate::new(name, source).expect("built-in templates parse"))
    }

    /// What `--chat-template ARG` names: a built-in template, else a file of Jinja source.
    pub fn from_name_or_file(arg: &str) -> Result<ChatTemplate, ChatTemplateError> {
        if let Some(template) = ChatTemplate::builtin(arg) {
            return Ok(template);
        }
        let path = Path::new(arg);
        let not_found = |source| ChatTemplateError::NotFound {
            arg: arg.to_string(),
            source: Arc::new(source),
        };
        let bad_file = |problem: String| ChatTemplateError::BadFile {
            path: path.into(),
            problem,
        };
        if std::fs::metadata(path).map_err(not_found)?.is_dir() {
            return Err(bad_file("is a directory".into()));
        }
        let mut bytes = Vec::new();
        std::fs::File::open(path)
            .and_then(|file| file.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes))
            .map_err(not_found)?;
        if bytes.len() as u64 > MAX_FILE_BYTES {
            return Err(bad_file(format!(
                "is larger than {} KiB",
                MAX_FILE_BYTES >> 10
            )));
        }
        let source = String::from_utf8(bytes).map_err(|e| {
            bad_file(format!(
                "is not UTF-8 (invalid byte at offset {})",
                e.utf8_error().valid_up_to()
            ))
        })?;
        ChatTemplate::new(path.display().to_string(), source)
    }

    /// The template a model file carries (`tokenizer.chat_template`), if any; `model` names
    /// the model in errors and in the template's name.
    pub fn from_gguf(
        gguf: &Gguf<'_>,
        model: &str,
    ) -> Result<Option<ChatTemplate>, ChatTemplateError> {
        let Some(value) = gguf.get(GGUF_KEY) else {
            return Ok(None);
        };
        let source = value
            .as_str()
            .ok_or_else(|| ChatTemplateError::NotAString {
                model: model.to_string(),
            })?;
        ChatTemplate::new(format!("{GGUF_KEY} of {model}"), source).map(Some)
    }

    /// The template's name: a built-in name, a file's path, or the model's key.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The Jinja source.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Renders `messages` as transformers' `apply_chat_template(messages, tokenize=False,
    /// ...)` does: `tools` and `documents` are `None` unless given in `options.extra`.
    pub fn render(
        &self,
        messages: &[Message],
        options: &RenderOptions,
    ) -> Result<String, ChatTemplateError> {
        let failed = |message: String| ChatTemplateError::Render {
            template: self.name.clone(),
            message,
        };
        let messages: Vec<Value> = messages
            .iter()
            .map(|m| {
                Value::from(BTreeMap::from([
                    ("role", Value::from(m.role.as_str())),
                    ("content", Value::from(m.content.as_str())),
                ]))
            })
            .collect();
        let mut context: BTreeMap<String, Value> = BTreeMap::new();
        let mut set = |key: &str, value: Value| context.insert(key.to_string(), value);
        set("messages", Value::from(messages));
        set("tools", Value::from(()));
        set("documents", Value::from(()));
        set(
            "add_generation_prompt",
            Value::from(options.add_generation_prompt),
        );
        if let Some(bos) = &options.bos_token {
            set("bos_token", Value::from(bos.as_str()));
        }
        if let Some(eos) = &options.eos_token {
            set("eos_token", Value::from(eos.as_str()));
        }
        for (key, value) in &options.extra {
            set(key, from_json(value));
        }
        let template = self
            .env
            .get_template(&self.name)
            .map_err(|e| failed(describe(&e)))?;
        template.render(context).map_err(|e| failed(describe(&e)))
    }
}

/// A JSON value as the template sees it (as Python sees `json.loads` of it).
fn from_json(value: &serde_json::Value) -> Value {
    use serde_json::Value as Json;
    match value {
        Json::Null => Value::from(()),
        Json::Bool(b) => Value::from(*b),
        Json::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => Value::from(i),
            (None, Some(u)) => Value::from(u),
            _ => Value::from(n.as_f64().unwrap_or(f64::NAN)),
        },
        Json::String(s) => Value::from(s.as_str()),
        Json::Array(items) => Value::from(items.iter().map(from_json).collect::<Vec<_>>()),
        Json::Object(map) => Value::from_pairs(map.iter().map(|(k, v)| (k.as_str(), from_json(v)))),
    }
}
