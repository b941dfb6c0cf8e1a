/* PyTorch checkpoint internals shared by the reader (pickle.c) and the
 * converter (pickle_convert.c), and visible to tests. */
#ifndef CELLAR_PICKLE_H
#define CELLAR_PICKLE_H

#include "util.h"

/* The limits of PICKLE.md's rules for a safe reader, and ours. */
#define PT_MAX_PICKLE (64u << 20) /* bytes of one pickle (data.pkl) */
#define PT_MAX_STACK (1u << 20)   /* stack entries */
#define PT_MAX_MARKS 1024u        /* open MARKs */
#define PT_MAX_STR (16u << 20)    /* bytes of one string or bytes object */
#define PT_MAX_LONG 8u            /* bytes of a LONG1 */
#define PT_MAX_RANK 64u
#define PT_MAX_DEPTH 64u          /* nesting walked (state dict, hash) */
#define PT_MAX_NODES (4u << 20)   /* objects built (memory bound: ~32 B each) */
#define PT_MAX_ITEMS (16u << 20)  /* container slots */
#define PT_MAX_GLOBALS 65536u     /* distinct globals */
#define PT_MAX_LINE 4096u         /* a GLOBAL opcode's module or name line */
#define PT_MAX_VIEWS 4096u        /* legacy storage views (pre-1.0 slicing) */

/* The checkpoint's descriptor (-1 when opened on a buffer), for
 * copy_file_range. */
int cellar_pt_fd(const cellar_pt *pt);

/* Classifies (module, name) as PICKLE.md does: torch's weights_only
 * allowlist is safe, picklescan's list dangerous, anything else unknown. */
cellar_pt_class cellar_pt_classify(const char *module, const char *name);

/* The refusals of cellar_pt_convert() for any user of the tensors: a
 * dangerous global anywhere (CELLAR_EUNSUPPORTED naming it and its offset),
 * then, unless allow_unknown, an object of an unknown global holding
 * tensors (naming the global and the path). verb: "convert", "load"; hint:
 * how to allow the second. */
int cellar_pt_refuse(const cellar_pt *pt, int allow_unknown, const char *verb, const char *hint);

#endif
