/* wire_abuse.c -- sends hostile traffic to an ember daemon's nng port, for tests.
 *
 *   wire_abuse random URL N        N messages of random bytes on an nng req socket
 *   wire_abuse oversized URL BYTES one message of BYTES random bytes
 *   wire_abuse corrupt URL         a Hello frame with one byte flipped after framing
 *   wire_abuse nohello URL         a well-formed SubmitJob before any Hello
 *   wire_abuse rawtcp HOST PORT N  N random bytes on a plain TCP connection
 *   wire_abuse probe URL           Hello, then FetchBlock: prints the daemon's answer
 * Exit 0 when the scenario ran (and, for nohello and probe, the expected answer came).
 */
#include <arpa/inet.h>
#include <ember/ember.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "em_frame.h"
#include "em_rpc.h"

static uint64_t rng = 0x9e3779b97f4a7c15u;

static uint8_t next_byte(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint8_t)rng;
}

static int open_req(const char *url, nng_socket *s)
{
    if (nng_req0_open(s) != 0) return -1;
    nng_socket_set_ms(*s, NNG_OPT_RECVTIMEO, 300);
    nng_socket_set_ms(*s, NNG_OPT_SENDTIMEO, 1000);
    nng_socket_set_ms(*s, NNG_OPT_RECONNMINT, 10);
    nng_socket_set_ms(*s, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
    if (nng_dial(*s, url, NULL, 0) != 0) {
        fprintf(stderr, "wire_abuse: cannot dial %s\n", url);
        return -1;
    }
    return 0;
}

/* send_and_answer sends msg; returns the answer (caller frees) or NULL. */
static nng_msg *send_and_answer(nng_socket s, nng_msg *msg)
{
    nng_msg *reply = NULL;
    if (nng_sendmsg(s, msg, 0) != 0) {
        nng_msg_free(msg);
        return NULL;
    }
    return nng_recvmsg(s, &reply, 0) == 0 ? reply : NULL;
}

static int send_random(const char *url, long count, size_t fixed_size)
{
    nng_socket s;
    if (open_req(url, &s) != 0) return 1;
    long answered = 0;
    for (long i = 0; i < count; i++) {
        size_t len = fixed_size ? fixed_size : 1 + next_byte() * 16u + next_byte();
        nng_msg *msg;
        if (nng_msg_alloc(&msg, len) != 0) return 1;
        uint8_t *p = nng_msg_body(msg);
        for (size_t j = 0; j < len; j++) p[j] = next_byte();
        nng_msg *reply = send_and_answer(s, msg);
        if (reply) answered++;
        nng_msg_free(reply);
    }
    printf("sent %ld random messages, %ld answered\n", count, answered);
    nng_close(s);
    return 0;
}

static int send_corrupt(const char *url)
{
    nng_socket s;
    nng_msg *msg;
    if (open_req(url, &s) != 0) return 1;
    Ember__Hello h = EMBER__HELLO__INIT;
    h.protocol_version = 1;
    h.role = "abuser";
    if (em_frame_new(&msg, EM_MSG_HELLO, &h.base, NULL, 0) != EMBER_OK) return 1;
    ((uint8_t *)nng_msg_body(msg))[nng_msg_len(msg) - 1] ^= 0x40;
    nng_msg *reply = send_and_answer(s, msg);
    printf("corrupt Hello %s\n", reply ? "was ANSWERED" : "got no answer");
    nng_msg_free(reply);
    nng_close(s);
    return reply ? 1 : 0;
}

/* expect_error prints an ErrorReply's code name; returns 0 if it is `want`. */
static int expect_error(nng_msg *reply, int want)
{
    em_frame f;
    char why[256];
    if (!reply ||
        em_frame_parse(nng_msg_body(reply), nng_msg_len(reply), &f, why, sizeof why) != EMBER_OK) {
        printf("no valid answer\n");
        return 1;
    }
    Ember__ErrorReply *er = em_frame_unpack(&f, EM_MSG_ERROR);
    int rc = er && er->code == want ? 0 : 1;
    printf("answer: %s %s\n", er ? ember_err_name(er->code) : em_msg_name(f.type),
           er ? er->message : "");
    em_pb_free(er);
    return rc;
}

static int send_without_hello(const char *url)
{
    nng_socket s;
    nng_msg *msg;
    if (open_req(url, &s) != 0) return 1;
    Ember__SubmitJob sj = EMBER__SUBMIT_JOB__INIT;
    if (em_frame_new(&msg, EM_MSG_SUBMIT_JOB, &sj.base, NULL, 0) != EMBER_OK) return 1;
    nng_msg *reply = send_and_answer(s, msg);
    int rc = expect_error(reply, EMBER_ERR_UNAUTHENTICATED);
    nng_msg_free(reply);
    nng_close(s);
    return rc;
}

static int probe(const char *url)
{
    em_rpc rpc;
    em_rpc_chan ch = {0};
    em_rpc_reply reply = {0};
    char err[512];
    if (em_rpc_open(&rpc, url, "probe", 1 << 20, 2000, err, sizeof err) != EMBER_OK) {
        printf("probe: %s\n", err);
        return 1;
    }
    Ember__FetchBlock fb = EMBER__FETCH_BLOCK__INIT;
    fb.block_id = "no-such-block";
    em_rpc_chan_open(&rpc, &ch);
    int rc = em_rpc_call(&rpc, &ch, EM_MSG_FETCH_BLOCK, &fb.base, NULL, 0, 2000, &reply, err,
                         sizeof err);
    printf("probe answer: %s %s\n", ember_err_name(rc), err);
    em_rpc_reply_free(&reply);
    em_rpc_chan_close(&ch);
    em_rpc_close(&rpc);
    /* an answer of any kind (not a timeout or a dead connection) shows the daemon serves */
    return rc == EMBER_ERR_TIMEOUT || rc == EMBER_ERR_CONNECT ? 1 : 0;
}

static int raw_tcp(const char *host, int port, long count)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, host, &sa.sin_addr);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        perror("wire_abuse: connect");
        return 1;
    }
    uint8_t buf[4096];
    long sent = 0;
    while (sent < count) {
        size_t n = (size_t)(count - sent) < sizeof buf ? (size_t)(count - sent) : sizeof buf;
        for (size_t i = 0; i < n; i++) buf[i] = next_byte();
        ssize_t w = send(fd, buf, n, MSG_NOSIGNAL);
        if (w <= 0) break; /* the daemon hung up on us: that is the point */
        sent += w;
    }
    close(fd);
    printf("raw tcp: sent %ld of %ld bytes\n", sent, count);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 4 && strcmp(argv[1], "random") == 0) return send_random(argv[2], atol(argv[3]), 0);
    if (argc >= 4 && strcmp(argv[1], "oversized") == 0)
        return send_random(argv[2], 1, (size_t)atol(argv[3]));
    if (argc >= 3 && strcmp(argv[1], "corrupt") == 0) return send_corrupt(argv[2]);
    if (argc >= 3 && strcmp(argv[1], "nohello") == 0) return send_without_hello(argv[2]);
    if (argc >= 3 && strcmp(argv[1], "probe") == 0) return probe(argv[2]);
    if (argc >= 5 && strcmp(argv[1], "rawtcp") == 0)
        return raw_tcp(argv[2], atoi(argv[3]), atol(argv[4]));
    fprintf(stderr, "usage: see the comment at the top of wire_abuse.c\n");
    return 2;
}
