/* no_entry.c -- a job library without ember_main: ember-submit must refuse it clearly. */
#include <ember/ember.h>

int not_the_entry_point(ember_ctx *ctx) { return ctx != 0; }
