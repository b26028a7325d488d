/* fuzz_rule.c -- the rule language (flow/em_expr.h): any text compiles to a program or gives a
 * message with a position; a program that compiles evaluates over a fixed record (its result
 * or a message: division by zero, overflow), never a crash. */
#include <stdlib.h>
#include <string.h>

#include "em_expr.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const names[] = {"a", "b", "x", "s", "t", "ok"};
    static const em_type types[] = {EM_T_INT,    EM_T_INT,       EM_T_DOUBLE,
                                    EM_T_STRING, EM_T_TIMESTAMP, EM_T_BOOL};
    em_schema schema = {0};
    char err[512];
    for (int k = 0; k < 6; k++) em_schema_add(&schema, names[k], types[k], err, sizeof err);
    em_value cols[6] = {
        {.i = 7}, {.i = -3}, {.f = 2.5}, {.s = "I0042-x", .len = 7}, {.i = 1764756000000},
        {.i = 1}};
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    em_expr *e = em_expr_compile(text, &schema, err, sizeof err);
    em_value out;
    if (e) em_expr_eval(e, cols, &out, err, sizeof err);
    em_expr_free(e);
    free(text);
    return 0;
}
