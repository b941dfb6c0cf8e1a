/* Identification from tensor lists built in memory: the rule engine's edge
 * cases, evidence order, LoRA values and metadata, the public result, and
 * a 10,000-tensor header (its CPU time is measured by bench/identify.sh,
 * which runs this program as "test_identify bench N"). */
#include "testutil.h"

#include "cellar.h"

#include <stdbool.h>
#include <time.h>

#define MAXT 20000

static char names[MAXT][128];
static uint64_t shapes[MAXT][4];
static cellar_tensor_desc tensors[MAXT];
static size_t nt;

static void reset(void)
{
    nt = 0;
}

static cellar_tensor_desc *add(const char *name, const char *dtype, size_t rank, uint64_t d0,
                               uint64_t d1, uint64_t d2, uint64_t d3)
{
    cellar_tensor_desc *t = &tensors[nt];
    snprintf(names[nt], sizeof names[nt], "%s", name);
    shapes[nt][0] = d0;
    shapes[nt][1] = d1;
    shapes[nt][2] = d2;
    shapes[nt][3] = d3;
    *t = (cellar_tensor_desc){.name = names[nt], .name_len = strlen(names[nt]), .dtype = dtype,
                              .rank = rank, .shape = shapes[nt]};
    nt++;
    return t;
}

static cellar_identity *run(const char *const *mk, const char *const *mv, size_t nmeta)
{
    cellar_identify_input in = {.version = CELLAR_IDENTIFY_INPUT_VERSION};
    in.tensors = tensors;
    in.ntensors = nt;
    in.meta_keys = mk;
    in.meta_values = mv;
    in.nmeta = nmeta;
    cellar_identity *id = NULL;
    int rc = cellar_identify_list(&id, &in);
    CHECK_MSG(rc == 0, "identify: %s", cellar_error_last());
    return id;
}

/* An SD1 UNet's rule keys with n filler tensors (a 10,000-tensor header). */
static void sd1_unet(size_t filler)
{
    reset();
    add("input_blocks.0.0.weight", "F16", 4, 320, 4, 3, 3);
    add("input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight", "F16", 2, 320, 768, 0, 0);
    add("input_blocks.1.1.proj_in.weight", "F16", 4, 320, 320, 1, 1);
    char n[128];
    for (size_t i = 0; i < filler && nt < MAXT; i++) {
        snprintf(n, sizeof n, "output_blocks.%zu.1.transformer_blocks.%zu.ff.net.2.weight", i / 100,
                 i % 100);
        add(n, i % 7 ? "F16" : "F32", 2, 320, 1280, 0, 0);
    }
}

/* A kohya LoRA over n modules (its keys are what the wildcard rules scan). */
static void kohya_lora(size_t modules, double alpha)
{
    reset();
    char n[128];
    for (size_t i = 0; i < modules && nt + 3 <= MAXT; i++) {
        const char *m = i == 0 ? "lora_unet_input_blocks_4_1_transformer_blocks_0_attn2_to_k"
                               : "lora_unet_output_blocks_x";
        if (i)
            snprintf(n, sizeof n, "lora_unet_output_blocks_%zu_1_proj_in", i);
        else
            snprintf(n, sizeof n, "%s", m);
        char k[160];
        snprintf(k, sizeof k, "%s.lora_down.weight", n);
        add(k, "F16", 2, 32, i == 0 ? 2048 : 640, 0, 0);
        snprintf(k, sizeof k, "%s.lora_up.weight", n);
        add(k, "F16", 2, 640, 32, 0, 0);
        snprintf(k, sizeof k, "%s.alpha", n);
        cellar_tensor_desc *a = add(k, "F32", 0, 0, 0, 0, 0);
        a->has_value = 1;
        a->value = alpha;
    }
    add("lora_te1_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight", "F16", 2, 32, 768,
        0, 0);
    add("lora_te2_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight", "F16", 2, 32,
        1280, 0, 0);
}

static double cpu_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int bench(int runs)
{
    struct {
        const char *what;
        void (*make)(void);
    } kinds[2];
    (void)kinds;
    for (int k = 0; k < 2; k++) {
        if (k == 0)
            sd1_unet(9997);
        else
            kohya_lora(3333, 16);
        double best = 1e30;
        for (int r = 0; r < runs; r++) {
            double t0 = cpu_ms();
            cellar_identify_input in = {.version = CELLAR_IDENTIFY_INPUT_VERSION};
            in.tensors = tensors;
            in.ntensors = nt;
            cellar_identity *id = NULL;
            if (cellar_identify_list(&id, &in) != 0)
                return 1;
            double t = cpu_ms() - t0;
            if (t < best)
                best = t;
            cellar_identity_free(id);
        }
        printf("%s %zu tensors: %.2f ms CPU (best of %d)\n", k ? "lora" : "unet", nt, best, runs);
    }
    return 0;
}

static void test_unet_10000(void)
{
    sd1_unet(9997);
    CHECK(nt == 10000);
    cellar_identity *id = run(NULL, NULL, 0);
    const cellar_identity_info *x = cellar_identity_get(id);
    CHECK(x && x->version == CELLAR_IDENTITY_VERSION);
    CHECK(x && x->kind == CELLAR_KIND_DIFFUSION && x->tensors == 10000);
    CHECK(x && x->base && !strcmp(x->base, "SD1.x"));
    CHECK(x && x->confidence == CELLAR_CONFIDENCE_MEDIUM && x->evidence == CELLAR_EVIDENCE_RULE);
    /* 1 in 7 filler tensors are F32: not a tenth of the elements... */
    CHECK_STR(x ? x->precision : "", "F16+F32");
    CHECK_STR(cellar_identity_text(id), "SD1.x UNet, original layout, F16+F32 (rule)");
    cellar_identity_free(id);
}

static void test_lora_10000(void)
{
    kohya_lora(3333, 16);
    CHECK(nt == 10001);
    cellar_identity *id = run(NULL, NULL, 0);
    const cellar_identity_info *x = cellar_identity_get(id);
    CHECK(x && x->kind == CELLAR_KIND_LORA && x->lora_rank == 32 && x->lora_has_alpha &&
          x->lora_alpha == 16);
    CHECK_STR(cellar_identity_text(id), "LoRA (kohya) for SDXL, rank 32, alpha 16, unet+te1+te2");
    cellar_identity_free(id);
}

/* Declared metadata fills a gap, a disagreement is a conflict, and a LoRA
 * with no alpha tensors takes ss_network_alpha. */
static void test_metadata(void)
{
    const char *k[] = {"ss_network_dim", "ss_network_alpha", "ss_base_model_version"};
    const char *v[] = {"8", "4.5", "sdxl_base_v1-0"};
    reset();
    add("unet.mid_block.attentions.0.proj_in.lora_A.weight", "BF16", 2, 8, 1280, 0, 0);
    cellar_identity *id = run(k, v, 3);
    const cellar_identity_info *x = cellar_identity_get(id);
    CHECK(x && x->kind == CELLAR_KIND_LORA && x->lora_has_alpha && x->lora_alpha == 4.5);
    CHECK(x && x->lora_rank == 8 && x->base && !strcmp(x->base, "SDXL"));
    CHECK(x && (x->evidence & CELLAR_EVIDENCE_METADATA) && x->declared &&
          !strcmp(x->declared, "sdxl_base_v1-0"));
    CHECK_STR(cellar_identity_text(id), "LoRA (PEFT) for SDXL base, rank 8, alpha 4.5, unet (rule, declared)");
    cellar_identity_free(id);

    /* rules say SD1, metadata says SDXL: the rule wins, the conflict shows */
    const char *k2[] = {"modelspec.architecture"};
    const char *v2[] = {"stable-diffusion-xl-v1-base"};
    sd1_unet(0);
    id = run(k2, v2, 1);
    x = cellar_identity_get(id);
    CHECK(x && x->base && !strcmp(x->base, "SD1.x") && x->conflict &&
          strstr(x->conflict, "stable-diffusion-xl-v1-base"));
    cellar_identity_free(id);
}

/* Alternatives, wildcards, prefixes: the diffusion prefix needs more than 5
 * keys; nothing matching is "unknown", never a guess. */
static void test_engine(void)
{
    reset();
    add("model.diffusion_model.input_blocks.0.0.weight", "F16", 4, 320, 9, 3, 3);
    add("model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight", "F16", 2,
        320, 1024, 0, 0);
    cellar_identity *id = run(NULL, NULL, 0);
    CHECK(cellar_identity_get(id)->kind == CELLAR_KIND_UNKNOWN); /* only 2 keys under P */
    CHECK(!strncmp(cellar_identity_text(id), "unknown (structural ", 20));
    cellar_identity_free(id);
    for (int i = 0; i < 4; i++) {
        char n[64];
        snprintf(n, sizeof n, "model.diffusion_model.out.%d.weight", i);
        add(n, "F16", 1, 4, 0, 0, 0);
    }
    id = run(NULL, NULL, 0);
    const cellar_identity_info *x = cellar_identity_get(id);
    CHECK(x->kind == CELLAR_KIND_DIFFUSION && !strcmp(x->base, "SD2.x") &&
          !strcmp(x->variant, "inpaint") && !strcmp(x->layout, "original single-file"));
    CHECK(x->rule && strstr(x->rule, "sd-unet") && strstr(x->rule, "sd-inpaint"));
    cellar_identity_free(id);

    /* empty list, bad version, NULL tensors with a count */
    reset();
    id = run(NULL, NULL, 0);
    CHECK(cellar_identity_get(id)->kind == CELLAR_KIND_UNKNOWN &&
          cellar_identity_get(id)->tensors == 0);
    cellar_identity_free(id);
    cellar_identify_input bad = {.version = 0};
    CHECK(cellar_identify_list(&id, &bad) == CELLAR_EINVAL && id == NULL);
    bad.version = CELLAR_IDENTIFY_INPUT_VERSION;
    bad.ntensors = 3;
    CHECK(cellar_identify_list(&id, &bad) == CELLAR_EINVAL);
    cellar_identity_free(NULL);
    CHECK(cellar_identity_get(NULL) == NULL && !strcmp(cellar_identity_text(NULL), ""));
    CHECK(!strcmp(cellar_model_kind_name(CELLAR_KIND_VAE), "VAE") &&
          !strcmp(cellar_model_kind_name((cellar_model_kind)99), "unknown"));

    /* The HASHES.md example through an extra registry: hash evidence. */
    reset();
    add("a.bias", "F32", 1, 2, 0, 0, 0);
    add("a.weight", "F32", 2, 2, 3, 0, 0);
    add("scale", "F32", 0, 0, 0, 0, 0);
    const char *dir = test_tmpdir("identify");
    char p[4200];
    snprintf(p, sizeof p, "%s/extra.tsv", dir);
    FILE *f = fopen(p, "w");
    fputs("cdf0726fd23f31be0c8f82e838646a79\tToy\tdit\tThe example\n", f);
    fclose(f);
    cellar_registry *reg;
    CHECK(cellar_registry_open(&reg, p) == 0);
    cellar_identify_input in = {.version = CELLAR_IDENTIFY_INPUT_VERSION};
    in.tensors = tensors;
    in.ntensors = nt;
    in.registry = reg;
    CHECK(cellar_identify_list(&id, &in) == 0);
    x = cellar_identity_get(id);
    CHECK_STR(x->structural, "cdf0726fd23f31be0c8f82e838646a79");
    CHECK(x->nmatches == 1 && x->kind == CELLAR_KIND_DIFFUSION &&
          x->confidence == CELLAR_CONFIDENCE_HIGH);
    CHECK_STR(cellar_identity_text(id), "Toy dit (The example), F32 (hash cdf0726f)");
    cellar_identity_free(id);
    cellar_registry_free(reg);
}

/* The hash over names in order (insertion sort of the shape entries, with
 * a move budget) equals the hash over any order (qsort), also when every
 * name extends the one before with a byte below ':' (the budget runs out). */
static void test_hash_orders(void)
{
    for (int chain = 0; chain < 2; chain++) {
        reset();
        char n[128] = "a";
        for (int i = 0; i < 100; i++) {
            add(n, "F16", 2, (uint64_t)i + 1, 3, 0, 0);
            size_t l = strlen(n);
            if (chain) {
                n[l] = (char)('-' + i % 3); /* '-', '.', '/': all below ':' */
                n[l + 1] = '\0';
            } else {
                snprintf(n, sizeof n, "b.%d.weight", i);
            }
        }
        /* reversed: the library must not rely on the caller's order */
        for (size_t i = 0; i < nt / 2; i++) {
            cellar_tensor_desc x = tensors[i];
            tensors[i] = tensors[nt - 1 - i];
            tensors[nt - 1 - i] = x;
        }
        cellar_identity *id = run(NULL, NULL, 0);
        cellar_st_writer *w;
        CHECK(cellar_st_writer_new(&w) == 0);
        static uint16_t zero[400];
        for (size_t i = 0; i < nt; i++)
            cellar_st_writer_add(w, tensors[i].name, tensors[i].name_len, CELLAR_DTYPE_F16, 2,
                                 tensors[i].shape, zero, 2 * tensors[i].shape[0] * 3);
        const char *dir = test_tmpdir("identify_hash");
        char p[4200];
        snprintf(p, sizeof p, "%s/h.safetensors", dir);
        CHECK(cellar_st_writer_write(w, p) == 0);
        cellar_st_writer_free(w);
        char h[33];
        CHECK(cellar_structural_hash(h, p) == 0);
        CHECK_STR(cellar_identity_get(id)->structural, h);
        cellar_identity_free(id);
    }
}

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "bench"))
        return bench(atoi(argv[2]));
    test_unet_10000();
    test_lora_10000();
    test_metadata();
    test_engine();
    test_hash_orders();
    return test_summary();
}
