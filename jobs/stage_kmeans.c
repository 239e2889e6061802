/* Placeholder until the kmeans issue lands: the stage has only its switch. */
#include "stage.h"

static const cvm_cfg_key schema[] = {
    {"kmeans.enabled", CVM_CFG_BOOL, "false", 1, 0, NULL, "Run the kmeans stage (not implemented yet)."},
};

static int run(cvm_stage_ctx *ctx, cvm_err *err)
{
    (void)ctx;
    return CVM_FAIL(err, CVM_ECONFIG, "kmeans: this stage is not implemented yet; set kmeans.enabled: false");
}

const cvm_stage cvm_stage_kmeans = {"kmeans", schema, sizeof schema / sizeof schema[0], NULL, run};
