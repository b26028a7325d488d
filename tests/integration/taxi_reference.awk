# taxi_reference.awk -- an independent reference for examples/taxi_alerts.c, used by tests.
# Reads taxi lines; writes malformed lines to MALFORMED and "taxi_id<TAB>line" of points
# outside the box to ALERTS (files given with -v). Same rules as the job, written apart.
function valid_time(t,    m, d, md) {
    if (t !~ /^[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9] [0-9][0-9]:[0-9][0-9]:[0-9][0-9]$/) return 0
    m = substr(t, 6, 2) + 0
    d = substr(t, 9, 2) + 0
    split("31 29 31 30 31 30 31 31 30 31 30 31", md, " ")
    return m >= 1 && m <= 12 && d >= 1 && d <= md[m] && substr(t, 12, 2) + 0 <= 23 &&
           substr(t, 15, 2) + 0 <= 59 && substr(t, 18, 2) + 0 <= 59
}
function decimal(s) { return s ~ /^-?[0-9]+(\.[0-9]+)?$/ }
BEGIN { FS = "," }
{
    ok = NF == 4 && $1 ~ /^[A-Za-z0-9_-]+$/ && length($1) <= 32 && valid_time($2) &&
         decimal($3) && decimal($4) && $3 + 0 >= -180 && $3 + 0 <= 180 && $4 + 0 >= -90 && $4 + 0 <= 90
    if (!ok) print > MALFORMED
    else if ($3 + 0 < 116.1 || $3 + 0 > 116.7 || $4 + 0 < 39.7 || $4 + 0 > 40.1) print $1 "\t" $0 > ALERTS
}
