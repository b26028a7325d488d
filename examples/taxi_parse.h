/* taxi_parse.h -- parses and validates one taxi GPS line; shared by the taxi examples.
 *
 * A line is "taxi_id,YYYY-MM-DD HH:MM:SS,longitude,latitude" (the format of taxi_data.c).
 * It is well formed when it has exactly four fields; a taxi id of 1..32 characters from
 * [A-Za-z0-9_-]; a valid date and time (read as UTC, no time zone); coordinates written as
 * plain decimals (-?digits[.digits]) within [-180, 180] and [-90, 90]. Anything else is
 * malformed. Parsing is the same on every machine and in every locale: no sscanf, no
 * strtod on unchecked text, no time zone.
 *
 * Header-only (static inline functions, libc only) so that job libraries (taxi_alerts.c,
 * taxi_distance.c) and plain programs (bench/taxi_distance_baseline.c) parse identically;
 * a job library keeps these functions private, which is right: they are called by the job's
 * own functions, never passed to the ember API.
 */
#ifndef EMBER_EXAMPLES_TAXI_PARSE_H
#define EMBER_EXAMPLES_TAXI_PARSE_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* taxi_point: one parsed line. id points into the line (not NUL-terminated). */
typedef struct taxi_point {
    const char *id;  /* the taxi id, 1..32 bytes inside the line */
    size_t id_len;   /* its length */
    int64_t time_ms; /* milliseconds since 1970-01-01 00:00:00 UTC */
    double lon, lat; /* degrees */
} taxi_point;

/* taxi_digits reads n decimal digits; returns 0, or -1 if one is not a digit. */
static inline int taxi_digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

/* taxi_days_from_civil: days since 1970-01-01 of a proleptic Gregorian date. */
static inline int64_t taxi_days_from_civil(int y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* taxi_parse_time reads "YYYY-MM-DD HH:MM:SS" (exactly n = 19 bytes) as UTC milliseconds. */
static inline int taxi_parse_time(const char *s, size_t n, int64_t *ms)
{
    int y, mo, d, h, mi, se;
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (n != 19 || s[4] != '-' || s[7] != '-' || s[10] != ' ' || s[13] != ':' || s[16] != ':')
        return -1;
    if (taxi_digits(s, 4, &y) || taxi_digits(s + 5, 2, &mo) || taxi_digits(s + 8, 2, &d) ||
        taxi_digits(s + 11, 2, &h) || taxi_digits(s + 14, 2, &mi) || taxi_digits(s + 17, 2, &se))
        return -1;
    if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 || se > 59) return -1;
    *ms = ((taxi_days_from_civil(y, mo, d) * 24 + h) * 60 + mi) * 60000 + se * 1000;
    return 0;
}

/* taxi_parse_decimal accepts -?digits[.digits] only (fewer than 32 bytes) and converts it to
 * the nearest double, exactly as strtod does (glibc's strtod rounds correctly).
 *
 * Fast path (Clinger, 1990): with at most 15 digits in all, the digits read as an integer m
 * < 10^15 < 2^53 and the fraction has k <= 14 digits, so m and 10^k are both exact doubles
 * and the one IEEE division m / 10^k is the correctly rounded value of the decimal: the same
 * bits strtod gives, in a fraction of its time. Longer numbers go to strtod, which cannot
 * see anything but the checked characters. */
static inline int taxi_parse_decimal(const char *s, size_t n, double *out)
{
    static const double pow10[] = {1e0, 1e1, 1e2,  1e3,  1e4,  1e5,  1e6, 1e7,
                                   1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14};
    char buf[32];
    size_t i, int_digits = 0, frac_digits = 0;
    uint64_t m = 0;
    if (n == 0 || n >= sizeof buf) return -1;
    i = s[0] == '-' ? 1 : 0;
    while (i < n && s[i] >= '0' && s[i] <= '9') m = m * 10 + (uint64_t)(s[i++] - '0'), int_digits++;
    if (i < n && s[i] == '.') {
        i++;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            m = m * 10 + (uint64_t)(s[i++] - '0'), frac_digits++;
        if (frac_digits == 0) return -1;
    }
    if (i != n || int_digits == 0) return -1;
    if (int_digits + frac_digits <= 15) { /* m < 10^15: no overflow above either */
        double v = (double)m / pow10[frac_digits];
        *out = s[0] == '-' ? -v : v;
        return 0;
    }
    memcpy(buf, s, n);
    buf[n] = '\0';
    *out = strtod(buf, NULL);
    return 0;
}

/* taxi_parse_line splits and validates one line (len bytes, no newline); returns 0 and
 * fills *pt, or -1 when the line is malformed (*pt is then unspecified). */
static inline int taxi_parse_line(const char *line, size_t len, taxi_point *pt)
{
    const char *field[4];
    size_t flen[4], nf = 0, start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && line[i] != ',') continue;
        if (nf == 4) return -1;
        field[nf] = line + start;
        flen[nf++] = i - start;
        start = i + 1;
    }
    if (nf != 4 || flen[0] == 0 || flen[0] > 32) return -1;
    for (size_t i = 0; i < flen[0]; i++) {
        char c = field[0][i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return -1;
    }
    if (taxi_parse_time(field[1], flen[1], &pt->time_ms) ||
        taxi_parse_decimal(field[2], flen[2], &pt->lon) ||
        taxi_parse_decimal(field[3], flen[3], &pt->lat))
        return -1;
    if (pt->lon < -180 || pt->lon > 180 || pt->lat < -90 || pt->lat > 90) return -1;
    pt->id = field[0];
    pt->id_len = flen[0];
    return 0;
}

#endif /* EMBER_EXAMPLES_TAXI_PARSE_H */
