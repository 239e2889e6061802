/*
 * schema.h - every key of a cvm job file, with its type, default, range and
 * documentation. docs/config.md is generated from this table
 * (`cvm config --markdown`), so the two cannot drift apart.
 */
#ifndef CVM_SCHEMA_H
#define CVM_SCHEMA_H

#include <stddef.h>

#include "config.h"

extern const cvm_cfg_key cvm_job_schema[];
extern const size_t cvm_job_schema_len;

#endif
