/* fuzz_values.c -- the values the reduce side of a shuffle hands to user code: grouped records
 * (group_by_key, cogroup) read with ember_group_open/next, and joined ones read with
 * ember_join_values (common/job/em_wide.h). The bytes are one record's value. */
#include <ember/ember.h>

#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ember_record rec = {"k", 1, data, size, 0}, value, left, right;
    ember_group_iter it;
    int side;
    if (ember_group_open(&rec, &it) >= 0)
        while (ember_group_next(&it, &value, &side) == 1) {
        }
    ember_join_values(&rec, &left, &right);
    return 0;
}
