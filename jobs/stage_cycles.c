/* Placeholder until the cycles issue lands: the stage has only its switch. */
#include "stage.h"

static const cvm_cfg_key schema[] = {
    {"cycles.enabled", CVM_CFG_BOOL, "false", 1, 0, NULL, "Run the cycles stage (not implemented yet)."},
};

static int run(cvm_stage_ctx *ctx, cvm_err *err)
{
    (void)ctx;
    return CVM_FAIL(err, CVM_ECONFIG, "cycles: this stage is not implemented yet; set cycles.enabled: false");
}

const cvm_stage cvm_stage_cycles = {"cycles", schema, sizeof schema / sizeof schema[0], NULL, run};
