/* other_api.c -- a job library as one built against another ember.h would be: it records API
 * version 99 (what ember.h's ember_api_version does for the real version). ember-submit and
 * the executors must refuse it, naming both versions. */
__attribute__((visibility("default"))) const int ember_api_version = 99;

__attribute__((visibility("default"))) int ember_main(void *ctx, int argc, char **argv)
{
    (void)ctx;
    (void)argc;
    (void)argv;
    return 0;
}
