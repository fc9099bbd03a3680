/* Generates text with Tern from C: greedy, streamed to stdout, as `tern run --temp 0`.

   usage: generate [-m MODEL.gguf] [-p PROMPT] [-n N]
   Without -m it runs the model built into the library (stories260K). */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tern.h"

/* Prints each piece as it comes; returning false would stop generation. */
static bool print_piece(const char *piece, size_t len, void *user_data) {
    (void)user_data;
    fwrite(piece, 1, len, stdout);
    fflush(stdout);
    return true;
}

static int fail(const char *what) {
    fprintf(stderr, "error: %s: %s\n", what, tern_last_error());
    return 1;
}

int main(int argc, char **argv) {
    const char *model_path = NULL;
    const char *prompt = "Once upon a time";
    int n_predict = 32;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "-m") == 0) {
            model_path = argv[i + 1];
        } else if (strcmp(argv[i], "-p") == 0) {
            prompt = argv[i + 1];
        } else if (strcmp(argv[i], "-n") == 0) {
            n_predict = atoi(argv[i + 1]);
        } else {
            fprintf(stderr, "usage: %s [-m MODEL.gguf] [-p PROMPT] [-n N]\n", argv[0]);
            return 2;
        }
    }

    tern_options *options = NULL;
    if (tern_options_new(&options) != TERN_OK) return fail("options");
    tern_model *model = NULL;
    tern_status status = model_path ? tern_model_load(model_path, options, &model)
                                    : tern_model_load_bundled(options, &model);
    tern_options_free(options);
    if (status != TERN_OK) return fail("load");

    tern_session *session = NULL;
    if (tern_session_new(model, &session) != TERN_OK) {
        tern_model_free(model);
        return fail("session");
    }

    tern_sampling greedy = tern_sampling_default();
    greedy.temperature = 0.0f;
    tern_generation stats;
    fputs(prompt, stdout);
    status = tern_generate(session, prompt, &greedy, n_predict, print_piece, NULL, &stats);
    putchar('\n');
    if (status == TERN_OK) {
        fprintf(stderr, "prompt: %u tokens | generated: %u tokens, %.1f tok/s\n",
                stats.prompt_tokens, stats.generated_tokens,
                stats.generate_ms > 0 ? stats.generated_tokens * 1e3 / stats.generate_ms : 0.0);
    } else {
        fail("generate");
    }

    tern_session_free(session);
    tern_model_free(model);
    return status == TERN_OK ? 0 : 1;
}
