/*
 * Baseline for `cargo bareflow bench llm`: a plain C forward pass of a
 * llama2-family model, written from the checkpoint format description
 * (models/README.md), greedy decoding from BOS. Built by the bench with
 * gcc -O3 -march=native -ffast-math [-fopenmp].
 *
 *   llm <checkpoint> <steps>     prints "achieved tok/s: X" on stderr
 *                                (timed from the second token, like run.c)
 *   llm --bandwidth <MiB>        prints "bandwidth GB/s: X" (sum over a buffer)
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    int dim, hidden, layers, heads, kv_heads, vocab, seq;
} Header;

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

/* y[r] = sum_c m[r*cols + c] * v[c] */
static void matvec(float *y, const float *m, const float *v, int rows, int cols) {
#pragma omp parallel for
    for (int r = 0; r < rows; r++) {
        const float *row = m + (size_t)r * cols;
        float acc = 0.0f;
        for (int c = 0; c < cols; c++) acc += row[c] * v[c];
        y[r] = acc;
    }
}

static void norm(float *out, const float *in, const float *g, int n) {
    float sq = 0.0f;
    for (int i = 0; i < n; i++) sq += in[i] * in[i];
    float k = 1.0f / sqrtf(sq / n + 1e-5f);
    for (int i = 0; i < n; i++) out[i] = g[i] * in[i] * k;
}

static int bandwidth(long mib) {
    size_t n = (size_t)mib * 1024 * 1024 / sizeof(float);
    float *buf = malloc(n * sizeof(float));
    if (!buf) { fprintf(stderr, "out of memory\n"); return 1; }
    for (size_t i = 0; i < n; i++) buf[i] = (float)(i & 7);
    double best = 0.0, sink = 0.0;
    for (int rep = 0; rep < 5; rep++) {
        double t0 = now_s();
        float s = 0.0f; /* float lanes: gcc vectorizes this with -ffast-math */
#pragma omp parallel for reduction(+ : s)
        for (size_t i = 0; i < n; i++) s += buf[i];
        double dt = now_s() - t0;
        sink += s;
        double gbs = n * sizeof(float) / dt / 1e9;
        if (gbs > best) best = gbs;
    }
    printf("bandwidth GB/s: %.2f (checksum %.0f)\n", best, sink);
    free(buf);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "--bandwidth") == 0) return bandwidth(atol(argv[2]));
    if (argc != 3) { fprintf(stderr, "usage: llm <checkpoint> <steps> | --bandwidth <MiB>\n"); return 2; }
    FILE *f = fopen(argv[1], "rb");
    if (!f) { perror(argv[1]); return 1; }
    Header h;
    if (fread(&h, sizeof h, 1, f) != 1) { fprintf(stderr, "short header\n"); return 1; }
    int shared = h.vocab > 0;
    int V = abs(h.vocab), D = h.dim, H = h.hidden, L = h.layers, S = h.seq;
    int hs = D / h.heads, KV = hs * h.kv_heads, group = h.heads / h.kv_heads;
    fseek(f, 0, SEEK_END);
    long bytes = ftell(f) - (long)sizeof h;
    fseek(f, sizeof h, SEEK_SET);
    float *w = malloc(bytes);
    if (!w || fread(w, 1, bytes, f) != (size_t)bytes) { fprintf(stderr, "cannot read weights\n"); return 1; }
    fclose(f);

    /* Tensor offsets, in file order. */
    float *emb = w, *p = w + (size_t)V * D;
    float *att_g = p;  p += (size_t)L * D;
    float *wq = p;     p += (size_t)L * D * D;
    float *wk = p;     p += (size_t)L * KV * D;
    float *wv = p;     p += (size_t)L * KV * D;
    float *wo = p;     p += (size_t)L * D * D;
    float *ffn_g = p;  p += (size_t)L * D;
    float *w1 = p;     p += (size_t)L * H * D;
    float *w2 = p;     p += (size_t)L * D * H;
    float *w3 = p;     p += (size_t)L * H * D;
    float *out_g = p;  p += D;
    p += (size_t)S * hs; /* rotary tables, unused */
    float *cls = shared ? emb : p;

    float *x = calloc(D, 4), *t = calloc(D, 4), *t2 = calloc(D, 4), *q = calloc(D, 4);
    float *a = calloc(H, 4), *b = calloc(H, 4), *scores = calloc(S, 4), *logits = calloc(V, 4);
    float *kc = calloc((size_t)L * S * KV, 4), *vc = calloc((size_t)L * S * KV, 4);

    int steps = atoi(argv[2]);
    if (steps <= 0 || steps > S) steps = S;
    int tok = 1;
    double start = 0.0;
    long checksum = 0;
    for (int pos = 0; pos < steps; pos++) {
        memcpy(x, emb + (size_t)tok * D, D * 4);
        for (int l = 0; l < L; l++) {
            float *kp = kc + ((size_t)l * S + pos) * KV, *vp = vc + ((size_t)l * S + pos) * KV;
            norm(t, x, att_g + (size_t)l * D, D);
            matvec(q, wq + (size_t)l * D * D, t, D, D);
            matvec(kp, wk + (size_t)l * KV * D, t, KV, D);
            matvec(vp, wv + (size_t)l * KV * D, t, KV, D);
            for (int i = 0; i < D; i += 2) {
                float ang = pos * powf(10000.0f, -(float)(i % hs) / hs);
                float c = cosf(ang), s = sinf(ang);
                float q0 = q[i], q1 = q[i + 1];
                q[i] = q0 * c - q1 * s;
                q[i + 1] = q0 * s + q1 * c;
                if (i < KV) {
                    float k0 = kp[i], k1 = kp[i + 1];
                    kp[i] = k0 * c - k1 * s;
                    kp[i + 1] = k0 * s + k1 * c;
                }
            }
            for (int hd = 0; hd < h.heads; hd++) {
                float *qh = q + hd * hs, *o = t + hd * hs;
                int kvh = hd / group;
                float mx = -1e30f, sum = 0.0f;
                for (int j = 0; j <= pos; j++) {
                    const float *kj = kc + ((size_t)l * S + j) * KV + kvh * hs;
                    float d = 0.0f;
                    for (int i = 0; i < hs; i++) d += qh[i] * kj[i];
                    scores[j] = d / sqrtf((float)hs);
                    if (scores[j] > mx) mx = scores[j];
                }
                for (int j = 0; j <= pos; j++) { scores[j] = expf(scores[j] - mx); sum += scores[j]; }
                memset(o, 0, hs * 4);
                for (int j = 0; j <= pos; j++) {
                    const float *vj = vc + ((size_t)l * S + j) * KV + kvh * hs;
                    float wgt = scores[j] / sum;
                    for (int i = 0; i < hs; i++) o[i] += wgt * vj[i];
                }
            }
            matvec(t2, wo + (size_t)l * D * D, t, D, D);
            for (int i = 0; i < D; i++) x[i] += t2[i];
            norm(t, x, ffn_g + (size_t)l * D, D);
            matvec(a, w1 + (size_t)l * H * D, t, H, D);
            matvec(b, w3 + (size_t)l * H * D, t, H, D);
            for (int i = 0; i < H; i++) a[i] = a[i] / (1.0f + expf(-a[i])) * b[i];
            matvec(t2, w2 + (size_t)l * D * H, a, D, H);
            for (int i = 0; i < D; i++) x[i] += t2[i];
        }
        norm(x, x, out_g, D);
        matvec(logits, cls, x, V, D);
        int best = 0;
        for (int i = 1; i < V; i++) if (logits[i] > logits[best]) best = i;
        tok = best;
        checksum = checksum * 31 + best;
        if (start == 0.0) start = now_s();
    }
    double dt = now_s() - start;
    printf("tokens: %d checksum: %ld\n", steps, checksum);
    if (steps > 1) fprintf(stderr, "achieved tok/s: %f\n", (steps - 1) / dt);
    return 0;
}
