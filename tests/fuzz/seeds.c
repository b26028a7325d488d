/* seeds.c -- writes a few valid inputs for every fuzz target, so that the fuzzers start from
 * well-formed messages and mutate them, rather than from nothing. deploy/fuzz.sh runs it into
 * the corpus directories before fuzzing.
 *   fuzz_seeds CORPUS_DIR      (writes CORPUS_DIR/<target>/seed-*)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <ember/ember.h>
#include <lz4frame.h>

#include "em_batch.h"
#include "em_frame.h"
#include "em_wide.h"
#include "ember.pb-c.h"

static const char *root;

static void put(const char *target, const char *name, uint8_t prefix, const void *p, size_t n)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", root, target);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/%s/seed-%s", root, target, name);
    FILE *f = fopen(path, "wb");
    if (!f) return;
    fputc(prefix, f);
    fwrite(p, 1, n, f);
    fclose(f);
}

static void put_pb(const char *target, const char *name, uint8_t prefix, const ProtobufCMessage *m)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = malloc(n + 1);
    if (!buf) return;
    protobuf_c_message_pack(m, buf);
    put(target, name, prefix, buf, n);
    free(buf);
}

/* a three-node graph: kafka (2 ranges) -> map -> reduce_by_key (3), counted */
static void graph_seeds(void)
{
    Ember__KafkaRange r0 = EMBER__KAFKA_RANGE__INIT, r1 = EMBER__KAFKA_RANGE__INIT,
                      *ranges[] = {&r0, &r1};
    r1.partition = 1;
    r0.until = r1.until = 100;
    Ember__Node src = EMBER__NODE__INIT, map = EMBER__NODE__INIT, red = EMBER__NODE__INIT;
    Ember__Node *nodes[] = {&src, &map, &red};
    uint32_t p0 = 0, p1 = 1;
    src.kind = EMBER__NODE_KIND__NODE_KAFKA;
    src.topic = "t";
    src.bootstrap = "127.0.0.1:9092";
    src.n_ranges = 2;
    src.ranges = ranges;
    map.id = 1;
    map.kind = EMBER__NODE_KIND__NODE_MAP;
    map.n_parents = 1;
    map.parents = &p0;
    map.fn_symbol = "f";
    red.id = 2;
    red.kind = EMBER__NODE_KIND__NODE_REDUCE_BY_KEY;
    red.n_parents = 1;
    red.parents = &p1;
    red.partitions = 3;
    red.reducer = EMBER__REDUCER__REDUCER_SUM_I64;
    Ember__Action action = EMBER__ACTION__INIT;
    action.kind = EMBER__ACTION_KIND__ACTION_COUNT;
    uint8_t sha[32] = {1};
    Ember__JobGraph g = EMBER__JOB_GRAPH__INIT;
    g.n_nodes = 3;
    g.nodes = nodes;
    g.target = 2;
    g.action = &action;
    g.library_sha256 = (ProtobufCBinaryData){32, sha};
    g.library_name = "job.so";
    Ember__SubmitJob sj = EMBER__SUBMIT_JOB__INIT;
    sj.graph = &g;
    sj.name = "seed";
    sj.submitter = "me";
    put_pb("graph", "submit", 0, &sj.base);
    Ember__StageDef def = EMBER__STAGE_DEF__INIT;
    def.graph = &g;
    def.final_node = 1;
    def.shuffle_out = 1;
    def.shuffle_node = 2;
    put_pb("graph", "stagedef", 1, &def.base);
    put_pb("frame", "submit", 1, &sj.base); /* data[1] then picks the type: 7 is SubmitJob */
}

static void batch_and_value_seeds(void)
{
    em_batch_writer w = {0};
    ember_record recs[] = {{"a", 1, "xyz", 3, 5}, {"bb", 2, "", 0, -7}, {"", 0, "v", 1, 0}};
    em_batch_begin(&w);
    for (int i = 0; i < 3; i++) em_batch_add(&w, &recs[i]);
    em_batch_finish(&w);
    put("batch", "three", 0, w.buf.data, w.buf.len);
    put("batch", "payload", 1, w.buf.data + EM_BATCH_HEADER, w.buf.len - EM_BATCH_HEADER);
    em_buf g = {0};
    em_group_begin(&g);
    em_group_add(&g, 0, &recs[0]);
    em_group_add(&g, 1, &recs[2]);
    em_group_finish(&g, 2);
    put("values", "group", g.data[0], g.data + 1, g.len - 1);
    em_buf_free(&g);
    em_buf_free(&w.buf);
}

static void handshake_and_http_seeds(void)
{
    uint8_t nonce[32] = {9};
    Ember__Hello h = EMBER__HELLO__INIT;
    h.protocol_version = 2;
    h.role = "executor";
    h.nonce = (ProtobufCBinaryData){32, nonce};
    put_pb("handshake", "hello", 0, &h.base);
    Ember__Auth a = EMBER__AUTH__INIT;
    a.proof = (ProtobufCBinaryData){32, nonce};
    put_pb("handshake", "auth", 1, &a.base);
    Ember__Challenge c = EMBER__CHALLENGE__INIT;
    c.nonce = c.proof = (ProtobufCBinaryData){32, nonce};
    put_pb("handshake", "challenge", 2, &c.base);
    const char *secret = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n";
    put("handshake", "secret", 3, secret, strlen(secret));
    put_pb("frame", "hello", 1, &h.base);
    const char *get = "ET\n/api/v1/jobs?limit=5#x";
    put("http", "jobs", 'G', get, strlen(get));
    const char *post = "OST\n/metrics";
    put("http", "post", 'P', post, strlen(post));
}

/* ---- fetch: Kafka Fetch v4 responses --------------------------------------------------- */

typedef struct out {
    uint8_t b[4096];
    size_t n;
} out;

static void be(out *o, uint64_t v, int n)
{
    for (int i = n - 1; i >= 0; i--) o->b[o->n++] = (uint8_t)(v >> (8 * i));
}

static void varint(out *o, int64_t v)
{
    uint64_t u = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
    do {
        o->b[o->n++] = (uint8_t)((u & 0x7f) | (u > 0x7f ? 0x80 : 0));
        u >>= 7;
    } while (u);
}

static void bytes(out *o, const void *p, size_t n)
{
    memcpy(o->b + o->n, p, n);
    o->n += n;
}

/* records: n records at offset deltas 0.., key "k<i>" (null for i == 1), value "value <i>" */
static void records(out *o, int n)
{
    for (int i = 0; i < n; i++) {
        out r = {.n = 0};
        char key[8], value[16];
        int kn = snprintf(key, sizeof key, "k%d", i),
            vn = snprintf(value, sizeof value, "value %d", i);
        r.b[r.n++] = 0; /* attributes */
        varint(&r, i);  /* timestamp delta */
        varint(&r, i);  /* offset delta */
        varint(&r, i == 1 ? -1 : kn);
        if (i != 1) bytes(&r, key, (size_t)kn);
        varint(&r, vn);
        bytes(&r, value, (size_t)vn);
        varint(&r, 0); /* headers */
        varint(o, (int64_t)r.n);
        bytes(o, r.b, r.n);
    }
}

/* batch: a v2 record batch of n records at base, LZ4-compressed when lz4 */
static void batch(out *o, int64_t base, int n, int lz4)
{
    out body = {.n = 0};
    records(&body, n);
    if (lz4) {
        out packed = {.n = 0};
        packed.n = LZ4F_compressFrame(packed.b, sizeof packed.b, body.b, body.n, NULL);
        if (LZ4F_isError(packed.n)) return;
        body = packed;
    }
    be(o, (uint64_t)base, 8);
    be(o, 49 + body.n, 4); /* length after this field */
    be(o, 0, 4);           /* partition leader epoch */
    o->b[o->n++] = 2;      /* magic */
    be(o, 0, 4);           /* crc: not checked */
    be(o, lz4 ? 3 : 0, 2); /* attributes: the codec */
    be(o, (uint64_t)(n - 1), 4);
    be(o, 1700000000000ULL, 8);
    be(o, 1700000000000ULL + (uint64_t)n, 8);
    be(o, (uint64_t)-1, 8); /* producer id */
    be(o, (uint64_t)-1, 2);
    be(o, (uint64_t)-1, 4);
    be(o, (uint64_t)n, 4);
    bytes(o, body.b, body.n);
}

/* put_response writes a response for partition 0 of topic "t" whose records are the first
 * n bytes of `batches`; its first byte (the fuzz target's range end) reads up to offset 200 */
static void put_response(const char *name, const out *batches, size_t n)
{
    out resp = {.n = 0};
    be(&resp, 7, 4); /* correlation id */
    be(&resp, 0, 4); /* throttle time */
    be(&resp, 1, 4); /* topics */
    be(&resp, 1, 2);
    bytes(&resp, "t", 1);
    be(&resp, 1, 4);            /* partitions */
    be(&resp, 0, 4);            /* partition 0 */
    be(&resp, 0, 2);            /* no error */
    be(&resp, 7, 8);            /* high watermark */
    be(&resp, 7, 8);            /* last stable offset */
    be(&resp, (uint64_t)-1, 4); /* no aborted transactions */
    be(&resp, n, 4);
    bytes(&resp, batches->b, n);
    put("fetch", name, 200, resp.b, resp.n);
}

/* an uncompressed and an LZ4 batch; the same cut inside the LZ4 batch (a broker's response
 * may end inside a batch) */
static void fetch_seeds(void)
{
    out batches = {.n = 0};
    batch(&batches, 0, 3, 0);
    batch(&batches, 3, 4, 1);
    put_response("two-batches", &batches, batches.n);
    put_response("cut", &batches, batches.n - 9);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: fuzz_seeds CORPUS_DIR\n");
        return 2;
    }
    root = argv[1];
    graph_seeds();
    batch_and_value_seeds();
    handshake_and_http_seeds();
    fetch_seeds();
    return 0;
}
