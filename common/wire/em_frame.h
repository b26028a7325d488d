/* em_frame.h -- the envelope of every ember message on the wire.
 *
 * A frame is a 24-byte header, a protobuf-c control message, then optional raw data (record
 * batches, .so bytes):
 *   offset 0  u32 magic "EMBF"   offset 4  u8 version   offset 5  u8 message type
 *   offset 6  u16 flags          offset 8  u32 protobuf bytes   offset 12 u32 data bytes
 *   offset 16 u64 XXH3 (em_hash seed) of header bytes 0..15, protobuf bytes and data bytes
 * Flags are set by message type, and a frame whose flags are not its type's is refused.
 * EM_FRAME_F_BATCHES (BLOCK_DATA): the data part is record batches, each with its own
 * checksum (em_batch.h) made once by the writer and checked by whoever reads the records, so
 * the frame's checksum leaves the data out instead of hashing every shuffled byte twice more.
 * protobuf-c can decode garbage into a valid-looking message, so nothing is unpacked until
 * the checksum matches and the lengths add up to the message size exactly.
 */
#ifndef EM_FRAME_H
#define EM_FRAME_H

#include <nng/nng.h>
#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

#include "em_auth.h"
#include "ember.pb-c.h"

#define EM_FRAME_MAGIC     0x46424d45u /* "EMBF" little-endian */
#define EM_FRAME_VERSION   1
#define EM_FRAME_HEADER    24
#define EM_FRAME_F_BATCHES 0x0001 /* the data part checks itself: record batches */
/* EM_PART_MAX: the largest frame sent whole; a larger one travels in parts of this size */
#define EM_PART_MAX (1u << 20)
/* EM_RECV_MAX: what a server accepts as one message: a part and its envelope */
#define EM_RECV_MAX (EM_PART_MAX + 4096)

/* EM_MESSAGES lists every message type once: name, number, protobuf-c descriptor, and the
 * roles (em_auth.h) that may send it as a request; 0 for replies and for the handshake,
 * which the server answers itself. */
#define EM_MESSAGES(X)                                                                             \
    X(HELLO, 1, ember__hello__descriptor, 0)                                                       \
    X(HELLO_REPLY, 2, ember__hello_reply__descriptor, 0)                                           \
    X(ERROR, 3, ember__error_reply__descriptor, 0)                                                 \
    X(HAS_LIBRARY, 4, ember__has_library__descriptor, EM_ROLE_SUBMITTER)                           \
    X(HAS_LIBRARY_REPLY, 5, ember__has_library_reply__descriptor, 0)                               \
    X(PUT_LIBRARY, 6, ember__put_library__descriptor, EM_ROLE_SUBMITTER)                           \
    X(SUBMIT_JOB, 7, ember__submit_job__descriptor, EM_ROLE_SUBMITTER)                             \
    X(JOB_RESULT, 8, ember__job_result__descriptor, 0)                                             \
    X(REGISTER, 9, ember__register__descriptor, EM_ROLE_EXECUTOR)                                  \
    X(REGISTERED, 10, ember__registered__descriptor, 0)                                            \
    X(POLL, 11, ember__poll__descriptor, EM_ROLE_EXECUTOR)                                         \
    X(TASKS, 12, ember__tasks__descriptor, 0)                                                      \
    X(REPORT, 13, ember__report__descriptor, EM_ROLE_EXECUTOR)                                     \
    X(REPORT_REPLY, 14, ember__report_reply__descriptor, 0)                                        \
    X(FETCH_LIBRARY, 15, ember__fetch_library__descriptor, EM_ROLE_EXECUTOR)                       \
    X(LIBRARY_DATA, 16, ember__library_data__descriptor, 0)                                        \
    X(FETCH_BLOCK, 17, ember__fetch_block__descriptor, EM_ROLE_PEER)                               \
    X(BLOCK_DATA, 18, ember__block_data__descriptor, 0)                                            \
    X(JOB_PROGRESS, 19, ember__job_progress__descriptor, EM_ROLE_SUBMITTER)                        \
    X(JOB_PROGRESS_REPLY, 20, ember__job_progress_reply__descriptor, 0)                            \
    X(GOODBYE, 21, ember__goodbye__descriptor, EM_ROLE_SUBMITTER | EM_ROLE_EXECUTOR)               \
    X(EXECUTOR_CRASHED, 22, ember__executor_crashed__descriptor, EM_ROLE_SUPERVISOR)               \
    X(UNPERSIST, 23, ember__unpersist__descriptor, EM_ROLE_SUBMITTER)                              \
    X(CHALLENGE, 24, ember__challenge__descriptor, 0)                                              \
    X(AUTH, 25, ember__auth__descriptor, 0)                                                        \
    X(PART, 26, ember__part__descriptor, 0)                                                        \
    X(PART_ACK, 27, ember__part_ack__descriptor, 0)                                                \
    X(START_QUERY, 28, ember__start_query__descriptor, EM_ROLE_SUBMITTER)                          \
    X(GET_QUERY, 29, ember__get_query__descriptor, EM_ROLE_SUBMITTER)                              \
    X(STOP_QUERY, 30, ember__stop_query__descriptor, EM_ROLE_SUBMITTER)                            \
    X(QUERY_STATUS, 31, ember__query_status__descriptor, 0)                                        \
    X(SUBMIT_FAILED, 32, ember__submit_failed__descriptor, EM_ROLE_SUBMITTER)

typedef enum em_msg_type {
    EM_MSG_NONE = 0,
#define EM_MSG_ENUM_(name, num, desc, roles) EM_MSG_##name = num,
    EM_MESSAGES(EM_MSG_ENUM_)
#undef EM_MSG_ENUM_
        EM_MSG_COUNT
} em_msg_type;

/* em_msg_name returns "HELLO", "SUBMIT_JOB"... or "UNKNOWN". */
const char *em_msg_name(int type);
/* em_msg_roles: the roles that may send a message of this type as a request (0: none) */
unsigned em_msg_roles(int type);

/* em_frame: a validated frame; proto and data point into the message it was parsed from. */
typedef struct em_frame {
    em_msg_type type;
    const uint8_t *proto;
    size_t proto_len;
    const uint8_t *data;
    size_t data_len;
} em_frame;

/* em_iov: one piece of a frame's data part. */
typedef struct em_iov {
    const void *p;
    size_t len;
} em_iov;

/* em_frame_parse validates [buf, buf+len) as exactly one frame.
 * Returns EMBER_OK, or EMBER_ERR_MALFORMED with a reason in err. */
int em_frame_parse(const void *buf, size_t len, em_frame *f, char *err, size_t errlen);

/* em_frame_append packs `pb` (may be NULL for an empty message) and the data pieces as one
 * frame at the end of msg's body; msg's header (nng routing) is left alone. */
int em_frame_append(nng_msg *msg, em_msg_type type, const ProtobufCMessage *pb, const em_iov *data,
                    size_t n_data);

/* em_frame_new is em_frame_append into a new message, which the caller owns. */
int em_frame_new(nng_msg **out, em_msg_type type, const ProtobufCMessage *pb, const em_iov *data,
                 size_t n_data);

/* em_frame_unpack decodes the frame's protobuf part if its type is `expect`; NULL otherwise.
 * Free the result with em_pb_free. */
void *em_frame_unpack(const em_frame *f, em_msg_type expect);
void em_pb_free(void *pb);

#endif
