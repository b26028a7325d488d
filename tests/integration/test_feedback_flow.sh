#!/usr/bin/env bash
# test_feedback_flow.sh -- test_feedback_alerts.sh with the workflow examples/flows/feedback.json
# (run by ember-flow with its function library, feedback_flow.so) in place of
# examples/feedback_alerts.c: the same input, reference and kill -9.
FEEDBACK_RUN=flow exec bash "$(dirname "$0")/test_feedback_alerts.sh"
