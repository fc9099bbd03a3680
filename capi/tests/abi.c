/* The C ABI driven from C, through good calls and bad input: every bad call returns its
   error status with a message from tern_last_error(), none crashes. Built and run under
   AddressSanitizer by scripts/capi.sh. */

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tern.h"

static int failures = 0;

/* Checks that `call` returned `want` and, for an error, that the message holds `needle`. */
#define EXPECT(call, want, needle) expect((call), (want), (needle), #call, __LINE__)

static void expect(tern_status got, tern_status want, const char *needle, const char *call,
                   int line) {
    const char *message = tern_last_error();
    if (got != want) {
        fprintf(stderr, "line %d: %s returned %d, not %d (%s)\n", line, call, got, want,
                message);
        failures++;
    } else if (want != TERN_OK && (!message || !strstr(message, needle))) {
        fprintf(stderr, "line %d: %s: message \"%s\" lacks \"%s\"\n", line, call, message,
                needle);
        failures++;
    }
}

#define CHECK(cond)                                                        \
    do {                                                                   \
        if (!(cond)) {                                                     \
            fprintf(stderr, "line %d: %s does not hold\n", __LINE__, #cond); \
            failures++;                                                    \
        }                                                                  \
    } while (0)

typedef struct {
    char text[4096];
    size_t len;
    int pieces;
    int stop_after;
} collected;

static bool collect(const char *piece, size_t len, void *user_data) {
    collected *c = user_data;
    if (c->len + len < sizeof c->text) {
        memcpy(c->text + c->len, piece, len);
        c->len += len;
        c->text[c->len] = 0;
    }
    c->pieces++;
    return c->stop_after == 0 || c->pieces < c->stop_after;
}

static tern_sampling greedy(void) {
    tern_sampling s = tern_sampling_default();
    s.temperature = 0.0f;
    return s;
}

/* Greedy text of the bundled model after "Once upon a time", on a session of its own. */
static void story(tern_model *model, collected *out) {
    tern_session *session = NULL;
    memset(out, 0, sizeof *out);
    tern_sampling s = greedy();
    if (tern_session_new(model, &session) != TERN_OK) return;
    tern_generate(session, "Once upon a time", &s, 24, collect, out, NULL);
    tern_session_free(session);
}

static void *story_thread(void *arg) {
    void **args = arg;
    story(args[0], args[1]);
    return NULL;
}

static void null_handles_and_outputs(void) {
    tern_session *session = NULL;
    tern_model_summary info;
    const float *logits = NULL;
    int32_t token = 0;
    size_t n = 0;
    EXPECT(tern_session_new(NULL, &session), TERN_ERROR_ARGUMENT, "model is NULL");
    EXPECT(tern_model_info(NULL, &info), TERN_ERROR_ARGUMENT, "model is NULL");
    EXPECT(tern_session_eval(NULL, &token, 1, &logits), TERN_ERROR_ARGUMENT, "session is NULL");
    EXPECT(tern_generate(NULL, "x", NULL, 1, NULL, NULL, NULL), TERN_ERROR_ARGUMENT,
           "session is NULL");
    EXPECT(tern_tokenize(NULL, "x", 1, true, true, &token, 1, &n), TERN_ERROR_ARGUMENT,
           "model is NULL");
    EXPECT(tern_model_load_bundled(NULL, NULL), TERN_ERROR_ARGUMENT, "out is NULL");
    EXPECT(tern_model_load(NULL, NULL, NULL), TERN_ERROR_ARGUMENT, "path is NULL");
    EXPECT(tern_options_set_threads(NULL, 2), TERN_ERROR_ARGUMENT, "options is NULL");
    EXPECT(tern_session_reset(NULL), TERN_ERROR_ARGUMENT, "session is NULL");
    CHECK(tern_session_n_past(NULL) == 0);
    CHECK(tern_model_name(NULL) == NULL);
    tern_model_free(NULL);
    tern_session_free(NULL);
    tern_options_free(NULL);
    tern_sampler_free(NULL);
}

static void missing_and_corrupt_models(void) {
    tern_model *model = NULL;
    EXPECT(tern_model_load("/nonexistent/model.gguf", NULL, &model), TERN_ERROR_IO,
           "/nonexistent/model.gguf");
    CHECK(model == NULL);
    const char *path = "tern-abi-corrupt.gguf";
    FILE *f = fopen(path, "wb");
    fputs("GGUF\x03\x00\x00\x00 this is not a model", f);
    fclose(f);
    EXPECT(tern_model_load(path, NULL, &model), TERN_ERROR_MODEL, "not a valid GGUF");
    remove(path);
    unsigned char junk[100];
    for (size_t i = 0; i < sizeof junk; i++) junk[i] = (unsigned char)(i * 37);
    EXPECT(tern_model_load_bytes(junk, sizeof junk, NULL, &model), TERN_ERROR_MODEL, "GGUF");
    EXPECT(tern_model_load_bytes(NULL, 10, NULL, &model), TERN_ERROR_ARGUMENT, "bytes is NULL");
    CHECK(model == NULL);
}

static void bad_options(void) {
    tern_options *options = NULL;
    tern_model *model = NULL;
    EXPECT(tern_options_new(&options), TERN_OK, "");
    EXPECT(tern_options_set_backend(options, "tpu"), TERN_ERROR_ARGUMENT, "unknown backend `tpu`");
    EXPECT(tern_options_set_cache_type(options, "q3_k", "f16"), TERN_ERROR_ARGUMENT,
           "unknown KV cache type `q3_k`");
    EXPECT(tern_options_set_cache_type(options, "fp8", "fp8"), TERN_ERROR_ARGUMENT,
           "values only");
    /* The bundled model's heads of 8 are not whole q8_0 blocks: refused when it loads. */
    EXPECT(tern_options_set_cache_type(options, "q8_0", "q8_0"), TERN_OK, "");
    EXPECT(tern_model_load_bundled(options, &model), TERN_ERROR_ARGUMENT, "q8_0");
    EXPECT(tern_options_set_cache_type(options, "f16", "fp8"), TERN_OK, "");
    EXPECT(tern_options_set_backend(options, "\xff\xfe"), TERN_ERROR_ARGUMENT, "not UTF-8");
    EXPECT(tern_options_set_context(options, 1u << 30), TERN_OK, "");
    EXPECT(tern_model_load_bundled(options, &model), TERN_ERROR_ARGUMENT, "context");
    EXPECT(tern_options_set_context(options, 64), TERN_OK, "");
    EXPECT(tern_options_set_chat_template(options, "no-such-template.jinja"), TERN_OK, "");
    EXPECT(tern_model_load_bundled(options, &model), TERN_ERROR_CHAT_TEMPLATE,
           "no-such-template.jinja");
    CHECK(model == NULL);
    tern_options_free(options);
}

static void bad_calls_on_a_model(void) {
    tern_options *options = NULL;
    tern_model *model = NULL;
    tern_session *session = NULL;
    tern_sampler *sampler = NULL;
    tern_options_new(&options);
    tern_options_set_context(options, 64);
    EXPECT(tern_model_load_bundled(options, &model), TERN_OK, "");
    tern_options_free(options);
    if (!model) return;
    tern_model_summary info;
    EXPECT(tern_model_info(model, &info), TERN_OK, "");
    CHECK(info.n_ctx == 64 && info.n_vocab == 512 && info.bos == 1);
    EXPECT(tern_session_new(model, &session), TERN_OK, "");
    tern_sampling s = greedy();
    EXPECT(tern_sampler_new(&s, &sampler), TERN_OK, "");
    int32_t token = 0;
    const float *logits = NULL;

    /* Invalid UTF-8, tokens outside the vocabulary, a context overflow, no logits yet. */
    EXPECT(tern_generate(session, "Once \xff upon", &s, 4, NULL, NULL, NULL), TERN_ERROR_ARGUMENT,
           "not UTF-8");
    EXPECT(tern_tokenize(model, "a\xc3", 2, true, true, &token, 1, &(size_t){0}),
           TERN_ERROR_ARGUMENT, "not UTF-8");
    int32_t bad[2] = {1, 512};
    EXPECT(tern_session_eval(session, bad, 2, &logits), TERN_ERROR_ARGUMENT, "outside the vocabulary");
    bad[1] = -7;
    EXPECT(tern_session_eval(session, bad, 2, &logits), TERN_ERROR_ARGUMENT, "-7");
    EXPECT(tern_session_eval(session, bad, 0, &logits), TERN_ERROR_ARGUMENT, "no tokens");
    EXPECT(tern_sampler_sample(sampler, session, &token), TERN_ERROR_ARGUMENT, "no logits");
    int32_t many[65] = {0};
    many[0] = 1;
    EXPECT(tern_session_eval(session, many, 65, &logits), TERN_ERROR_CONTEXT_FULL, "65 tokens");
    CHECK(tern_session_n_past(session) == 0);
    s.top_p = 2.0f;
    EXPECT(tern_generate(session, "x", &s, 4, NULL, NULL, NULL), TERN_ERROR_ARGUMENT, "top-p");
    s = greedy();

    /* Tokenize into a small buffer, then a big enough one; detokenize back. */
    size_t n = 0;
    int32_t ids[16];
    EXPECT(tern_tokenize(model, "Once upon a time", 16, true, false, ids, 2, &n),
           TERN_ERROR_BUFFER_TOO_SMALL, "do not fit");
    CHECK(n == 5);
    EXPECT(tern_tokenize(model, "Once upon a time", 16, true, false, ids, 16, &n), TERN_OK, "");
    char text[64];
    size_t len = 0;
    EXPECT(tern_detokenize(model, ids, n, text, 4, &len), TERN_ERROR_BUFFER_TOO_SMALL, "NUL");
    EXPECT(tern_detokenize(model, ids, n, text, sizeof text, &len), TERN_OK, "");
    CHECK(strcmp(text, "Once upon a time") == 0 && len == 16);

    /* Eval and sample by hand: greedy picks what tern_generate picks. */
    EXPECT(tern_session_eval(session, ids, n, &logits), TERN_OK, "");
    CHECK(logits != NULL);
    EXPECT(tern_sampler_sample(sampler, session, &token), TERN_OK, "");
    CHECK(tern_session_n_past(session) == 5);
    char piece[32];
    EXPECT(tern_detokenize(model, &token, 1, piece, sizeof piece, &len), TERN_OK, "");
    CHECK(strcmp(piece, ",") == 0);

    /* A callback that stops at once: one piece, and the reason says so. */
    tern_session_reset(session);
    collected c = {.stop_after = 1};
    tern_generation stats;
    EXPECT(tern_generate(session, "Once upon a time", &s, 16, collect, &c, &stats), TERN_OK, "");
    CHECK(c.pieces == 1 && stats.stop == TERN_STOP_CALLBACK && stats.generated_tokens == 1);

    /* Continuing a session adds no BOS: " there" is fed as its own tokens alone. */
    tern_session_reset(session);
    EXPECT(tern_generate(session, "Once upon a time", &s, 0, NULL, NULL, &stats), TERN_OK, "");
    CHECK(stats.prompt_tokens == 5);
    EXPECT(tern_tokenize(model, " there", 6, false, false, ids, 16, &n), TERN_OK, "");
    EXPECT(tern_generate(session, " there", &s, 0, NULL, NULL, &stats), TERN_OK, "");
    CHECK(stats.prompt_tokens == n && tern_session_n_past(session) == 5 + n);

    /* Chat: the bundled model has no template; messages must be whole. */
    tern_message messages[2] = {{"user", "Hi"}, {"assistant", NULL}};
    EXPECT(tern_chat(session, messages, 1, &s, 4, NULL, NULL, NULL), TERN_ERROR_CHAT_TEMPLATE,
           "no chat template");
    EXPECT(tern_chat(session, messages, 2, &s, 4, NULL, NULL, NULL), TERN_ERROR_ARGUMENT,
           "messages[1].content is NULL");

    /* The session keeps its model alive. */
    tern_model_free(model);
    tern_session_reset(session);
    c = (collected){0};
    EXPECT(tern_generate(session, "Once upon a time", &s, 8, collect, &c, NULL), TERN_OK, "");
    CHECK(strncmp(c.text, ", there was a little girl", 25) == 0);
    tern_sampler_free(sampler);
    tern_session_free(session);
}

static void chat_with_a_template(void) {
    tern_options *options = NULL;
    tern_model *model = NULL;
    tern_session *session = NULL;
    tern_options_new(&options);
    tern_options_set_context(options, 256);
    tern_options_set_chat_template(options, "chatml");
    EXPECT(tern_model_load_bundled(options, &model), TERN_OK, "");
    tern_options_free(options);
    if (!model) return;
    tern_session_new(model, &session);
    tern_sampling s = greedy();
    collected first = {0};
    tern_generation stats;
    tern_message messages[3] = {{"user", "Hello"}, {"assistant", NULL}, {"user", "Again"}};
    EXPECT(tern_chat(session, messages, 1, &s, 6, collect, &first, &stats), TERN_OK, "");
    unsigned fed_first = stats.prompt_tokens;
    messages[1].content = first.text;
    EXPECT(tern_chat(session, messages, 3, &s, 6, NULL, NULL, &stats), TERN_OK, "");
    /* The second turn feeds only what is new: the first turn (its prompt and the reply, cut
       by max_tokens so every token was fed) comes from the session. */
    CHECK(stats.reused_tokens == fed_first + 6);
    CHECK(tern_session_n_past(session) == fed_first + 6 + stats.prompt_tokens + 6);
    tern_session_free(session);
    tern_model_free(model);
}

static void one_model_two_threads(void) {
    tern_model *model = NULL;
    if (tern_model_load_bundled(NULL, &model) != TERN_OK) {
        failures++;
        return;
    }
    collected alone, a, b;
    story(model, &alone);
    pthread_t ta, tb;
    void *args_a[2] = {model, &a}, *args_b[2] = {model, &b};
    pthread_create(&ta, NULL, story_thread, args_a);
    pthread_create(&tb, NULL, story_thread, args_b);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    CHECK(alone.len > 0 && strcmp(a.text, alone.text) == 0 && strcmp(b.text, alone.text) == 0);
    tern_model_free(model);
}

int main(void) {
    printf("tern %s\n", tern_version());
    null_handles_and_outputs();
    missing_and_corrupt_models();
    bad_options();
    bad_calls_on_a_model();
    chat_with_a_template();
    one_model_two_threads();
    if (failures) {
        fprintf(stderr, "%d checks failed\n", failures);
        return 1;
    }
    puts("all checks passed");
    return 0;
}
