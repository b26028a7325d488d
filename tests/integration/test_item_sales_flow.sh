#!/usr/bin/env bash
# test_item_sales_flow.sh -- test_item_sales.sh with the workflow examples/flows/item_sales.json
# (run by ember-flow) in place of examples/item_sales.c: the same input, reference and kill -9.
ITEM_SALES_RUN=flow exec bash "$(dirname "$0")/test_item_sales.sh"
