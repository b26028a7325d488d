/* em_err.c -- names and messages of ember's error codes, generated from EMBER_ERRORS. */
#include <ember/ember.h>

const char *ember_strerror(int err)
{
    switch (err) {
#define EMBER_ERR_MSG_(name, value, msg)                                                           \
    case value: return msg;
        EMBER_ERRORS(EMBER_ERR_MSG_)
#undef EMBER_ERR_MSG_
    }
    return "unknown error";
}

const char *ember_err_name(int err)
{
    switch (err) {
#define EMBER_ERR_NAME_(name, value, msg)                                                          \
    case value: return #name;
        EMBER_ERRORS(EMBER_ERR_NAME_)
#undef EMBER_ERR_NAME_
    }
    return "EMBER_ERR_UNKNOWN";
}
