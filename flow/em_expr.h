/* em_expr.h -- the rule language of workflows: expressions over a record's columns.
 *
 *     speed_kmh > 120 and not (area in ("depot", "garage"))
 *     qty * price_cents / 100
 *     name starts_with "I00" or name contains "-x"
 *
 * Operators, loosest first: `or`; `and`; `not`; comparisons (== != < <= > >=), `in (list)`,
 * `not in (list)`, `contains`, `starts_with`, `matches "regex"` (POSIX extended, the whole
 * string unless anchored otherwise: use ^ and $; compiled once); + -; * / %; unary -. Values:
 * integers, decimals (1.5, 2e3), strings in double quotes (\" and \\ escapes), true, false, column
 * names (letters, digits, _; or any name in backquotes). Ints mix with doubles (the result is a
 * double); timestamps are ints; strings compare bytewise.
 *
 * An expression is parsed and type-checked once against the schema of the records it reads
 * (em_expr_compile: errors name the position, "at 7: ..."), into a flat program that
 * em_expr_eval runs per record with no allocation. Evaluation fails for a division or
 * remainder by zero (an integer one, or a double one: both are errors, never inf), an integer
 * overflow, and `matches` on a string of more than EM_EXPR_MATCH_MAX bytes or holding a NUL.
 */
#ifndef EM_EXPR_H
#define EM_EXPR_H

#include <stddef.h>

#include "em_value.h"

#define EM_EXPR_TEXT_MAX       4096 /* bytes of one expression */
#define EM_EXPR_MATCH_MAX      4096 /* bytes of a string `matches` reads */
#define EM_EXPR_MATCH_MAX_TEXT "4096"

typedef struct em_expr em_expr;

/* em_expr_compile parses `text` (NUL-terminated) against `schema`. Returns the program (the
 * caller frees it with em_expr_free), or NULL with a message in err: "at N: ..." (N counts
 * bytes from 1) for syntax, type and missing-column errors. */
em_expr *em_expr_compile(const char *text, const em_schema *schema, char *err, size_t errlen);

/* em_expr_type: the type of the expression's result */
em_type em_expr_type(const em_expr *e);

/* em_expr_columns: whether the expression reads column i (for explanations) */
int em_expr_reads(const em_expr *e, int column);

/* em_expr_eval evaluates the program over cols (one value per column of the schema it was
 * compiled against). Returns 0 with the result in *out, or -1 with a message in err
 * (division by zero). A string result points into cols or into the program's constants. */
int em_expr_eval(const em_expr *e, const em_value *cols, em_value *out, char *err, size_t errlen);

void em_expr_free(em_expr *e);

#endif
