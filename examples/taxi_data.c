/* taxi_data.c -- taxi-data: a deterministic generator of sample taxi GPS lines on stdout.
 *
 * Each line is `taxi_id,YYYY-MM-DD HH:MM:SS,longitude,latitude`, e.g.
 * `T0042,2026-03-01 08:00:31,116.40123,39.90456`. Timestamps start at 2026-03-01 00:00:00 and
 * grow by 1 to 4 seconds per good line; each line belongs to a taxi drawn at random. Each
 * taxi's position is a random walk pulled back towards central Beijing (116.4, 39.9), kept in
 * lon 116.0..116.8 / lat 39.6..40.2; about 4% of points fall outside the inner box
 * lon 116.1..116.7 / lat 39.7..40.1. Every K-th line (--malformed-every) is malformed, cycling
 * through: empty line, missing field, non-numeric coordinate, bad timestamp, too many fields.
 *
 * Determinism: the only randomness is splitmix64 seeded with --seed, and positions are
 * integers in units of 1e-5 degree (printed with 5 decimals), so the output is byte-identical
 * on every machine and every run; no floating point, no rand(), no time zone.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CENTER_LON 11640000 /* 116.40000 degrees, in 1e-5 degree units */
#define CENTER_LAT 3990000  /* 39.90000 */
#define MIN_LON    11600000 /* outer box: positions never leave it */
#define MAX_LON    11680000
#define MIN_LAT    3960000
#define MAX_LAT    4020000
#define STEP_LON   2600 /* noise of one step: sum of 3 uniforms in [-STEP, STEP] */
#define STEP_LAT   1740
#define PULL       50    /* each step moves 1/PULL of the way back to the center */
#define START_DAYS 20513 /* 2026-03-01 as days since 1970-01-01 */

/* prng: splitmix64 (Steele, Lea, Flood 2014); one 64-bit state word. */
typedef struct prng {
    uint64_t state;
} prng;

static uint64_t prng_next(prng *r)
{
    uint64_t z = (r->state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* prng_below returns a number in [0, n) (n > 0; the modulo bias is below 2^-40). */
static uint64_t prng_below(prng *r, uint64_t n) { return (prng_next(r) >> 11) % n; }

/* prng_noise returns the sum of three uniform integers in [-a, a] (a bell-like shape). */
static int32_t prng_noise(prng *r, int32_t a)
{
    int32_t sum = 0;
    for (int i = 0; i < 3; i++) sum += (int32_t)prng_below(r, (uint64_t)(2 * a + 1)) - a;
    return sum;
}

/* taxi: one taxi's position, in 1e-5 degree units. */
typedef struct taxi {
    int32_t lon;
    int32_t lat;
} taxi;

static int32_t clamp(int32_t v, int32_t lo, int32_t hi) { return v < lo ? lo : v > hi ? hi : v; }

/* civil_from_days turns days since 1970-01-01 into a proleptic Gregorian date
 * (H. Hinnant's algorithm). */
static void civil_from_days(int64_t z, int *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = (int)(yoe + era * 400 + (*m <= 2));
}

/* options: the parsed command line. */
typedef struct options {
    uint64_t lines;           /* --lines N (required) */
    uint64_t seed;            /* --seed S, default 42 */
    uint32_t taxis;           /* --taxis T, default 100 */
    uint64_t malformed_every; /* --malformed-every K, default 97; 0 = never */
} options;

static void usage(FILE *f)
{
    fprintf(f, "usage: taxi-data --lines N [--seed S] [--taxis T] [--malformed-every K]\n"
               "Writes N deterministic taxi GPS lines 'T0042,2026-03-01 08:00:31,116.40123,"
               "39.90456'.\n"
               "  --seed S             PRNG seed (default 42)\n"
               "  --taxis T            number of taxis, 1..1000000 (default 100)\n"
               "  --malformed-every K  every K-th line is malformed (default 97, 0 = none)\n");
}

static int bad_usage(const char *fmt, const char *what)
{
    fprintf(stderr, "taxi-data: ");
    fprintf(stderr, fmt, what);
    fprintf(stderr, "\nTry 'taxi-data --help'.\n");
    return 2;
}

static int parse_u64(const char *s, uint64_t max, uint64_t *out)
{
    char *end;
    errno = 0;
    if (s[0] == '-' || s[0] == '\0') return -1;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end != '\0' || v > max) return -1;
    *out = v;
    return 0;
}

/* parse_args fills o; returns -1 to exit 0 (help), 0 to run, or an exit code > 0. */
static int parse_args(int argc, char **argv, options *o)
{
    int have_lines = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return -1;
        }
        if (strcmp(a, "--lines") && strcmp(a, "--seed") && strcmp(a, "--taxis") &&
            strcmp(a, "--malformed-every"))
            return bad_usage("unknown argument '%s'", a);
        if (i + 1 >= argc) return bad_usage("%s needs a value", a);
        const char *v = argv[++i];
        uint64_t n;
        if (strcmp(a, "--lines") == 0) {
            if (parse_u64(v, UINT64_MAX, &o->lines)) return bad_usage("bad --lines '%s'", v);
            have_lines = 1;
        } else if (strcmp(a, "--seed") == 0) {
            if (parse_u64(v, UINT64_MAX, &o->seed)) return bad_usage("bad --seed '%s'", v);
        } else if (strcmp(a, "--taxis") == 0) {
            if (parse_u64(v, 1000000, &n) || n == 0)
                return bad_usage("--taxis needs a number from 1 to 1000000, not '%s'", v);
            o->taxis = (uint32_t)n;
        } else {
            if (parse_u64(v, UINT64_MAX, &o->malformed_every))
                return bad_usage("bad --malformed-every '%s'", v);
        }
    }
    if (!have_lines) return bad_usage("%s is required", "--lines N");
    return 0;
}

/* The malformed kinds, in the order they cycle. */
static const char *const malformed[] = {
    "",                                           /* empty line */
    "T0001,2026-03-01 00:00:00,116.1",            /* missing a field */
    "T0001,2026-03-01 00:00:00,abc,39.9",         /* non-numeric coordinate */
    "T0001,2026-13-45 99:00:00,116.1,39.9",       /* bad timestamp */
    "T0001,2026-03-01 00:00:00,116.1,39.9,extra", /* too many fields */
};
#define N_MALFORMED (sizeof malformed / sizeof malformed[0])

/* good_line moves one random taxi and prints its line at second `t` (since 2026-03-01 00:00:00). */
static void good_line(prng *r, taxi *taxis, uint32_t n_taxis, uint64_t t)
{
    uint32_t id = (uint32_t)prng_below(r, n_taxis);
    taxi *tx = &taxis[id];
    tx->lon += (CENTER_LON - tx->lon) / PULL + prng_noise(r, STEP_LON);
    tx->lat += (CENTER_LAT - tx->lat) / PULL + prng_noise(r, STEP_LAT);
    tx->lon = clamp(tx->lon, MIN_LON, MAX_LON);
    tx->lat = clamp(tx->lat, MIN_LAT, MAX_LAT);
    int y, mo, d;
    civil_from_days(START_DAYS + (int64_t)(t / 86400), &y, &mo, &d);
    unsigned sec = (unsigned)(t % 86400);
    printf("T%04" PRIu32 ",%04d-%02d-%02d %02u:%02u:%02u,%d.%05d,%d.%05d\n", id + 1, y, mo, d,
           sec / 3600, sec / 60 % 60, sec % 60, (int)(tx->lon / 100000), (int)(tx->lon % 100000),
           (int)(tx->lat / 100000), (int)(tx->lat % 100000));
}

int main(int argc, char **argv)
{
    options o = {0, 42, 100, 97};
    int rc = parse_args(argc, argv, &o);
    if (rc != 0) return rc < 0 ? 0 : rc;
    taxi *taxis = malloc(sizeof *taxis * o.taxis);
    if (!taxis) {
        fprintf(stderr, "taxi-data: out of memory\n");
        return 1;
    }
    static char outbuf[1 << 16];
    setvbuf(stdout, outbuf, _IOFBF, sizeof outbuf);
    prng r = {o.seed};
    /* Start each taxi from the walk's long-run spread (about 5 steps of noise wide). */
    for (uint32_t i = 0; i < o.taxis; i++) {
        taxis[i].lon = CENTER_LON + prng_noise(&r, 5 * STEP_LON);
        taxis[i].lat = CENTER_LAT + prng_noise(&r, 5 * STEP_LAT);
    }
    uint64_t t = 0, n_bad = 0;
    for (uint64_t line = 1; line <= o.lines && !ferror(stdout); line++) {
        if (o.malformed_every && line % o.malformed_every == 0) {
            printf("%s\n", malformed[n_bad++ % N_MALFORMED]);
            continue;
        }
        good_line(&r, taxis, o.taxis, t);
        t += 1 + prng_below(&r, 4);
    }
    free(taxis);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        if (errno != EPIPE) fprintf(stderr, "taxi-data: cannot write: %s\n", strerror(errno));
        return 1;
    }
    return 0;
}
