/*
 * schema.h - every key of a cvm job file, with its type, default, range and
 * documentation. docs/config.md is generated from this table
 * (`cvm config --markdown`), so the two cannot drift apart.
 */
#ifndef CVM_SCHEMA_H
#define CVM_SCHEMA_H

#include <stddef.h>

#include "config.h"

/** @brief Every key: the core keys with each stage's fragment (stage.h)
 *  inserted before the actions section. Built once; never NULL (aborts on
 *  allocation failure at start-up, before any work). */
const cvm_cfg_key *cvm_job_schema(size_t *n_keys);

#endif
