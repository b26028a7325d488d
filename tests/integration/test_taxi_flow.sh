#!/usr/bin/env bash
# test_taxi_flow.sh -- test_taxi_stream.sh with the workflow examples/flows/taxi.json (run by
# ember-flow with its function library, taxi_flow.so) in place of examples/taxi_stream.c: the
# same input, references and kill -9.
TAXI_RUN=flow exec bash "$(dirname "$0")/test_taxi_stream.sh"
