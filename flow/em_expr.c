/* em_expr.c -- the rule language: parsed, type-checked and compiled in one pass, run as a
 * flat stack program.
 *
 * The parser is recursive descent, one function per precedence level; each level emits the
 * code of what it parsed (postfix) and returns its type, so type errors are found where the
 * operator is, with its position. Ints meeting doubles are converted where they sit on the
 * stack (I2F with a depth), `and`/`or` jump over their right side when the left decides.
 * Invariants: the stack depth of every instruction is known at compile time and never
 * exceeds EXPR_STACK; strings and `in` lists live in the program, fixed up to pointers once
 * parsing ends (the pools may move while they grow).
 */
#include "em_expr.h"

#include <ctype.h>
#include <regex.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXPR_STACK 64   /* values on the evaluation stack */
#define EXPR_CODE  1024 /* instructions of one program */
#define EXPR_REGEX 8    /* `matches` patterns of one program */

typedef enum op {
    OP_PUSH, /* push v */
    OP_COL,  /* push column a */
    OP_I2F,  /* convert the value a below the top */
    OP_ADD_I,
    OP_SUB_I,
    OP_MUL_I,
    OP_DIV_I,
    OP_MOD_I, /* ints (overflow is an error) */
    OP_ADD_F,
    OP_SUB_F,
    OP_MUL_F,
    OP_DIV_F,
    OP_NEG_I,
    OP_NEG_F,
    OP_CMP_I,
    OP_CMP_F,
    OP_CMP_S,
    OP_CMP_B, /* compare the top two by `cmp` */
    OP_NOT,
    OP_JFALSE_OR_POP, /* `and`: top false: jump to a, keeping it; else drop it */
    OP_JTRUE_OR_POP,  /* `or`: top true: jump to a, keeping it; else drop it */
    OP_IN_I,
    OP_IN_F,
    OP_IN_S, /* top in list[a .. a + b) */
    OP_CONTAINS,
    OP_PREFIX,
    OP_MATCHES, /* top matches the regular expression regex[a] */
} op;

typedef enum cmp { CMP_EQ, CMP_NE, CMP_LT, CMP_LE, CMP_GT, CMP_GE } cmp;

typedef struct insn {
    uint8_t op;
    uint8_t cmp;
    int32_t a, b;
    em_value v; /* OP_PUSH's constant (a string's: `cmp` 1 and its offset into strs in `a`,
                   until fix_up) */
} insn;

struct em_expr {
    insn code[EXPR_CODE];
    int n;          /* instructions used */
    em_type type;   /* the result's type */
    em_value *list; /* `in` lists' values (strings: offsets until fixed up) */
    int list_n, list_cap;
    char *strs; /* string constants */
    size_t strs_len, strs_cap;
    uint64_t reads[EM_SCHEMA_MAX / 64]; /* columns read, a bit each */
    regex_t regex[EXPR_REGEX];          /* `matches` patterns, compiled */
    int n_regex;
};

/* ---- lexer ------------------------------------------------------------------------------ */

typedef enum tok {
    T_END,
    T_INT,
    T_DOUBLE,
    T_STRING,
    T_NAME,
    T_TRUE,
    T_FALSE,
    T_AND,
    T_OR,
    T_NOT,
    T_IN,
    T_CONTAINS,
    T_STARTS,
    T_MATCHES,
    T_LPAREN,
    T_RPAREN,
    T_COMMA,
    T_PLUS,
    T_MINUS,
    T_STAR,
    T_SLASH,
    T_PERCENT,
    T_EQ,
    T_NE,
    T_LT,
    T_LE,
    T_GT,
    T_GE,
    T_BAD,
} tok;

typedef struct parser {
    const char *text;
    size_t pos;   /* where the next token starts */
    tok t;        /* the current token */
    size_t t_pos; /* its offset */
    size_t t_len; /* its length */
    int64_t t_int;
    double t_double;
    char name[EM_NAME_MAX];
    size_t str_off, str_len; /* a T_STRING's bytes in the program's strs */
    const em_schema *schema;
    em_expr *e;
    int depth, max_depth; /* the stack depth at the current instruction */
    int nesting;          /* parentheses and unary operators, bounded */
    char *err;
    size_t errlen;
    int failed;
} parser;

/* fail records the first error, at the current token */
static int fail(parser *p, size_t at, const char *fmt, ...)
{
    if (p->failed) return -1;
    p->failed = 1;
    int n = snprintf(p->err, p->errlen, "at %zu: ", at + 1);
    if (n >= 0 && (size_t)n < p->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(p->err + n, p->errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static int str_append(em_expr *e, const char *s, size_t len)
{
    if (e->strs_len + len + 1 > e->strs_cap) {
        size_t cap = e->strs_cap ? e->strs_cap * 2 : 64;
        while (cap < e->strs_len + len + 1) cap *= 2;
        char *n = realloc(e->strs, cap);
        if (!n) return -1;
        e->strs = n;
        e->strs_cap = cap;
    }
    memcpy(e->strs + e->strs_len, s, len);
    e->strs_len += len;
    e->strs[e->strs_len] = '\0';
    return 0;
}

static const struct {
    const char *word;
    tok t;
} KEYWORDS[] = {
    {"true", T_TRUE},      {"false", T_FALSE}, {"and", T_AND},           {"or", T_OR},
    {"not", T_NOT},        {"in", T_IN},       {"contains", T_CONTAINS}, {"starts_with", T_STARTS},
    {"matches", T_MATCHES}};

static int lex_string(parser *p)
{
    const char *s = p->text;
    size_t i = p->pos + 1;
    p->str_off = p->e->strs_len;
    for (;;) {
        char c = s[i];
        if (c == '\0') return fail(p, p->pos, "a string that never ends (missing \")");
        if (c == '"') break;
        if (c == '\\') {
            char n = s[i + 1];
            c = n == 'n' ? '\n' : n == 't' ? '\t' : n;
            if (n != '"' && n != '\\' && n != 'n' && n != 't')
                return fail(p, i, "unknown escape \\%c in a string (\\\" \\\\ \\n \\t)",
                            n ? n : ' ');
            i++;
        }
        if (str_append(p->e, &c, 1) != 0) return fail(p, i, "out of memory");
        i++;
    }
    p->str_len = p->e->strs_len - p->str_off;
    p->t = T_STRING;
    p->pos = i + 1;
    return 0;
}

static int lex_number(parser *p)
{
    const char *start = p->text + p->pos;
    char *end;
    size_t n = strspn(start, "0123456789");
    int is_double = start[n] == '.' || start[n] == 'e' || start[n] == 'E';
    if (is_double) {
        p->t_double = strtod(start, &end);
        p->t = T_DOUBLE;
    } else {
        unsigned long long v = strtoull(start, &end, 10);
        if (n > 19 || v > (unsigned long long)INT64_MAX)
            return fail(p, p->pos, "the integer %.*s is too large (at most %lld)", (int)n, start,
                        (long long)INT64_MAX);
        p->t_int = (int64_t)v;
        p->t = T_INT;
    }
    if (isalpha((unsigned char)*end) || *end == '_')
        return fail(p, p->pos, "a number runs into a name: %.*s", (int)(end - start) + 1, start);
    p->pos += (size_t)(end - start);
    return 0;
}

static int lex_name(parser *p)
{
    const char *s = p->text + p->pos;
    size_t n;
    if (*s == '`') {
        const char *close = strchr(s + 1, '`');
        if (!close) return fail(p, p->pos, "a `name` that never ends (missing `)");
        n = (size_t)(close - s - 1);
        s++;
        p->pos += n + 2;
    } else {
        n = 0;
        while (isalnum((unsigned char)s[n]) || s[n] == '_') n++;
        p->pos += n;
        for (size_t k = 0; k < sizeof KEYWORDS / sizeof KEYWORDS[0]; k++)
            if (strlen(KEYWORDS[k].word) == n && memcmp(KEYWORDS[k].word, s, n) == 0) {
                p->t = KEYWORDS[k].t;
                return 0;
            }
    }
    if (n == 0 || n >= EM_NAME_MAX)
        return fail(p, p->t_pos, "a column name of %zu bytes (1 to %d)", n, EM_NAME_MAX - 1);
    memcpy(p->name, s, n);
    p->name[n] = '\0';
    p->t = T_NAME;
    return 0;
}

/* next reads the next token into p->t */
static int next(parser *p)
{
    const char *s = p->text;
    while (isspace((unsigned char)s[p->pos])) p->pos++;
    p->t_pos = p->pos;
    char c = s[p->pos], d = c ? s[p->pos + 1] : '\0';
    int rc = 0;
    if (c == '\0')
        p->t = T_END;
    else if (c == '"')
        rc = lex_string(p);
    else if (isdigit((unsigned char)c))
        rc = lex_number(p);
    else if (isalpha((unsigned char)c) || c == '_' || c == '`')
        rc = lex_name(p);
    else {
        static const char ones[] = "(),+-*/%<>";
        static const tok one_toks[] = {T_LPAREN, T_RPAREN, T_COMMA,   T_PLUS, T_MINUS,
                                       T_STAR,   T_SLASH,  T_PERCENT, T_LT,   T_GT};
        size_t len = 1;
        if (c == '=' && d == '=')
            p->t = T_EQ, len = 2;
        else if (c == '!' && d == '=')
            p->t = T_NE, len = 2;
        else if (c == '<' && d == '=')
            p->t = T_LE, len = 2;
        else if (c == '>' && d == '=')
            p->t = T_GE, len = 2;
        else if (c == '=')
            return fail(p, p->pos, "'=' is not an operator: compare with ==");
        else if (strchr(ones, c))
            p->t = one_toks[strchr(ones, c) - ones];
        else
            return fail(p, p->pos, "unexpected character '%c'",
                        isprint((unsigned char)c) ? c : '?');
        p->pos += len;
    }
    p->t_len = p->pos - p->t_pos;
    return rc;
}

/* ---- code generation -------------------------------------------------------------------- */

static int emit(parser *p, op o, int32_t a, int delta)
{
    if (p->e->n >= EXPR_CODE) return fail(p, p->t_pos, "the expression is too long");
    insn *i = &p->e->code[p->e->n++];
    memset(i, 0, sizeof *i);
    i->op = (uint8_t)o;
    i->a = a;
    p->depth += delta;
    if (p->depth > p->max_depth) p->max_depth = p->depth;
    if (p->depth > EXPR_STACK) return fail(p, p->t_pos, "the expression is nested too deeply");
    return 0;
}

static int is_num(em_type t) { return em_type_numeric(t); }
static int is_int(em_type t) { return t == EM_T_INT || t == EM_T_TIMESTAMP; }

/* numeric_pair converts the int of an (int, double) pair on the stack top; gives the type */
static em_type numeric_pair(parser *p, em_type l, em_type r)
{
    if (is_int(l) && is_int(r)) return EM_T_INT;
    if (is_int(l)) emit(p, OP_I2F, 1, 0);
    if (is_int(r)) emit(p, OP_I2F, 0, 0);
    return EM_T_DOUBLE;
}

static int parse_or(parser *p, em_type *t);

static int parse_primary(parser *p, em_type *t)
{
    size_t at = p->t_pos;
    switch (p->t) {
    case T_INT:
    case T_DOUBLE:
    case T_TRUE:
    case T_FALSE:
    case T_STRING: {
        if (emit(p, OP_PUSH, 0, 1) != 0) return -1;
        insn *i = &p->e->code[p->e->n - 1];
        if (p->t == T_INT)
            i->v.i = p->t_int, *t = EM_T_INT;
        else if (p->t == T_DOUBLE)
            i->v.f = p->t_double, *t = EM_T_DOUBLE;
        else if (p->t == T_STRING) {
            i->a = (int32_t)p->str_off; /* a pointer once parsing ends (fix_up) */
            i->cmp = 1;
            i->v.len = (uint32_t)p->str_len;
            *t = EM_T_STRING;
        } else
            i->v.i = p->t == T_TRUE, *t = EM_T_BOOL;
        return next(p);
    }
    case T_NAME: {
        int col = em_schema_find(p->schema, p->name, strlen(p->name));
        if (col < 0) {
            char cols[512];
            em_schema_list(p->schema, cols, sizeof cols);
            return fail(p, at, "no column '%s' (the columns: %s)", p->name, cols);
        }
        *t = p->schema->types[col];
        p->e->reads[col / 64] |= 1ull << (col % 64);
        if (emit(p, OP_COL, col, 1) != 0) return -1;
        return next(p);
    }
    case T_LPAREN: {
        if (++p->nesting > EXPR_STACK) return fail(p, at, "the expression is nested too deeply");
        if (next(p) != 0 || parse_or(p, t) != 0) return -1;
        p->nesting--;
        if (p->t != T_RPAREN)
            return fail(p, p->t_pos, "expected ')' to close the '(' at %zu", at + 1);
        return next(p);
    }
    case T_END: return fail(p, at, "expected a value, found the end");
    default: return fail(p, at, "expected a value, found '%.*s'", (int)p->t_len, p->text + at);
    }
}

static int parse_unary(parser *p, em_type *t)
{
    if (p->t != T_MINUS) return parse_primary(p, t);
    size_t at = p->t_pos;
    if (++p->nesting > EXPR_STACK) return fail(p, at, "the expression is nested too deeply");
    if (next(p) != 0 || parse_unary(p, t) != 0) return -1;
    p->nesting--;
    if (!is_num(*t)) return fail(p, at, "'-' needs a number, not a %s", em_type_name(*t));
    if (is_int(*t)) *t = EM_T_INT;
    return emit(p, *t == EM_T_INT ? OP_NEG_I : OP_NEG_F, 0, 0);
}

/* parse_arith: one left-associative level of + - or * / % */
static int parse_arith(parser *p, em_type *t, int multiplicative)
{
    if ((multiplicative ? parse_unary(p, t) : parse_arith(p, t, 1)) != 0) return -1;
    for (;;) {
        tok o = p->t;
        int ours = multiplicative ? (o == T_STAR || o == T_SLASH || o == T_PERCENT)
                                  : (o == T_PLUS || o == T_MINUS);
        if (!ours) return 0;
        size_t at = p->t_pos;
        em_type r;
        if (next(p) != 0 || (multiplicative ? parse_unary(p, &r) : parse_arith(p, &r, 1)) != 0)
            return -1;
        if (!is_num(*t) || !is_num(r))
            return fail(p, at, "'%.*s' needs numbers, not %s and %s", 1, p->text + at,
                        em_type_name(*t), em_type_name(r));
        em_type res = numeric_pair(p, *t, r);
        if (o == T_PERCENT && res != EM_T_INT) return fail(p, at, "'%%' needs two ints");
        static const op int_ops[] = {[T_PLUS] = OP_ADD_I,
                                     [T_MINUS] = OP_SUB_I,
                                     [T_STAR] = OP_MUL_I,
                                     [T_SLASH] = OP_DIV_I,
                                     [T_PERCENT] = OP_MOD_I};
        static const op dbl_ops[] = {[T_PLUS] = OP_ADD_F,
                                     [T_MINUS] = OP_SUB_F,
                                     [T_STAR] = OP_MUL_F,
                                     [T_SLASH] = OP_DIV_F,
                                     [T_PERCENT] = OP_MOD_I};
        if (emit(p, res == EM_T_INT ? int_ops[o] : dbl_ops[o], 0, -1) != 0) return -1;
        *t = res;
    }
}

/* in_list parses "(v, v, ...)" of constants of the type t into the program's lists */
static int parse_in_list(parser *p, em_type t, int32_t *start, int32_t *count)
{
    size_t open = p->t_pos;
    if (p->t != T_LPAREN) return fail(p, open, "expected '(' and a list after 'in'");
    em_expr *e = p->e;
    *start = e->list_n;
    for (;;) {
        if (next(p) != 0) return -1;
        int neg = 0;
        if (p->t == T_MINUS && is_num(t)) {
            neg = 1;
            if (next(p) != 0) return -1;
        }
        em_value v = {0};
        size_t at = p->t_pos;
        if (is_int(t) && p->t == T_INT)
            v.i = neg ? -p->t_int : p->t_int;
        else if (t == EM_T_DOUBLE && (p->t == T_INT || p->t == T_DOUBLE))
            v.f = (p->t == T_INT ? (double)p->t_int : p->t_double) * (neg ? -1 : 1);
        else if (t == EM_T_STRING && p->t == T_STRING)
            v.i = (int64_t)p->str_off, v.len = (uint32_t)p->str_len;
        else
            return fail(p, at, "the list of 'in' must hold %s constants, found '%.*s'",
                        em_type_name(t), (int)p->t_len, p->text + at);
        if (e->list_n == e->list_cap) {
            int cap = e->list_cap ? e->list_cap * 2 : 8;
            em_value *n = realloc(e->list, (size_t)cap * sizeof *n);
            if (!n) return fail(p, at, "out of memory");
            e->list = n;
            e->list_cap = cap;
        }
        e->list[e->list_n++] = v;
        if (next(p) != 0) return -1;
        if (p->t == T_RPAREN) break;
        if (p->t != T_COMMA) return fail(p, p->t_pos, "expected ',' or ')' in the list of 'in'");
    }
    *count = e->list_n - *start;
    return next(p);
}

static int parse_cmp(parser *p, em_type *t)
{
    if (parse_arith(p, t, 0) != 0) return -1;
    size_t at = p->t_pos;
    tok o = p->t;
    int negated = 0;
    if (o == T_NOT) { /* `x not in (...)` */
        if (next(p) != 0) return -1;
        if (p->t != T_IN) return fail(p, p->t_pos, "expected 'in' after 'not' here");
        negated = 1;
        o = T_IN;
    }
    if (o == T_IN) {
        if (*t == EM_T_BOOL) return fail(p, at, "'in' needs a number or a string, not a bool");
        int32_t start = 0, count = 0;
        if (next(p) != 0 || parse_in_list(p, *t, &start, &count) != 0) return -1;
        if (emit(p, is_int(*t) ? OP_IN_I : *t == EM_T_DOUBLE ? OP_IN_F : OP_IN_S, start, 0) != 0)
            return -1;
        p->e->code[p->e->n - 1].b = count;
        *t = EM_T_BOOL;
        return negated ? emit(p, OP_NOT, 0, 0) : 0;
    }
    if (o == T_MATCHES) { /* a POSIX extended regular expression, a constant: compiled once */
        if (next(p) != 0) return -1;
        size_t pat_at = p->t_pos;
        if (p->t != T_STRING)
            return fail(p, pat_at, "'matches' needs a string constant (a regular expression)");
        if (*t != EM_T_STRING)
            return fail(p, at, "'matches' needs a string on its left, not a %s", em_type_name(*t));
        em_expr *e = p->e;
        if (e->n_regex == EXPR_REGEX)
            return fail(p, at, "more than %d 'matches' in one expression", EXPR_REGEX);
        char pattern[EM_EXPR_TEXT_MAX + 1];
        memcpy(pattern, e->strs + p->str_off, p->str_len);
        pattern[p->str_len] = '\0';
        int rc = regcomp(&e->regex[e->n_regex], pattern, REG_EXTENDED | REG_NOSUB);
        if (rc != 0) {
            char why[256];
            regerror(rc, &e->regex[e->n_regex], why, sizeof why);
            regfree(&e->regex[e->n_regex]);
            return fail(p, pat_at, "the regular expression \"%s\": %s", pattern, why);
        }
        if (emit(p, OP_MATCHES, e->n_regex++, 0) != 0) return -1;
        *t = EM_T_BOOL;
        return next(p);
    }
    if (o == T_CONTAINS || o == T_STARTS) {
        em_type r;
        if (next(p) != 0 || parse_arith(p, &r, 0) != 0) return -1;
        if (*t != EM_T_STRING || r != EM_T_STRING)
            return fail(p, at, "'%s' needs two strings, not %s and %s",
                        o == T_CONTAINS ? "contains" : "starts_with", em_type_name(*t),
                        em_type_name(r));
        *t = EM_T_BOOL;
        return emit(p, o == T_CONTAINS ? OP_CONTAINS : OP_PREFIX, 0, -1);
    }
    if (o < T_EQ || o > T_GE) return 0;
    em_type r;
    if (next(p) != 0 || parse_arith(p, &r, 0) != 0) return -1;
    op code;
    if (is_num(*t) && is_num(r))
        code = numeric_pair(p, *t, r) == EM_T_INT ? OP_CMP_I : OP_CMP_F;
    else if (*t == EM_T_STRING && r == EM_T_STRING)
        code = OP_CMP_S;
    else if (*t == EM_T_BOOL && r == EM_T_BOOL && (o == T_EQ || o == T_NE))
        code = OP_CMP_B;
    else
        return fail(p, at, "cannot compare %s with %s using '%.*s'", em_type_name(*t),
                    em_type_name(r), (int)(o == T_LT || o == T_GT ? 1 : 2), p->text + at);
    if (emit(p, code, 0, -1) != 0) return -1;
    p->e->code[p->e->n - 1].cmp = (uint8_t)(o - T_EQ);
    *t = EM_T_BOOL;
    return 0;
}

static int parse_not(parser *p, em_type *t)
{
    if (p->t != T_NOT) return parse_cmp(p, t);
    size_t at = p->t_pos;
    if (++p->nesting > EXPR_STACK) return fail(p, at, "the expression is nested too deeply");
    if (next(p) != 0 || parse_not(p, t) != 0) return -1;
    p->nesting--;
    if (*t != EM_T_BOOL) return fail(p, at, "'not' needs a bool, not a %s", em_type_name(*t));
    return emit(p, OP_NOT, 0, 0);
}

/* parse_logic: `and` (over parse_not) or `or` (over `and`), jumping over the right side */
static int parse_logic(parser *p, em_type *t, int is_or)
{
    if ((is_or ? parse_logic(p, t, 0) : parse_not(p, t)) != 0) return -1;
    tok word = is_or ? T_OR : T_AND;
    while (p->t == word) {
        size_t at = p->t_pos;
        if (*t != EM_T_BOOL)
            return fail(p, at, "'%s' needs bools, not a %s on its left", is_or ? "or" : "and",
                        em_type_name(*t));
        if (emit(p, is_or ? OP_JTRUE_OR_POP : OP_JFALSE_OR_POP, 0, -1) != 0) return -1;
        int jump = p->e->n - 1;
        em_type r;
        if (next(p) != 0 || (is_or ? parse_logic(p, &r, 0) : parse_not(p, &r)) != 0) return -1;
        if (r != EM_T_BOOL)
            return fail(p, at, "'%s' needs bools, not a %s on its right", is_or ? "or" : "and",
                        em_type_name(r));
        p->e->code[jump].a = p->e->n;
    }
    return 0;
}

static int parse_or(parser *p, em_type *t) { return parse_logic(p, t, 1); }

/* fix_up turns string offsets into pointers, once the pools stopped moving */
static void fix_up(em_expr *e)
{
    for (int k = 0; k < e->n; k++) {
        insn *i = &e->code[k];
        if (i->op == OP_PUSH && i->cmp == 1) i->v.s = e->strs ? e->strs + (size_t)i->a : "";
        if (i->op == OP_IN_S)
            for (int j = i->a; j < i->a + i->b; j++) /* (no strs at all: only empty strings) */
                e->list[j].s = e->strs ? e->strs + (size_t)e->list[j].i : "";
    }
}

em_expr *em_expr_compile(const char *text, const em_schema *schema, char *err, size_t errlen)
{
    if (strlen(text) > EM_EXPR_TEXT_MAX) {
        snprintf(err, errlen, "at 1: an expression of %zu bytes (at most %d)", strlen(text),
                 EM_EXPR_TEXT_MAX);
        return NULL;
    }
    em_expr *e = calloc(1, sizeof *e);
    if (!e) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    parser p = {.text = text, .schema = schema, .e = e, .err = err, .errlen = errlen};
    em_type t = EM_T_INT;
    if (next(&p) == 0 && parse_or(&p, &t) == 0 && p.t != T_END)
        fail(&p, p.t_pos, "unexpected '%.*s' after a complete expression", (int)p.t_len,
             text + p.t_pos);
    if (p.failed) {
        em_expr_free(e);
        return NULL;
    }
    e->type = t;
    fix_up(e);
    return e;
}

em_type em_expr_type(const em_expr *e) { return e->type; }

int em_expr_reads(const em_expr *e, int column)
{
    return column >= 0 && column < EM_SCHEMA_MAX && (e->reads[column / 64] >> (column % 64)) & 1;
}

void em_expr_free(em_expr *e)
{
    if (!e) return;
    for (int k = 0; k < e->n_regex; k++) regfree(&e->regex[k]);
    free(e->list);
    free(e->strs);
    free(e);
}

/* ---- evaluation ------------------------------------------------------------------------- */

static int compare_strings(const em_value *a, const em_value *b)
{
    size_t n = a->len < b->len ? a->len : b->len;
    int c = n ? memcmp(a->s, b->s, n) : 0;
    return c ? c : (a->len > b->len) - (a->len < b->len);
}

static int64_t by_cmp(cmp c, int order)
{
    switch (c) {
    case CMP_EQ: return order == 0;
    case CMP_NE: return order != 0;
    case CMP_LT: return order < 0;
    case CMP_LE: return order <= 0;
    case CMP_GT: return order > 0;
    default: return order >= 0;
    }
}

static int contains(const em_value *hay, const em_value *needle)
{
    if (needle->len == 0) return 1;
    if (needle->len > hay->len) return 0;
    return memmem(hay->s, hay->len, needle->s, needle->len) != NULL;
}

/* int_op: one integer operator; -1 on overflow or division by zero */
static int int_op(op o, int64_t a, int64_t b, int64_t *out, const char **why)
{
    switch (o) {
    case OP_ADD_I:
        *why = "integer overflow in +";
        return __builtin_add_overflow(a, b, out) ? -1 : 0;
    case OP_SUB_I:
        *why = "integer overflow in -";
        return __builtin_sub_overflow(a, b, out) ? -1 : 0;
    case OP_MUL_I:
        *why = "integer overflow in *";
        return __builtin_mul_overflow(a, b, out) ? -1 : 0;
    default: break;
    }
    *why = o == OP_DIV_I ? "division by zero" : "remainder by zero";
    if (b == 0) return -1;
    if (a == INT64_MIN && b == -1) {
        *why = "integer overflow in / or %";
        return -1;
    }
    *out = o == OP_DIV_I ? a / b : a % b;
    return 0;
}

int em_expr_eval(const em_expr *e, const em_value *cols, em_value *out, char *err, size_t errlen)
{
    em_value st[EXPR_STACK];
    int sp = 0; /* values on the stack; st[sp - 1] is the top */
    const char *why = NULL;
#define top   (&st[sp - 1]) /* the value on top (each instruction knows the stack holds it) */
#define below (&st[sp - 2]) /* the one under it */
    for (int pc = 0; pc < e->n; pc++) {
        const insn *i = &e->code[pc];
        switch ((op)i->op) {
        case OP_PUSH: st[sp++] = i->v; break;
        case OP_COL: st[sp++] = cols[i->a]; break;
        case OP_I2F: st[sp - 1 - i->a].f = (double)st[sp - 1 - i->a].i; break;
        case OP_ADD_I:
        case OP_SUB_I:
        case OP_MUL_I:
        case OP_DIV_I:
        case OP_MOD_I:
            if (int_op((op)i->op, below->i, top->i, &below->i, &why) != 0) goto failed;
            sp--;
            break;
        case OP_ADD_F: below->f += top->f, sp--; break;
        case OP_SUB_F: below->f -= top->f, sp--; break;
        case OP_MUL_F: below->f *= top->f, sp--; break;
        case OP_DIV_F:
            why = "division by zero";
            if (top->f == 0.0) goto failed;
            below->f /= top->f, sp--;
            break;
        case OP_NEG_I:
            why = "integer overflow in -";
            if (top->i == INT64_MIN) goto failed;
            top->i = -top->i;
            break;
        case OP_NEG_F: top->f = -top->f; break;
        case OP_CMP_I:
        case OP_CMP_B:
            below->i = by_cmp((cmp)i->cmp, (below->i > top->i) - (below->i < top->i)), sp--;
            break;
        case OP_CMP_F: {
            /* NaN (inf - inf) is unordered: every comparison with it is false but != */
            int unordered = below->f != below->f || top->f != top->f;
            below->i = unordered ? (cmp)i->cmp == CMP_NE
                                 : by_cmp((cmp)i->cmp, (below->f > top->f) - (below->f < top->f));
            sp--;
            break;
        }
        case OP_CMP_S: below->i = by_cmp((cmp)i->cmp, compare_strings(below, top)), sp--; break;
        case OP_NOT: top->i = !top->i; break;
        case OP_JFALSE_OR_POP:
            if (!top->i)
                pc = i->a - 1;
            else
                sp--;
            break;
        case OP_JTRUE_OR_POP:
            if (top->i)
                pc = i->a - 1;
            else
                sp--;
            break;
        case OP_IN_I:
        case OP_IN_F:
        case OP_IN_S: {
            int found = 0;
            for (int k = i->a; k < i->a + i->b && !found; k++) {
                const em_value *v = &e->list[k];
                found = i->op == OP_IN_I   ? v->i == top->i
                        : i->op == OP_IN_F ? v->f == top->f
                                           : compare_strings(v, top) == 0;
            }
            top->i = found;
            break;
        }
        case OP_CONTAINS: below->i = contains(below, top), sp--; break;
        case OP_MATCHES: {
            char text[EM_EXPR_MATCH_MAX + 1]; /* regexec reads a C string */
            why = "a string of more than " EM_EXPR_MATCH_MAX_TEXT " bytes for 'matches'";
            if (top->len > EM_EXPR_MATCH_MAX) goto failed;
            why = "a string holding a NUL byte for 'matches'";
            if (memchr(top->s, '\0', top->len)) goto failed;
            memcpy(text, top->s, top->len);
            text[top->len] = '\0';
            top->i = regexec(&e->regex[i->a], text, 0, NULL, 0) == 0;
            break;
        }
        case OP_PREFIX:
            below->i = top->len <= below->len && memcmp(below->s, top->s, top->len) == 0, sp--;
            break;
        }
    }
#undef top
#undef below
    *out = st[0];
    return 0;
failed:
    snprintf(err, errlen, "%s", why);
    return -1;
}
