/* fuzz_flow.c -- workflow documents (flow/em_flow.h): any bytes given to em_flow_load are a
 * flow or an error message, never a crash; a flow that loads is explained too (every node's
 * columns and description walked). */
#include <stdio.h>

#include "em_flow.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[1024];
    em_flow *f = em_flow_load((const char *)data, size, err, sizeof err);
    if (f) {
        FILE *null = fopen("/dev/null", "w");
        if (null) {
            em_flow_explain(f, null);
            fclose(null);
        }
    }
    em_flow_free(f);
    return 0;
}
