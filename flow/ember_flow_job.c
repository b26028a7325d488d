/* ember_flow_job.c -- ember_flow.so, the job library ember-flow submits when a flow calls no
 * function of its own: the flow runner (ember_flow.c) and nothing else. A library of flow
 * functions is built the same way, with its functions beside this line (docs/flows.md). */
#include <ember/ember.h>

EMBER_FLOW_LIBRARY
