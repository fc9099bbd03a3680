//! Reading the `tokenizer.ggml.*` keys of a GGUF file into a [`TokenizerSpec`].

use tern_core::gguf::{ArrayValue, Gguf, Value, ValueType};

use super::error::TokenizerError;
use super::vocab::TokenizerSpec;

const MODEL: &str = "tokenizer.ggml.model";
const PRE: &str = "tokenizer.ggml.pre";
const TOKENS: &str = "tokenizer.ggml.tokens";
const SCORES: &str = "tokenizer.ggml.scores";
const TOKEN_TYPE: &str = "tokenizer.ggml.token_type";
const MERGES: &str = "tokenizer.ggml.merges";

/// Collects the tokenizer keys; absent optional keys stay `None`.
pub(crate) fn read_spec(gguf: &Gguf<'_>) -> Result<TokenizerSpec, TokenizerError> {
    let model = string(gguf, MODEL)?.ok_or(TokenizerError::MissingKey(MODEL))?;
    let tokens = string_array(gguf, TOKENS)?.ok_or(TokenizerError::MissingKey(TOKENS))?;
    Ok(TokenizerSpec {
        model: model.to_owned(),
        pre: string(gguf, PRE)?.map(str::to_owned),
        tokens,
        scores: number_array(gguf, SCORES)?,
        token_types: integer_array(gguf, TOKEN_TYPE)?,
        merges: string_array(gguf, MERGES)?,
        bos: id(gguf, "tokenizer.ggml.bos_token_id")?,
        eos: id(gguf, "tokenizer.ggml.eos_token_id")?,
        eot: id(gguf, "tokenizer.ggml.eot_token_id")?,
        eom: id(gguf, "tokenizer.ggml.eom_token_id")?,
        unk: id(gguf, "tokenizer.ggml.unknown_token_id")?,
        pad: id(gguf, "tokenizer.ggml.padding_token_id")?,
        add_bos: flag(gguf, "tokenizer.ggml.add_bos_token")?,
        add_eos: flag(gguf, "tokenizer.ggml.add_eos_token")?,
        add_space_prefix: flag(gguf, "tokenizer.ggml.add_space_prefix")?,
    })
}

fn wrong(key: &'static str, expected: &'static str) -> TokenizerError {
    TokenizerError::WrongType { key, expected }
}

fn string<'a>(gguf: &Gguf<'a>, key: &'static str) -> Result<Option<&'a str>, TokenizerError> {
    gguf.get(key)
        .map(|v| v.as_str().ok_or_else(|| wrong(key, "a string")))
        .transpose()
}

fn array<'a>(gguf: &Gguf<'a>, key: &'static str) -> Result<Option<ArrayValue<'a>>, TokenizerError> {
    gguf.get(key)
        .map(|v| v.as_array().ok_or_else(|| wrong(key, "an array")))
        .transpose()
}

fn string_array(gguf: &Gguf<'_>, key: &'static str) -> Result<Option<Vec<String>>, TokenizerError> {
    let Some(a) = array(gguf, key)? else {
        return Ok(None);
    };
    let strings = a
        .strings()
        .ok_or_else(|| wrong(key, "an array of strings"))?;
    Ok(Some(strings.map(str::to_owned).collect()))
}

/// Scores are `f32` in practice; llama.cpp also accepts `i32`.
fn number_array(gguf: &Gguf<'_>, key: &'static str) -> Result<Option<Vec<f32>>, TokenizerError> {
    let Some(a) = array(gguf, key)? else {
        return Ok(None);
    };
    let expected = "an array of f32 or i32";
    if !matches!(a.elem_type(), ValueType::F32 | ValueType::I32) {
        return Err(wrong(key, expected));
    }
    a.iter()
        .map(|v| v.as_f32().ok_or_else(|| wrong(key, expected)))
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

fn integer_array(gguf: &Gguf<'_>, key: &'static str) -> Result<Option<Vec<i32>>, TokenizerError> {
    let Some(a) = array(gguf, key)? else {
        return Ok(None);
    };
    let expected = "an array of i32";
    a.iter()
        .map(|v| match v {
            Value::I32(x) => Ok(x),
            Value::I8(x) => Ok(i32::from(x)),
            Value::U8(x) => Ok(i32::from(x)),
            Value::I16(x) => Ok(i32::from(x)),
            Value::U16(x) => Ok(i32::from(x)),
            Value::U32(x) => i32::try_from(x).map_err(|_| wrong(key, expected)),
            _ => Err(wrong(key, expected)),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// A token id key. A negative id (some converters write -1 for "none") counts as absent.
fn id(gguf: &Gguf<'_>, key: &'static str) -> Result<Option<u32>, TokenizerError> {
    let Some(v) = gguf.get(key) else {
        return Ok(None);
    };
    match v {
        Value::U8(_) | Value::U16(_) | Value::U32(_) | Value::U64(_) => v
            .as_u32()
            .map(Some)
            .ok_or_else(|| wrong(key, "a 32-bit token id")),
        Value::I8(_) | Value::I16(_) | Value::I32(_) | Value::I64(_) => Ok(v.as_u32()),
        _ => Err(wrong(key, "an integer token id")),
    }
}

fn flag(gguf: &Gguf<'_>, key: &'static str) -> Result<Option<bool>, TokenizerError> {
    gguf.get(key)
        .map(|v| v.as_bool().ok_or_else(|| wrong(key, "a bool")))
        .transpose()
}
