/* em_frame.c -- build and validate ember frames (format in em_frame.h). */
#include "em_frame.h"

#include <ember/ember.h>
#include <stdio.h>
#include <string.h>

#include "em_buf.h"
#include "em_hash.h"

static const ProtobufCMessageDescriptor *const descriptors[EM_MSG_COUNT] = {
#define EM_MSG_DESC_(name, num, desc, roles) [num] = &desc,
    EM_MESSAGES(EM_MSG_DESC_)
#undef EM_MSG_DESC_
};

const char *em_msg_name(int type)
{
    switch (type) {
#define EM_MSG_NAME_(name, num, desc, roles)                                                       \
    case num: return #name;
        EM_MESSAGES(EM_MSG_NAME_)
#undef EM_MSG_NAME_
    }
    return "UNKNOWN";
}

unsigned em_msg_roles(int type)
{
    switch (type) {
#define EM_MSG_ROLES_(name, num, desc, roles)                                                      \
    case num: return (unsigned)(roles);
        EM_MESSAGES(EM_MSG_ROLES_)
#undef EM_MSG_ROLES_
    }
    return 0;
}

/* flags_for: the flags a frame of this type carries */
static unsigned flags_for(int type) { return type == EM_MSG_BLOCK_DATA ? EM_FRAME_F_BATCHES : 0; }

/* checked_len: the bytes after the header that the frame's checksum covers */
static size_t checked_len(unsigned flags, size_t plen, size_t dlen)
{
    return flags & EM_FRAME_F_BATCHES ? plen : plen + dlen;
}

int em_frame_parse(const void *buf, size_t len, em_frame *f, char *err, size_t errlen)
{
    const uint8_t *h = buf;
    if (len < EM_FRAME_HEADER) {
        snprintf(err, errlen, "frame of %zu bytes is shorter than its header", len);
        return EMBER_ERR_MALFORMED;
    }
    if (em_get_u32le(h) != EM_FRAME_MAGIC || h[4] != EM_FRAME_VERSION) {
        snprintf(err, errlen, "not an ember frame (bad magic or version)");
        return EMBER_ERR_MALFORMED;
    }
    uint32_t plen = em_get_u32le(h + 8), dlen = em_get_u32le(h + 12);
    if ((uint64_t)EM_FRAME_HEADER + plen + dlen != len) {
        snprintf(err, errlen, "frame lengths %u+%u do not match its size %zu", plen, dlen, len);
        return EMBER_ERR_MALFORMED;
    }
    if (h[5] == EM_MSG_NONE || h[5] >= EM_MSG_COUNT) {
        snprintf(err, errlen, "unknown message type %u", h[5]);
        return EMBER_ERR_MALFORMED;
    }
    unsigned flags = flags_for(h[5]);
    if (h[6] != (flags & 0xff) || h[7] != flags >> 8) {
        snprintf(err, errlen, "unknown frame flags 0x%02x%02x", h[7], h[6]);
        return EMBER_ERR_MALFORMED;
    }
    if (em_hash64_sealed(h, h + EM_FRAME_HEADER, checked_len(flags, plen, dlen)) !=
        em_get_u64le(h + 16)) {
        snprintf(err, errlen, "frame checksum mismatch (%s)", em_msg_name(h[5]));
        return EMBER_ERR_MALFORMED;
    }
    f->type = (em_msg_type)h[5];
    f->proto = h + EM_FRAME_HEADER;
    f->proto_len = plen;
    f->data = f->proto + plen;
    f->data_len = dlen;
    return EMBER_OK;
}

int em_frame_append(nng_msg *msg, em_msg_type type, const ProtobufCMessage *pb, const em_iov *data,
                    size_t n_data)
{
    size_t plen = pb ? protobuf_c_message_get_packed_size(pb) : 0, dlen = 0;
    for (size_t i = 0; i < n_data; i++) dlen += data[i].len;
    if (plen > UINT32_MAX || dlen > UINT32_MAX - plen) return EMBER_ERR_TOO_LARGE;
    size_t base = nng_msg_len(msg);
    if (nng_msg_realloc(msg, base + EM_FRAME_HEADER + plen + dlen) != 0) return EMBER_ERR_NOMEM;
    uint8_t *h = (uint8_t *)nng_msg_body(msg) + base, *p = h + EM_FRAME_HEADER;
    if (pb) protobuf_c_message_pack(pb, p);
    p += plen;
    for (size_t i = 0; i < n_data; i++) {
        if (data[i].len) memcpy(p, data[i].p, data[i].len);
        p += data[i].len;
    }
    em_put_u32le(h, EM_FRAME_MAGIC);
    h[4] = EM_FRAME_VERSION;
    h[5] = (uint8_t)type;
    unsigned flags = flags_for(type);
    h[6] = (uint8_t)(flags & 0xff);
    h[7] = (uint8_t)(flags >> 8);
    em_put_u32le(h + 8, (uint32_t)plen);
    em_put_u32le(h + 12, (uint32_t)dlen);
    em_put_u64le(h + 16, em_hash64_sealed(h, h + EM_FRAME_HEADER, checked_len(flags, plen, dlen)));
    return EMBER_OK;
}

int em_frame_new(nng_msg **out, em_msg_type type, const ProtobufCMessage *pb, const em_iov *data,
                 size_t n_data)
{
    nng_msg *msg;
    if (nng_msg_alloc(&msg, 0) != 0) return EMBER_ERR_NOMEM;
    int rc = em_frame_append(msg, type, pb, data, n_data);
    if (rc != EMBER_OK) {
        nng_msg_free(msg);
        return rc;
    }
    *out = msg;
    return EMBER_OK;
}

void *em_frame_unpack(const em_frame *f, em_msg_type expect)
{
    if (f->type != expect) return NULL;
    return protobuf_c_message_unpack(descriptors[expect], NULL, f->proto_len, f->proto);
}

void em_pb_free(void *pb)
{
    if (pb) protobuf_c_message_free_unpacked(pb, NULL);
}
