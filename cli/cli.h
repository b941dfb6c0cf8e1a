/* The cellar command: shared helpers for the cmd_<verb>.c files. The CLI
 * uses only the public header. */
#ifndef CELLAR_CLI_H
#define CELLAR_CLI_H

#include "cellar.h"

#include <stdbool.h>
#include <stdio.h>

/* Exit statuses: 0 ok, 1 failure, 2 usage. */
enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2 };

/* Prints "cellar: <library's last error>" to stderr; returns CLI_FAIL. */
int cli_error_last(void);
/* Prints "cellar: <message>" to stderr; returns CLI_FAIL. */
int cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prints "cellar <verb>: <message>" and a hint to run --help; returns CLI_USAGE. */
int cli_usage(const char *verb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* For getopt_long() loops run with opterr = 0 and an optstring starting
 * with ':': the usage error for the option getopt just refused (opt is
 * '?' or ':'), naming it. */
int cli_bad_option(const char *verb, int opt, char **argv);
/* Prints "cellar: warning: <message>" to stderr. */
/* s with its control bytes shown as \xNN (names from files and servers). */
void cli_put_escaped(FILE *f, const char *s);
/* Same over len bytes (a NUL among them shows as \x00). */
void cli_put_escaped_n(FILE *f, const char *s, size_t len);
void cli_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Writes s as a JSON string literal (with quotes) to f. */
void cli_json_string(FILE *f, const char *s, size_t len);

/* Parses a size: plain bytes or with a KB/MB/GB/TB (decimal) or
 * KiB/MiB/GiB/TiB suffix; false if malformed. */
bool cli_parse_size(const char *s, unsigned long long *out);

/* "1.5 GiB": bytes in binary units, into buf; returns buf. */
const char *cli_human_size(char buf[32], uint64_t bytes);
/* Parses a duration: seconds, or with an s/m/h/d suffix; false if malformed. */
bool cli_parse_duration(const char *s, uint64_t *out);

/* GNU argument order for verbs that parse argv by hand: moves the options
 * (and the value after each option named in with_value, a NULL-ended list)
 * before the operands, keeping the order within each, so that
 * "dedup A B --dry-run" means "dedup --dry-run A B". A "--" stays between
 * the options and the operands; everything after it is an operand. false
 * if out of memory. */
bool cli_options_first(int argc, char **argv, const char *const *with_value);

/* Model identification output (cli/print_identity.c), shared by inspect
 * and ls --by-model. */
/* The registry: the compiled table, plus the rows of the file named by
 * $CELLAR_REGISTRY when set (a bad file is a warning, the table is kept). */
cellar_registry *cli_registry_open(void);
/* The "model" JSON object: text, kind, base, variant, component, layout,
 * precision, parts, confidence, evidence [...], rule, declared, conflict,
 * structural, registry [...], groups [...], lora {format, rank, alpha,
 * targets}, components [...] for a pipeline. */
void cli_identity_json(FILE *f, const cellar_identity *id);
/* The printers of a cellar_tree (cli/print_tree.c), which know no format:
 * compact JSON and a newline (returns the library's code), or text
 * following the display hints (CELLAR_NODE_HIDDEN, CELLAR_NODE_ROWS, each
 * node's text view), every untrusted byte escaped. */
int cli_tree_json(FILE *f, const cellar_node *n);
/* A cellar_write_fn onto the FILE * ctx. */
int cli_write_file(const void *data, size_t len, void *ctx);
void cli_tree_text(FILE *f, const cellar_node *root);
/* cellar ls --by-model: the n PATHs summarised by model (cli/ls_by_model.c). */
int cli_ls_by_model(int n, char **paths, bool json);

/* Ctrl-C: cli_catch_interrupt() installs a SIGINT/SIGTERM handler that
 * only sets a flag (a second Ctrl-C kills as usual); every library
 * callback returns cli_interrupted(), so the operation stops cleanly with
 * CELLAR_EUSER. */
void cli_catch_interrupt(void);
bool cli_interrupted(void);

/* A progress line on stderr (bytes, files, rate, time left), drawn only
 * when stderr is a terminal and, for verbs that stream results to stdout,
 * stdout is not (show_with_stdout false). */
typedef struct cli_progress {
    bool on;
    const char *verb;
    double started, last;
    bool drawn;
} cli_progress;
void cli_progress_init(cli_progress *p, const char *verb, bool show_with_stdout);
/* Redraws (at most ten times a second); returns cli_interrupted(), so it
 * can serve as the callback's answer. */
int cli_progress_show(cli_progress *p, const cellar_progress *pr);
/* Erases the line, before other output and at the end. */
void cli_progress_clear(cli_progress *p);
/* A cellar_progress_fn over a cli_progress. */
int cli_progress_cb(const cellar_progress *pr, void *ctx);

/* Opens the store the environment names (cellar_store_home_from_env()).
 * Returns the library's code; the message is in cellar_error_last(). */
int cli_store_open(cellar_store **out);

/* Each verb: argv[0] is the verb's name. */
typedef int (*cli_cmd_fn)(int argc, char **argv);

/* The verbs (cli/cmd_<verb>.c). */
int cmd_hash(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_shard(int argc, char **argv);
int cmd_merge(int argc, char **argv);
/* The store's verbs (cli/cmd_add.c ... cmd_gc.c). */
int cmd_add(int argc, char **argv);
int cmd_dedup(int argc, char **argv);
int cmd_import_hf(int argc, char **argv);
int cmd_du(int argc, char **argv);
int cmd_ls(int argc, char **argv);
int cmd_which(int argc, char **argv);
int cmd_map(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_gc(int argc, char **argv);
int cmd_dduf(int argc, char **argv);
int cmd_pull(int argc, char **argv);
int cmd_get(int argc, char **argv);
/* PyTorch checkpoints (cli/cmd_convert.c, cmd_scan.c). */
int cmd_convert(int argc, char **argv);
int cmd_scan(int argc, char **argv);
/* OCI registries (cli/cmd_push.c). */
int cmd_push(int argc, char **argv);
/* --plain-http and --user USER:PASS for push and pull: 1 if argv[*i] was
 * one of them (*i moved past its value), 0 if not, -1 (usage printed). */
int cli_oci_option(cellar_oci_opts *o, int argc, char **argv, int *i, const char *verb);

#endif
