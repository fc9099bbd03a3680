/* Tern's C ABI: libtern.a and libtern.so.

   Made from capi/src by cbindgen (capi/cbindgen.toml); do not edit.

   Rules every function keeps:
   - The caller owns each handle it creates (tern_options_new, tern_model_load*,
     tern_session_new, tern_sampler_new) and frees it with the matching *_free, which
     takes NULL as a no-op. A session keeps its model alive: freeing the model first is
     allowed.
   - Every call returns a tern_status; any other value than TERN_OK comes with a one-line
     message from tern_last_error() on the same thread. NULL pointers, invalid UTF-8 and
     out-of-range values are errors, never crashes.
   - A model can be shared by sessions on different threads at once; a session (and a
     sampler) is used by one thread at a time and may move between threads.
   - Out-parameters are written only on success. */

#ifndef TERN_H
#define TERN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

// What a call did. Every value but `TERN_OK` comes with a message from
// [`tern_last_error`].
typedef enum {
  // Success.
  TERN_OK = 0,
  // A NULL pointer, text that is not UTF-8, a value out of range or an unknown name.
  TERN_ERROR_ARGUMENT = 1,
  // A file could not be opened, read or written.
  TERN_ERROR_IO = 2,
  // The model file is not a GGUF model Tern can run (damaged, truncated, unsupported).
  TERN_ERROR_MODEL = 3,
  // The backend asked for cannot run here, or failed while running.
  TERN_ERROR_BACKEND = 4,
  // The tokens do not fit what is left of the session's context.
  TERN_ERROR_CONTEXT_FULL = 5,
  // An output buffer is too small; the size needed was written where the call says.
  TERN_ERROR_BUFFER_TOO_SMALL = 6,
  // The model has no chat template, or its template cannot render the conversation.
  TERN_ERROR_CHAT_TEMPLATE = 7,
  // Memory for the model or a session could not be had.
  TERN_ERROR_OUT_OF_MEMORY = 8,
  // A step of the model failed (a token outside the vocabulary, a spill file's I/O).
  TERN_ERROR_INFERENCE = 9,
  // A bug in Tern (a caught panic); the message says where.
  TERN_ERROR_INTERNAL = 10,
} tern_status;

// Why generation ended.
typedef enum {
  // The model ended its text (or its turn, in a chat).
  TERN_STOP_END = 0,
  // `max_tokens` tokens were generated.
  TERN_STOP_MAX_TOKENS = 1,
  // The context is full.
  TERN_STOP_CONTEXT_FULL = 2,
  // The callback returned false.
  TERN_STOP_CALLBACK = 3,
} tern_stop_reason;

// A loaded model: weights, tokenizer and chat template, shared by its sessions (on any
// threads).
typedef struct tern_model tern_model;

// Options for loading a model; `tern_options_new` makes one with the defaults.
typedef struct tern_options tern_options;

// A sampler: the settings and the random state of one sequence of choices.
typedef struct tern_sampler tern_sampler;

// A session: a KV cache of the model's context, the tokens fed so far, and the logits of
// the last one. Used by one thread at a time.
typedef struct tern_session tern_session;

// How tokens are picked, as llama.cpp's sampling options; `tern_sampling_default` gives
// llama.cpp's defaults, `temperature` 0 picks the most likely token every time.
typedef struct {
  // Sampling temperature; 0 is greedy.
  float temperature;
  // Keep only the K most likely tokens (0: all).
  uint32_t top_k;
  // Keep the smallest set of tokens whose probability reaches P (1: all).
  float top_p;
  // Drop tokens less likely than P times the most likely one (0: none).
  float min_p;
  // Penalty for repeating recent tokens (1: none).
  float repeat_penalty;
  // How many recent tokens the repeat penalty looks at.
  uint32_t repeat_last_n;
  // Seed of the random choice.
  uint64_t seed;
} tern_sampling;

// Receives each piece of generated text (UTF-8, `len` bytes, not NUL-terminated; a
// character is never split between pieces) with the caller's `user_data`. Returns true to
// go on, false to stop generation after this piece.
typedef bool (*tern_piece_callback)(const char *piece, size_t len, void *user_data);

// What a generation did and how fast.
typedef struct {
  // Tokens fed: the prompt's (in a chat, only those not already in the session).
  uint32_t prompt_tokens;
  // In a chat, the tokens of the conversation the session already held and did not
  // feed again (the earlier turns); 0 for `tern_generate`.
  uint32_t reused_tokens;
  // Tokens generated, including the one that ended the text if one did.
  uint32_t generated_tokens;
  // Milliseconds to feed the prompt and pick the first token.
  double prompt_ms;
  // Milliseconds to generate the tokens after the first.
  double generate_ms;
  // Why it ended.
  tern_stop_reason stop;
} tern_generation;

// A message of a conversation: who speaks ("system", "user", "assistant") and what they
// say, both NUL-terminated UTF-8.
typedef struct {
  // The speaker's role.
  const char *role;
  // The text.
  const char *content;
} tern_message;

// What a model is.
typedef struct {
  // Tokens in the vocabulary; token ids are below it.
  uint32_t n_vocab;
  // The context of its sessions, in tokens.
  uint32_t n_ctx;
  // The context the model was trained with.
  uint32_t n_ctx_train;
  // Transformer layers.
  uint32_t n_layer;
  // Width of the hidden state.
  uint32_t n_embd;
  // The beginning-of-sequence token, or -1.
  int32_t bos;
  // The end-of-sequence token, or -1.
  int32_t eos;
} tern_model_summary;

#ifdef __cplusplus
extern "C" {
#endif // __cplusplus

// llama.cpp's sampling defaults: temperature 0.8, top-k 40, top-p 0.95, min-p 0.05, no
// repeat penalty, a fixed seed.
tern_sampling tern_sampling_default(void);

// Makes a sampler; `sampling` may be NULL for the defaults.
//
// # Safety
// `sampling` is NULL or valid for a read; `out` is valid for a write of a pointer.
tern_status tern_sampler_new(const tern_sampling *sampling, tern_sampler **out);

// Frees a sampler; NULL is a no-op.
//
// # Safety
// `sampler` is NULL or a handle from `tern_sampler_new` not freed before.
void tern_sampler_free(tern_sampler *sampler);

// Picks the next token from the logits of the session's last `tern_session_eval`, the
// session's tokens being the recent ones the repeat penalty sees. The session is not fed.
//
// # Safety
// `sampler` and `session` are NULL or live handles used by this thread alone; `token` is
// valid for a write.
tern_status tern_sampler_sample(tern_sampler *sampler, tern_session *session, int32_t *token);

// Feeds the UTF-8 `prompt` after what the session holds (with the model's BOS only when
// the session is empty) and generates up to `max_tokens` tokens (negative: until the end
// of text or a full context), passing each piece of text to `callback` (may be NULL).
// `sampling` may be NULL for the defaults; `stats`, if not NULL, receives what happened.
//
// # Safety
// `session` is NULL or a live handle used by this thread alone; `prompt` is NULL or a
// NUL-terminated string; `sampling` is NULL or readable; `callback` is NULL or a function
// of the right type; `stats` is NULL or writable.
tern_status tern_generate(tern_session *session, const char *prompt, const tern_sampling *sampling, int32_t max_tokens, tern_piece_callback callback, void *user_data, tern_generation *stats);

// Replies to the conversation `messages` (all `n` so far, the user's new one last),
// rendered with the model's chat template: only the tokens the session does not hold
// already are fed, so a conversation continued on the same session costs its new turn.
// The reply streams to `callback` until the template's end of turn or `max_tokens`
// (negative: no limit but the context); the caller adds it to its messages for the next
// turn. `sampling` may be NULL; `stats`, if not NULL, receives what happened.
//
// # Safety
// `session` is NULL or a live handle used by this thread alone; `messages` points to `n`
// messages whose strings are NUL-terminated; the rest as for `tern_generate`.
tern_status tern_chat(tern_session *session, const tern_message *messages, size_t n, const tern_sampling *sampling, int32_t max_tokens, tern_piece_callback callback, void *user_data, tern_generation *stats);

// Loads the GGUF model file at `path` (mapped, not read whole). `options` may be NULL for
// the defaults.
//
// # Safety
// `path` is NULL or a NUL-terminated string; `options` is NULL or a live handle; `out` is
// valid for a write of a pointer.
tern_status tern_model_load(const char *path, const tern_options *options, tern_model **out);

// Loads a model from `len` bytes of a GGUF file in memory, which the library copies (the
// caller may free them once this returns). `options` may be NULL for the defaults.
//
// # Safety
// `bytes` is NULL or points to `len` readable bytes; `options` is NULL or a live handle;
// `out` is valid for a write of a pointer.
tern_status tern_model_load_bytes(const uint8_t *bytes, size_t len, const tern_options *options, tern_model **out);

// Loads the model built into the library: stories260K Q8_0, a 260K-parameter story
// model, for trying the library without a model file. `options` may be NULL.
//
// # Safety
// `options` is NULL or a live handle; `out` is valid for a write of a pointer.
tern_status tern_model_load_bundled(const tern_options *options, tern_model **out);

// Frees a model; NULL is a no-op. Its sessions keep what they need and stay usable.
//
// # Safety
// `model` is NULL or a handle from `tern_model_load*` not freed before.
void tern_model_free(tern_model *model);

// The model's name in messages (its path, for a file); NULL for a NULL model. Valid until
// the model is freed.
//
// # Safety
// `model` is NULL or a live handle.
const char *tern_model_name(const tern_model *model);

// Writes what the model is to `out`.
//
// # Safety
// `model` is NULL or a live handle; `out` is valid for a write of `tern_model_summary`.
tern_status tern_model_info(const tern_model *model, tern_model_summary *out);

// Tokenizes `len` bytes of UTF-8 `text`: with the model's BOS (and EOS) where it adds
// them if `add_special`, and special tokens written in the text (`<|im_start|>`)
// recognised if `parse_special`. Writes up to `capacity` ids to `tokens` and their count
// to `n_tokens`; with too small a buffer, returns `TERN_ERROR_BUFFER_TOO_SMALL` and writes
// the count needed to `n_tokens`.
//
// # Safety
// `model` is NULL or a live handle; `text` points to `len` bytes (or is NULL with `len`
// 0); `tokens` is valid for `capacity` writes (or NULL with `capacity` 0); `n_tokens` is
// valid for a write.
tern_status tern_tokenize(const tern_model *model, const char *text, size_t len, bool add_special, bool parse_special, int32_t *tokens, size_t capacity, size_t *n_tokens);

// Turns `n` token ids into text: UTF-8 bytes written to `buf` and NUL-terminated, their
// count (without the NUL) to `len`. Bytes that do not form whole characters (a piece of
// one) become U+FFFD. With too small a buffer (it needs `len + 1` bytes), returns
// `TERN_ERROR_BUFFER_TOO_SMALL` and writes the length needed to `len`.
//
// # Safety
// `model` is NULL or a live handle; `tokens` points to `n` ids (or is NULL with `n` 0);
// `buf` is valid for `capacity` writes; `len` is valid for a write.
tern_status tern_detokenize(const tern_model *model, const int32_t *tokens, size_t n, char *buf, size_t capacity, size_t *len);

// Makes options with the defaults: the model's trained context (capped as `tern run`
// caps it), threads on every physical core, the CPU backend, an f16 KV cache kept in
// DRAM, no packed-weight cache, the model's own chat template.
//
// # Safety
// `out` is valid for a write of a pointer.
tern_status tern_options_new(tern_options **out);

// Frees options; NULL is a no-op. Models loaded with them are not affected.
//
// # Safety
// `options` is NULL or a handle from `tern_options_new` not freed before.
void tern_options_free(tern_options *options);

// Context length of sessions in tokens; 0 picks the model's trained context (capped).
//
// # Safety
// `options` is NULL or a live handle used by this thread alone.
tern_status tern_options_set_context(tern_options *options, uint32_t n_ctx);

// Threads that compute, the caller's included; 0 picks the number of physical cores.
//
// # Safety
// `options` is NULL or a live handle used by this thread alone.
tern_status tern_options_set_threads(tern_options *options, uint32_t n_threads);

// The backend by name: "cpu", "reference", and where the library was built with them,
// "vulkan", "opencl" and "auto" (a GPU where one answers, else the CPU).
//
// # Safety
// `options` is NULL or a live handle used by this thread alone; `backend` is NULL or a
// NUL-terminated string.
tern_status tern_options_set_backend(tern_options *options, const char *backend);

// Element types of the KV cache's keys and values, as llama.cpp's `-ctk`/`-ctv` name them:
// "f16" (the default), "f32", "q8_0" (0.53 of f16's memory), and for values "fp8" (E4M3).
// A type the backend lacks is refused when the model loads.
//
// # Safety
// `options` is NULL or a live handle used by this thread alone; `keys` and `values` are
// NULL or NUL-terminated strings.
tern_status tern_options_set_cache_type(tern_options *options, const char *keys, const char *values);

// Keep only the newest `n_tokens` positions of the KV cache in DRAM and spill older ones
// to a file in `spill_dir` (NULL: the user's cache directory, else the temporary one);
// `n_tokens` 0 keeps the whole cache in DRAM (the default).
//
// # Safety
// `options` is NULL or a live handle used by this thread alone; `spill_dir` is NULL or a
// NUL-terminated string.
tern_status tern_options_set_kv_dram_tokens(tern_options *options, uint32_t n_tokens, const char *spill_dir);

// Directory of packed-weight caches: the first load of a model writes the CPU backend's
// repacked weights there and later loads map them; NULL (the default) repacks every time.
//
// # Safety
// `options` is NULL or a live handle used by this thread alone; `dir` is NULL or a
// NUL-terminated string.
tern_status tern_options_set_pack_cache_dir(tern_options *options, const char *dir);

// The chat template for `tern_chat`: a built-in one by name ("chatml", "llama2",
// "llama3", "mistral", "gemma", "qwen3") or a Jinja file; NULL (the default) uses the
// model's. Checked when the model loads.
//
// # Safety
// `options` is NULL or a live handle used by this thread alone; `name_or_file` is NULL or a
// NUL-terminated string.
tern_status tern_options_set_chat_template(tern_options *options, const char *name_or_file);

// Makes a session on `model`: its KV cache is reserved for the model's context.
//
// # Safety
// `model` is NULL or a live handle; `out` is valid for a write of a pointer.
tern_status tern_session_new(const tern_model *model, tern_session **out);

// Frees a session; NULL is a no-op.
//
// # Safety
// `session` is NULL or a handle from `tern_session_new` not freed before.
void tern_session_free(tern_session *session);

// Forgets every token fed: the next one starts a new sequence.
//
// # Safety
// `session` is NULL or a live handle used by this thread alone.
tern_status tern_session_reset(tern_session *session);

// Tokens in the session's KV cache; 0 for a NULL session.
//
// # Safety
// `session` is NULL or a live handle not used by another thread meanwhile.
size_t tern_session_n_past(tern_session *session);

// Feeds `n` tokens after those in the session and points `logits` at the last one's
// logits (`n_vocab` floats, valid until the next call on this session).
//
// # Safety
// `session` is NULL or a live handle used by this thread alone; `tokens` points to `n`
// ids; `logits` is valid for a write of a pointer.
tern_status tern_session_eval(tern_session *session, const int32_t *tokens, size_t n, const float **logits);

// The message of the last call on this thread that failed: one line naming the function,
// what went wrong and where; "" before any failure. The pointer stays valid until the
// next failing call on this thread.
const char *tern_last_error(void);

// Tern's version, e.g. "0.1.0"; a static string.
const char *tern_version(void);

#ifdef __cplusplus
}  // extern "C"
#endif  // __cplusplus

#endif  /* TERN_H */
