/* em_block_service.h -- serves an executor's blocks to other executors (FetchBlock). */
#ifndef EM_BLOCK_SERVICE_H
#define EM_BLOCK_SERVICE_H

#include "em_blockstore.h"
#include "em_server.h"

/* em_block_service_run answers FetchBlock requests on srv until it is closed.
 * Thread: the executor's block service thread. */
void em_block_service_run(em_server *srv, em_blockstore *blocks);

#endif
