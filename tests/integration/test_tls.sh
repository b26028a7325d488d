#!/usr/bin/env bash
# test_tls.sh -- a cluster on tls+tcp:// (docs/security.md, "TLS"): every link is encrypted and
# every client checks the server's certificate, with the cluster secret's handshake on top.
#   1. a driver and two executors on tls+tcp://, the status endpoint on HTTPS: the api tour
#      and every wide operation (shuffles between the executors) give the exact results; an
#      independent TLS client (openssl s_client) verifies the certificates the driver, an
#      executor and the status endpoint present;
#   2. a client without the CA, with another CA, or dialing plain tcp:// to the TLS port:
#      refused with a clear message; curl without the CA is refused by HTTPS;
#   3. a TLS listener without a certificate: the daemon exits with a one-line message.
# After each refusal, a job on the same cluster gives the exact result.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

# ---- a CA, a certificate for 127.0.0.1 signed by it, and another CA ---------------------------
make_ca() { # NAME
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=ember test $1" \
        -keyout "$T/$1.key" -out "$T/$1.pem" 2>/dev/null
}
make_ca ca
make_ca other-ca
openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout "$T/node.key" \
    -out "$T/node.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,DNS:127.0.0.1,DNS:localhost\n' >"$T/san.ext"
openssl x509 -req -in "$T/node.csr" -CA "$T/ca.pem" -CAkey "$T/ca.key" -CAcreateserial -days 2 \
    -extfile "$T/san.ext" -out "$T/node.pem" 2>/dev/null
chmod 600 "$T"/*.key
export CURL_CA_BUNDLE=$T/ca.pem # api() and wait_* read the HTTPS status endpoint with it

# ---- 1. a TLS cluster ---------------------------------------------------------------------------
start_driver --listen tls+tcp://127.0.0.1:0 --tls-cert "$T/node.pem" --tls-key "$T/node.key"
expect_contains "$DRIVER" "tls+tcp://127.0.0.1:" "the driver listens on tls+tcp://"
expect_contains "$STATUS" "https://127.0.0.1:" "the status endpoint serves HTTPS"
tls_executor() { # NAME
    start_executor "$1" --slots 2 --listen tls+tcp://127.0.0.1:0 --tls-cert "$T/node.pem" \
        --tls-key "$T/node.key" --tls-ca "$T/ca.pem"
}
tls_executor ex1
tls_executor ex2
wait_executors 2
EX_URL=$(awk '$1 == "address" {print $2}' "$T/ex1.ready")
expect_contains "$EX_URL" "tls+tcp://127.0.0.1:" "an executor serves blocks on tls+tcp://"
expect_tour_exact "a TLS cluster start" --tls-ca "$T/ca.pem"
# every wide operation, each a shuffle between the executors, against its reference
submit --tls-ca "$T/ca.pem" "$EMBER_JOBS/wide_ops2.so" -- --partitions 3 ||
    fail "wide_ops2 on TLS: $(cat "$T/submit.out" "$T/submit.err" | tail -3)"
expect_contains "$(cat "$T/submit.out")" "wide_ops2: all 19 checks passed" "the wide operations on TLS"
# the executors read each other's shuffle blocks over TLS: a peer link is kept open after a job
ex2_url=$(awk '$1 == "address" {print $2}' "$T/ex2.ready")
peer_links=$(ss -tnpH state established "( dport = :${EX_URL##*:} or dport = :${ex2_url##*:} )" |
    grep -cE "pid=($ex1_PID|$ex2_PID)," || true)
[ "$peer_links" -gt 0 ] || fail "no executor connected to another one's block service"
echo "ok: $peer_links links between the executors' block services, on tls+tcp://"

verify_tls() { # WHAT HOST:PORT: an independent client completes the handshake and verifies
    local out
    out=$(openssl s_client -connect "$2" -CAfile "$T/ca.pem" -verify_ip 127.0.0.1 \
        -verify_return_error </dev/null 2>&1) || fail "$1: openssl s_client failed: $out"
    expect_contains "$out" "Verify return code: 0 (ok)" "$1 presents a certificate the CA verifies"
}
verify_tls "the driver" "${DRIVER#tls+tcp://}"
verify_tls "an executor" "${EX_URL#tls+tcp://}"
verify_tls "the status endpoint" "${STATUS#https://}"

# ---- 2. clients that cannot verify the server, or do not speak TLS ------------------------------
expect_fail "submit without a CA" env -u EMBER_TLS_CA \
    "$EMBER_BIN/ember-submit" --driver "$DRIVER" "$EMBER_JOBS/api_tour.so"
expect_contains "$(cat "$T/fail.err")" "give --tls-ca" "no CA: the message says what to give"
expect_fail "submit with another CA" \
    "$EMBER_BIN/ember-submit" --driver "$DRIVER" --tls-ca "$T/other-ca.pem" "$EMBER_JOBS/api_tour.so"
expect_contains "$(cat "$T/fail.err")" "TLS handshake failed" "another CA: the message"
expect_fail "submit over plain tcp:// to the TLS port" \
    "$EMBER_BIN/ember-submit" --driver "tcp://${DRIVER#tls+tcp://}" --timeout-s 3 \
    "$EMBER_JOBS/api_tour.so"
expect_contains "$(cat "$T/fail.err")" "tcp://${DRIVER#tls+tcp://}" "plain tcp://: the message names the driver"
expect_fail "curl without the CA" env -u CURL_CA_BUNDLE curl -sf --max-time 5 \
    --cacert "$T/other-ca.pem" "$STATUS/api/v1/driver"
expect_fail "plain http:// to the HTTPS port" curl -sf --max-time 5 \
    "http://${STATUS#https://}/api/v1/driver"
expect_tour_exact "refused clients" --tls-ca "$T/ca.pem"
api /api/v1/executors | jq -e '[.[] | select(.state == "alive")] | length == 2' >/dev/null ||
    fail "an executor was lost to the refused clients"

# ---- 3. a TLS listener without its certificate ------------------------------------------------
expect_fail "an executor on tls+tcp:// without a certificate" env -u EMBER_TLS_CERT \
    "$EMBER_BIN/ember-executor" --driver "$DRIVER" --tls-ca "$T/ca.pem" \
    --listen tls+tcp://127.0.0.1:0 --work-dir "$T/ex3"
expect_contains "$(cat "$T/fail.err")" "needs a certificate and its key: --tls-cert and --tls-key" \
    "no certificate: the message"
echo "PASS"
